package chat.store;

import chat.support.Http;
import chat.support.LineClient;
import chat.support.SqliteFile;
import chat.support.TestServer;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** PROTOCOL.md §5 and the storage rules of §2/§3.1/§4.2, on real SQLite files. */
@ExtendWith(VertxExtension.class)
class StorageTest {

  private static final String ARGON2ID = "\\$argon2id\\$v=19\\$m=\\d+,t=\\d+,p=\\d+\\$[A-Za-z0-9+/]+\\$[A-Za-z0-9+/]+";
  private static final String TAKEN_TCP = "{\"type\":\"register_0\",\"success\":false,\"message\":\"Username already exists\"}";
  private static final String CREATED = "{\"type\":\"register_1\",\"error\":false,\"message\":\"User registered successfully\"}";
  private static final String BAD_CREDENTIALS_TCP = "{\"type\":\"login\",\"status\":\"error_0\",\"message\":\"Invalid credentials\"}";

  /** The schema of the original 3.1.3 server (seed/CS3.1.3.py), verbatim. */
  private static final String SCHEMA_313 = """
      CREATE TABLE IF NOT EXISTS users
                           (name TEXT PRIMARY KEY,
                           passwd TEXT,
                           avatar TEXT DEFAULT 'default_avatar.png')""";
  /** The schema of the original 3.1 server (seed/CS3.1.py), verbatim. */
  private static final String SCHEMA_31 = """
      CREATE TABLE IF NOT EXISTS users
                           (name TEXT, passwd TEXT)""";

