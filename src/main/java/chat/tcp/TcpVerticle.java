package chat.tcp;

import chat.auth.ChatService;
import chat.auth.SessionRegistry;
import chat.metrics.ServerMetrics;
import chat.net.ConnectionCap;
import chat.net.Tls;
import chat.protocol.Addresses;
import chat.protocol.OwnerCommands;
import chat.protocol.Replies;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.Message;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.buffer.BufferInternal;
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

  /**
   * @param tls the certificate for a TLS listener, null for plain text
   * @param broadcastHoldPercent after a batch of broadcasts took d to write, the next batch is
   *     written no sooner than d x percent / 100 later (tcp.broadcastHoldPercent)
   */
  public record Settings(String host, int port, int maxFrameBytes, int maxPendingBytes, Tls tls,
      int shutdownGraceSeconds, int broadcastHoldPercent) {
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
  /** Connections holding a session: an array with swap-remove, so the broadcast loop allocates nothing. */
  private TcpConnection[] holders = new TcpConnection[64];
  private int holderCount;
  private long nextConnectionId;
  /** Broadcast lines accepted during the current event-loop turn, not yet written. */
  private final ArrayList<Buffer> batch = new ArrayList<>();
  private final Handler<Void> flushBatch = v -> flushBatch();
  private final Runnable heldFlush = () -> context.runOnContext(flushBatch);
  private final BroadcastPacer pacer;
  private NetServer server;

  public TcpVerticle(Settings settings, ChatService chats, SessionRegistry sessions, ServerMetrics metrics,
      LongSupplier clock, ConnectionCap cap) {
    this.settings = settings;
    this.pacer = new BroadcastPacer(settings.broadcastHoldPercent());
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
    server = vertx.createNetServer(options);
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
    return server.shutdown(settings.shutdownGraceSeconds(), TimeUnit.SECONDS);
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
    TcpConnection c = new TcpConnection(this, socket, id, settings.maxFrameBytes(), now());
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

  /** The connection closed: called exactly once for each accepted connection. */
  void forget(TcpConnection c) {
    cap.release();
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

  /**
   * Every session receives every broadcast, so the broadcasts that arrive during one turn of the
   * event loop are written to each socket together, as one buffer: one write (one syscall) per
   * socket per batch instead of one per message. Order is kept. Under load the batches grow by
   * themselves, and {@link BroadcastPacer} holds the next one back for a fraction of what the last
   * one took, so that they grow further; an idle server writes at the end of the turn.
   */
  private void broadcast(Buffer line) {
    if (batch.isEmpty()) {
      long wait = pacer.waitNanos(System.nanoTime());
      if (wait <= 0) {
        context.runOnContext(flushBatch);
      } else {
        ((ContextInternal) context).nettyEventLoop().schedule(heldFlush, wait, TimeUnit.NANOSECONDS);
      }
    }
    batch.add(line);
  }

  private void flushBatch() {
    int lines = batch.size();
    int bytes = 0;
    for (int i = 0; i < lines; i++) {
      bytes += batch.get(i).length();
    }
    // one direct buffer shared by all receivers: the kernel copies from it, no heap-to-direct copy per socket
    ByteBuf out = PooledByteBufAllocator.DEFAULT.directBuffer(bytes, bytes);
    for (int i = 0; i < lines; i++) {
      out.writeBytes(((BufferInternal) batch.get(i)).getByteBuf());
    }
    batch.clear();
    stats.deliveries += (long) lines * holderCount;
    stats.broadcastWrites += holderCount;
    long start = System.nanoTime();
    try {
      // backwards, so a holder leaving the array during the loop never makes us skip another
      for (int i = holderCount - 1; i >= 0; i--) {
        holders[i].deliver(out);
      }
    } finally {
      out.release();
    }
    pacer.written(start, System.nanoTime());
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
