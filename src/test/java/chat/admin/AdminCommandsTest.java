package chat.admin;

import chat.auth.LocalSessionRegistry;
import chat.auth.LocalTokenStore;
import chat.auth.PasswordHasher;
import chat.auth.SessionRef;
import chat.auth.TokenStore;
import chat.config.ChatConfig;
import chat.store.AdminQueue;
import chat.store.UserStore;
import chat.support.Backend;
import chat.support.Http;
import chat.support.LineClient;
import chat.support.SqliteFile;
import chat.support.TestDatabase;
import chat.support.TestServer;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The administration commands ({@link AdminCli}) run as their own JVM, {@code chat.Main user ...},
 * in the data folder of a server running in this JVM on the same {@code usr.db}, as an operator
 * runs them next to a live server; and against a folder where no server runs. Plus the server
 * side of the mailbox, {@link AdminVerticle}, on its own. The commands that work with a running
 * server run on SQLite and on PostgreSQL (the command then gets the server's db.* settings, as an
 * operator would give them).
 */
@ExtendWith(VertxExtension.class)
class AdminCommandsTest {

  private static final String KICKED = "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Session closed by an administrator\"}";
  private static final String PING = "{\"type\":\"ping\"}";
  private static final String BAD_CREDENTIALS_TCP = "{\"type\":\"login\",\"status\":\"error_0\",\"message\":\"Invalid credentials\"}";
  private static final String ALREADY_LOGGED_IN = "{\"type\":\"login\",\"status\":\"error_-1\",\"message\":\"Account already logged in\"}";
  private static final String BAD_CREDENTIALS_HTTP = "{\"type\":\"login_0\",\"status\":\"error\",\"message\":\"Invalid credentials\"}";
  private static final String INVALID_TOKEN_CHAT = "{\"type\":\"chat\",\"status\":\"error_It\",\"message\":\"Invalid token\"}";
  private static final String INVALID_TOKEN_LOGIN = "{\"type\":\"login\",\"status\":\"error_It\",\"message\":\"Invalid token\"}";
  private static final String CHAT_ERROR_HTTP = "{\"type\":\"chat\",\"status\":\"error\"}";
  private static final String NO_SERVER = "no running server answered";

  /** The data folder: the server's and the commands' working directory. */
  @TempDir
  Path dir;
  /** Output files of the command processes, outside the data folder. */
  @TempDir
  Path logs;
  TestServer server;
  /** The database of the server and the commands. */
  TestDatabase db;

  @AfterEach
  void stop() {
    try {
      if (server != null) {
        server.close();
      }
    } finally {
      if (db != null) {
        db.close();
      }
    }
  }

  private TestServer startServer(Vertx vertx) {
    return startServer(vertx, Backend.SQLITE);
  }

  private TestServer startServer(Vertx vertx, Backend backend) {
    db = backend.create(dir);
    server = TestServer.start(vertx, dir, db.config().put("admin.pollMillis", 100));
    return server;
  }

  // ---- the command as its own JVM ----

  record Cli(int exit, String out, String err) {
    String both() {
      return out + err;
    }

    List<String> outLines() {
      return out.isEmpty() ? List.of() : List.of(out.split("\\R"));
    }
  }

