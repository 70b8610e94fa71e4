package chat.tcp;

import chat.auth.AuthVerticle;
import chat.auth.SessionRef;
import chat.protocol.Addresses;
import chat.protocol.LoginOutcome;
import chat.protocol.RegisterOutcome;
import chat.protocol.Replies;
import chat.protocol.Reply;
import chat.protocol.WireJson;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundBuffer;
import io.netty.channel.unix.UnixChannel;
import io.netty.channel.unix.IovArray;
import io.netty.channel.unix.Socket;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.internal.net.NetSocketInternal;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.NetSocket;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import java.util.List;

/**
 * One TCP client: frames its bytes, handles each message in order (§4.2-§4.6) and holds its
 * socket session, if any. Lives on its verticle's event loop only.
 *
 * <p>Messages are handled strictly one after another: while one waits (a login hashing a
 * password), the socket is paused and later frames wait, so a pipelined {@code login} then
 * {@code chat} behaves as if the client had waited for each reply.
 */
final class TcpConnection implements JsonFramer.Sink {

  private static final Logger log = LoggerFactory.getLogger(TcpConnection.class);

  /** Markers queued in stream order alongside frames. */
  private static final Object GARBAGE = new Object();
  private static final Object TOO_LARGE = new Object();

  /** How long a last message may take to leave before the connection is cut off anyway. */
  private static final long CLOSE_GRACE_MILLIS = 2000;

  private static final long AUTH_TIMEOUT_MILLIS = 120_000;

  final long id;
  final NetSocket socket;
  /** Vert.x's handler context of the socket; over TLS the SslHandler sits before it, so writes here are encrypted. */
  private final ChannelHandlerContext ctx;
  /** The kernel socket of a plain connection on the epoll transport, for {@link #deliver}; else null. */
  private final Socket rawSocket;
  private final TcpVerticle verticle;
  private final JsonFramer framer;

  /** The user whose socket session this connection holds, or null. */
  String user;
  /** Position in the verticle's list of session holders, -1 when not in it. */
  int sessionIndex = -1;
  /** Sequence number of the first broadcast batch this session holder has not been written yet. */
  long nextSeq;
  long lastFrameMillis;
  private boolean closed;
  /** The client sent FIN: finish what it sent, then close. */
  private boolean inputEnded;
  /** The server is stopping: finish the message in hand, say so, then close. */
  private boolean stopping;
  /** Whether the socket is really closed (closed only means that we stopped using it). */
  private boolean gone;
  private boolean busy;
  private ArrayDeque<Object> waiting;

  TcpConnection(TcpVerticle verticle, NetSocket socket, long id, int maxFrameBytes, long now, boolean tls) {
    this.verticle = verticle;
    this.socket = socket;
    this.ctx = ((NetSocketInternal) socket).channelHandlerContext();
    this.rawSocket = !tls && ctx.channel() instanceof UnixChannel unix && unix.fd() instanceof Socket s ? s : null;
    this.id = id;
    this.lastFrameMillis = now;
    this.framer = new JsonFramer(maxFrameBytes, this);
  }

  void start() {
    InputShutdownHandler.install(socket, this);
    socket.handler(framer);
    socket.closeHandler(v -> onClosed());
    socket.shutdownHandler(v -> onServerShutdown());
    socket.exceptionHandler(err -> log.debug("Connection {} failed: {}", id, err.toString()));
  }

  SessionRef ref() {
    return new SessionRef(verticle.ownerAddress, id);
  }

  // ---- framer events, in stream order ----

  @Override
  public void onFrame(Buffer frame) {
    lastFrameMillis = verticle.now();
    verticle.stats.framesIn++;
    accept(frame);
  }

  @Override
  public void onGarbage() {
    accept(GARBAGE);
  }

  @Override
  public void onTooLarge() {
    accept(TOO_LARGE);
  }

  private void accept(Object item) {
    if (closed) {
      return;
    }
    if (busy) {
      if (waiting == null) {
        waiting = new ArrayDeque<>(4);
      }
      waiting.add(item);
      return;
    }
    handle(item);
  }

  private void handle(Object item) {
    Future<?> done;
    try {
      done = dispatch(item);
    } catch (RuntimeException e) {
      log.error("Closing connection {} after an unexpected failure", id, e);
      closeWith(Replies.INTERNAL_ERROR);
      return;
    }
    if (done.isComplete()) {
      return;
    }
    busy = true;
    socket.pause();
    done.onComplete(r -> {
      busy = false;
      while (!busy && !closed && waiting != null && !waiting.isEmpty()) {
        handle(waiting.poll());
      }
      if (!busy && !closed) {
        if (stopping) {
          closeWith(Replies.SHUTTING_DOWN);
        } else if (inputEnded) {
          end();
        } else {
          socket.resume();
        }
      }
    });
  }

