package chat.metrics;

import chat.protocol.LoginOutcome;
import chat.protocol.RegisterOutcome;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.core.instrument.composite.CompositeMeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.ToDoubleFunction;

/**
 * The server's own metrics, exported at {@code /metrics} (Prometheus). Nothing here costs a
 * lock or an allocation per delivery: each TCP verticle counts in plain fields of its own
 * ({@link TcpStats}, one add per broadcast, not per receiver), and those fields are summed only
 * when the registry is scraped. When metrics are off, every meter is a no-op.
 */
public final class ServerMetrics implements AutoCloseable {

  /** Counters owned by one TCP verticle: written only by its event loop, read by scrapes. */
  public static final class TcpStats {
    public volatile int connections;
    public volatile int sessions;
    public volatile long framesIn;
    public volatile long deliveries;
    public volatile long broadcastWrites;
    public volatile long slowConsumersDropped;
    /** Shared by every verticle: one record per broadcast pass, a few hundred a second at most. */
    public final Timer broadcastPasses;

    TcpStats(Timer broadcastPasses) {
      this.broadcastPasses = broadcastPasses;
    }
  }

  private final MeterRegistry registry;
  private final PrometheusMeterRegistry prometheus;
  private final List<TcpStats> tcp = new CopyOnWriteArrayList<>();
  private final JvmGcMetrics gc;

  private final Counter chatsTcp;
  private final Counter chatsHttp;
  private final Timer hashing;
  private final Timer eventLoopDelay;
  private final Timer dbOperations;
  private final Timer broadcastPasses;
  private final java.util.Map<String, Counter> limited = new java.util.concurrent.ConcurrentHashMap<>();

  /** @param prometheus the registry to fill, or null for metrics off */
  public ServerMetrics(PrometheusMeterRegistry prometheus) {
    this.prometheus = prometheus;
    this.registry = prometheus != null ? prometheus : new CompositeMeterRegistry();
    if (prometheus != null) {
      new JvmMemoryMetrics().bindTo(registry);
      new JvmThreadMetrics().bindTo(registry);
      new ProcessorMetrics().bindTo(registry);
      new UptimeMetrics().bindTo(registry);
      new FileDescriptorMetrics().bindTo(registry);
      gc = new JvmGcMetrics();
      gc.bindTo(registry);
    } else {
      gc = null;
    }
    tcpSum("chat_connections", "Open TCP connections", s -> s.connections, true);
    tcpSum("chat_sessions", "TCP connections holding a socket session on this node", s -> s.sessions, true);
    tcpSum("chat_messages_in", "Complete JSON messages received on TCP connections", s -> s.framesIn, false);
    tcpSum("chat_deliveries", "Chat broadcasts written to socket sessions", s -> s.deliveries, false);
    tcpSum("chat_broadcast_writes", "Batches of chat broadcasts written to socket sessions, one per session per batch:"
        + " chat_deliveries / chat_broadcast_writes is the number of chats per write", s -> s.broadcastWrites, false);
    tcpSum("chat_slow_consumers_dropped", "Connections cut off because their unsent output passed tcp.maxPendingBytes",
        s -> s.slowConsumersDropped, false);
    chatsTcp = Counter.builder("chat_chats_accepted").description("Chats accepted and broadcast")
        .tag("transport", "tcp").register(registry);
    chatsHttp = Counter.builder("chat_chats_accepted").description("Chats accepted and broadcast")
        .tag("transport", "http").register(registry);
    hashing = Timer.builder("chat_password_hashing").description("Time spent hashing or verifying a password on a worker")
        .publishPercentileHistogram(false).register(registry);
    eventLoopDelay = Timer.builder("chat_event_loop_delay")
        .description("How late a 100 ms timer fires on each TCP event loop: time the loop was busy").register(registry);
    dbOperations = Timer.builder("chat_db_operations").description("Database operations, from submit to completion")
        .register(registry);
    broadcastPasses = Timer.builder("chat_broadcast_pass")
        .description("Broadcast passes of a TCP event loop: from the start of a pass until each of the loop's sessions"
            + " has been written every chat accepted before it. A chat reaches every session within about one pass")
        .register(registry);
    // every known outcome is exported from the start, at 0: a series that appears only with its
    // first event makes rate() and increase() miss that event, and alerts on it never fire
    for (String transport : List.of("tcp", "http")) {
      for (LoginOutcome o : LoginOutcome.values()) {
        if (o != LoginOutcome.INVALID_TOKEN || transport.equals("tcp")) { // token resume is socket only
          outcome("logins", o.name(), transport);
        }
      }
      for (RegisterOutcome o : RegisterOutcome.values()) {
        outcome("registrations", o.name(), transport);
      }
    }
  }

