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
import chat.metrics.ServerMetrics;
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
import java.util.function.LongSupplier;

/**
 * Wires the server together on a given Vert.x instance: storage, the shared state, and the
 * verticles (auth, TCP x N, HTTP x N, reaper, admin). {@link Main} runs it; tests start it in-process.
 */
public final class ChatServer {

  private static final Logger log = LoggerFactory.getLogger(ChatServer.class);
  private static final String DEFAULT_AVATAR_RESOURCE = "avatar/default_avatar.png";

  private final Vertx vertx;
  private final UserStore users;
  private final WorkerExecutor hashing;
  private final ServerMetrics metrics;
  private final List<String> deployments = new ArrayList<>();
  private int httpPort;
  private int tcpPort;

  private ChatServer(Vertx vertx, UserStore users, WorkerExecutor hashing, ServerMetrics metrics) {
    this.vertx = vertx;
    this.users = users;
    this.hashing = hashing;
    this.metrics = metrics;
  }

  public ServerMetrics metrics() {
    return metrics;
  }

  public int httpPort() {
    return httpPort;
  }

  public int tcpPort() {
    return tcpPort;
  }

  public static Future<ChatServer> start(Vertx vertx, ChatConfig config) {
    return start(vertx, config, config.metricsEnabled ? new PrometheusMeterRegistry(PrometheusConfig.DEFAULT) : null);
  }

  /**
   * @param registry where metrics go (the one Vert.x's own metrics use, when enabled), or null
   *                 for metrics off
   */
  public static Future<ChatServer> start(Vertx vertx, ChatConfig config, PrometheusMeterRegistry registry) {
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
    users.measureWith(metrics, config.dbPoolSize);
    ChatServer server = new ChatServer(vertx, users, hashing, metrics);
    HttpVerticle.Operations operations = new HttpVerticle.Operations(registry, Health.liveness(vertx),
        Health.readiness(vertx, users, config.healthTimeoutMillis));
    TokenStore tokens = new LocalTokenStore(config.tokenTtlSeconds * 1000L, clock);
    SessionRegistry sessions = new LocalSessionRegistry(clock);
    ChatService chats = new ChatService(vertx.eventBus(), tokens, sessions, config.maxMessageLength, metrics, clock);

    return vertx.<Void>executeBlocking(() -> {
          installDefaultAvatar(Path.of(config.avatarDir));
          return null;
        })
        .compose(v -> users.prepare(pw -> hashing.executeBlocking(() -> hasher.hash(pw), false), PasswordHasher::isHash))
        .compose(v -> server.deploy(() -> new AuthVerticle(users, hasher, hashing, tokens, sessions, config.avatarDir,
            Math.min(config.tokenTtlSeconds * 1000L, 60_000L), metrics), 1))
        .compose(v -> server.deployTcp(config, chats, sessions, metrics, clock))
        .compose(v -> server.deployHttp(config, chats, operations))
        .compose(v -> server.deploy(() -> new ReaperVerticle(sessions, config.reaperIdleSeconds * 1000L,
            config.reaperIntervalSeconds * 1000L, clock), 1))
        .compose(v -> server.deploy(() -> new AdminVerticle(AdminQueue.of(users), tokens, sessions,
            config.adminPollMillis, clock), 1))
        .map(server)
        .recover(err -> server.stop().transform(x -> Future.failedFuture(err)));
  }

  private static PasswordHasher.Params hashParams(ChatConfig config) {
    if (config.hashCost == ChatConfig.HashCost.LOW) {
      log.warn("auth.hashCost is 'low': passwords get cheap hashes. Use it for tests and benchmarks only.");
    }
    return PasswordHasher.Params.of(config);
  }

  /** The shipped default avatar goes to {@code <avatar dir>/default/default_avatar.png} unless one is there. */
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
    }
  }

  /**
   * Listeners run as N instances sharing one port. Vert.x shares a port between servers only when
   * it is fixed or negative: port 0 would give each instance its own random port, so the
   * configured 0 ("pick a free port") becomes a negative number, one random port shared by all
   * instances that use that number. HTTP and TCP servers share one registry, hence two numbers.
   */
  private static final int RANDOM_TCP_PORT = -1;
  private static final int RANDOM_HTTP_PORT = -2;

  private static int sharedPort(int configured, int randomKey) {
    return configured == 0 ? randomKey : configured;
  }

  private Future<Void> deployTcp(ChatConfig config, ChatService chats, SessionRegistry sessions, ServerMetrics metrics,
      LongSupplier clock) {
    int instances = config.tcpInstances > 0 ? config.tcpInstances : config.availableEventLoops();
    TcpVerticle.Settings settings = new TcpVerticle.Settings(config.host, sharedPort(config.tcpPort, RANDOM_TCP_PORT),
        config.tcpMaxFrameBytes, config.tcpMaxPendingBytes);
    List<TcpVerticle> started = new CopyOnWriteArrayList<>();
    return deploy(() -> {
      TcpVerticle v = new TcpVerticle(settings, chats, sessions, metrics, clock);
      started.add(v);
      return v;
    }, instances).onSuccess(v -> tcpPort = started.get(0).actualPort());
  }

  private Future<Void> deployHttp(ChatConfig config, ChatService chats, HttpVerticle.Operations operations) {
    int instances = config.httpInstances > 0 ? config.httpInstances : config.availableEventLoops();
    HttpVerticle.Settings settings = new HttpVerticle.Settings(config.host, sharedPort(config.httpPort, RANDOM_HTTP_PORT),
        config.httpMaxBodyBytes, config.avatarDir, config.reaperIdleSeconds);
    List<HttpVerticle> started = new CopyOnWriteArrayList<>();
    return deploy(() -> {
      HttpVerticle v = new HttpVerticle(settings, chats, operations);
      started.add(v);
      return v;
    }, instances).onSuccess(v -> httpPort = started.get(0).actualPort());
  }

  private Future<Void> deploy(java.util.function.Supplier<? extends io.vertx.core.Deployable> verticle, int instances) {
    return vertx.deployVerticle(verticle, new DeploymentOptions().setInstances(instances))
        .onSuccess(deployments::add)
        .mapEmpty();
  }

  /** Undeploys in reverse order (listeners first), then closes the database and the hashing pool. */
  public Future<Void> stop() {
    Future<Void> chain = Future.succeededFuture();
    for (int i = deployments.size() - 1; i >= 0; i--) {
      String id = deployments.get(i);
      chain = chain.compose(v -> vertx.undeploy(id).otherwiseEmpty());
    }
    deployments.clear();
    return chain
        .compose(v -> users.close().otherwiseEmpty())
        .compose(v -> hashing.close().otherwiseEmpty())
        .andThen(v -> metrics.close());
  }
}
