package chat;

import chat.admin.AdminCli;
import chat.config.ChatConfig;
import chat.config.ConfigException;
import chat.config.ConfigLoader;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

/**
 * {@code java -jar chat-server.jar [--conf FILE]}: reads the configuration, starts the server
 * with the working directory as the data folder, and stops it cleanly on SIGTERM or SIGINT.
 * Exit codes: 0 after a clean stop, 1 when startup fails, 2 for bad arguments or configuration.
 * With an administration command ({@code user ...}, {@code session ...}, {@code --help}) it runs
 * {@link AdminCli} instead.
 */
public final class Main {

  private static final Logger log = LoggerFactory.getLogger(Main.class);

  private Main() {
  }

  public static void main(String[] args) {
    if (AdminCli.handles(args)) {
      System.exit(AdminCli.run(args));
      return;
    }
    String confFile = null;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--conf") && i + 1 < args.length) {
        confFile = args[++i];
      } else if (a.startsWith("--conf=")) {
        confFile = a.substring("--conf=".length());
      } else {
        System.err.println("chat-server: unknown argument '" + a + "'. Usage: java -jar chat-server.jar [--conf FILE]"
            + " (administration commands: java -jar chat-server.jar --help)");
        System.exit(2);
      }
    }
    long started = System.nanoTime();

    ChatConfig config;
    Vertx bootstrap = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1).setWorkerPoolSize(1));
    try {
      config = ConfigLoader.load(bootstrap, confFile).await(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      Throwable cause = e instanceof ConfigException ? e : e.getCause() instanceof ConfigException ? e.getCause() : e;
      System.err.println("chat-server: " + cause.getMessage());
      System.exit(2);
      return;
    } finally {
      bootstrap.close();
    }

    Vertx vertx = Vertx.builder()
        .with(new VertxOptions().setPreferNativeTransport(true).setEventLoopPoolSize(config.availableEventLoops()))
        .build();
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
        stopped.eventually(vertx::close).await(10, TimeUnit.SECONDS);
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
      server = ChatServer.start(vertx, config).await(10, TimeUnit.MINUTES);
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
    log.info("Chat server listening: HTTP port {}, TCP port {} (host {}, database {}, {} event loops, transport {}, started in {} ms)",
        server.httpPort(), server.tcpPort(), config.host, config.dbUrl, config.availableEventLoops(),
        vertx.isNativeTransportEnabled() ? "epoll" : "nio", (System.nanoTime() - started) / 1_000_000);
  }
}
