package chat.store;

import chat.config.ChatConfig;
import chat.support.PgDatabase;
import chat.support.Postgres;
import chat.support.TestServer;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The store on a real PostgreSQL server, as several nodes use it: each "node" here is a Vert.x
 * instance with its own {@link UserStore} (its own pool) on one fresh database.
 */
class PostgresStoreTest {

  private static final long AWAIT = 30;

  @TempDir
  Path dir;
  PgDatabase db;
  final List<Vertx> nodes = new ArrayList<>();
  final List<UserStore> stores = new ArrayList<>();

  @BeforeEach
  void database() {
    db = Postgres.server().newDatabase();
  }

  @AfterEach
  void close() throws Exception {
    try {
      for (UserStore s : stores) {
        s.close().await(AWAIT, TimeUnit.SECONDS);
      }
      for (Vertx v : nodes) {
        v.close().await(AWAIT, TimeUnit.SECONDS);
      }
    } finally {
      db.close();
    }
  }

  /** A store as one node opens it, on a Vert.x instance of its own. */
  private UserStore node(JsonObject overrides) throws Exception {
    Vertx vertx = Vertx.vertx();
    nodes.add(vertx);
    UserStore store = UserStore.open(vertx, ChatConfig.withOverrides(TestServer.baseConfig(dir).mergeIn(db.config())
        .mergeIn(overrides)));
    stores.add(store);
    return store;
  }

  private UserStore node() throws Exception {
    return node(new JsonObject());
  }

  private static Future<Void> prepare(UserStore store) {
    // no plain text to hash here; a hash is any string starting with $
    return store.prepare(pw -> Future.succeededFuture("$hashed-" + pw), s -> s.startsWith("$"));
  }

  private static <T> T await(Future<T> f) throws Exception {
    return f.await(AWAIT, TimeUnit.SECONDS);
  }