  /**
   * The server stops accepting and drains (SIGTERM): a message being handled (a registration
   * hashing its password) is finished and answered; then the client hears why, and the
   * connection closes once its queued output is written.
   */
  private void onServerShutdown() {
    stopping = true;
    if (!busy) {
      closeWith(Replies.SHUTTING_DOWN);
    }
  }

  /** The client will send nothing more; close once the messages it sent are answered. */
  void onInputShutdown() {
    inputEnded = true;
    if (!busy) {
      end();
    }
  }

  /** Closes after every queued reply is written. */
  private void end() {
    closeGracefully(null);
  }

  private Future<?> dispatch(Object item) {
    if (item == GARBAGE) {
      return send(Replies.INVALID_JSON);
    }
    if (item == TOO_LARGE) {
      closeWith(Replies.MESSAGE_TOO_LARGE);
      return Future.succeededFuture();
    }
    JsonObject msg = WireJson.parseObject((Buffer) item);
    if (msg == null) {
      return send(Replies.INVALID_JSON);
    }
    Object type = msg.getValue("type");
    if ("chat".equals(type)) {
      return verticle.chats.chat(msg.getValue("token"), msg.getValue("message"), true)
          .compose(outcome -> send(outcome.tcp));
    } else if ("heartbeat".equals(type)) {
      return verticle.chats.heartbeat(msg.getValue("token"))
          .compose(ok -> send(ok ? Replies.HEARTBEAT_OK : Replies.HEARTBEAT_ERROR));
    } else if ("login".equals(type)) {
      return login(msg);
    } else if ("register".equals(type)) {
      return register(msg);
    }
    return send(Replies.UNKNOWN_TYPE);
  }

  private Future<?> register(JsonObject msg) {
    return verticle.vertx().eventBus().<JsonObject>request(Addresses.REGISTER, msg, authRequest())
        .compose(
            reply -> send(RegisterOutcome.valueOf(reply.body().getString("outcome")).tcp),
            err -> send(Replies.SERVER_BUSY));
  }

  private Future<?> login(JsonObject msg) {
    JsonObject request = new JsonObject()
        .put("username", msg.getValue("username"))
        .put("password", msg.getValue("password"))
        .put("token", msg.getValue("token"))
        .put(AuthVerticle.SESSION_OWNER, verticle.ownerAddress)
        .put(AuthVerticle.SESSION_CONNECTION, id);
    return verticle.vertx().eventBus().<JsonObject>request(Addresses.LOGIN, request, authRequest()).compose(reply -> {
      JsonObject r = reply.body();
      LoginOutcome outcome = LoginOutcome.valueOf(r.getString("outcome"));
      if (outcome != LoginOutcome.SUCCESS) {
        return send(outcome.tcp);
      }
      String username = r.getString("username");
      if (closed) {
        // the client left while its login was in flight: give the session back at once
        verticle.sessions.release(username, ref());
        return Future.succeededFuture();
      }
      if (user != null && !user.equals(username)) {
        // one user per connection: logging in as another user releases the first
        verticle.sessions.release(user, ref());
      }
      user = username;
      verticle.holdsSession(this);
      return send(Replies.tcpLoggedIn(r.getString("token"), username, r.getString("avatar")));
    }, err -> send(Replies.SERVER_BUSY));
  }

  /**
   * The listener and the client's address travel as headers (metrics, per-address abuse limits).
   * Made per request, not kept: an idle session should hold as little as possible.
   */
  private DeliveryOptions authRequest() {
    DeliveryOptions options = new DeliveryOptions().setSendTimeout(AUTH_TIMEOUT_MILLIS).setLocalOnly(true)
        .addHeader(Addresses.TRANSPORT_HEADER, "tcp");
    // Netty's own address, not NetSocket.remoteAddress(), which keeps a copy for the connection's life
    if (ctx.channel().remoteAddress() instanceof InetSocketAddress peer && peer.getAddress() != null) {
      options.addHeader(Addresses.CLIENT_ADDRESS_HEADER, peer.getAddress().getHostAddress());
    }
    return options;
  }

  // ---- output ----

  Future<Void> send(Reply reply) {
    return send(reply.line());
  }

  /**
   * Queues a reply. The returned future is already complete: waiting for the write itself would
   * pause the connection for every message. Replies count against tcp.maxPendingBytes like
   * broadcasts do (§4.5): a client that sends requests but never reads its replies is cut off.
   *
   * <p>Replies go through the NetSocket, which flushes once at the end of each read rather than
   * per reply, so pipelined requests cost one syscall per read. The order with broadcasts, which
   * bypass it, holds: both reach Netty's outbound buffer at once, since nothing is written to a
   * connection that is not writable (it is cut off instead) and Vert.x queues only then.
   */
  Future<Void> send(Buffer line) {
    if (stillWritable()) {
      socket.write(line);
    }
    return Future.succeededFuture();
  }

