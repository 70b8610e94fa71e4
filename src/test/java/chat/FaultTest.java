package chat;

import chat.protocol.Replies;
import chat.support.Http;
import chat.support.LineClient;
import chat.support.ServerProcess;
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

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Faults: the process killed at a random moment, the database locked or flapping, a peer that
 * vanishes without a FIN. The server must never lose an acknowledged registration, never hang a
 * request beyond the database's busy timeout, answer a database fault with the documented
 * {@code register_-1}, and recover on its own when the fault goes away.
 */
@ExtendWith(VertxExtension.class)
class FaultTest {

  static final long SEED = Long.getLong("fault.seed", 0xFA017L);
  private static final String PW = "pw-fault";
  /** The busy timeout the database tests configure (db.busyTimeoutMillis), so they stay short. */
  private static final int BUSY_MILLIS = 500;
  /** What a request may take beyond the busy timeout: hashing, the pool queue, a slow machine. */
  private static final int SLACK_MILLIS = 2000;

  @TempDir
  Path root;
  private final List<ServerProcess> processes = new ArrayList<>();
  private final List<AutoCloseable> closeables = new ArrayList<>();
  private TestServer server;

  @AfterEach
  void stopAll() throws Exception {
    for (AutoCloseable c : closeables) {
      try {
        c.close();
      } catch (Exception ignored) {
        // closed
      }
    }
    for (ServerProcess p : processes) {
      p.close();
    }
    if (server != null) {
      server.close();
    }
  }

  private static String registerJson(String name) {
    return new JsonObject().put("type", "register").put("username", name).put("password", PW).encode();
  }

