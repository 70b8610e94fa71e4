package chat;

import chat.admin.AdminVerticle;
import chat.auth.AuthVerticle;
import chat.auth.ChatService;
import chat.auth.LocalSessionRegistry;
import chat.auth.LocalTokenStore;
import chat.auth.PasswordHasher;
import chat.auth.SessionRegistry;
import chat.auth.TokenStore;
import chat.config.ChatConfig;
import chat.http.Health;
import chat.http.HttpVerticle;
import chat.limits.AbuseLimits;
import chat.metrics.ServerMetrics;
import chat.net.ConnectionCap;
import chat.net.Tls;
import chat.protocol.Addresses;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import chat.reaper.ReaperVerticle;
import chat.store.AdminQueue;
import chat.store.UserStore;
import chat.tcp.TcpVerticle;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.WorkerExecutor;
import io.vertx.core.buffer.Buffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * Wires the server together on a given Vert.x instance: storage, the shared state, and the
 * verticles (auth, TCP x N, HTTP x N, reaper, admin). {@link Main} runs it; tests start it in-process.
 * With {@code tls.enabled}, TCP and HTTP listeners over TLS are deployed as well (the same
 * verticle classes on {@code tls.tcpPort} and {@code tls.httpPort}); with {@code tls.only}, only those.
 */
public final class ChatServer {

  private static final Logger log = LoggerFactory.getLogger(ChatServer.class);
  private static final String DEFAULT_AVATAR_RESOURCE = "avatar/default_avatar.png";

  private final Vertx vertx;
  private final UserStore users;
  private final WorkerExecutor hashing;
  private final ServerMetrics metrics;
  private final List<String> deployments = new ArrayList<>();
  /** Open connections of all TCP listeners (plain and TLS), and of all HTTP listeners. */
  private final ConnectionCap tcpConnections;
  private final ConnectionCap httpConnections;
  private int httpPort = -1;
  private int tcpPort = -1;
  private int tlsHttpPort = -1;
  private int tlsTcpPort = -1;

  private ChatServer(Vertx vertx, UserStore users, WorkerExecutor hashing, ServerMetrics metrics, ChatConfig config) {
    this.vertx = vertx;
    this.users = users;
    this.hashing = hashing;
    this.metrics = metrics;
    this.tcpConnections = new ConnectionCap("tcp", config.tcpMaxConnections, metrics.connectionsRefused("tcp"));
    this.httpConnections = new ConnectionCap("http", config.httpMaxConnections, metrics.connectionsRefused("http"));
    metrics.gauge("chat_http_connections", "Open HTTP connections (HTTP and HTTPS)", httpConnections::open);
  }

  public ServerMetrics metrics() {
    return metrics;
  }

  /** The plain HTTP port bound, or -1 when there is none (tls.only). */
  public int httpPort() {
    return httpPort;
  }

  /** The plain TCP port bound, or -1 when there is none (tls.only). */
  public int tcpPort() {
    return tcpPort;
  }

  /** The HTTPS port bound, or -1 when TLS is off. */
  public int tlsHttpPort() {
    return tlsHttpPort;
  }

  /** The TCP-over-TLS port bound, or -1 when TLS is off. */
  public int tlsTcpPort() {
    return tlsTcpPort;
  }

  /** Open TCP connections, plain and TLS, across every instance. */
  int openTcpConnections() {
    return tcpConnections.open();
  }

  /** Open HTTP connections, plain and HTTPS, across every instance. */
  int openHttpConnections() {
    return httpConnections.open();
  }

  public static Future<ChatServer> start(Vertx vertx, ChatConfig config) {
    return start(vertx, config, config.metricsEnabled ? new PrometheusMeterRegistry(PrometheusConfig.DEFAULT) : null);
  }

