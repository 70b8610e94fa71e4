package chat.tcp;

import chat.auth.ChatService;
import chat.auth.SessionRegistry;
import chat.metrics.ServerMetrics;
import chat.protocol.Addresses;
import chat.protocol.OwnerCommands;
import chat.protocol.Replies;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.Message;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.net.NetSocket;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Map;
import java.util.UUID;
import java.util.function.LongSupplier;

/**
 * The TCP listener (PROTOCOL.md §4). Several instances run, one per event loop, sharing the
 * port; each owns its connections and answers commands for them on its own address
 * ({@link #ownerAddress}). Every instance receives each broadcast once and writes that same
 * Buffer to each of its session holders.
 */
public final class TcpVerticle extends VerticleBase {

  public record Settings(String host, int port, int maxFrameBytes, int maxPendingBytes, int shutdownGraceSeconds) {
  }

  final ChatService chats;
  final SessionRegistry sessions;
  final ServerMetrics.TcpStats stats;
  private final ServerMetrics metrics;
  final String ownerAddress = Addresses.TCP_OWNER_PREFIX + UUID.randomUUID();
  private final Settings settings;
  private final LongSupplier clock;

  private final Map<Long, TcpConnection> connections = new HashMap<>();
  /** Connections holding a session: an array with swap-remove, so the broadcast loop allocates nothing. */
  private TcpConnection[] holders = new TcpConnection[64];
  private int holderCount;
  private long nextConnectionId;
  private NetServer server;

  public TcpVerticle(Settings settings, ChatService chats, SessionRegistry sessions, ServerMetrics metrics,
      LongSupplier clock) {
    this.settings = settings;
    this.metrics = metrics;
    this.stats = metrics.newTcpStats();
    this.chats = chats;
    this.sessions = sessions;
    this.clock = clock;
  }

  @Override
  public Future<?> start() {
    server = vertx.createNetServer(new NetServerOptions()
        .setHost(settings.host())
        .setPort(settings.port())
        .setTcpNoDelay(true));
    server.connectHandler(this::accept);
    metrics.watchEventLoop(vertx);
    return Future.all(
            vertx.eventBus().<Buffer>consumer(Addresses.BROADCAST, m -> broadcast(m.body())).completion(),
            vertx.eventBus().<JsonObject>consumer(ownerAddress, this::command).completion(),
            vertx.eventBus().<Long>consumer(Addresses.SWEEP_UNAUTHENTICATED, m -> sweepUnauthenticated(m.body()))
                .completion())
        .compose(v -> server.listen());
  }

  /**
   * Stops accepting, asks every connection to finish and close (each answers what it is handling,
   * then says {@code Server shutting down}), and closes what is left after the grace period.
   */
  @Override
  public Future<?> stop() {
    return server.shutdown(settings.shutdownGraceSeconds(), java.util.concurrent.TimeUnit.SECONDS);
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
    socket.setWriteQueueMaxSize(settings.maxPendingBytes());
    long id = ++nextConnectionId;
    TcpConnection c = new TcpConnection(this, socket, id, settings.maxFrameBytes(), now());
    connections.put(id, c);
    stats.connections = connections.size();
    c.start();
  }

  void holdsSession(TcpConnection c) {
    if (c.sessionIndex >= 0) {
      return;
    }
    if (holderCount == holders.length) {
      holders = java.util.Arrays.copyOf(holders, holders.length * 2);
    }
    c.sessionIndex = holderCount;
    holders[holderCount++] = c;
    stats.sessions = holderCount;
  }

  void forget(TcpConnection c) {
    connections.remove(c.id);
    stats.connections = connections.size();
    int i = c.sessionIndex;
    if (i >= 0) {
      TcpConnection last = holders[--holderCount];
      holders[i] = last;
      last.sessionIndex = i;
      holders[holderCount] = null;
      c.sessionIndex = -1;
      stats.sessions = holderCount;
    }
  }

  private void broadcast(Buffer line) {
    // backwards, so a holder leaving the array during the loop never makes us skip another
    stats.deliveries += holderCount;
    for (int i = holderCount - 1; i >= 0; i--) {
      holders[i].deliver(line);
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