  /**
   * Runs {@code rounds} rounds of {@code op(node, round)} on every store at once (one thread per
   * store, all released together each round); returns the results per round, in store order.
   */
  private <T> List<List<T>> race(List<UserStore> contenders, int rounds, BiFunction<Integer, Integer, Future<T>> op)
      throws Exception {
    int n = contenders.size();
    CyclicBarrier barrier = new CyclicBarrier(n);
    ExecutorService threads = Executors.newFixedThreadPool(n);
    try {
      List<java.util.concurrent.Future<List<T>>> perNode = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        int node = i;
        perNode.add(threads.submit(() -> {
          List<T> out = new ArrayList<>();
          for (int round = 0; round < rounds; round++) {
            barrier.await(AWAIT, TimeUnit.SECONDS);
            out.add(await(op.apply(node, round)));
          }
          return out;
        }));
      }
      List<List<T>> byNode = new ArrayList<>();
      for (java.util.concurrent.Future<List<T>> f : perNode) {
        byNode.add(f.get(120, TimeUnit.SECONDS));
      }
      List<List<T>> byRound = new ArrayList<>();
      for (int round = 0; round < rounds; round++) {
        List<T> results = new ArrayList<>();
        for (List<T> r : byNode) {
          results.add(r.get(round));
        }
        byRound.add(results);
      }
      return byRound;
    } finally {
      threads.shutdownNow();
    }
  }

  private static long count(List<Boolean> results) {
    return results.stream().filter(b -> b).count();
  }

  @Test
  @DisplayName("four nodes starting at once on an empty database: every one prepares, the tables exist once")
  void nodesStartTogether() throws Exception {
    List<UserStore> four = List.of(node(), node(), node(), node());
    List<List<Boolean>> done = race(four, 1, (node, round) -> prepare(four.get(node))
        .compose(v -> AdminQueue.of(four.get(node)).ensureTable()).map(true));
    assertEquals(List.of(true, true, true, true), done.get(0));
    assertEquals(List.of(Map.of("n", 2L)), db.query("SELECT count(*) AS n FROM information_schema.tables"
        + " WHERE table_schema = current_schema() AND table_name IN ('users', 'admin_queue')"));
    // and once more, on the existing tables
    assertEquals(List.of(true, true, true, true),
        race(four, 1, (node, round) -> prepare(four.get(node)).map(true)).get(0));
  }

  @Test
  @DisplayName("two nodes registering the same 200 names at the same moment: exactly one insert per name wins, its row is kept")
  void twoNodesRegisterOneName() throws Exception {
    UserStore a = node();
    UserStore b = node();
    await(prepare(a));
    await(prepare(b));
    List<UserStore> both = List.of(a, b);
    int rounds = 200;
    List<List<Boolean>> results = race(both, rounds,
        (node, round) -> both.get(node).insert("user" + round, "$hash-of-node-" + node, null));
    for (int round = 0; round < rounds; round++) {
      List<Boolean> r = results.get(round);
      assertEquals(1, count(r), "name user" + round + ": " + r);
      String winner = "$hash-of-node-" + r.indexOf(true);
      assertEquals(winner, await(a.find("user" + round)).passwd(), "user" + round);
      assertEquals(winner, await(b.find("user" + round)).passwd(), "user" + round);
    }
    assertEquals(List.of(Map.of("n", (long) rounds)), db.query("SELECT count(*) AS n FROM users"));
    // a taken name stays taken for either node
    assertFalse(await(a.insert("user7", "$again", null)));
    assertFalse(await(b.insert("user7", "$again", null)));
  }

  @Test
  @DisplayName("two nodes deleting, resetting and claiming the same rows at once: one delete and one claim win; a reset lands whole")
  void twoNodesChangeOneRow() throws Exception {
    UserStore a = node();
    UserStore b = node();
    await(prepare(a));
    AdminQueue qa = AdminQueue.of(a);
    AdminQueue qb = AdminQueue.of(b);
    await(qa.ensureTable());
    await(qb.ensureTable());
    List<UserStore> both = List.of(a, b);
    List<AdminQueue> queues = List.of(qa, qb);
    int rounds = 50;
    for (int i = 0; i < rounds; i++) {
      assertTrue(await(a.insert("victim" + i, "$old", null)));
    }

    List<List<Boolean>> resets = race(both, rounds, (node, round) -> both.get(node).setPassword("victim" + round,
        "$new-of-node-" + node));
    List<List<Boolean>> deletes = race(both, rounds, (node, round) -> both.get(node).delete("victim" + round));
    for (int round = 0; round < rounds; round++) {
      assertEquals(List.of(true, true), resets.get(round), "both resets found the user");
      assertEquals(1, count(deletes.get(round)), "one delete of victim" + round + ": " + deletes.get(round));
    }
    assertEquals(List.of(), db.query("SELECT name FROM users"));

    // the admin queue: ids from either node, each request claimed by exactly one node
    long now = System.currentTimeMillis();
    List<Long> ids = new ArrayList<>();
    for (int i = 0; i < rounds; i++) {
      ids.add(await(queues.get(i % 2).enqueue(AdminQueue.KICK, "user" + i, now)));
    }
    assertEquals(rounds, ids.stream().distinct().count(), "ids are unique: " + ids);
    assertEquals(rounds, await(qa.pending(1000)).size());
    List<List<Boolean>> claims = race(both, rounds, (node, round) -> queues.get(node).claim(ids.get(round), now + 1));
    for (int round = 0; round < rounds; round++) {
      assertEquals(1, count(claims.get(round)), "one claim of request " + ids.get(round) + ": " + claims.get(round));
    }
    assertEquals(List.of(), await(qb.pending(1000)));
    await(qa.finish(ids.get(0), "kicked"));
    assertEquals(new AdminQueue.State(now + 1, "kicked"), await(qb.state(ids.get(0))));
    // epoch milliseconds do not fit 32 bits: the columns are BIGINT
    assertTrue(now > Integer.MAX_VALUE);
    assertEquals(rounds, await(qb.purgeDoneBefore(now + 2)));
    long late = await(qb.enqueue(AdminQueue.REVOKE, "someone", now));
    assertTrue(await(qa.withdraw(late)));
    assertFalse(await(qb.withdraw(late)));
    assertNull(await(qa.state(late)));
  }

  @Test
  @DisplayName("a connection the database ends (pg_terminate_backend) fails one operation; the pool is replaced and the next works")
  void lostConnectionsReplaceThePool() throws Exception {
    UserStore store = node(new JsonObject().put("db.poolSize", 3));
    await(prepare(store));
    assertTrue(await(store.insert("alice", "$a", null)));
    // open the pool's connections
    List<Future<UserStore.User>> warm = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      warm.add(store.find("alice"));
    }
    for (Future<UserStore.User> f : warm) {
      assertEquals("alice", await(f).name());
    }
    List<Map<String, Object>> ended = db.query("SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity"
        + " WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'chat-server'");
    // the store's connections, named by ApplicationName (the pool opens as many as it needs, up to 3)
    assertFalse(ended.isEmpty(), "no connection of the store");

    try {
      await(store.find("alice"));
      fail("a terminated connection answered");
    } catch (Exception e) {
      assertTrue(store.dialect().isConnectionLost(e), e.toString());
    }
    assertEquals("alice", await(store.find("alice")).name());
    await(store.ping(1000));
    assertTrue(await(store.insert("bob", "$b", null)));
  }

  @Test
  @DisplayName("a users table of the original 3.1 layout (no key) stops startup with a message: that upgrade runs on SQLite")
  void original31LayoutRefused() throws Exception {
    db.exec("CREATE TABLE users (name TEXT, passwd TEXT)", "INSERT INTO users VALUES ('erin', 'plain')");
    UserStore store = node();
    try {
      await(prepare(store));
      fail("prepared a 3.1 table on PostgreSQL");
    } catch (Exception e) {
      assertTrue(e.getMessage().contains("upgraded on SQLite only"), e.getMessage());
    }
    // untouched, and no transaction or lock left behind
    assertEquals(List.of(Map.of("name", "erin", "passwd", "plain")), db.query("SELECT name, passwd FROM users"));
    assertEquals(List.of(), db.query("SELECT pid FROM pg_locks WHERE locktype = 'advisory'"));
  }

  @Test
  @DisplayName("names PostgreSQL cannot store (NUL) are simply unknown: no query, no error")
  void nulInName() throws Exception {
    UserStore store = node();
    await(prepare(store));
    assertNull(await(store.find("a\0b")));
    assertFalse(await(store.exists("a\0b")));
  }

  @Test
  @DisplayName("user list is in byte order (upper case first) whatever the column's collation")
  void listInByteOrder() throws Exception {
    // a linguistic collation, where 'alice' < 'Bob' < 'carol' < 'Dave', if the server has one
    List<Map<String, Object>> linguistic = db.query("SELECT collname FROM pg_collation"
        + " WHERE collname IN ('en-x-icu', 'und-x-icu', 'en_US.utf8', 'en_US') ORDER BY collname LIMIT 1");
    System.err.println("[postgres] linguistic collation for the list test: " + linguistic);
    String collate = linguistic.isEmpty() ? "" : " COLLATE \"" + linguistic.get(0).get("collname") + "\"";
    db.exec("CREATE TABLE users (name TEXT" + collate + " PRIMARY KEY, passwd TEXT, avatar TEXT DEFAULT 'default_avatar.png')");
    for (String name : List.of("carol", "Dave", "alice", "Bob", "_x", "~y")) {
      db.update("INSERT INTO users (name, passwd) VALUES (?, ?)", name, "$h");
    }
    if (!linguistic.isEmpty()) {
      // the test means something: the column's own order is not byte order
      List<Object> own = db.query("SELECT name FROM users ORDER BY name").stream().map(r -> r.get("name")).toList();
      assertTrue(own.indexOf("alice") < own.indexOf("Bob"), "collation " + collate + ": " + own);
    }
    UserStore store = node();
    List<String> names = await(store.list(s -> s.startsWith("$"))).stream().map(UserStore.Summary::name).toList();
    assertEquals(List.of("Bob", "Dave", "_x", "alice", "carol", "~y"), names);
  }
}