  /** {@code java -cp <test classpath> chat.Main args...} in {@code workDir}; {@code stdin} (or nothing) on its input. */
  private Cli cli(Path workDir, String stdin, String... args) {
    List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx256m", "-cp", System.getProperty("java.class.path"),
        "chat.Main"));
    cmd.addAll(List.of(args));
    Process p = null;
    try {
      Path out = Files.createTempFile(logs, "cli-", ".out");
      Path err = Files.createTempFile(logs, "cli-", ".err");
      ProcessBuilder pb = new ProcessBuilder(cmd).directory(workDir.toFile())
          .redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.PIPE);
      pb.environment().keySet().removeIf(k -> k.startsWith("CHAT_"));
      // the settings the server of these tests uses; on SQLite the database is the folder's usr.db, the default
      pb.environment().put("CHAT_AUTH_HASHCOST", "low");
      pb.environment().put("CHAT_ADMIN_POLLMILLIS", "100");
      if (db != null && db.backend() == Backend.POSTGRESQL) {
        JsonObject settings = db.config();
        pb.environment().put("CHAT_DB_URL", settings.getString("db.url"));
        pb.environment().put("CHAT_DB_USER", settings.getString("db.user"));
        pb.environment().put("CHAT_DB_PASSWORD", settings.getString("db.password"));
      }
      p = pb.start();
      try (OutputStream in = p.getOutputStream()) {
        if (stdin != null) {
          in.write(stdin.getBytes(StandardCharsets.UTF_8));
        }
      }
      if (!p.waitFor(60, TimeUnit.SECONDS)) {
        fail("command " + String.join(" ", args) + " still running after 60 s");
      }
      return new Cli(p.exitValue(), Files.readString(out), Files.readString(err));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    } finally {
      if (p != null && p.isAlive()) {
        p.destroyForcibly();
      }
    }
  }

  private Cli cli(String... args) {
    return cli(dir, null, args);
  }

  // ---- socket helpers ----

  private static String lineSkippingPings(LineClient c) {
    while (true) {
      String line = c.readLine();
      if (!PING.equals(line)) {
        return line;
      }
    }
  }

  private static String loginJson(String user, String password) {
    return new JsonObject().put("type", "login").put("username", user).put("password", password).encode();
  }

  private static String chatJson(String token, String message) {
    return new JsonObject().put("type", "chat").put("token", token).put("message", message).encode();
  }

  /** The login reply, retried for up to 3 s while the previous session is still being released. */
  private static String loginRetrying(LineClient c, String user, String password) {
    return retry(() -> lineSkippingPings(c.send(loginJson(user, password))), ALREADY_LOGGED_IN::equals);
  }

  private static <T> T retry(Supplier<T> attempt, Predicate<T> again) {
    long deadline = System.nanoTime() + 3_000_000_000L;
    T result = attempt.get();
    while (again.test(result) && System.nanoTime() < deadline) {
      sleep(25);
      result = attempt.get();
    }
    return result;
  }

  /** The server sends exactly the KICKED line, then closes the connection. */
  private static void expectKicked(LineClient c) {
    assertEquals(KICKED, lineSkippingPings(c));
    AssertionError eof = assertThrows(AssertionError.class, c::readLine);
    assertEquals("connection closed by the server", eof.getMessage());
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private static String passwdOf(Path db, String user) {
    return (String) SqliteFile.query(db, "SELECT passwd FROM users WHERE name = ?", user).get(0).get("passwd");
  }

  private String passwdOf(String user) {
    return (String) db.query("SELECT passwd FROM users WHERE name = ?", user).get(0).get("passwd");
  }

  private void assertNoSecrets(Cli r, String... secrets) {
    assertFalse(r.both().contains("$argon2"), r.both());
    for (String s : secrets) {
      assertFalse(r.both().contains(s), "printed a secret: " + r.both());
    }
    String dbPassword = db == null ? "" : db.config().getString("db.password", "");
    if (!dbPassword.isEmpty()) {
      assertFalse(r.both().contains(dbPassword), "printed the database password: " + r.both());
    }
  }

  // ---- against a running server ----

  @ParameterizedTest(name = "{0}")
  @EnumSource(Backend.class)
  @DisplayName("user list: every user sorted by name, with avatar and password state, and no password or hash")
  void list(Backend backend, Vertx vertx) {
    startServer(vertx, backend);
    try (LineClient c = server.connect()) {
      c.registerAndLogin("alice", "alice-Secret-1");
    }
    Http.Response bob = server.http().post("/api/register",
        new JsonObject().put("username", "bob").put("password", "bob-Secret-2").put("avatar", "bob.png").encode());
    assertEquals(200, bob.status(), bob.body());
    // rows as an original server left them: a plain-text password, and none at all
    db.update("INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "carol", "carol-plain-9", "default_avatar.png");
    db.update("INSERT INTO users (name, passwd, avatar) VALUES (?, NULL, ?)", "Dave", "dave.jpg");

    Cli r = cli("user", "list");

    assertEquals(0, r.exit(), r.both());
    List<String> lines = r.outLines();
    assertEquals(4, lines.size(), r.out());
    // byte order, upper case first (SQLite's; on PostgreSQL whatever the database's collation)
    assertTrue(lines.get(0).matches("Dave +dave\\.jpg +none"), lines.get(0));
    assertTrue(lines.get(1).matches("alice +default_avatar\\.png +hashed"), lines.get(1));
    assertTrue(lines.get(2).matches("bob +bob\\.png +hashed"), lines.get(2));
    assertTrue(lines.get(3).matches("carol +default_avatar\\.png +PLAIN TEXT \\(original server, hashed at next start\\)"),
        lines.get(3));
    assertNoSecrets(r, "alice-Secret-1", "bob-Secret-2", "carol-plain-9");
    assertFalse(r.out().contains(" INFO "), "log lines on stdout: " + r.out());
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(Backend.class)
  @DisplayName("session kick: the live socket gets the KICKED line and is closed; the user logs in again")
  void kick(Backend backend, Vertx vertx) {
    startServer(vertx, backend);
    try (LineClient alice = server.connect(); LineClient other = server.connect()) {
      alice.registerAndLogin("alice", "pw-alice");
      String bobToken = other.registerAndLogin("bob", "pw-bob");

      Cli r = cli("session", "kick", "alice");

      assertEquals(0, r.exit(), r.both());
      assertEquals("kicked alice: session closed", r.out().strip());
      expectKicked(alice);
      // only alice: bob's session goes on
      other.send(new JsonObject().put("type", "heartbeat").put("token", bobToken).encode());
      assertEquals("{\"type\":\"heartbeat\",\"status\":\"success\"}", lineSkippingPings(other));
    }
    try (LineClient again = server.connect()) {
      String reply = loginRetrying(again, "alice", "pw-alice");
      assertTrue(reply.startsWith("{\"type\":\"login\",\"status\":\"success\""), reply);
    }
  }

  @Test
  @DisplayName("session kick of a user without a session says so, exit 0")
  void kickWithoutSession(Vertx vertx) {
    startServer(vertx);
    server.http().register("alice", "pw-alice");

    Cli r = cli("session", "kick", "alice");

    assertEquals(0, r.exit(), r.both());
    assertEquals("no session for alice", r.out().strip());
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(Backend.class)
  @DisplayName("user delete: the row goes, the live session is closed, every old token fails, login fails")
  void delete(Backend backend, Vertx vertx) {
    startServer(vertx, backend);
    Http http = server.http();
    http.register("alice", "pw-alice");
    String httpToken = http.login("alice", "pw-alice");
    try (LineClient alice = server.connect()) {
      String socketToken = alice.login("alice", "pw-alice");

      Cli r = cli("user", "delete", "alice");

      assertEquals(0, r.exit(), r.both());
      assertEquals("deleted user alice; running server: revoked 2 tokens, session closed", r.out().strip());
      expectKicked(alice);
      assertTrue(db.query("SELECT 1 FROM users WHERE name = 'alice'").isEmpty());

      try (LineClient c = server.connect()) {
        assertEquals(BAD_CREDENTIALS_TCP, lineSkippingPings(c.send(loginJson("alice", "pw-alice"))));
        assertEquals(INVALID_TOKEN_CHAT, lineSkippingPings(c.send(chatJson(socketToken, "still here?"))));
        assertEquals(INVALID_TOKEN_CHAT, lineSkippingPings(c.send(chatJson(httpToken, "still here?"))));
        assertEquals(INVALID_TOKEN_LOGIN, lineSkippingPings(c.send(
            new JsonObject().put("type", "login").put("token", socketToken).encode())));
      }
      Http.Response login = http.post("/api/login", new JsonObject().put("username", "alice").put("password", "pw-alice").encode());
      assertEquals(401, login.status());
      assertEquals(BAD_CREDENTIALS_HTTP, login.body());
      Http.Response chat = http.post("/api/chat", "{\"message\":\"x\"}", "Authorization", httpToken);
      assertEquals(401, chat.status());
      assertEquals(CHAT_ERROR_HTTP, chat.body());
    }
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(Backend.class)
  @DisplayName("user reset-password (stdin): old password and old tokens fail, the session is closed, the new password works")
  void resetPassword(Backend backend, Vertx vertx) {
    startServer(vertx, backend);
    try (LineClient alice = server.connect()) {
      String token = alice.registerAndLogin("alice", "pw-old");

      Cli r = cli(dir, "pw-New 2\n", "user", "reset-password", "alice");

      assertEquals(0, r.exit(), r.both());
      assertEquals("password of alice reset; running server: revoked 1 token, session closed", r.out().strip());
      assertNoSecrets(r, "pw-New 2", "pw-old");
      expectKicked(alice);
      assertTrue(PasswordHasher.isHash(passwdOf("alice")));

      try (LineClient c = server.connect()) {
        assertEquals(INVALID_TOKEN_CHAT, lineSkippingPings(c.send(chatJson(token, "old token"))));
        assertEquals(BAD_CREDENTIALS_TCP, lineSkippingPings(c.send(loginJson("alice", "pw-old"))));
        String ok = loginRetrying(c, "alice", "pw-New 2");
        assertTrue(ok.startsWith("{\"type\":\"login\",\"status\":\"success\""), ok);
      }
    }
  }

  @Test
  @DisplayName("user reset-password refuses an empty password or no input, and changes nothing")
  void resetPasswordInvalid(Vertx vertx) {
    startServer(vertx);
    server.http().register("alice", "pw-alice");
    String before = passwdOf(server.db(), "alice");

    Cli empty = cli(dir, "\n", "user", "reset-password", "alice", "--password-stdin");
    Cli none = cli(dir, "", "user", "reset-password", "alice");

    assertEquals(1, empty.exit(), empty.both());
    assertTrue(empty.err().contains("invalid password"), empty.err());
    assertEquals(1, none.exit(), none.both());
    assertTrue(none.err().contains("no password on stdin"), none.err());
    assertEquals(before, passwdOf(server.db(), "alice"));
    server.http().login("alice", "pw-alice");
  }

  @Test
  @DisplayName("an unknown user: delete and reset-password exit 1 with one line on stderr")
  void unknownUser(Vertx vertx) {
    startServer(vertx);

    Cli delete = cli("user", "delete", "ghost");
    Cli reset = cli(dir, "whatever\n", "user", "reset-password", "ghost");

    for (Cli r : List.of(delete, reset)) {
      assertEquals(1, r.exit(), r.both());
      assertEquals("chat-server: no user 'ghost'", r.err().strip());
      assertEquals("", r.out());
    }
    assertTrue(SqliteFile.query(server.db(), "SELECT 1 FROM admin_queue").isEmpty(), "nothing queued");
  }

  @Test
  @DisplayName("bad usage exits 2 with the usage text; a password argument is refused; --help exits 0")
  void usage() {
    for (String[] args : List.of(new String[] {"user"}, new String[] {"session"}, new String[] {"user", "frobnicate"},
        new String[] {"user", "delete"}, new String[] {"session", "kick"}, new String[] {"user", "list", "--bogus"},
        new String[] {"user", "list", "extra"}, new String[] {"user", "reset-password", "alice", "s3cret"})) {
      Cli r = cli(args);
      String what = String.join(" ", args) + ": " + r.both();
      assertEquals(2, r.exit(), what);
      assertEquals("", r.out(), what);
      for (String command : List.of("user list", "user delete NAME", "user reset-password NAME", "session kick NAME")) {
        assertTrue(r.err().contains(command), what);
      }
    }
    assertTrue(cli("user", "reset-password", "alice", "s3cret").err().contains("takes no password argument"));

    Cli help = cli("--help");
    assertEquals(0, help.exit(), help.both());
    assertTrue(help.out().contains("session kick NAME"), help.out());
    assertFalse(Files.exists(dir.resolve("usr.db")), "usage errors open no database");
  }

  // ---- no server running ----

  @Test
  @DisplayName("no server running, an original 3.1.3 usr.db: list, delete and reset work without migrating it; kick says no server answered")
  void noServerOriginalDatabase(Vertx vertx) throws IOException {
    Path db = dir.resolve("usr.db");
    SqliteFile.exec(db, "CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, passwd TEXT, avatar TEXT DEFAULT 'default_avatar.png')");
    for (String[] u : List.of(new String[] {"alice", "plain-a"}, new String[] {"bob", "plain-b"}, new String[] {"carol", "plain-c"})) {
      SqliteFile.update(db, "INSERT INTO users (name, passwd) VALUES (?, ?)", u[0], u[1]);
    }
    // run from elsewhere, with the database named by a --conf file
    Path conf = logs.resolve("admin.json");
    Files.writeString(conf, new JsonObject().put("db", new JsonObject().put("url", "jdbc:sqlite:" + db)).encode());
    Path elsewhere = Files.createDirectory(logs.resolve("elsewhere"));

    Cli list = cli(elsewhere, null, "user", "list", "--conf", conf.toString());
    assertEquals(0, list.exit(), list.both());
    assertEquals(3, list.outLines().size(), list.out());
    assertTrue(list.outLines().stream().allMatch(l -> l.endsWith("PLAIN TEXT (original server, hashed at next start)")), list.out());
    assertNoSecrets(list, "plain-a", "plain-b", "plain-c");

    Cli delete = cli(dir, null, "user", "delete", "bob", "--wait", "1");
    assertEquals(0, delete.exit(), delete.both());
    assertEquals("deleted user bob; " + NO_SERVER + " within 1 s; the change takes effect at once for new logins",
        delete.out().strip());

    Cli reset = cli(dir, "brand-new\n", "user", "reset-password", "alice", "--wait", "1");
    assertEquals(0, reset.exit(), reset.both());
    assertTrue(reset.out().startsWith("password of alice reset; " + NO_SERVER), reset.out());
    assertTrue(PasswordHasher.verify("brand-new", passwdOf(db, "alice")));

    Cli kick = cli("session", "kick", "carol"); // the default wait
    assertEquals(1, kick.exit(), kick.both());
    assertEquals("chat-server: " + NO_SERVER + " within 5 s (the kick was withdrawn)", kick.err().strip());

    // withdrawn requests: a server started later does not replay them
    assertTrue(SqliteFile.query(db, "SELECT 1 FROM admin_queue WHERE done_at IS NULL").isEmpty());
    // not migrated: carol still has her plain text, the file was never rewritten by the server's startup
    assertEquals("plain-c", passwdOf(db, "carol"));
    assertEquals(0, ((Number) SqliteFile.query(db, "PRAGMA user_version").get(0).get("user_version")).intValue());
    assertEquals(List.of("alice", "carol"), SqliteFile.query(db, "SELECT name FROM users ORDER BY name").stream()
        .map(row -> (String) row.get("name")).collect(Collectors.toList()));

    // the server then starts on that file: the new password and the untouched ones work
    startServer(vertx);
    try (LineClient c = server.connect()) {
      assertTrue(c.send(loginJson("alice", "brand-new")).readLine().contains("\"status\":\"success\""));
    }
    server.http().login("carol", "plain-c");
    assertEquals(BAD_CREDENTIALS_HTTP, server.http().post("/api/login",
        new JsonObject().put("username", "bob").put("password", "plain-b").encode()).body());
  }

  @Test
  @DisplayName("user list on an original 3.1 usr.db (no avatar column) reads it and changes nothing")
  void listOriginal31Layout() {
    Path db = dir.resolve("usr.db");
    SqliteFile.exec(db, "CREATE TABLE IF NOT EXISTS users (name TEXT, passwd TEXT)",
        "INSERT INTO users VALUES ('zed', 'pz')", "INSERT INTO users VALUES ('amy', NULL)");

    Cli r = cli("user", "list");

    assertEquals(0, r.exit(), r.both());
    assertEquals(2, r.outLines().size(), r.out());
    assertTrue(r.outLines().get(0).matches("amy +default_avatar\\.png +none"), r.out());
    assertTrue(r.outLines().get(1).matches("zed +default_avatar\\.png +PLAIN TEXT .*"), r.out());
    assertNoSecrets(r, "pz");
    List<String> columns = SqliteFile.query(db, "PRAGMA table_info(users)").stream()
        .map(row -> (String) row.get("name")).collect(Collectors.toList());
    assertEquals(List.of("name", "passwd"), columns);
    assertTrue(SqliteFile.query(db, "SELECT name FROM sqlite_master WHERE name = 'admin_queue'").isEmpty(),
        "list creates no table");
  }

  @Test
  @DisplayName("in a folder without usr.db the commands exit 1 and create no database")
  void noDatabase() {
    Cli r = cli("user", "list");

    assertEquals(1, r.exit(), r.both());
    assertTrue(r.err().startsWith("chat-server: no database file "), r.err());
    assertFalse(Files.exists(dir.resolve("usr.db")));
  }

  // ---- the server side, on its own ----

  @ParameterizedTest(name = "{0}")
  @EnumSource(Backend.class)
  @DisplayName("AdminVerticle carries out each queued row exactly once, also with several pollers on one database")
  void adminVerticleOnce(Backend backend, Vertx vertx) throws Exception {
    db = backend.create(dir);
    ChatConfig config = ChatConfig.withOverrides(TestServer.baseConfig(dir).mergeIn(db.config()));
    UserStore users = UserStore.open(vertx, config);
    try {
      AdminQueue queue = AdminQueue.of(users);
      queue.ensureTable().await(10, TimeUnit.SECONDS);
      long now = System.currentTimeMillis();
      // done long ago (purged at start) and recently (kept)
      db.update("INSERT INTO admin_queue (command, username, requested_at, done_at, result) "
          + "VALUES ('kick', 'old', ?, ?, 'kicked'), ('kick', 'recent', ?, ?, 'kicked')", now - 7_300_000, now - 7_200_000,
          now - 600_000, now - 600_000);

      LocalTokenStore tokens = new LocalTokenStore(3_600_000, System::currentTimeMillis);
      LocalSessionRegistry sessions = new LocalSessionRegistry(System::currentTimeMillis);
      String aliceToken = tokens.issue(new TokenStore.Holder("alice", "/avatar/alice/default_avatar.png")).await();
      tokens.issue(new TokenStore.Holder("alice", "/avatar/alice/default_avatar.png")).await();
      String bobToken = tokens.issue(new TokenStore.Holder("bob", "/avatar/bob/default_avatar.png")).await();
      assertNull(sessions.bind("alice", new SessionRef("test.owner", 7)).await());
      List<JsonObject> commands = new CopyOnWriteArrayList<>();
      MessageConsumer<JsonObject> owner = vertx.eventBus().consumer("test.owner", m -> commands.add(m.body()));
      owner.completion().await(10, TimeUnit.SECONDS);

      List<Long> ids = new ArrayList<>();
      ids.add(queue.enqueue(AdminQueue.KICK, "alice", now).await());
      ids.add(queue.enqueue(AdminQueue.REVOKE, "bob", now).await());
      ids.add(queue.enqueue(AdminQueue.KICK, "carol", now).await());
      ids.add(queue.enqueue(AdminQueue.REVOKE, "alice", now).await());
      ids.add(queue.enqueue("frobnicate", "dave", now).await());

      // three pollers on one database: claims decide who runs a row
      String deployment = vertx.deployVerticle(() -> new AdminVerticle(queue, tokens, sessions, 50, System::currentTimeMillis),
          new DeploymentOptions().setInstances(3)).await(10, TimeUnit.SECONDS);
      Map<Long, String> results = awaitResults(queue, ids);
      sleep(400); // several more polls: nothing runs twice

      assertEquals("kicked", results.get(ids.get(0)));
      assertEquals("revoked 1 token, no session", results.get(ids.get(1)));
      assertEquals("no session", results.get(ids.get(2)));
      assertEquals("revoked 2 tokens, session closed", results.get(ids.get(3)));
      assertEquals("failed: unknown command 'frobnicate'", results.get(ids.get(4)));
      JsonObject kick = new JsonObject().put("op", "kick").put("connection", 7L).put("user", "alice");
      assertEquals(List.of(kick, kick), commands);
      assertNull(tokens.use(aliceToken).await());
      assertNull(tokens.use(bobToken).await());
      assertEquals(List.of(), queue.pending(10).await());
      List<String> kept = db.query("SELECT username FROM admin_queue WHERE requested_at < ?", now)
          .stream().map(row -> (String) row.get("username")).collect(Collectors.toList());
      assertEquals(List.of("recent"), kept);

      // a later row is picked up too, once
      long later = queue.enqueue(AdminQueue.KICK, "alice", System.currentTimeMillis()).await();
      assertEquals("kicked", awaitResults(queue, List.of(later)).get(later));
      sleep(300);
      assertEquals(3, commands.size());

      vertx.undeploy(deployment).await(10, TimeUnit.SECONDS);
    } finally {
      users.close().await(10, TimeUnit.SECONDS);
    }
  }

  private static Map<Long, String> awaitResults(AdminQueue queue, List<Long> ids) throws Exception {
    long deadline = System.nanoTime() + 10_000_000_000L;
    Map<Long, String> results = new HashMap<>();
    while (results.size() < ids.size()) {
      for (long id : ids) {
        AdminQueue.State s = queue.state(id).await(10, TimeUnit.SECONDS);
        if (s != null && s.result() != null) {
          results.put(id, s.result());
        }
      }
      if (System.nanoTime() > deadline) {
        fail("not all requests done within 10 s: " + results);
      }
      sleep(20);
    }
    return results;
  }
}