  private void tcpSum(String name, String help, ToDoubleFunction<TcpStats> field, boolean gauge) {
    ToDoubleFunction<List<TcpStats>> sum = list -> {
      double total = 0;
      for (TcpStats s : list) {
        total += field.applyAsDouble(s);
      }
      return total;
    };
    if (gauge) {
      Gauge.builder(name, tcp, sum).description(help).register(registry);
    } else {
      FunctionCounter.builder(name, tcp, sum).description(help).register(registry);
    }
  }

  /** The Prometheus registry, or null when metrics are off. */
  public PrometheusMeterRegistry prometheus() {
    return prometheus;
  }

  public TcpStats newTcpStats() {
    TcpStats s = new TcpStats(broadcastPasses);
    tcp.add(s);
    return s;
  }

  public void chatAccepted(boolean overHttp) {
    (overHttp ? chatsHttp : chatsTcp).increment();
  }

  public Timer hashing() {
    return hashing;
  }

  public Timer dbOperations() {
    return dbOperations;
  }

  /**
   * One request refused by an abuse limit: {@code chat_limited_total{limit}}, where {@code limit}
   * is {@code login_user}, {@code login_address}, {@code chat} or {@code registration}. The counter
   * is made once per label: counting allocates nothing.
   */
  public void limited(String limit) {
    Counter c = limited.get(limit);
    if (c == null) {
      c = limited.computeIfAbsent(limit, l -> Counter.builder("chat_limited")
          .description("Requests refused by an abuse limit (limits.*)").tag("limit", l).register(registry));
    }
    c.increment();
  }

  /**
   * Counts the connections a listener kind ({@code tcp} or {@code http}) refused because it was at
   * its maxConnections: {@code chat_connections_refused_total{listener}}.
   */
  public Counter connectionsRefused(String listener) {
    return Counter.builder("chat_connections_refused")
        .description("Connections refused because the listener kind was at its maxConnections")
        .tag("listener", listener).register(registry);
  }

  /** Counts outcomes of logins and registrations, by outcome name and listener. */
  public Counter outcome(String what, String outcome, String transport) {
    return Counter.builder("chat_" + what).description("Outcomes of " + what.replace('_', ' '))
        .tag("outcome", outcome.toLowerCase(java.util.Locale.ROOT)).tag("transport", transport).register(registry);
  }

  public void gauge(String name, String help, java.util.function.Supplier<Number> value) {
    Gauge.builder(name, value).description(help).register(registry);
  }

  /**
   * Measures the calling event loop's delay: a 100 ms periodic timer that fires late by as long
   * as the loop was busy with something else. Call from a verticle's start.
   */
  public void watchEventLoop(Vertx vertx) {
    if (prometheus == null) {
      return;
    }
    long periodNanos = TimeUnit.MILLISECONDS.toNanos(100);
    long[] expected = {System.nanoTime() + periodNanos};
    vertx.setPeriodic(100, id -> {
      long now = System.nanoTime();
      eventLoopDelay.record(Math.max(0, now - expected[0]), TimeUnit.NANOSECONDS);
      expected[0] = now + periodNanos;
    });
  }

  /** Prometheus text for {@code /metrics}. */
  public String scrape() {
    return prometheus == null ? "" : prometheus.scrape();
  }

  @Override
  public void close() {
    if (gc != null) {
      gc.close();
    }
  }
}
