package chat.tcp;

import chat.auth.ChatService;
import chat.auth.SessionRegistry;
import chat.metrics.ServerMetrics;
import chat.net.ConnectionCap;
import chat.net.Tls;
import chat.protocol.Addresses;
import chat.protocol.OwnerCommands;
import chat.protocol.Replies;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.Message;
import io.vertx.core.internal.net.NetSocketInternal;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.net.NetSocket;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * The TCP listener (PROTOCOL.md §4). Several instances run, one per event loop, sharing the
 * port; each owns its connections and answers commands for them on its own address
 * ({@link #ownerAddress}). Every instance receives each broadcast once and writes that same
 * Buffer to each of its session holders.
 *
 * <p>The same class serves the plain and the TLS port ({@link Settings#tls} set): over TLS the
 * protocol is byte for byte the same. Every connection takes a place in the shared
 * {@link ConnectionCap} of all TCP listeners; past {@code tcp.maxConnections} a new connection
 * gets the one line {@code Too many connections} and is closed.
 */
public final class TcpVerticle extends VerticleBase {

  /** @param tls the certificate for a TLS listener, null for plain text */
  public record Settings(String host, int port, int maxFrameBytes, int maxPendingBytes, Tls tls,
      int shutdownGraceSeconds) {
  }

  /** How long a refused connection's last line may take to leave before it is cut off anyway. */
  private static final long REFUSE_GRACE_MILLIS = 2000;

  final ChatService chats;
  final SessionRegistry sessions;
  final ServerMetrics.TcpStats stats;
  private final ServerMetrics metrics;
  final String ownerAddress = Addresses.TCP_OWNER_PREFIX + UUID.randomUUID();
  private final Settings settings;
  private final LongSupplier clock;
  private final ConnectionCap cap;

  private final Map<Long, TcpConnection> connections = new HashMap<>();
  private long nextConnectionId;
  /** Writes the broadcasts to this verticle's session holders; made in start(), on the verticle's context. */
  private Broadcaster broadcaster;
  private NetServer server;

  public TcpVerticle(Settings settings, ChatService chats, SessionRegistry sessions, ServerMetrics metrics,
      LongSupplier clock, ConnectionCap cap) {
    this.settings = settings;
    this.cap = cap;
    this.metrics = metrics;
    this.stats = metrics.newTcpStats();
    this.chats = chats;
    this.sessions = sessions;
    this.clock = clock;
  }

  @Override
  public Future<?> start() {
    NetServerOptions options = new NetServerOptions()
        .setHost(settings.host())
        .setPort(settings.port())
        .setTcpNoDelay(true);
    if (settings.tls() != null) {
      settings.tls().applyTo(options);
    }
    broadcaster = new Broadcaster(context, stats);
    server = vertx.createNetServer(options);
    server.connectHandler(this::accept);
    metrics.watchEventLoop(vertx);
    return Future.all(
            vertx.eventBus().<Buffer>consumer(Addresses.BROADCAST, m -> broadcaster.publish(m.body())).completion(),
            vertx.eventBus().<JsonObject>consumer(ownerAddress, this::command).completion(),
            vertx.eventBus().<Long>localConsumer(Addresses.SWEEP_UNAUTHENTICATED, m -> sweepUnauthenticated(m.body()))
                .completion())
        .compose(v -> server.listen());
  }

  /**
   * Stops accepting, asks every connection to finish and close (each answers what it is handling,
   * then says {@code Server shutting down}), and closes what is left after the grace period.
   */
  @Override
  public Future<?> stop() {
    return server.shutdown(settings.shutdownGraceSeconds(), TimeUnit.SECONDS).onComplete(r -> broadcaster.close());
  }

  public int actualPort() {
    return server.actualPort();
  }

  Vertx vertx() {
    return vertx;
  }

  long now() {
    return clock.getAsLong();
  }

  private void accept(NetSocket socket) {
    // over TLS this runs once the handshake is done: a handshake that never finishes takes no place
    if (!cap.tryAcquire()) {
      refuse(socket);
      return;
    }
    EventLoopWrites.install(socket);
    socket.setWriteQueueMaxSize(settings.maxPendingBytes());
    long id = ++nextConnectionId;
    TcpConnection c = new TcpConnection(this, socket, id, settings.maxFrameBytes(), now(), settings.tls() != null);
    connections.put(id, c);
    stats.connections = connections.size();
    c.start();
  }

  /** Past tcp.maxConnections: the one line, then the close; nothing the client sends is read. */
  private void refuse(NetSocket socket) {
    boolean[] gone = {false};
    socket.handler(ignored -> {
    });
    socket.exceptionHandler(ignored -> {
    });
    socket.closeHandler(v -> gone[0] = true);
    socket.end(Replies.TOO_MANY_CONNECTIONS.line());
    vertx.setTimer(REFUSE_GRACE_MILLIS, t -> {
      if (!gone[0]) {
        // a client that does not read: drop the line rather than wait for it
        if (socket instanceof NetSocketInternal internal) {
          internal.channelHandlerContext().close();
        } else {
          socket.close();
        }
      }
    });
  }

  void holdsSession(TcpConnection c) {
    broadcaster.add(c);
    stats.sessions = broadcaster.holders();
  }

  /** The connection closed: called exactly once for each accepted connection. */
  void forget(TcpConnection c) {
    cap.release();
    connections.remove(c.id);
    stats.connections = connections.size();
    if (c.sessionIndex >= 0) {
      broadcaster.remove(c);
      stats.sessions = broadcaster.holders();
    }
  }

  private void command(Message<JsonObject> m) {
    JsonObject cmd = m.body();
    TcpConnection c = connections.get(cmd.getLong(OwnerCommands.CONNECTION));
    if (c == null) {
      return;
    }
    switch (cmd.getString(OwnerCommands.OP)) {
      case OwnerCommands.PING -> c.send(Replies.PING);
      case OwnerCommands.CLOSE_IDLE -> {
        if (c.user != null && c.user.equals(cmd.getString(OwnerCommands.USER))) {
          c.closeWith(Replies.IDLE_TIMEOUT);
        }
      }
      case OwnerCommands.KICK -> {
        if (c.user != null && c.user.equals(cmd.getString(OwnerCommands.USER))) {
          c.closeWith(Replies.KICKED);
        }
      }
      case OwnerCommands.LOGGED_IN_ELSEWHERE -> {
        if (c.user != null && c.user.equals(cmd.getString(OwnerCommands.USER))) {
          c.closeWith(Replies.LOGGED_IN_ELSEWHERE);
        }
      }
      case OwnerCommands.TOUCH -> {
        if (c.user != null && c.user.equals(cmd.getString(OwnerCommands.USER))) {
          sessions.touch(c.user);
        }
      }
      default -> {
      }
    }
  }

  /** §4.7 [fix]: a connection that never logged in is closed after the idle time without a complete message. */
  private void sweepUnauthenticated(long idleMillis) {
    long cutoff = now() - idleMillis;
    for (TcpConnection c : new ArrayList<>(connections.values())) {
      if (c.user == null && c.lastFrameMillis < cutoff) {
        c.closeWith(Replies.IDLE_TIMEOUT);
      }
    }
  }
}
