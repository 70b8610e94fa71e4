package chat;

import chat.support.Http;
import chat.support.LineClient;
import chat.support.PgDatabase;
import chat.support.Postgres;
import chat.support.ServerProcess;
import chat.support.TcpProxy;
import chat.support.TestServer;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The whole server on a real PostgreSQL database ({@code db.url=jdbc:postgresql://...}): the
 * protocol over TCP and HTTP, two servers sharing one database as two nodes do, readiness while
 * the database is gone, and the password of the database kept out of every log line. Each test
 * has a fresh database ({@link Postgres}).
 */
class PostgresServerTest {

  private static final String CREATED = "{\"type\":\"register_1\",\"error\":false,\"message\":\"User registered successfully\"}";
  private static final String TAKEN = "{\"type\":\"register_0\",\"success\":false,\"message\":\"Username already exists\"}";
  private static final String READY_UP = "{\"status\":\"UP\",\"checks\":[{\"id\":\"database\",\"status\":\"UP\"}],\"outcome\":\"UP\"}";
  private static final int TIMEOUT_MILLIS = 500;
  private static final Duration STARTUP = Duration.ofSeconds(60);

  @TempDir
  Path root;
  PgDatabase db;
  final List<AutoCloseable> closeables = new ArrayList<>();

  @BeforeEach
  void database() {
    db = Postgres.server().newDatabase();
  }

  @AfterEach
  void close() throws Exception {
    try {
      for (int i = closeables.size() - 1; i >= 0; i--) {
        closeables.get(i).close();
      }
    } finally {
      db.close();
    }
  }

  /** A node: a Vert.x instance of its own (one per server, as in production) and a server on it. */
  private TestServer node(String name, JsonObject settings) throws Exception {
    Vertx vertx = Vertx.vertx();
    closeables.add(() -> vertx.close().await(30, TimeUnit.SECONDS));
    Path dir = Files.createDirectories(root.resolve(name));
    TestServer server = TestServer.start(vertx, dir, settings);
    closeables.add(server);
    return server;
  }

  private TestServer node(String name) throws Exception {
    return node(name, db.config());
  }

  private static JsonObject register(String user, String password) {
    return new JsonObject().put("type", "register").put("username", user).put("password", password);
  }

  private static String body(String user, String password) {
    return new JsonObject().put("username", user).put("password", password).encode();
  }

  /** Polls {@code /health/ready} (bounded) until it answers {@code status}; returns that answer. */
  private static Http.Response awaitReady(Http http, int status, int seconds) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    Http.Response r = http.get("/health/ready");
    while (r.status() != status && System.nanoTime() < deadline) {
      sleep(50);
      r = http.get("/health/ready");
    }
    assertEquals(status, r.status(), "readiness did not turn " + status + " within " + seconds + " s: " + r.body());
    return r;
  }

  /** Polls an HTTP login (bounded) until it answers 200. */
  private static void awaitLogin(Http http, String user, String password, int seconds) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    Http.Response r = http.post("/api/login", body(user, password));
    while (r.status() != 200 && System.nanoTime() < deadline) {
      sleep(100);
      r = http.post("/api/login", body(user, password));
    }
    assertEquals(200, r.status(), r.body());
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  @Test
  @DisplayName("register, login and chat over TCP and HTTP on PostgreSQL; the users are rows of the database; a restart keeps them")
  void protocolOnPostgres() throws Exception {
    TestServer server = node("a");
    Http http = server.http();
    assertEquals(READY_UP, http.get("/health/ready").body());
    try (LineClient alice = server.connect()) {
      String aliceToken = alice.registerAndLogin("alice", "pw-alice");
      Http.Response bob = http.post("/api/register", body("bob", "pw-bob"));
      assertEquals(200, bob.status(), bob.body());
      assertEquals(CREATED, bob.body());
      String bobToken = http.login("bob", "pw-bob");

      Http.Response chat = http.post("/api/chat", "{\"message\":\"hi from http\"}", "Authorization", bobToken);
      assertEquals(200, chat.status(), chat.body());
      JsonObject heard = alice.readSkippingPings();
      assertEquals("bob", heard.getString("user"));
      assertEquals("hi from http", heard.getString("message"));

      alice.send(new JsonObject().put("type", "chat").put("token", aliceToken).put("message", "hi from tcp"));
      List<JsonObject> two = List.of(alice.readSkippingPings(), alice.readSkippingPings());
      assertTrue(two.contains(new JsonObject().put("type", "chat").put("status", "success")), two.toString());
      assertTrue(two.stream().anyMatch(m -> "hi from tcp".equals(m.getString("message")) && "alice".equals(m.getString("user"))),
          two.toString());

      alice.send(register("alice", "other"));
      assertEquals(TAKEN, alice.readSkippingPings().encode());
    }
    List<Map<String, Object>> rows = db.query("SELECT name, avatar, passwd LIKE '$argon2id$%' AS hashed FROM users ORDER BY name");
    assertEquals(List.of(Map.of("name", "alice", "avatar", "default_avatar.png", "hashed", true),
        Map.of("name", "bob", "avatar", "default_avatar.png", "hashed", true)), rows);

    server.close();
    closeables.remove(server);
    TestServer again = node("a2");
    assertEquals(200, again.http().post("/api/login", body("alice", "pw-alice")).status());
  }

  @Test
  @DisplayName("two servers on one database: of 12 registrations of one name spread over both at once, exactly one succeeds; users log in on either")
  void twoNodesShareUsers() throws Exception {
    TestServer a = node("a");
    TestServer b = node("b");
    int n = 12;
    CyclicBarrier start = new CyclicBarrier(n);
    ExecutorService pool = Executors.newFixedThreadPool(n);
    try {
      List<Future<String>> replies = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        TestServer node = i % 2 == 0 ? a : b;
        String password = "pw-of-contender-" + i;
        boolean overHttp = i % 4 >= 2;
        Callable<String> task = overHttp
            ? () -> {
              Http http = node.http();
              start.await(10, TimeUnit.SECONDS);
              Http.Response r = http.post("/api/register", body("contested", password));
              return r.status() == 200 ? CREATED : r.status() == 403 ? TAKEN : r.status() + " " + r.body();
            }
            : () -> {
              try (LineClient c = node.connect()) {
                start.await(10, TimeUnit.SECONDS);
                c.send(register("contested", password));
                return c.readLine();
              }
            };
        replies.add(pool.submit(task));
      }
      int winner = -1;
      for (int i = 0; i < n; i++) {
        String reply = replies.get(i).get(60, TimeUnit.SECONDS);
        if (CREATED.equals(reply)) {
          assertEquals(-1, winner, "two winners: " + winner + " and " + i);
          winner = i;
        } else {
          assertEquals(TAKEN, reply, "contender " + i);
        }
      }
      assertTrue(winner >= 0, "nobody won");
      assertEquals(1, db.query("SELECT name FROM users WHERE name = 'contested'").size());
      // the winner's password works on both nodes, a loser's on neither
      assertEquals(200, a.http().post("/api/login", body("contested", "pw-of-contender-" + winner)).status());
      assertEquals(200, b.http().post("/api/login", body("contested", "pw-of-contender-" + winner)).status());
      int loser = winner == 0 ? 1 : 0;
      assertEquals(401, b.http().post("/api/login", body("contested", "pw-of-contender-" + loser)).status());
    } finally {
      pool.shutdownNow();
    }
    // registered on one, known to the other at once
    a.http().register("carol", "pw-carol");
    try (LineClient c = b.connect()) {
      assertTrue(c.login("carol", "pw-carol").matches("[0-9a-f]+"));
      c.send(register("carol", "again"));
      assertEquals(TAKEN, c.readSkippingPings().encode());
    }
  }

  @Test
  @DisplayName("readiness: 503 naming the database while its port is closed or its connections hang; 200 and logins again once it is back")
  void readinessWhileDatabaseUnreachable() throws Exception {
    TcpProxy proxy = TcpProxy.to(db.url());
    closeables.add(proxy);
    JsonObject settings = db.config()
        .put("db.url", "jdbc:postgresql://127.0.0.1:" + proxy.port() + "/" + db.name)
        .put("health.timeoutMillis", TIMEOUT_MILLIS);
    TestServer server = node("a", settings);
    Http http = server.http();
    http.register("alice", "pw-alice");
    assertEquals(READY_UP, awaitReady(http, 200, 5).body());

    // the database host goes away: open connections reset, new ones refused
    proxy.down();
    Http.Response down = awaitReady(http, 503, 10);
    JsonObject check = down.json().getJsonArray("checks").getJsonObject(0);
    assertEquals("database", check.getString("id"));
    assertEquals("DOWN", check.getString("status"));
    assertTrue(check.getJsonObject("data").getString("reason").startsWith("the database "), down.body());
    assertEquals("DOWN", down.json().getString("outcome"));
    assertEquals(200, http.get("/health/live").status(), "the server itself is alive");

    proxy.up();
    awaitReady(http, 200, 15);
    awaitLogin(http, "alice", "pw-alice", 15);

    // a partition: connections stay open, nothing comes back
    proxy.freeze();
    Http.Response hung = awaitReady(http, 503, 10);
    assertEquals("{\"status\":\"DOWN\",\"checks\":[{\"id\":\"database\",\"status\":\"DOWN\",\"data\":{\"reason\":"
        + "\"the database did not answer within " + TIMEOUT_MILLIS + " ms\"}}],\"outcome\":\"DOWN\"}", hung.body());
    proxy.down();
    proxy.up();
    awaitReady(http, 200, 20);
    awaitLogin(http, "alice", "pw-alice", 20);
  }

  @Test
  @DisplayName("the PostgreSQL server stopped and started again: readiness 503, then 200; logins and registrations work again")
  void databaseRestart() throws Exception {
    Postgres pg = Postgres.server();
    assumeTrue(pg.isPrivate(), "the server of " + Postgres.URL_ENV + " is not ours to stop; "
        + "readinessWhileDatabaseUnreachable covers an unreachable database");
    TestServer server = node("a", db.config().put("health.timeoutMillis", TIMEOUT_MILLIS));
    Http http = server.http();
    http.register("alice", "pw-alice");
    awaitReady(http, 200, 5);
    try {
      pg.stop();
      awaitReady(http, 503, 10);
    } finally {
      pg.start();
    }
    awaitReady(http, 200, 15);
    awaitLogin(http, "alice", "pw-alice", 15);
    Http.Response bob = http.post("/api/register", body("bob", "pw-bob"));
    assertEquals(200, bob.status(), bob.body());
  }

  // ---- the server as its own process: the startup line and the password ----

  private ServerProcess process(Map<String, String> env) throws Exception {
    Path dir = Files.createDirectories(root.resolve("proc"));
    Map<String, String> all = new HashMap<>(env);
    all.put("CHAT_HTTP_PORT", "0");
    all.put("CHAT_TCP_PORT", "0");
    all.put("CHAT_HOST", "127.0.0.1");
    all.put("CHAT_AUTH_HASHCOST", "low");
    ServerProcess p = ServerProcess.start(dir, root, all);
    closeables.add(p);
    return p;
  }

  @Test
  @DisplayName("a PostgreSQL URL with the password in it: the startup line masks it, no output holds it, and it is the password used")
  void passwordInUrlMasked() throws Exception {
    String password = db.server().password;
    String url = db.url() + "?user=" + db.server().user + "&password=" + password + "&ApplicationName=chat-node";
    ServerProcess p = process(Map.of("CHAT_DB_URL", url));
    ServerProcess.Ports ports = p.awaitListening(STARTUP);
    String masked = db.url() + "?user=" + db.server().user + "&password=******&ApplicationName=chat-node";
    assertTrue(ports.line().contains("database " + masked + ","), ports.line());
    try (LineClient c = new LineClient(ports.tcp())) {
      c.registerAndLogin("masked", "pw-masked");
    }
    assertEquals(List.of(Map.of("name", "masked")), db.query("SELECT name FROM users"));
    p.terminate();
    assertEquals(0, p.awaitExit(Duration.ofSeconds(30)), p.transcript());
    assertFalse(p.transcript().contains(password), p.transcript());
  }

  @Test
  @DisplayName("startup fails with exit 1 on a wrong database password or a closed port, naming no password")
  void startupFailuresNameNoPassword() throws Exception {
    String wrong = "Wr0ng-db-pw-" + System.nanoTime();
    ServerProcess badPassword = process(Map.of("CHAT_DB_URL", db.url(), "CHAT_DB_USER", db.server().user,
        "CHAT_DB_PASSWORD", wrong));
    assertEquals(1, badPassword.awaitExit(STARTUP), badPassword.transcript());
    assertTrue(badPassword.stdout().stream().anyMatch(l -> l.contains("Startup failed")), badPassword.transcript());
    assertTrue(badPassword.transcript().contains("password authentication failed"), badPassword.transcript());
    assertFalse(badPassword.transcript().contains(wrong), badPassword.transcript());

    int closed;
    try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
      closed = s.getLocalPort();
    }
    ServerProcess noServer = process(Map.of("CHAT_DB_URL",
        "jdbc:postgresql://127.0.0.1:" + closed + "/chat?user=chat&password=" + wrong));
    assertEquals(1, noServer.awaitExit(STARTUP), noServer.transcript());
    assertTrue(noServer.stdout().stream().anyMatch(l -> l.contains("Startup failed")), noServer.transcript());
    assertFalse(noServer.transcript().contains(wrong), noServer.transcript());
  }
}