  /**
   * Writes the broadcast batches {@code log[from..]} (direct buffers shared by every holder) in one
   * go: the holder's part of a pass of {@link Broadcaster}.
   *
   * <p>Usually nothing is waiting to be written to the connection, and then the bytes go straight
   * to the kernel with one send(2), or one writev(2) for several batches: no Netty write, promise,
   * outbound entry or view of a buffer per holder, which is most of what a broadcast costs us
   * besides the kernel's own work. When output is pending (a reply not yet flushed, a holder
   * behind), or the kernel takes only part, the rest goes through Netty behind what is queued, as
   * retained views: order is kept either way, and unsent bytes count against tcp.maxPendingBytes
   * as before. Over TLS everything goes through Netty, whose pipeline encrypts it.
   */
  void deliver(List<ByteBuf> log, int from, IovArray iov) {
    if (!stillWritable()) {
      return;
    }
    int to = log.size();
    int done = from;   // batches entirely written
    int partly = 0;    // bytes of log[done] written
    // isOpen: Netty marks the descriptor closed before closing it, and our close handler may run
    // later in the turn: a closed descriptor's number may already belong to a new connection
    if (rawSocket != null && rawSocket.isOpen()) {
      ChannelOutboundBuffer pending = ctx.channel().unsafe().outboundBuffer();
      if (pending != null && pending.totalPendingWriteBytes() == 0) {
        long sent;
        try {
          if (to - from == 1) {
            ByteBuf b = log.get(from);
            sent = rawSocket.sendAddress(b.memoryAddress(), b.readerIndex(), b.writerIndex());
          } else {
            iov.clear();
            for (int i = from; i < to; i++) {
              ByteBuf b = log.get(i);
              if (!iov.add(b, b.readerIndex(), b.readableBytes())) {
                break; // more than one writev takes: the rest goes through Netty below
              }
            }
            sent = rawSocket.writevAddresses(iov.memoryAddress(0), iov.count());
          }
        } catch (IOException e) {
          sent = 0; // the connection failed: Netty's write below meets the same error and closes it
        }
        while (done < to && sent >= log.get(done).readableBytes()) {
          sent -= log.get(done).readableBytes();
          done++;
        }
        if (done == to) {
          return;
        }
        partly = (int) sent;
      }
    }
    for (int i = done; i < to; i++) {
      ByteBuf b = log.get(i);
      int skip = i == done ? partly : 0;
      ctx.write(b.retainedSlice(b.readerIndex() + skip, b.readableBytes() - skip), ctx.voidPromise());
    }
    ctx.flush();
  }

  /** False when closed, or when the unsent output passed tcp.maxPendingBytes: the receiver is then cut off. */
  private boolean stillWritable() {
    if (closed) {
      return false;
    }
    if (!ctx.channel().isWritable()) {
      log.info("Closing connection {} of {}: it stopped reading (slow consumer)", id, user);
      verticle.stats.slowConsumersDropped++;
      close();
      return false;
    }
    return true;
  }

  /**
   * Sends a last message, then closes. A graceful close completes only once the unsent output is
   * written, which a peer that does not read prevents forever: such a connection is cut off
   * instead, at once when its queue is already full, else after {@link #CLOSE_GRACE_MILLIS}.
   */
  void closeWith(Reply last) {
    closeGracefully(last.line());
  }

  private void closeGracefully(Buffer last) {
    if (closed) {
      return;
    }
    framer.stop();
    closed = true;
    if (!ctx.channel().isWritable()) {
      abort();
      return;
    }
    if (last == null) {
      socket.end();
    } else {
      socket.end(last);
    }
    verticle.vertx().setTimer(CLOSE_GRACE_MILLIS, t -> {
      if (!gone) {
        abort();
      }
    });
  }

  /** Cuts the connection off at once, dropping its unsent output (a slow consumer, §4.5). */
  void close() {
    if (!closed) {
      framer.stop();
      closed = true;
      abort();
    }
  }

  /**
   * Closes the channel without waiting for unsent output: {@code NetSocket.close()} first flushes
   * it, which never finishes while the peer does not read, and the session would stay held.
   */
  private void abort() {
    // from Vert.x's own handler context: channel().close() would pass through that handler, which flushes first
    ctx.close();
  }

  /** The one place a connection's session ends: every way of closing arrives here. */
  private void onClosed() {
    gone = true;
    closed = true;
    framer.stop();
    verticle.forget(this);
    if (user != null) {
      verticle.sessions.release(user, ref());
    }
  }
}