  @TempDir
  Path dir;
  TestServer server;

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
  }

  private Path db() {
    return dir.resolve("usr.db");
  }

  // ---- helpers ----

  private static JsonObject tcpLogin(LineClient c, String username, Object password) {
    c.send(new JsonObject().put("type", "login").put("username", username).put("password", password));
    return c.readSkippingPings();
  }

  private static JsonObject tcpRegister(LineClient c, String username, String password, String avatar) {
    JsonObject m = new JsonObject().put("type", "register").put("username", username).put("password", password);
    if (avatar != null) {
      m.put("avatar", avatar);
    }
    c.send(m);
    return c.read();
  }

  private static Http.Response httpLogin(Http http, String username, Object password) {
    return http.post("/api/login", new JsonObject().put("username", username).put("password", password).encode());
  }

  /** Fails if any of the database files holds one of the texts. */
  private void assertNotOnDisk(String... plainTexts) {
    for (String p : plainTexts) {
      List<String> hits = SqliteFile.filesContaining(db(), p);
      assertTrue(hits.isEmpty(), () -> "plain-text password '" + p + "' found on disk in " + hits
          + " (files: " + SqliteFile.filesOf(db()) + ")");
    }
  }

  /** The detector works: the plain texts are in the original file before the server opens it. */
  private void assertOnDisk(String... plainTexts) {
    for (String p : plainTexts) {
      assertFalse(SqliteFile.filesContaining(db(), p).isEmpty(), "test setup: '" + p + "' should be in the original file");
    }
  }

  private Map<String, Object> row(String name) {
    List<Map<String, Object>> rows = SqliteFile.query(db(), "SELECT name, passwd, avatar FROM users WHERE name = ?", name);
    assertTrue(rows.size() <= 1, "more than one row named " + name);
    return rows.isEmpty() ? null : rows.get(0);
  }

  private void assertHashed(String name) {
    Map<String, Object> r = row(name);
    assertNotNull(r, name + " is missing");
    String passwd = (String) r.get("passwd");
    assertNotNull(passwd, name + " has no password");
    assertTrue(passwd.matches(ARGON2ID), () -> name + "'s passwd is not an Argon2id PHC string: " + passwd);
  }

  private static String journalMode(Path db) throws Exception {
    try (Connection c = SqliteFile.open(db); Statement s = c.createStatement();
         ResultSet rs = s.executeQuery("PRAGMA journal_mode")) {
      assertTrue(rs.next());
      return rs.getString(1);
    }
  }

  // ---- tests ----

  @Test
  @DisplayName("20 concurrent registrations of one name over TCP and HTTP: exactly one succeeds, 19 get 'Username already exists'")
  void concurrentRegistrationsOfOneName(Vertx vertx) throws Exception {
    server = TestServer.start(vertx, dir);
    int n = 20;
    CyclicBarrier start = new CyclicBarrier(n);
    ExecutorService pool = Executors.newFixedThreadPool(n);
    try {
      List<Future<String>> results = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        int id = i;
        String password = "pw-of-contender-" + id;
        Callable<String> task;
        if (id % 2 == 0) {
          task = () -> {
            try (LineClient c = server.connect()) {
              start.await(10, TimeUnit.SECONDS);
              c.send(new JsonObject().put("type", "register").put("username", "contested").put("password", password));
              return c.readLine();
            }
          };
        } else {
          task = () -> {
            Http http = server.http();
            start.await(10, TimeUnit.SECONDS);
            Http.Response r = http.post("/api/register",
                new JsonObject().put("username", "contested").put("password", password).encode());
            // normalise to the socket shapes, checking the HTTP status on the way
            JsonObject body = r.json();
            if (r.status() == 200) {
              return body.encode();
            }
            assertEquals(403, r.status(), r.body());
            return body.encode();
          };
        }
        results.add(pool.submit(task));
      }
      List<String> created = new ArrayList<>();
      List<Integer> winners = new ArrayList<>();
      int taken = 0;
      for (int i = 0; i < n; i++) {
        String reply = results.get(i).get(60, TimeUnit.SECONDS);
        if (reply.equals(CREATED)) {
          created.add(reply);
          winners.add(i);
        } else {
          assertEquals(TAKEN_TCP, reply, "contender " + i);
          taken++;
        }
      }
      assertEquals(1, created.size(), "register_1 count");
      assertEquals(n - 1, taken, "register_0 count");

      // one row, and it holds the winner's password
      assertEquals(1, SqliteFile.query(db(), "SELECT name FROM users WHERE name = 'contested'").size());
      int winner = winners.get(0);
      Http http = server.http();
      assertEquals(200, httpLogin(http, "contested", "pw-of-contender-" + winner).status());
      int loser = winner == 0 ? 1 : 0;
      assertEquals(401, httpLogin(http, "contested", "pw-of-contender-" + loser).status());
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  @DisplayName("the database file is in WAL mode")
  void walMode(Vertx vertx) throws Exception {
    server = TestServer.start(vertx, dir);
    try (LineClient c = server.connect()) {
      assertEquals(CREATED, tcpRegister(c, "walter", "wal-pw", null).encode());
    }
    assertEquals("wal", journalMode(db()).toLowerCase());
  }

  @Test
  @DisplayName("passwords are stored as Argon2id PHC hashes, never as plain text, with the chosen avatar")
  void passwordsStoredAsHashes(Vertx vertx) throws Exception {
    server = TestServer.start(vertx, dir);
    try (LineClient c = server.connect()) {
      assertEquals(CREATED, tcpRegister(c, "hashme", "Unmistakable-tcp-pw-4711", "me.png").encode());
    }
    Http.Response r = server.http().post("/api/register",
        new JsonObject().put("username", "hashme2").put("password", "Unmistakable-http-pw-0815").encode());
    assertEquals(200, r.status(), r.body());

    assertHashed("hashme");
    assertHashed("hashme2");
    assertEquals("me.png", row("hashme").get("avatar"));
    assertEquals("default_avatar.png", row("hashme2").get("avatar"));
    assertNotEquals(row("hashme").get("passwd"), row("hashme2").get("passwd"));
    assertNotOnDisk("Unmistakable-tcp-pw-4711", "Unmistakable-http-pw-0815");
    server.close();
    server = null;
    assertNotOnDisk("Unmistakable-tcp-pw-4711", "Unmistakable-http-pw-0815");
  }

  private static void assertNotEquals(Object a, Object b) {
    org.junit.jupiter.api.Assertions.assertNotEquals(a, b);
  }

  @Test
  @DisplayName("an original 3.1.3 usr.db opens as is: old passwords work over TCP and HTTP, avatars are right, no plain text stays on disk")
  void original313Database(Vertx vertx) throws Exception {
    SqliteFile.exec(db(), SCHEMA_313);
    SqliteFile.update(db(), "INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "alice", "Pl41nSecret-alice-77", "me.png");
    SqliteFile.update(db(), "INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "bob", "Pl41nSecret-bob-88", null);
    SqliteFile.update(db(), "INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "carol", "Pl41nSecret-carol-99", "");
    SqliteFile.update(db(), "INSERT INTO users (name, passwd) VALUES (?, ?)", "dave", "Pl41nSecret-dave-11");
    SqliteFile.update(db(), "INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "Alice", "Pl41nSecret-ALICE-caps", "A.jpg");
    // a user an administrator deleted by hand: the row's bytes stay in the file's free space
    SqliteFile.update(db(), "INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "zed", "Pl41nSecret-deleted-zed", null);
    SqliteFile.exec(db(), "DELETE FROM users WHERE name = 'zed'");
    String[] plain = {"Pl41nSecret-alice-77", "Pl41nSecret-bob-88", "Pl41nSecret-carol-99", "Pl41nSecret-dave-11",
        "Pl41nSecret-ALICE-caps", "Pl41nSecret-deleted-zed"};
    assertEquals("delete", journalMode(db()).toLowerCase(), "the original file uses a rollback journal");
    assertOnDisk(plain);

    server = TestServer.start(vertx, dir);

    // right after startup: every password hashed, no plain text in usr.db nor usr.db-wal
    assertNotOnDisk(plain);
    for (String u : List.of("alice", "bob", "carol", "dave", "Alice")) {
      assertHashed(u);
    }
    assertEquals("wal", journalMode(db()).toLowerCase());

    try (LineClient c = server.connect()) {
      JsonObject r = tcpLogin(c, "alice", "Pl41nSecret-alice-77");
      assertEquals("success", r.getString("status"), r.encode());
      assertEquals("alice", r.getString("username"));
      assertEquals("/avatar/alice/me.png", r.getString("avatar"));
    }
    try (LineClient c = server.connect()) {
      JsonObject r = tcpLogin(c, "bob", "Pl41nSecret-bob-88");
      assertEquals("success", r.getString("status"), r.encode());
      assertEquals("/avatar/bob/default_avatar.png", r.getString("avatar"));
    }
    try (LineClient c = server.connect()) {
      assertEquals(BAD_CREDENTIALS_TCP, tcpLogin(c, "alice", "Pl41nSecret-ALICE-caps").encode(), "names are case-sensitive");
      JsonObject r = tcpLogin(c, "Alice", "Pl41nSecret-ALICE-caps");
      assertEquals("success", r.getString("status"), r.encode());
      assertEquals("/avatar/Alice/A.jpg", r.getString("avatar"));
    }
    Http http = server.http();
    Http.Response carol = httpLogin(http, "carol", "Pl41nSecret-carol-99");
    assertEquals(200, carol.status(), carol.body());
    assertEquals("login_1", carol.json().getString("type"));
    assertEquals("/avatar/carol/default_avatar.png", carol.json().getString("avatar"));
    Http.Response dave = httpLogin(http, "dave", "Pl41nSecret-dave-11");
    assertEquals(200, dave.status(), dave.body());
    assertEquals("/avatar/dave/default_avatar.png", dave.json().getString("avatar"));
    Http.Response bobHttp = httpLogin(http, "bob", "Pl41nSecret-bob-88");
    assertEquals(200, bobHttp.status(), "bob's socket session ended with its connection: " + bobHttp.body());
    assertEquals(401, httpLogin(http, "dave", "Pl41nSecret-dave-12").status());
    // the stored hash is not a password
    assertEquals(401, httpLogin(http, "dave", (String) row("dave").get("passwd")).status());

    // the names are taken
    try (LineClient c = server.connect()) {
      assertEquals(TAKEN_TCP, tcpRegister(c, "alice", "whatever", null).encode());
    }

    server.close();
    server = null;
    assertNotOnDisk(plain);
    // the table layout is the original one
    List<Map<String, Object>> columns = SqliteFile.query(db(), "PRAGMA table_info(users)");
    assertEquals(List.of("name", "passwd", "avatar"), columns.stream().map(c -> c.get("name")).toList());
  }

  @Test
  @DisplayName("an original 3.1 usr.db (name, passwd) is upgraded: name becomes the key, avatar added, first duplicate wins, no plain text stays")
  void original31Database(Vertx vertx) throws Exception {
    SqliteFile.exec(db(), SCHEMA_31);
    SqliteFile.update(db(), "INSERT INTO users (name, passwd) VALUES (?, ?)", "erin", "Pl41nSecret-erin-first");
    SqliteFile.update(db(), "INSERT INTO users (name, passwd) VALUES (?, ?)", "frank", "Pl41nSecret-frank-22");
    SqliteFile.update(db(), "INSERT INTO users (name, passwd) VALUES (?, ?)", "erin", "Pl41nSecret-erin-second");
    SqliteFile.update(db(), "INSERT INTO users (name, passwd) VALUES (?, ?)", "gina", null);
    String[] plain = {"Pl41nSecret-erin-first", "Pl41nSecret-frank-22", "Pl41nSecret-erin-second"};
    assertOnDisk(plain);

    server = TestServer.start(vertx, dir);

    assertNotOnDisk(plain);
    Map<String, Map<String, Object>> columns = SqliteFile.query(db(), "PRAGMA table_info(users)").stream()
        .collect(Collectors.toMap(c -> (String) c.get("name"), c -> c));
    assertEquals(java.util.Set.of("name", "passwd", "avatar"), columns.keySet());
    assertEquals(1, ((Number) columns.get("name").get("pk")).intValue(), "name is the PRIMARY KEY");
    assertEquals(0, ((Number) columns.get("passwd").get("pk")).intValue());
    assertEquals(List.of("erin", "frank", "gina"),
        SqliteFile.query(db(), "SELECT name FROM users ORDER BY name").stream().map(r -> r.get("name")).toList());
    assertHashed("erin");
    assertHashed("frank");
    assertNull(row("gina").get("passwd"));

    try (LineClient c = server.connect()) {
      assertEquals(BAD_CREDENTIALS_TCP, tcpLogin(c, "erin", "Pl41nSecret-erin-second").encode(), "the second duplicate lost");
      JsonObject r = tcpLogin(c, "erin", "Pl41nSecret-erin-first");
      assertEquals("success", r.getString("status"), r.encode());
      assertEquals("/avatar/erin/default_avatar.png", r.getString("avatar"));
    }
    Http.Response frank = httpLogin(server.http(), "frank", "Pl41nSecret-frank-22");
    assertEquals(200, frank.status(), frank.body());
    assertEquals("/avatar/frank/default_avatar.png", frank.json().getString("avatar"));

    // the key is enforced from now on
    try (LineClient c = server.connect()) {
      assertEquals(TAKEN_TCP, tcpRegister(c, "erin", "again", null).encode());
      assertEquals(TAKEN_TCP, tcpRegister(c, "gina", "again", null).encode());
    }
    server.close();
    server = null;
    assertNotOnDisk(plain);
  }

  @Test
  @DisplayName("a 3.1 usr.db whose only plain text is a dropped duplicate (first row NULL) keeps no plain text on disk")
  void original31DroppedDuplicateOnly(Vertx vertx) throws Exception {
    SqliteFile.exec(db(), SCHEMA_31);
    SqliteFile.update(db(), "INSERT INTO users (name, passwd) VALUES (?, ?)", "hank", null);
    SqliteFile.update(db(), "INSERT INTO users (name, passwd) VALUES (?, ?)", "hank", "Pl41nSecret-hank-dropped");
    assertOnDisk("Pl41nSecret-hank-dropped");

    server = TestServer.start(vertx, dir);

    assertNotOnDisk("Pl41nSecret-hank-dropped");
    assertNull(row("hank").get("passwd"));
    try (LineClient c = server.connect()) {
      assertEquals(BAD_CREDENTIALS_TCP, tcpLogin(c, "hank", "Pl41nSecret-hank-dropped").encode());
    }
  }

  @Test
  @DisplayName("a 3.1.3 usr.db whose only plain text is a deleted row keeps no plain text on disk")
  void original313DeletedRowOnly(Vertx vertx) throws Exception {
    SqliteFile.exec(db(), SCHEMA_313);
    SqliteFile.update(db(), "INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "ivy", null, null);
    SqliteFile.update(db(), "INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "zed", "Pl41nSecret-deleted-only", null);
    SqliteFile.exec(db(), "DELETE FROM users WHERE name = 'zed'");
    assertOnDisk("Pl41nSecret-deleted-only");

    server = TestServer.start(vertx, dir);

    assertNotOnDisk("Pl41nSecret-deleted-only");
    server.close();
    server = null;
    assertNotOnDisk("Pl41nSecret-deleted-only");
  }

  @Test
  @DisplayName("a user whose stored password is NULL cannot log in with any password, null, 'null', 'None' or none")
  void nullPasswordCannotLogIn(Vertx vertx) throws Exception {
    SqliteFile.exec(db(), SCHEMA_313);
    SqliteFile.update(db(), "INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "nopass", null, null);
    SqliteFile.update(db(), "INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "haspass", "Pl41nSecret-has-1", null);

    // 13 failed logins of one user: over the default limits.loginFailuresPerUser (10, covered by LimitsTest)
    server = TestServer.start(vertx, dir, new JsonObject().put("limits.loginFailuresPerUser", 0));
    assertNull(row("nopass").get("passwd"), "the server must not invent a password");

    try (LineClient c = server.connect()) {
      for (Object pw : new Object[] {null, "null", "None", "", "NULL", "anything"}) {
        assertEquals(BAD_CREDENTIALS_TCP, tcpLogin(c, "nopass", pw).encode(), "password " + pw);
      }
      c.send(new JsonObject().put("type", "login").put("username", "nopass"));
      assertEquals(BAD_CREDENTIALS_TCP, c.readSkippingPings().encode(), "no password field");
      // nor with someone else's token
      String token = c.login("haspass", "Pl41nSecret-has-1");
      try (LineClient other = server.connect()) {
        other.send(new JsonObject().put("type", "login").put("username", "nopass").put("token", token));
        assertEquals("error_It", other.readSkippingPings().getString("status"));
      }
    }
    Http http = server.http();
    for (Object pw : new Object[] {null, "null", "None", "", "anything"}) {
      Http.Response r = httpLogin(http, "nopass", pw);
      assertEquals(401, r.status(), "password " + pw + ": " + r.body());
      assertEquals("login_0", r.json().getString("type"));
    }
    Http.Response noField = http.post("/api/login", "{\"username\":\"nopass\"}");
    assertEquals(401, noField.status(), noField.body());
  }

  @Test
  @DisplayName("after the 3.1 upgrade (BEGIN IMMEDIATE/COMMIT), each registration is committed and visible to another connection at once")
  void registrationCommittedAfterUpgradeTransaction(Vertx vertx) throws Exception {
    SqliteFile.exec(db(), SCHEMA_31);
    SqliteFile.update(db(), "INSERT INTO users (name, passwd) VALUES (?, ?)", "legacy", "Pl41nSecret-legacy-5");

    server = TestServer.start(vertx, dir);
    assertEquals(1, ((Number) SqliteFile.query(db(), "PRAGMA table_info(users)").get(0).get("pk")).intValue(),
        "the upgrade ran");

    try (LineClient c = server.connect()) {
      assertEquals(CREATED, tcpRegister(c, "fresh1", "fresh-pw-1", null).encode());
      // immediately, from an independent connection: committed, not stuck in an open transaction
      assertHashed("fresh1");
      assertNoWriteLockHeld();

      Http.Response r = server.http().post("/api/register",
          new JsonObject().put("username", "fresh2").put("password", "fresh-pw-2").encode());
      assertEquals(200, r.status(), r.body());
      assertHashed("fresh2");
      assertNoWriteLockHeld();
      assertEquals(3, SqliteFile.query(db(), "SELECT name FROM users").size());
    }
    // and the data survives a restart
    server.close();
    server = TestServer.start(vertx, dir);
    assertEquals(200, httpLogin(server.http(), "fresh1", "fresh-pw-1").status());
    assertEquals(200, httpLogin(server.http(), "fresh2", "fresh-pw-2").status());
    assertEquals(200, httpLogin(server.http(), "legacy", "Pl41nSecret-legacy-5").status());
  }

  /** Another connection can take the write lock: the server holds no open write transaction. */
  private void assertNoWriteLockHeld() throws Exception {
    try (Connection c = SqliteFile.open(db()); Statement s = c.createStatement()) {
      s.execute("PRAGMA busy_timeout = 3000");
      s.execute("BEGIN IMMEDIATE");
      s.execute("ROLLBACK");
    }
  }
}
