package chat.support;

import chat.ChatServer;
import chat.config.ChatConfig;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A real server in this JVM: ports 0, a real SQLite file and avatar folder in {@code dir}, low
 * hashing cost. Overrides use flat keys ({@code "reaper.idleSeconds"}).
 */
public final class TestServer implements AutoCloseable {

  public final Path dir;
  public final ChatServer server;

  private TestServer(Path dir, ChatServer server) {
    this.dir = dir;
    this.server = server;
  }

  public static TestServer start(Vertx vertx, Path dir) {
    return start(vertx, dir, new JsonObject());
  }

  public static TestServer start(Vertx vertx, Path dir, JsonObject overrides) {
    try {
      ChatConfig config = ChatConfig.withOverrides(baseConfig(dir).mergeIn(overrides));
      ChatServer server = ChatServer.start(vertx, config).await(60, TimeUnit.SECONDS);
      return new TestServer(dir, server);
    } catch (Exception e) {
      throw new IllegalStateException("server did not start", e);
    }
  }

  /** The flat settings every test server uses. */
  public static JsonObject baseConfig(Path dir) {
    return new JsonObject()
        .put("host", "127.0.0.1")
        .put("http.port", 0)
        .put("tcp.port", 0)
        .put("db.url", "jdbc:sqlite:" + dir.resolve("usr.db"))
        .put("avatar.dir", dir.resolve("avatar").toString())
        .put("auth.hashCost", "low");
  }

  public int httpPort() {
    return server.httpPort();
  }

  public int tcpPort() {
    return server.tcpPort();
  }

  public Path db() {
    return dir.resolve("usr.db");
  }

  public LineClient connect() {
    return new LineClient(tcpPort());
  }

  public Http http() {
    return new Http(httpPort());
  }

  @Override
  public void close() {
    try {
      server.stop().await(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IllegalStateException("server did not stop", e);
    }
  }
}