  /**
   * @param registry where metrics go (the one Vert.x's own metrics use, when enabled), or null
   *                 for metrics off
   */
  public static Future<ChatServer> start(Vertx vertx, ChatConfig config, PrometheusMeterRegistry registry) {
    Tls tls;
    try {
      // first: a bad certificate or key stops startup before anything is opened
      tls = config.tlsEnabled ? Tls.load(vertx, config) : null;
    } catch (RuntimeException e) {
      return Future.failedFuture(e);
    }
    if (tls != null) {
      log.info("TLS certificate: {}, valid until {}", tls.certificate().getSubjectX500Principal().getName(),
          tls.certificate().getNotAfter().toInstant());
      if (tls.certificate().getNotAfter().getTime() < System.currentTimeMillis()) {
        log.warn("The TLS certificate in {} has expired: clients will refuse it", config.tlsCertFile);
      }
    }
    LongSupplier clock = System::currentTimeMillis;
    ServerMetrics metrics = new ServerMetrics(registry);
    PasswordHasher hasher = new PasswordHasher(hashParams(config));
    int workers = config.hashWorkers > 0 ? config.hashWorkers : Runtime.getRuntime().availableProcessors();
    WorkerExecutor hashing = vertx.createSharedWorkerExecutor("chat-password-hashing", workers, 5, TimeUnit.MINUTES);
    UserStore users;
    try {
      users = UserStore.open(vertx, config);
    } catch (Exception e) {
      hashing.close();
      return Future.failedFuture(e);
    }
    users.measureWith(metrics);
    ChatServer server = new ChatServer(vertx, users, hashing, metrics, config);
    HttpVerticle.Operations operations = new HttpVerticle.Operations(registry, Health.liveness(vertx),
        readiness(vertx, users, config));
    AbuseLimits limits = AbuseLimits.of(config, System::nanoTime);
    if (vertx.isClustered()) {
      metrics.gauge("chat_cluster_members", "Members of the cluster this node sees, itself included (0: its member stopped)",
          () -> chat.cluster.ClusterNode.members(vertx));
    }
    // clustered: tokens and sessions are cluster-wide (Hazelcast) and chats reach the other nodes in
    // batches (ClusterRelay); else tokens and sessions in this process's memory and a local publish
    Future<Shared> shared = vertx.isClustered()
        ? chat.cluster.ClusterStores.open(vertx, config.tokenTtlSeconds * 1000L, clock)
            .compose(c -> chat.cluster.ClusterRelay.start(vertx)
                .map(relay -> new Shared(c.tokens(), c.sessions(), relay::publish)))
        : Future.succeededFuture(new Shared(new LocalTokenStore(config.tokenTtlSeconds * 1000L, clock),
            new LocalSessionRegistry(clock), line -> vertx.eventBus().publish(Addresses.BROADCAST, line)));

    return shared.compose(state -> vertx.<Void>executeBlocking(() -> {
          installDefaultAvatar(Path.of(config.avatarDir));
          return null;
        }).map(state))
        .compose(state -> {
          TokenStore tokens = state.tokens();
          SessionRegistry sessions = state.sessions();
          ChatService chats = new ChatService(state.broadcast(), tokens, sessions, config.maxMessageLength,
              limits.chatsPerUser, metrics, clock);
          return users.prepare(pw -> hashing.executeBlocking(() -> hasher.hash(pw), false), PasswordHasher::isHash)
            .compose(v -> server.deploy(() -> new AuthVerticle(users, hasher, hashing, tokens, sessions, config.avatarDir,
                Math.min(config.tokenTtlSeconds * 1000L, 60_000L), limits, metrics), 1))
            .compose(v -> config.tlsOnly ? Future.<Void>succeededFuture()
                : server.deployTcp(config, sharedPort(config.tcpPort, RANDOM_TCP_PORT), null, chats, sessions, metrics, clock)
                    .map(port -> server.tcpPort = port).<Void>mapEmpty())
            .compose(v -> tls == null ? Future.<Void>succeededFuture()
                : server.deployTcp(config, sharedPort(config.tlsTcpPort, RANDOM_TLS_TCP_PORT), tls, chats, sessions, metrics,
                    clock).map(port -> server.tlsTcpPort = port).<Void>mapEmpty())
            .compose(v -> config.tlsOnly ? Future.<Void>succeededFuture()
                : server.deployHttp(config, sharedPort(config.httpPort, RANDOM_HTTP_PORT), null, chats, operations)
                    .map(port -> server.httpPort = port).<Void>mapEmpty())
            .compose(v -> tls == null ? Future.<Void>succeededFuture()
                : server.deployHttp(config, sharedPort(config.tlsHttpPort, RANDOM_TLS_HTTP_PORT), tls, chats, operations)
                    .map(port -> server.tlsHttpPort = port).<Void>mapEmpty())
            .compose(v -> server.deploy(() -> new ReaperVerticle(sessions, config.reaperIdleSeconds * 1000L,
                config.reaperIntervalSeconds * 1000L, clock), 1))
            .compose(v -> server.deploy(() -> new AdminVerticle(AdminQueue.of(users), tokens, sessions,
                config.adminPollMillis, clock), 1));
        })
        .map(server)
        .recover(err -> server.stop().transform(x -> Future.failedFuture(err)));
  }

  /** The database check, and with the cluster on, whether this node is a running cluster member. */
  private static io.vertx.ext.healthchecks.HealthChecks readiness(Vertx vertx, UserStore users, ChatConfig config) {
    io.vertx.ext.healthchecks.HealthChecks checks = Health.readiness(vertx, users, config.healthTimeoutMillis);
    if (vertx.isClustered()) {
      checks.register("cluster", promise -> promise.complete(chat.cluster.ClusterNode.health(vertx)));
    }
    return checks;
  }

  /** The state every verticle shares: tokens, sessions and where accepted chats go, local or cluster-wide. */
  private record Shared(TokenStore tokens, SessionRegistry sessions, Consumer<Buffer> broadcast) {
  }

