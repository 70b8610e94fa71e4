package chat.store;

import chat.support.Backend;
import chat.support.Http;
import chat.support.LineClient;
import chat.support.SqliteFile;
import chat.support.TestDatabase;
import chat.support.TestServer;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

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

/**
 * PROTOCOL.md §5 and the storage rules of §2/§3.1/§4.2: on real SQLite files, and the rules that
 * hold on every database also on a real PostgreSQL server (a fresh database per test, see
 * {@link chat.support.Postgres}). What concerns the original server's file (WAL, its 3.1 layout,
 * plain text left on disk) is SQLite only.
 */
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
  /** The database under test; SQLite's file is {@link #db()}. */
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

  private Path db() {
    return dir.resolve("usr.db");
  }

  /** A fresh database of the backend, for the test to fill before {@link #start}. */
  private TestDatabase use(Backend backend) {
    db = backend.create(dir);
    return db;
  }

  private TestServer start(Vertx vertx) {
    return start(vertx, new JsonObject());
  }

  private TestServer start(Vertx vertx, JsonObject overrides) {
    if (db == null) {
      use(Backend.SQLITE);
    }
    server = TestServer.start(vertx, dir, db.config().mergeIn(overrides));
    return server;
  }

  /** The columns of table users, in order: name to its position in the primary key (0: none). */
  private Map<String, Integer> columns() {
    String sql = db.backend() == Backend.SQLITE ? "SELECT name, pk FROM pragma_table_info('users') ORDER BY cid"
        : "SELECT c.column_name AS name, CASE WHEN EXISTS (SELECT 1 FROM information_schema.table_constraints t"
            + " JOIN information_schema.key_column_usage k ON k.constraint_name = t.constraint_name"
            + " AND k.constraint_schema = t.constraint_schema WHERE t.constraint_type = 'PRIMARY KEY'"
            + " AND t.table_name = 'users' AND t.table_schema = current_schema() AND k.column_name = c.column_name)"
            + " THEN 1 ELSE 0 END AS pk FROM information_schema.columns c"
            + " WHERE c.table_name = 'users' AND c.table_schema = current_schema() ORDER BY c.ordinal_position";
    Map<String, Integer> out = new java.util.LinkedHashMap<>();
    for (Map<String, Object> r : db.query(sql)) {
      out.put((String) r.get("name"), ((Number) r.get("pk")).intValue());
    }
    return out;
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
    List<Map<String, Object>> rows = db.query("SELECT name, passwd, avatar FROM users WHERE name = ?", name);
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

  @ParameterizedTest(name = "{0}")
  @EnumSource(Backend.class)
  @DisplayName("20 concurrent registrations of one name over TCP and HTTP: exactly one succeeds, 19 get 'Username already exists'")
  void concurrentRegistrationsOfOneName(Backend backend, Vertx vertx) throws Exception {
    use(backend);
    start(vertx);
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
      assertEquals(1, db.query("SELECT name FROM users WHERE name = 'contested'").size());
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
    start(vertx);
    try (LineClient c = server.connect()) {
      assertEquals(CREATED, tcpRegister(c, "walter", "wal-pw", null).encode());
    }
    assertEquals("wal", journalMode(db()).toLowerCase());
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(Backend.class)
  @DisplayName("passwords are stored as Argon2id PHC hashes, never as plain text, with the chosen avatar")
  void passwordsStoredAsHashes(Backend backend, Vertx vertx) throws Exception {
    use(backend);
    start(vertx);
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
    if (backend == Backend.SQLITE) {
      assertNotOnDisk("Unmistakable-tcp-pw-4711", "Unmistakable-http-pw-0815");
      server.close();
      server = null;
      assertNotOnDisk("Unmistakable-tcp-pw-4711", "Unmistakable-http-pw-0815");
    }
  }

  private static void assertNotEquals(Object a, Object b) {
    org.junit.jupiter.api.Assertions.assertNotEquals(a, b);
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(Backend.class)
  @DisplayName("an original 3.1.3 usr.db opens as is (on PostgreSQL: its rows copied over): old passwords work over TCP and HTTP, avatars are right, no plain text stays (SQLite: on disk)")
  void original313Database(Backend backend, Vertx vertx) throws Exception {
    use(backend);
    db.exec(SCHEMA_313);
    db.update("INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "alice", "Pl41nSecret-alice-77", "me.png");
    db.update("INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "bob", "Pl41nSecret-bob-88", null);
    db.update("INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "carol", "Pl41nSecret-carol-99", "");
    db.update("INSERT INTO users (name, passwd) VALUES (?, ?)", "dave", "Pl41nSecret-dave-11");
    db.update("INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "Alice", "Pl41nSecret-ALICE-caps", "A.jpg");
    // a user an administrator deleted by hand: the row's bytes stay in the file's free space
    db.update("INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "zed", "Pl41nSecret-deleted-zed", null);
    db.exec("DELETE FROM users WHERE name = 'zed'");
    String[] plain = {"Pl41nSecret-alice-77", "Pl41nSecret-bob-88", "Pl41nSecret-carol-99", "Pl41nSecret-dave-11",
        "Pl41nSecret-ALICE-caps", "Pl41nSecret-deleted-zed"};
    boolean sqlite = backend == Backend.SQLITE;
    if (sqlite) {
      assertEquals("delete", journalMode(db()).toLowerCase(), "the original file uses a rollback journal");
      assertOnDisk(plain);
    }

    start(vertx);

    // right after startup: every password hashed, no plain text in usr.db nor usr.db-wal
    if (sqlite) {
      assertNotOnDisk(plain);
    }
    for (String u : List.of("alice", "bob", "carol", "dave", "Alice")) {
      assertHashed(u);
    }
    if (sqlite) {
      assertEquals("wal", journalMode(db()).toLowerCase());
    }

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
    if (sqlite) {
      assertNotOnDisk(plain);
    }
    // the table layout is the original one
    assertEquals(Map.of("name", 1, "passwd", 0, "avatar", 0), columns());
    assertEquals(List.of("name", "passwd", "avatar"), List.copyOf(columns().keySet()));
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

    start(vertx);

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

    start(vertx);

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

    start(vertx);

    assertNotOnDisk("Pl41nSecret-deleted-only");
    server.close();
    server = null;
    assertNotOnDisk("Pl41nSecret-deleted-only");
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(Backend.class)
  @DisplayName("a user whose stored password is NULL cannot log in with any password, null, 'null', 'None' or none")
  void nullPasswordCannotLogIn(Backend backend, Vertx vertx) throws Exception {
    use(backend);
    db.exec(SCHEMA_313);
    db.update("INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "nopass", null, null);
    db.update("INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "haspass", "Pl41nSecret-has-1", null);

    // 13 failed logins of one user: over the default limits.loginFailuresPerUser (10, covered by LimitsTest)
    start(vertx, new JsonObject().put("limits.loginFailuresPerUser", 0));
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

    start(vertx);
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
    start(vertx);
    assertEquals(200, httpLogin(server.http(), "fresh1", "fresh-pw-1").status());
    assertEquals(200, httpLogin(server.http(), "fresh2", "fresh-pw-2").status());
    assertEquals(200, httpLogin(server.http(), "legacy", "Pl41nSecret-legacy-5").status());
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(Backend.class)
  @DisplayName("after the schema transaction of startup (BEGIN, schema lock, COMMIT), registrations are committed at once and nothing stays locked")
  void registrationCommittedAfterSchemaTransaction(Backend backend, Vertx vertx) throws Exception {
    use(backend);
    // a pool of one connection: the one that ran the schema transaction serves the registrations
    start(vertx, new JsonObject().put("db.poolSize", 1));
    try (LineClient c = server.connect()) {
      assertEquals(CREATED, tcpRegister(c, "first1", "first-pw-1", null).encode());
      assertHashed("first1");
      assertNothingHeld();
      Http.Response r = server.http().post("/api/register",
          new JsonObject().put("username", "first2").put("password", "first-pw-2").encode());
      assertEquals(200, r.status(), r.body());
      assertHashed("first2");
      assertNothingHeld();
    }
    server.close();
    start(vertx, new JsonObject().put("db.poolSize", 1));
    assertEquals(200, httpLogin(server.http(), "first1", "first-pw-1").status());
    assertEquals(200, httpLogin(server.http(), "first2", "first-pw-2").status());
  }

  /**
   * The server holds no open transaction and no lock: on SQLite, another connection can take the
   * write lock; on PostgreSQL, no connection of the database is idle in a transaction and no
   * advisory lock is held.
   */
  private void assertNothingHeld() throws Exception {
    if (db.backend() == Backend.SQLITE) {
      assertNoWriteLockHeld();
      return;
    }
    assertEquals(List.of(), db.query("SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database()"
        + " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"));
    assertEquals(List.of(), db.query("SELECT pid FROM pg_locks WHERE locktype = 'advisory'"));
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