  private static String rawLine(InputStream in) throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    int b;
    while ((b = in.read()) != -1) {
      if (b == '\n') {
        return line.toString(StandardCharsets.UTF_8);
      }
      line.write(b);
    }
    return null;
  }

  // =====================================================================================
  // (a) kill -9 during a stream of registrations
  // =====================================================================================

  @Test
  @DisplayName("kill -9 at a random moment of a registration stream, 3 times: after each restart every name that got register_1 logs in")
  void killNineDuringRegistrations() throws Exception {
    Path dir = Files.createDirectory(root.resolve("data"));
    Map<String, String> env = new HashMap<>();
    env.put("CHAT_HTTP_PORT", "0");
    env.put("CHAT_TCP_PORT", "0");
    env.put("CHAT_HOST", "127.0.0.1");
    env.put("CHAT_AUTH_HASHCOST", "low");
    env.put("CHAT_LIMITS_ENABLED", "false");
    Random random = new Random(SEED);
    Set<String> acknowledged = ConcurrentHashMap.newKeySet();
    int clients = 4;
    int window = 8;
    for (int round = 0; round < 3; round++) {
      ServerProcess p = ServerProcess.start(dir, root, env);
      processes.add(p);
      ServerProcess.Ports ports = p.awaitListening(Duration.ofSeconds(60));
      // everything acknowledged so far survived the earlier kills
      assertAllLogIn(ports.tcp(), acknowledged, "before round " + round);

      int prefix = round;
      AtomicBoolean killed = new AtomicBoolean();
      AtomicInteger round0 = new AtomicInteger();
      ConcurrentLinkedQueue<String> wrong = new ConcurrentLinkedQueue<>();
      ExecutorService pool = Executors.newFixedThreadPool(clients);
      CountDownLatch connected = new CountDownLatch(clients);
      List<Future<?>> done = new ArrayList<>();
      for (int c = 0; c < clients; c++) {
        int client = c;
        done.add(pool.submit(() -> {
          try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", ports.tcp()), 5000);
            s.setTcpNoDelay(true);
            s.setSoTimeout(20_000);
            OutputStream out = s.getOutputStream();
            InputStream in = new BufferedInputStream(s.getInputStream());
            connected.countDown();
            // pipelined: up to `window` registrations unanswered; replies come in request order
            List<String> pending = new ArrayList<>();
            int next = 0;
            while (true) {
              while (pending.size() < window) {
                String name = "k" + prefix + "c" + client + "n" + next++;
                out.write(registerJson(name).getBytes(StandardCharsets.UTF_8));
                pending.add(name);
              }
              String line = rawLine(in);
              if (line == null) {
                return null; // killed
              }
              String name = pending.remove(0);
              if (line.equals(Replies.REGISTERED.json)) {
                acknowledged.add(name);
                round0.incrementAndGet();
              } else {
                wrong.add(name + ": " + line);
              }
            }
          } catch (IOException e) {
            return null; // killed: reset or broken pipe
          }
        }));
      }
      assertTrue(connected.await(10, TimeUnit.SECONDS));
      long killAfter = 200 + random.nextInt(1300);
      Thread.sleep(killAfter);
      p.process().destroyForcibly(); // SIGKILL
      killed.set(true);
      assertTrue(p.process().waitFor(30, TimeUnit.SECONDS));
      for (Future<?> f : done) {
        f.get(30, TimeUnit.SECONDS);
      }
      pool.shutdownNow();
      assertTrue(wrong.isEmpty(), "replies other than register_1: " + wrong);
      assertTrue(round0.get() > 0, "no registration acknowledged before the kill at " + killAfter + " ms");
      System.out.println("[figures] kill -9 round " + round + ": killed " + killAfter + " ms in, " + round0.get()
          + " registrations acknowledged (" + acknowledged.size() + " in all)");
    }
    ServerProcess last = ServerProcess.start(dir, root, env);
    processes.add(last);
    ServerProcess.Ports ports = last.awaitListening(Duration.ofSeconds(60));
    assertAllLogIn(ports.tcp(), acknowledged, "after the last kill");
  }

  /** Logs every name in, pipelined on one connection (each login moves the connection to that user). */
  private static void assertAllLogIn(int tcpPort, Set<String> names, String when) throws IOException {
    if (names.isEmpty()) {
      return;
    }
    List<String> list = new ArrayList<>(names);
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", tcpPort), 5000);
      s.setSoTimeout(20_000);
      OutputStream out = s.getOutputStream();
      InputStream in = new BufferedInputStream(s.getInputStream());
      int sent = 0;
      for (int i = 0; i < list.size(); i++) {
        while (sent < list.size() && sent < i + 32) {
          out.write(new JsonObject().put("type", "login").put("username", list.get(sent)).put("password", PW).encode()
              .getBytes(StandardCharsets.UTF_8));
          sent++;
        }
        String line = rawLine(in);
        assertTrue(line != null && line.startsWith("{\"type\":\"login\",\"status\":\"success\""),
            when + ": acknowledged user " + list.get(i) + " cannot log in: " + line);
      }
    }
  }

  // =====================================================================================
  // (b) the database locked longer than the busy timeout
  // =====================================================================================

  private TestServer startInProcess(Vertx vertx, JsonObject overrides) throws IOException {
    Path dir = Files.createDirectory(root.resolve("data"));
    server = TestServer.start(vertx, dir, new JsonObject().put("limits.enabled", false)
        .put("db.busyTimeoutMillis", BUSY_MILLIS).mergeIn(overrides));
    return server;
  }

  /** Holds SQLite's write lock from another connection, as another process would. */
  private static Connection lockForWriting(Path db) throws Exception {
    Connection c = SqliteFile.open(db);
    try (Statement st = c.createStatement()) {
      st.execute("BEGIN IMMEDIATE");
    }
    return c;
  }

  private static void release(Connection lock) throws Exception {
    try (Statement st = lock.createStatement()) {
      st.execute("COMMIT");
    }
    lock.close();
  }

  @Test
  @DisplayName("the database write-locked by another process beyond the busy timeout: register_-1 over TCP, 500 over HTTP, within the timeout; logins and chats go on; registrations succeed once it is released")
  void databaseLocked(Vertx vertx) throws Exception {
    TestServer s = startInProcess(vertx, new JsonObject());
    Http http = s.http();
    http.register("early", PW);
    http.register("watcher", PW);
    http.register("third", PW);
    try (LineClient c = s.connect(); LineClient reader = s.connect()) {
      String token = c.login("early", PW);
      reader.login("watcher", PW);
      Connection lock = lockForWriting(s.db());
      try {
        long t0 = System.nanoTime();
        c.send(registerJson("blocked1"));
        c.expect(Replies.REGISTER_FAILED.json);
        long tcpMillis = (System.nanoTime() - t0) / 1_000_000;

        t0 = System.nanoTime();
        Http.Response r = http.post("/api/register", new JsonObject().put("username", "blocked2").put("password", PW).encode());
        long httpMillis = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(500, r.status(), r.body());
        assertEquals(Replies.REGISTER_FAILED.json, r.body());
        System.out.println("[figures] database locked (busy timeout " + BUSY_MILLIS + " ms): register_-1 over TCP after "
            + tcpMillis + " ms, HTTP 500 after " + httpMillis + " ms");
        assertTrue(tcpMillis >= BUSY_MILLIS - 50 && tcpMillis < BUSY_MILLIS + SLACK_MILLIS, "TCP answer after " + tcpMillis + " ms");
        assertTrue(httpMillis >= BUSY_MILLIS - 50 && httpMillis < BUSY_MILLIS + SLACK_MILLIS, "HTTP answer after " + httpMillis + " ms");

        // readers are not blocked (WAL): logins, chats and heartbeats go on
        http.login("third", PW);
        try (LineClient other = s.connect()) {
          other.login("third", PW);
        }
        c.send(new JsonObject().put("type", "chat").put("token", token).put("message", "while locked"));
        List<String> lines = List.of(c.readLine(), c.readLine());
        assertTrue(lines.contains(Replies.CHAT_SENT.json), lines.toString());
        assertEquals("while locked", reader.read().getString("message"));
      } finally {
        release(lock);
      }
      // recovered, with nothing left behind by the failed attempts
      c.send(registerJson("blocked1"));
      c.expect(Replies.REGISTERED.json);
      http.register("blocked2", PW);
      assertEquals(1, SqliteFile.query(s.db(), "SELECT name FROM users WHERE name = 'blocked1'").size());
    }
  }

  @Test
  @DisplayName("a legacy plain-text password still logs in while the database is write-locked (its upgrade to a hash waits for a later login)")
  void legacyLoginWhileLocked(Vertx vertx) throws Exception {
    TestServer s = startInProcess(vertx, new JsonObject());
    s.http().register("early", PW);
    // a row as the original server wrote it, added behind the running server's back
    SqliteFile.update(s.db(), "INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)", "legacy", "plain-pw", "default_avatar.png");
    Connection lock = lockForWriting(s.db());
    try {
      s.http().login("legacy", "plain-pw");
    } finally {
      release(lock);
    }
    s.http().login("legacy", "plain-pw");
    String stored = (String) SqliteFile.query(s.db(), "SELECT passwd FROM users WHERE name = 'legacy'").get(0).get("passwd");
    assertTrue(stored.startsWith("$argon2id$"), "upgraded once the lock was gone: " + stored);
  }

  // =====================================================================================
  // (c) the database briefly unavailable, again and again
  // =====================================================================================

  @Test
  @DisplayName("the database locked on and off (shorter and longer than the busy timeout) under a stream of registrations: only register_1 or register_-1, never a hang, nothing acknowledged lost, nothing refused stored; then all succeed")
  void databaseFlapping(Vertx vertx) throws Exception {
    TestServer s = startInProcess(vertx, new JsonObject());
    AtomicBoolean stop = new AtomicBoolean();
    // locked for 300 ms (shorter than the busy timeout: the registrations wait it out) and for
    // 1200 ms (longer: they fail), with 300 ms free in between
    Thread flapper = new Thread(() -> {
      try {
        for (int i = 0; !stop.get(); i++) {
          Connection lock = lockForWriting(s.db());
          Thread.sleep(i % 2 == 0 ? 300 : 1200);
          release(lock);
          Thread.sleep(300);
        }
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }, "flapper");
    flapper.setDaemon(true);
    flapper.start();

    Set<String> acknowledged = ConcurrentHashMap.newKeySet();
    Set<String> refused = ConcurrentHashMap.newKeySet();
    ConcurrentLinkedQueue<String> wrong = new ConcurrentLinkedQueue<>();
    AtomicInteger waitedOut = new AtomicInteger();
    AtomicInteger slowest = new AtomicInteger();
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(6);
    ExecutorService pool = Executors.newFixedThreadPool(3);
    List<Future<?>> done = new ArrayList<>();
    for (int c = 0; c < 3; c++) {
      int client = c;
      done.add(pool.submit(() -> {
        Http http = s.http();
        try (LineClient tcp = s.connect()) {
          for (int i = 0; System.nanoTime() < until; i++) {
            String name = "f" + client + "n" + i;
            long t0 = System.nanoTime();
            String reply;
            if (client == 2) {
              Http.Response r = http.post("/api/register", new JsonObject().put("username", name).put("password", PW).encode());
              reply = r.status() + " " + r.body();
            } else {
              tcp.send(registerJson(name));
              reply = tcp.readLine();
            }
            int millis = (int) ((System.nanoTime() - t0) / 1_000_000);
            slowest.accumulateAndGet(millis, Math::max);
            if (reply.equals(Replies.REGISTERED.json) || reply.equals("200 " + Replies.REGISTERED.json)) {
              acknowledged.add(name);
              if (millis > 200) {
                waitedOut.incrementAndGet();
              }
            } else if (reply.equals(Replies.REGISTER_FAILED.json) || reply.equals("500 " + Replies.REGISTER_FAILED.json)) {
              refused.add(name);
            } else {
              wrong.add(name + ": " + reply);
            }
          }
        }
        return null;
      }));
    }
    for (Future<?> f : done) {
      f.get(60, TimeUnit.SECONDS);
    }
    pool.shutdownNow();
    stop.set(true);
    flapper.join(5000);
    System.out.println("[figures] flapping lock: " + acknowledged.size() + " registered (" + waitedOut.get()
        + " after waiting out a short lock), " + refused.size() + " refused with register_-1; slowest answer "
        + slowest.get() + " ms (busy timeout " + BUSY_MILLIS + " ms)");
    assertTrue(wrong.isEmpty(), "other replies: " + wrong);
    assertTrue(slowest.get() < BUSY_MILLIS + SLACK_MILLIS, "an answer took " + slowest.get() + " ms");
    assertTrue(refused.size() > 0, "no registration met a long lock");
    assertTrue(acknowledged.size() > 0 && waitedOut.get() > 0, "no registration waited out a short lock");
    // every acknowledged name is stored and logs in; no refused one is stored
    try (LineClient c = s.connect()) {
      for (String name : acknowledged) {
        c.login(name, PW);
      }
    }
    for (String name : refused) {
      assertEquals(0, SqliteFile.query(s.db(), "SELECT name FROM users WHERE name = ?", name).size(), name + " was refused but stored");
    }
    // recovered
    s.http().register("afterflap", PW);
    Http.Response ready = s.http().get("/health/ready");
    assertEquals(200, ready.status(), ready.body());
  }

  // =====================================================================================
  // (d) a half-open connection: the peer is gone, no FIN
  // =====================================================================================

  @Test
  @DisplayName("a half-open connection (logged in, then silent: never reads, writes or closes) loses its session by the idle rule; the user logs in elsewhere")
  void halfOpenReleasedByIdleRule(Vertx vertx) throws Exception {
    TestServer s = startInProcess(vertx, new JsonObject().put("reaper.idleSeconds", 1).put("reaper.intervalSeconds", 1));
    s.http().register("ghost", PW);
    // the "dead" peer: we log in, then never touch the socket again (as a peer whose machine vanished)
    Socket ghost = new Socket();
    closeables.add(ghost);
    ghost.connect(new InetSocketAddress("127.0.0.1", s.tcpPort()), 5000);
    ghost.getOutputStream().write(new JsonObject().put("type", "login").put("username", "ghost").put("password", PW).encode()
        .getBytes(StandardCharsets.UTF_8));
    ghost.setSoTimeout(5000);
    String login = rawLine(ghost.getInputStream());
    assertTrue(login != null && login.startsWith("{\"type\":\"login\",\"status\":\"success\""), login);
    long t0 = System.nanoTime();

    // while the session is held, another login is refused; after the idle time it succeeds
    String reply = null;
    try (LineClient elsewhere = s.connect()) {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(6);
      while (System.nanoTime() < deadline) {
        elsewhere.send(new JsonObject().put("type", "login").put("username", "ghost").put("password", PW));
        reply = elsewhere.readSkippingPings().encode();
        if (reply.contains("\"status\":\"success\"")) {
          break;
        }
        assertEquals(Replies.TCP_ALREADY_LOGGED_IN.json, reply);
        Thread.sleep(100);
      }
      long releasedMillis = (System.nanoTime() - t0) / 1_000_000;
      System.out.println("[figures] half-open: session released after " + releasedMillis + " ms (idle 1 s, sweep 1 s)");
      assertTrue(reply.contains("\"status\":\"success\""), "the half-open session was never released: " + reply);
      assertTrue(releasedMillis >= 900, "released before the idle time: " + releasedMillis + " ms");
    }
    // and the server closed that connection (the idle line, possibly a ping, then the end)
    List<String> rest = new ArrayList<>();
    String line;
    while ((line = rawLine(ghost.getInputStream())) != null) {
      rest.add(line);
    }
    assertTrue(rest.contains(Replies.IDLE_TIMEOUT.json), rest.toString());
  }

  @Test
  @DisplayName("a session bound for a connection that never learned it (its login reply was lost: the 120 s event-bus timeout) is released by the idle rule too")
  void orphanedSessionReleasedByIdleRule(Vertx vertx) throws Exception {
    TestServer s = startInProcess(vertx, new JsonObject().put("reaper.idleSeconds", 1).put("reaper.intervalSeconds", 1));
    s.http().register("orphan", PW);
    // what a socket login leaves behind when its connection stops waiting for the reply: the
    // session bound to a connection that does not hold it (here: of an owner that is gone)
    JsonObject lost = vertx.eventBus().<JsonObject>request(chat.protocol.Addresses.LOGIN, new JsonObject()
            .put("username", "orphan").put("password", PW)
            .put(chat.auth.AuthVerticle.SESSION_OWNER, chat.protocol.Addresses.TCP_OWNER_PREFIX + "gone")
            .put(chat.auth.AuthVerticle.SESSION_CONNECTION, 1L))
        .await(10, TimeUnit.SECONDS).body();
    assertEquals("SUCCESS", lost.getString("outcome"));
    long t0 = System.nanoTime();
    String reply = null;
    try (LineClient c = s.connect()) {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(8);
      while (System.nanoTime() < deadline) {
        c.send(new JsonObject().put("type", "login").put("username", "orphan").put("password", PW));
        reply = c.readSkippingPings().encode();
        if (reply.contains("\"status\":\"success\"")) {
          break;
        }
        assertEquals(Replies.TCP_ALREADY_LOGGED_IN.json, reply);
        Thread.sleep(200);
      }
    }
    System.out.println("[figures] orphaned session released after " + (System.nanoTime() - t0) / 1_000_000 + " ms (idle 1 s, sweep 1 s)");
    assertTrue(reply.contains("\"status\":\"success\""), "the orphaned session was never released: the user is locked out");
  }
}
