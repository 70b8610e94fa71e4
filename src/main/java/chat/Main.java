package chat;

import chat.admin.AdminCli;
import chat.config.ChatConfig;
import chat.config.ConfigException;
import chat.config.ConfigLoader;
import chat.net.Tls;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxBuilder;
import io.vertx.core.VertxOptions;
import io.vertx.core.file.FileSystemOptions;
import io.vertx.micrometer.MetricsDomain;
import io.vertx.micrometer.MicrometerMetricsFactory;
import io.vertx.micrometer.MicrometerMetricsOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;

import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

/**
 * {@code java -jar chat-server.jar [--conf FILE]}: reads the configuration, starts the server
 * with the working directory as the data folder, and stops it cleanly on SIGTERM or SIGINT.
 * Also {@code healthcheck}, the administration commands ({@link AdminCli}), {@code --help} and
 * {@code --version}. Exit codes: 0 after a clean stop, 1 when startup fails, 2 for bad
 * arguments or configuration.
 */
public final class Main {

  private static final Logger log = LoggerFactory.getLogger(Main.class);

  private Main() {
  }

  public static String version() {
    String v = Main.class.getPackage().getImplementationVersion();
    return v == null ? "dev" : v;
  }

  public static void main(String[] args) {
    if (AdminCli.handles(args)) {
      System.exit(AdminCli.run(args));
      return;
    }
    String confFile = null;
    boolean healthcheck = false;
    boolean exitAfterStartup = false;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--help") || a.equals("-h")) {
        System.out.print(help());
        System.exit(0);
      } else if (a.equals("--version")) {
        System.out.println("chat-server " + version());
        System.exit(0);
      } else if (a.equals("--conf") && i + 1 < args.length) {
        confFile = args[++i];
      } else if (a.startsWith("--conf=")) {
        confFile = a.substring("--conf=".length());
      } else if (a.equals("--exit-after-startup")) {
        exitAfterStartup = true;
      } else if (a.equals("healthcheck") && i == 0) {
        healthcheck = true;
      } else {
        System.err.println("chat-server: unknown argument '" + a + "' (see --help)");
        System.exit(2);
      }
    }
    long started = System.nanoTime();
    ChatConfig config = loadConfig(confFile, !healthcheck);
    if (healthcheck) {
      System.exit(HealthProbe.run(config));
    }
    Logging.configure(config);
    run(config, started, exitAfterStartup);
  }

  /**
   * The configuration, or exit 2 with one line on stderr. With {@code checkTls}, the TLS
   * certificate and key files are read and checked too: a missing, unreadable or invalid one is
   * a bad configuration value like any other.
   */
  private static ChatConfig loadConfig(String confFile, boolean checkTls) {
    Vertx bootstrap = Vertx.vertx(vertxOptions().setEventLoopPoolSize(1).setWorkerPoolSize(1));
    try {
      ChatConfig config = ConfigLoader.load(bootstrap, confFile).await(30, TimeUnit.SECONDS);
      if (checkTls && config.tlsEnabled) {
        Tls.load(bootstrap, config);
      }
      return config;
    } catch (Exception e) {
      Throwable cause = e instanceof ConfigException ? e : e.getCause() instanceof ConfigException ? e.getCause() : e;
      System.err.println("chat-server: " + cause.getMessage());
      System.exit(2);
      return null;
    } finally {
      bootstrap.close();
    }
  }

  /**
   * What every Vert.x instance of this program starts from. Vert.x's file system would otherwise
   * answer a relative path missing on disk from the jar's resources, copying what it finds to a
   * {@code vertx-cache-*} folder in the temporary directory, which it makes at every start and
   * removes only on a clean stop: each killed or crashed server left one behind. The server reads
   * real files only (the default avatar is copied out of the jar by {@link ChatServer}).
   */
  public static VertxOptions vertxOptions() {
    return new VertxOptions().setFileSystemOptions(
        new FileSystemOptions().setClassPathResolvingEnabled(false).setFileCachingEnabled(false));
  }

  /** {@code exitAfterStartup}: stop cleanly (exit 0) right after the startup line, e.g. to train a class-data-sharing archive. */
  private static void run(ChatConfig config, long started, boolean exitAfterStartup) {
    VertxOptions options = vertxOptions().setPreferNativeTransport(true)
        .setEventLoopPoolSize(config.availableEventLoops());
    PrometheusMeterRegistry registry = null;
    VertxBuilder builder = Vertx.builder();
    if (config.metricsEnabled) {
      registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
      // Vert.x's own metrics fill the same registry; its per-write socket and per-message event-bus
      // meters stay off: the server counts those itself, without a cost per delivery
      options.setMetricsOptions(new MicrometerMetricsOptions().setEnabled(true)
          .addDisabledMetricsCategory(MetricsDomain.NET_SERVER)
          .addDisabledMetricsCategory(MetricsDomain.NET_CLIENT)
          .addDisabledMetricsCategory(MetricsDomain.EVENT_BUS));
      builder.withMetrics(new MicrometerMetricsFactory(registry));
    }
    Vertx vertx;
    if (config.clusterEnabled) {
      try {
        vertx = chat.cluster.ClusterNode.start(builder, options, config).await(2, TimeUnit.MINUTES);
      } catch (Exception e) {
        log.error("Could not join the cluster: {}", e.toString());
        System.exit(1);
        return;
      }
    } else {
      vertx = builder.with(options).build();
    }

    // signals are handled from here on, so a stop asked for during startup is clean too
    AtomicReference<ChatServer> running = new AtomicReference<>();
    AtomicBoolean stopping = new AtomicBoolean();
    Runnable shutdown = () -> {
      if (!stopping.compareAndSet(false, true)) {
        return;
      }
      log.info("Shutting down");
      try {
        ChatServer server = running.get();
        Future<Void> stopped = server == null ? Future.succeededFuture() : server.stop();
        stopped.eventually(vertx::close).await(config.shutdownGraceSeconds + 4L, TimeUnit.SECONDS);
        log.info("Stopped");
      } catch (Exception e) {
        log.warn("Shutdown did not finish cleanly: {}", e.toString());
      }
      System.exit(0);
    };
    Signal.handle(new Signal("TERM"), sig -> new Thread(shutdown, "chat-shutdown").start());
    Signal.handle(new Signal("INT"), sig -> new Thread(shutdown, "chat-shutdown").start());

    ChatServer server;
    try {
      server = ChatServer.start(vertx, config, registry).await(10, TimeUnit.MINUTES);
    } catch (Exception e) {
      if (stopping.get()) {
        return; // stopped by a signal while starting: the shutdown thread exits
      }
      log.error("Startup failed: {}", e.toString());
      vertx.close();
      System.exit(1);
      return;
    }
    running.set(server);
    if (stopping.get()) {
      server.stop();
      return;
    }
    log.info("Chat server listening: {} (version {}, host {}, database {}, cluster {}, "
            + "{} event loops, transport {}, metrics {}, started in {} ms)",
        listeners(server), version(), config.host, config.safeDbUrl(),
        config.clusterEnabled ? "on (node " + chat.cluster.ClusterNode.nodeId(vertx) + ", "
            + chat.cluster.ClusterNode.members(vertx) + " member(s))" : "off", config.availableEventLoops(),
        vertx.isNativeTransportEnabled() ? "epoll" : "nio", config.metricsEnabled ? "on" : "off",
        (System.nanoTime() - started) / 1_000_000);
    if (exitAfterStartup) {
      shutdown.run();
    }
  }

  /**
   * The ports of the startup line. Tools parse its start, {@code HTTP port X, TCP port Y}: the
   * TLS ports follow it; with tls.only there are no plain ports and the line starts with
   * {@code TLS HTTP port A} instead, so that nothing reads a TLS port as a plain one.
   */
  static String listeners(ChatServer server) {
    String tls = "TLS HTTP port " + server.tlsHttpPort() + ", TLS TCP port " + server.tlsTcpPort();
    if (server.httpPort() < 0) {
      return tls + ", no plain-text listeners";
    }
    String plain = "HTTP port " + server.httpPort() + ", TCP port " + server.tcpPort();
    return server.tlsHttpPort() < 0 ? plain : plain + ", " + tls;
  }

  /** The --help text: commands, then every configuration key with its default and environment variable. */
  static String help() {
    StringBuilder out = new StringBuilder();
    out.append("chat-server ").append(version()).append(": chat protocol v3.1.3 server (HTTP + TCP)\n\n")
        .append(AdminCli.USAGE).append('\n')
        .append("Other commands:\n")
        .append("  healthcheck       exit 0 when the server on this machine is ready (GET /health/ready), else 1\n")
        .append("  --exit-after-startup   start, log the startup line, stop cleanly (a training run for\n")
        .append("                    -XX:ArchiveClassesAtExit: see the Dockerfile)\n")
        .append("  --help, --version\n\n")
        .append("Configuration: defaults < --conf FILE (JSON, same keys) < environment variables.\n\n");
    Map<String, Object> defaults = ConfigLoader.flatDefaults();
    int width = defaults.keySet().stream().mapToInt(String::length).max().orElse(10) + 2;
    out.append(String.format("  %-" + width + "s%-22s%s%n", "key", "default", "environment"));
    defaults.forEach((key, value) -> out.append(String.format("  %-" + width + "s%-22s%s%n", key,
        value instanceof String s ? (s.isEmpty() ? "\"\"" : s) : value, ConfigLoader.envName(key))));
    return out.toString();
  }
}