  private static PasswordHasher.Params hashParams(ChatConfig config) {
    if (config.hashCost == ChatConfig.HashCost.LOW) {
      log.warn("auth.hashCost is 'low': passwords get cheap hashes. Use it for tests and benchmarks only.");
    }
    return PasswordHasher.Params.of(config);
  }

  /**
   * The shipped default avatar goes to {@code <avatar dir>/default/default_avatar.png} unless one
   * is there (the cluster's nodes may share the folder and start together).
   */
  private static void installDefaultAvatar(Path avatarDir) throws IOException {
    Path target = avatarDir.resolve("default").resolve("default_avatar.png");
    if (Files.exists(target)) {
      return;
    }
    Files.createDirectories(target.getParent());
    try (InputStream in = ChatServer.class.getClassLoader().getResourceAsStream(DEFAULT_AVATAR_RESOURCE)) {
      if (in == null) {
        throw new IOException(DEFAULT_AVATAR_RESOURCE + " is missing from the jar");
      }
      Files.copy(in, target);
    } catch (java.nio.file.FileAlreadyExistsException e) {
      // another node sharing this avatar folder installed it at the same moment
    }
  }

  /**
   * Listeners run as N instances sharing one port. Vert.x shares a port between servers only when
   * it is fixed or negative: port 0 would give each instance its own random port, so the
   * configured 0 ("pick a free port") becomes a negative number, one random port shared by all
   * instances that use that number. HTTP and TCP servers share one registry, hence one number
   * per listener: plain TCP, plain HTTP, TLS TCP, TLS HTTP.
   */
  private static final int RANDOM_TCP_PORT = -1;
  private static final int RANDOM_HTTP_PORT = -2;
  private static final int RANDOM_TLS_TCP_PORT = -3;
  private static final int RANDOM_TLS_HTTP_PORT = -4;

  private static int sharedPort(int configured, int randomKey) {
    return configured == 0 ? randomKey : configured;
  }

  /** Deploys the TCP listener instances on one port, plain ({@code tls} null) or TLS; returns the port bound. */
  private Future<Integer> deployTcp(ChatConfig config, int port, Tls tls, ChatService chats, SessionRegistry sessions,
      ServerMetrics metrics, LongSupplier clock) {
    int instances = config.tcpInstances > 0 ? config.tcpInstances : config.availableEventLoops();
    TcpVerticle.Settings settings = new TcpVerticle.Settings(config.host, port, config.tcpMaxFrameBytes,
        config.tcpMaxPendingBytes, tls, config.shutdownGraceSeconds);
    List<TcpVerticle> started = new CopyOnWriteArrayList<>();
    return deploy(() -> {
      TcpVerticle v = new TcpVerticle(settings, chats, sessions, metrics, clock, tcpConnections);
      started.add(v);
      return v;
    }, instances).map(v -> started.get(0).actualPort());
  }

  /** Deploys the HTTP listener instances on one port, plain ({@code tls} null) or HTTPS; returns the port bound. */
  private Future<Integer> deployHttp(ChatConfig config, int port, Tls tls, ChatService chats,
      HttpVerticle.Operations operations) {
    int instances = config.httpInstances > 0 ? config.httpInstances : config.availableEventLoops();
    HttpVerticle.Settings settings = new HttpVerticle.Settings(config.host, port, config.httpMaxBodyBytes,
        config.avatarDir, tls, config.shutdownGraceSeconds, config.reaperIdleSeconds);
    List<HttpVerticle> started = new CopyOnWriteArrayList<>();
    return deploy(() -> {
      HttpVerticle v = new HttpVerticle(settings, chats, operations, httpConnections);
      started.add(v);
      return v;
    }, instances).map(v -> started.get(0).actualPort());
  }

  private Future<Void> deploy(java.util.function.Supplier<? extends io.vertx.core.Deployable> verticle, int instances) {
    return vertx.deployVerticle(verticle, new DeploymentOptions().setInstances(instances))
        .onSuccess(deployments::add)
        .mapEmpty();
  }

  /**
   * Drains and stops: first everything deployed after the auth verticle (the listeners drain in
   * parallel: they stop accepting, finish what they are handling, tell their clients and close
   * within shutdown.graceSeconds), then the auth verticle, then the database and the hashing pool.
   */
  public Future<Void> stop() {
    List<String> ids = new ArrayList<>(deployments);
    deployments.clear();
    String auth = ids.isEmpty() ? null : ids.remove(0);
    List<Future<?>> front = new ArrayList<>();
    for (String id : ids) {
      front.add(vertx.undeploy(id).otherwiseEmpty());
    }
    return Future.join(front).otherwiseEmpty()
        .compose(v -> auth == null ? Future.<Void>succeededFuture() : vertx.undeploy(auth).otherwiseEmpty())
        .compose(v -> users.close().otherwiseEmpty())
        .compose(v -> hashing.close().otherwiseEmpty())
        .andThen(v -> metrics.close());
  }
}
