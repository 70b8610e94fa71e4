package chat.tcp;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.vertx.core.internal.net.NetSocketInternal;
import io.vertx.core.net.NetSocket;

/**
 * Half-closed connections: a client may send its messages and then shut down its sending side
 * (as {@code nc} does at the end of its input) while it still reads the replies. Vert.x closes
 * the whole connection on the client's FIN, losing the replies still being computed; with
 * Netty's half-closure on, the FIN becomes an event, and the connection finishes what it
 * received before it closes.
 *
 * <p>Over TLS the handler sits after Netty's SslHandler (both are before Vert.x's "handler"), so it
 * sees the decrypted side. There the end of the client's input is its TLS close_notify
 * (SslHandler's {@link SslCloseCompletionEvent}), which may come without a TCP FIN (a client that
 * keeps the socket open to read); the FIN, when it follows, is the same end again.
 */
final class InputShutdownHandler extends ChannelInboundHandlerAdapter {

  private final TcpConnection connection;

  private InputShutdownHandler(TcpConnection connection) {
    this.connection = connection;
  }

  /** Enables half-closure on the socket's channel and reports its FIN to {@code connection}. */
  static void install(NetSocket socket, TcpConnection connection) {
    ChannelHandlerContext ctx = ((NetSocketInternal) socket).channelHandlerContext();
    ctx.channel().config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
    ctx.pipeline().addBefore("handler", "input-shutdown", new InputShutdownHandler(connection));
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
    if (evt instanceof ChannelInputShutdownEvent
        || evt instanceof SslCloseCompletionEvent close && close.isSuccess()) {
      // runs on the channel's event loop, which is the owning verticle's
      connection.onInputShutdown();
    }
    super.userEventTriggered(ctx, evt);
  }
}
