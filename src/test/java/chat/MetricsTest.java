package chat;

import chat.support.Http;
import chat.support.LineClient;
import chat.support.Prometheus;
import chat.support.ServerProcess;
import chat.support.TestServer;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.DoubleSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code /metrics}: every server meter is exported in the Prometheus text format, and each one
 * moves by exactly what the traffic should make it move.
 */
@ExtendWith(VertxExtension.class)
class MetricsTest {

  private static final String CHAT_SENT = "{\"type\":\"chat\",\"status\":\"success\"}";

  @TempDir
  Path dir;
  private Vertx vertx;
  private TestServer server;
  private final List<AutoCloseable> closeables = new ArrayList<>();

  @BeforeEach
  void init(Vertx vertx) {
    this.vertx = vertx;
  }

  @AfterEach
  void stop() throws Exception {
    for (AutoCloseable c : closeables) {
      c.close();
    }
    if (server != null) {
      server.close();
    }
  }

  // ---- helpers ----

  private TestServer server() {
    return server(new JsonObject());
  }

  private TestServer server(JsonObject overrides) {
    if (server == null) {
      server = TestServer.start(vertx, dir, overrides);
    }
    return server;
  }

  private LineClient connect() {
    LineClient c = server().connect();
    closeables.add(c);
    return c;
  }

  private Prometheus scrape() {
    return Prometheus.scrape(server().http());
  }

  /**
   * A scrape once the broadcast counters have counted {@code deliveries} more deliveries than in
   * {@code base}, each its own write (one chat awaited at a time): see {@link Prometheus#scrapeWhen}.
   */
  private Prometheus scrapeOnceCounted(Prometheus base, double deliveries) {
    return Prometheus.scrapeWhen(server().http(),
        p -> p.value("chat_broadcast_writes_total") >= base.value("chat_broadcast_writes_total") + deliveries
            && p.value("chat_deliveries_total") >= base.value("chat_deliveries_total") + deliveries);
  }

  private double value(String name, String... labels) {
    return scrape().value(name, labels);
  }

  private double logins(String outcome, String transport) {
    return value("chat_logins_total", "outcome", outcome, "transport", transport);
  }

  private double registrations(String outcome, String transport) {
    return value("chat_registrations_total", "outcome", outcome, "transport", transport);
  }

  private double hashings() {
    return value("chat_password_hashing_seconds_count");
  }

  /** Polls (bounded) until the meter shows {@code expected}, then asserts it. */
  private void awaitValue(double expected, String name, String... labels) {
    awaitValue(expected, () -> value(name, labels), name + List.of(labels));
  }

  private static void awaitValue(double expected, DoubleSupplier actual, String what) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    double last = actual.getAsDouble();
    while (last != expected && System.nanoTime() < deadline) {
      pause(20);
      last = actual.getAsDouble();
    }
    assertEquals(expected, last, what);
  }

  private static void pause(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private static JsonObject login(String user, String password) {
    return new JsonObject().put("type", "login").put("username", user).put("password", password);
  }

  private static String chat(String token, String message) {
    return new JsonObject().put("type", "chat").put("token", token).put("message", message).encode();
  }

  /** The sender's two lines after a chat (its success reply and its own copy, in either order). */
  private static void expectSentAndOwnCopy(LineClient sender, String message) {
    List<String> lines = List.of(sender.readLine(), sender.readLine());
    assertTrue(lines.contains(CHAT_SENT), lines::toString);
    String copy = lines.get(0).equals(CHAT_SENT) ? lines.get(1) : lines.get(0);
    assertEquals(message, new JsonObject(copy).getString("message"), copy);
  }

  private static void expectBroadcast(LineClient receiver, String message) {
    JsonObject m = receiver.readSkippingPings();
    assertEquals("chat", m.getString("type"), m.encode());
    assertEquals(message, m.getString("message"), m.encode());
  }

  // ---- tests ----

  @Test
  @DisplayName("a fresh server exports every server meter, typed, in the Prometheus text format, besides the JVM meters")
  void exportsEveryServerMeter() {
    Prometheus p = scrape();

    Map<String, String> families = Map.ofEntries(
        Map.entry("chat_connections", "gauge"),
        Map.entry("chat_sessions", "gauge"),
        Map.entry("chat_messages_in_total", "counter"),
        Map.entry("chat_deliveries_total", "counter"),
        Map.entry("chat_broadcast_writes_total", "counter"),
        Map.entry("chat_slow_consumers_dropped_total", "counter"),
        Map.entry("chat_chats_accepted_total", "counter"),
        Map.entry("chat_logins_total", "counter"),
        Map.entry("chat_registrations_total", "counter"),
        Map.entry("chat_password_hashing_seconds", "summary"),
        Map.entry("chat_password_hashing_seconds_max", "gauge"),
        Map.entry("chat_event_loop_delay_seconds", "summary"),
        Map.entry("chat_event_loop_delay_seconds_max", "gauge"),
        Map.entry("chat_broadcast_pass_seconds", "summary"),
        Map.entry("chat_broadcast_pass_seconds_max", "gauge"),
        Map.entry("chat_db_operations_seconds", "summary"),
        Map.entry("chat_db_operations_seconds_max", "gauge"),
        Map.entry("chat_db_operations_in_flight", "gauge"),
        Map.entry("chat_db_pool_max_connections", "gauge"));
    families.forEach((family, type) -> assertEquals(type, p.type(family), "# TYPE of " + family));
    assertFalse(p.has("chat_cluster_members"), "no cluster gauge with the cluster off");

    // before any traffic, every traffic meter is there at zero (so rate() and increase() see the first event)
    for (String gaugeOrCounter : List.of("chat_connections", "chat_sessions", "chat_messages_in_total",
        "chat_deliveries_total", "chat_broadcast_writes_total", "chat_slow_consumers_dropped_total",
        "chat_password_hashing_seconds_count", "chat_broadcast_pass_seconds_count",
        "chat_password_hashing_seconds_sum", "chat_db_operations_in_flight")) {
      assertEquals(0.0, p.value(gaugeOrCounter), gaugeOrCounter);
    }
    for (String transport : List.of("tcp", "http")) {
      assertEquals(0.0, p.value("chat_chats_accepted_total", "transport", transport), "chats over " + transport);
      for (String outcome : List.of("success", "bad_credentials", "already_logged_in")) {
        assertEquals(0.0, p.value("chat_logins_total", "outcome", outcome, "transport", transport),
            "logins " + outcome + " over " + transport);
      }
      for (String outcome : List.of("created", "name_taken", "bad_username", "bad_avatar", "bad_password",
          "database_error")) {
        assertEquals(0.0, p.value("chat_registrations_total", "outcome", outcome, "transport", transport),
            "registrations " + outcome + " over " + transport);
      }
    }
    assertEquals(0.0, p.value("chat_logins_total", "outcome", "invalid_token", "transport", "tcp"));
    for (String sample : List.of("chat_event_loop_delay_seconds_count", "chat_event_loop_delay_seconds_sum",
        "chat_event_loop_delay_seconds_max", "chat_db_operations_seconds_count", "chat_db_operations_seconds_sum",
        "chat_password_hashing_seconds_max", "chat_db_operations_seconds_max")) {
      assertTrue(p.value(sample) >= 0, sample);
    }
    assertEquals(1.0, p.value("chat_db_pool_max_connections"), "db.poolSize defaults to 1");

    // JVM and process meters
    assertTrue(p.has("jvm_memory_used_bytes", "area", "heap"), "jvm_memory_used_bytes");
    assertTrue(p.value("process_files_open_files") > 0, "process_files_open_files");
    assertTrue(p.has("jvm_threads_live_threads"), "jvm_threads_live_threads");
  }

  @Test
  @DisplayName("chat_connections follows open sockets and chat_sessions the logged-in ones, down again when they close")
  void connectionsAndSessionsFollowTheSockets() {
    server().http().register("alice", "pw-alice");
    server().http().register("bob", "pw-bob");
    double successes = logins("success", "tcp");
    assertEquals(0.0, value("chat_connections"));
    assertEquals(0.0, value("chat_sessions"));

    LineClient a = connect();
    LineClient b = connect();
    LineClient c = connect();
    awaitValue(3, "chat_connections");
    assertEquals(0.0, value("chat_sessions"), "no one logged in yet");

    a.login("alice", "pw-alice");
    b.login("bob", "pw-bob");
    assertEquals(2.0, value("chat_sessions"));
    assertEquals(3.0, value("chat_connections"));
    assertEquals(successes + 2, logins("success", "tcp"));

    a.close();
    awaitValue(1, "chat_sessions");
    awaitValue(2, "chat_connections");
    c.close();
    awaitValue(1, "chat_connections");
    assertEquals(1.0, value("chat_sessions"), "closing a socket without a session leaves the sessions alone");
    b.close();
    awaitValue(0, "chat_sessions");
    awaitValue(0, "chat_connections");
  }

  @Test
  @DisplayName("logins are counted by outcome and listener, and each password check is one hashing")
  void loginOutcomesAreCounted() {
    Http http = server().http();
    http.register("alice", "pw-alice");
    http.register("bob", "pw-bob");
    Prometheus before = scrape();
    double loginsBefore = before.matching("chat_logins_total").stream().mapToDouble(Prometheus.Sample::value).sum();
    double hashed = before.value("chat_password_hashing_seconds_count");

    LineClient a = connect();
    LineClient b = connect();
    a.login("alice", "pw-alice");                                          // success, tcp (hash 1)
    b.send(login("alice", "wrong-pw"));                                    // bad credentials, tcp (hash 2)
    b.expect("{\"type\":\"login\",\"status\":\"error_0\",\"message\":\"Invalid credentials\"}");
    b.send(login("alice", "pw-alice"));                                    // already logged in, tcp (hash 3)
    b.expect("{\"type\":\"login\",\"status\":\"error_-1\",\"message\":\"Account already logged in\"}");
    b.send(new JsonObject().put("type", "login").put("token", "0".repeat(32)));  // invalid token, tcp (no hash)
    b.expect("{\"type\":\"login\",\"status\":\"error_It\",\"message\":\"Invalid token\"}");

    String bobToken = http.login("bob", "pw-bob");                         // success, http (hash 4)
    Http.Response wrong = http.post("/api/login", new JsonObject().put("username", "bob").put("password", "nope").encode());
    assertEquals(401, wrong.status());                                     // bad credentials, http (hash 5)
    LineClient c = connect();
    c.send(new JsonObject().put("type", "login").put("token", bobToken));  // success by token, tcp (no hash)
    assertEquals("success", c.readSkippingPings().getString("status"));
    Http.Response taken = http.post("/api/login", new JsonObject().put("username", "bob").put("password", "pw-bob").encode());
    assertEquals(409, taken.status());                                     // already logged in, http (hash 6)

    Prometheus after = scrape();
    assertEquals(before.value("chat_logins_total", "outcome", "success", "transport", "tcp") + 2,
        after.value("chat_logins_total", "outcome", "success", "transport", "tcp"));
    assertEquals(before.value("chat_logins_total", "outcome", "success", "transport", "http") + 1,
        after.value("chat_logins_total", "outcome", "success", "transport", "http"));
    assertEquals(before.value("chat_logins_total", "outcome", "bad_credentials", "transport", "tcp") + 1,
        after.value("chat_logins_total", "outcome", "bad_credentials", "transport", "tcp"));
    assertEquals(before.value("chat_logins_total", "outcome", "bad_credentials", "transport", "http") + 1,
        after.value("chat_logins_total", "outcome", "bad_credentials", "transport", "http"));
    assertEquals(before.value("chat_logins_total", "outcome", "already_logged_in", "transport", "tcp") + 1,
        after.value("chat_logins_total", "outcome", "already_logged_in", "transport", "tcp"));
    assertEquals(before.value("chat_logins_total", "outcome", "already_logged_in", "transport", "http") + 1,
        after.value("chat_logins_total", "outcome", "already_logged_in", "transport", "http"));
    assertEquals(before.value("chat_logins_total", "outcome", "invalid_token", "transport", "tcp") + 1,
        after.value("chat_logins_total", "outcome", "invalid_token", "transport", "tcp"));
    double loginsAfter = after.matching("chat_logins_total").stream().mapToDouble(Prometheus.Sample::value).sum();
    assertEquals(loginsBefore + 8, loginsAfter, "eight logins, each counted once:\n" + after.matching("chat_logins_total"));
    assertEquals(hashed + 6, after.value("chat_password_hashing_seconds_count"),
        "six password checks; a token login hashes nothing");
    assertTrue(after.value("chat_password_hashing_seconds_sum") > before.value("chat_password_hashing_seconds_sum"));
  }

  @Test
  @DisplayName("registrations are counted by outcome and listener; only a new user costs a hashing; database use is timed")
  void registrationOutcomesAreCounted() {
    Http http = server().http();
    Prometheus before = scrape();
    double regsBefore = before.matching("chat_registrations_total").stream().mapToDouble(Prometheus.Sample::value).sum();
    double hashed = before.value("chat_password_hashing_seconds_count");
    double dbOps = before.value("chat_db_operations_seconds_count");

    LineClient c = connect();
    c.send("{\"type\":\"register\",\"username\":\"carol\",\"password\":\"pw-carol\"}");
    c.expect("{\"type\":\"register_1\",\"error\":false,\"message\":\"User registered successfully\"}");
    c.send("{\"type\":\"register\",\"username\":\"carol\",\"password\":\"other\"}");
    c.expect("{\"type\":\"register_0\",\"success\":false,\"message\":\"Username already exists\"}");
    c.send("{\"type\":\"register\",\"username\":\"1carol\",\"password\":\"pw\"}");
    assertEquals("register_-2", c.read().getString("type"));
    c.send("{\"type\":\"register\",\"username\":\"erin\",\"password\":\"pw\",\"avatar\":\"a.gif\"}");
    assertEquals("register_-3", c.read().getString("type"));

    http.register("dave", "pw-dave");
    assertEquals(403, http.post("/api/register", "{\"username\":\"dave\",\"password\":\"x\"}").status());
    assertEquals(400, http.post("/api/register", "{\"username\":\"erin\",\"password\":\"\"}").status());

    Prometheus after = scrape();
    String[][] expected = {
        {"created", "tcp", "1"}, {"name_taken", "tcp", "1"}, {"bad_username", "tcp", "1"}, {"bad_avatar", "tcp", "1"},
        {"created", "http", "1"}, {"name_taken", "http", "1"}, {"bad_password", "http", "1"},
        {"bad_password", "tcp", "0"}, {"bad_username", "http", "0"}, {"database_error", "tcp", "0"}};
    for (String[] e : expected) {
      assertEquals(before.value("chat_registrations_total", "outcome", e[0], "transport", e[1]) + Double.parseDouble(e[2]),
          after.value("chat_registrations_total", "outcome", e[0], "transport", e[1]), e[0] + " over " + e[1]);
    }
    double regsAfter = after.matching("chat_registrations_total").stream().mapToDouble(Prometheus.Sample::value).sum();
    assertEquals(regsBefore + 7, regsAfter, "seven registrations, each counted once");
    assertEquals(hashed + 2, after.value("chat_password_hashing_seconds_count"), "two users created, two hashes");
    assertTrue(after.value("chat_db_operations_seconds_count") >= dbOps + 4,
        "each registration that reaches the database is timed: " + dbOps + " -> "
            + after.value("chat_db_operations_seconds_count"));
    assertEquals(0.0, after.value("chat_db_operations_in_flight"), "nothing in flight once every reply is in");

    // the readiness check is a database operation too
    double beforeReady = after.value("chat_db_operations_seconds_count");
    assertEquals(200, http.get("/health/ready").status());
    assertEquals(beforeReady + 1, value("chat_db_operations_seconds_count"));
  }

  @Test
  @DisplayName("chat_broadcast_pass times one pass per chat written to the sessions, and none while no session holds")
  void broadcastPassesAreTimed() {
    server(new JsonObject().put("tcp.instances", 1));
    Prometheus before = scrape();

    // an HTTP chat with no socket session anywhere: a pass with nobody to write is not counted
    Http http = server().http();
    http.register("dave", "pw-dave");
    String daveToken = http.login("dave", "pw-dave");
    assertEquals(200, http.post("/api/chat", "{\"message\":\"nobody listens\"}", "Authorization", daveToken).status());

    LineClient alice = connect();
    LineClient bob = connect();
    String token = alice.registerAndLogin("alice", "pw-alice");
    bob.registerAndLogin("bob", "pw-bob");
    int n = 6;
    for (int i = 0; i < n; i++) {   // each chat awaited: one pass each, over both sessions
      alice.send(chat(token, "pass " + i));
      expectSentAndOwnCopy(alice, "pass " + i);
      expectBroadcast(bob, "pass " + i);
    }
    Prometheus after = Prometheus.scrapeWhen(http,
        p -> p.value("chat_broadcast_pass_seconds_count") >= before.value("chat_broadcast_pass_seconds_count") + n);
    assertEquals(before.value("chat_broadcast_pass_seconds_count") + n, after.value("chat_broadcast_pass_seconds_count"));
    double seconds = after.value("chat_broadcast_pass_seconds_sum") - before.value("chat_broadcast_pass_seconds_sum");
    assertTrue(seconds > 0 && seconds < 5, "time of " + n + " passes over two sessions: " + seconds + " s");
    assertTrue(after.value("chat_broadcast_pass_seconds_max") > 0, "max of the passes");
  }

  @Test
  @DisplayName("chats move chat_messages_in, chat_chats_accepted{transport} and chat_deliveries (one per receiving session) exactly")
  void chatTrafficIsCountedExactly() {
    // two TCP verticles, whatever the number of cores: sessions are spread over both, and with a
    // third session one of them holds two (deliveries are counted per verticle, then summed)
    server(new JsonObject().put("tcp.instances", 2));
    Prometheus before = scrape();

    LineClient alice = connect();
    LineClient bob = connect();
    String token = alice.registerAndLogin("alice", "pw-alice");   // 2 messages
    String bobToken = bob.registerAndLogin("bob", "pw-bob");      // 2 messages
    int n = 7;
    for (int i = 0; i < n; i++) {                                  // n messages, n chats, 2n deliveries
      alice.send(chat(token, "hello " + i));
      expectSentAndOwnCopy(alice, "hello " + i);
      expectBroadcast(bob, "hello " + i);
    }
    bob.send(new JsonObject().put("type", "heartbeat").put("token", bobToken));  // 1 message
    bob.expect("{\"type\":\"heartbeat\",\"status\":\"success\"}");
    alice.send(chat("f".repeat(32), "refused"));                   // 1 message, no chat
    alice.expect("{\"type\":\"chat\",\"status\":\"error_It\",\"message\":\"Invalid token\"}");
    alice.send("{\"type\": chat}");                                // 1 message (a complete frame, not JSON)
    alice.expect("{\"type\":\"error\",\"status\":\"error\",\"message\":\"Invalid JSON\"}");
    alice.send("garbage outside any object\n");                    // no message
    alice.expect("{\"type\":\"error\",\"status\":\"error\",\"message\":\"Invalid JSON\"}");

    Prometheus tcp = scrapeOnceCounted(before, 2 * n);
    assertEquals(before.value("chat_messages_in_total") + 4 + n + 3, tcp.value("chat_messages_in_total"));
    assertEquals(before.value("chat_chats_accepted_total", "transport", "tcp") + n,
        tcp.value("chat_chats_accepted_total", "transport", "tcp"));
    assertEquals(before.value("chat_chats_accepted_total", "transport", "http"),
        tcp.value("chat_chats_accepted_total", "transport", "http"));
    assertEquals(before.value("chat_deliveries_total") + 2 * n, tcp.value("chat_deliveries_total"));
    // each chat was awaited before the next was sent: a batch of one, one write per session
    assertEquals(before.value("chat_broadcast_writes_total") + 2 * n, tcp.value("chat_broadcast_writes_total"));

    // an HTTP chat: no TCP message in, one chat over http, delivered to both sessions
    Http.Response sent = server().http().post("/api/chat", "{\"message\":\"over http\"}", "Authorization", token);
    assertEquals(200, sent.status(), sent.body());
    expectBroadcast(alice, "over http");
    expectBroadcast(bob, "over http");
    Prometheus http = scrapeOnceCounted(tcp, 2);
    assertEquals(tcp.value("chat_messages_in_total"), http.value("chat_messages_in_total"));
    assertEquals(tcp.value("chat_chats_accepted_total", "transport", "tcp"),
        http.value("chat_chats_accepted_total", "transport", "tcp"));
    assertEquals(tcp.value("chat_chats_accepted_total", "transport", "http") + 1,
        http.value("chat_chats_accepted_total", "transport", "http"));
    assertEquals(tcp.value("chat_deliveries_total") + 2, http.value("chat_deliveries_total"));
    assertEquals(tcp.value("chat_broadcast_writes_total") + 2, http.value("chat_broadcast_writes_total"));

    // a refused HTTP chat counts nothing
    assertEquals(401, server().http().post("/api/chat", "{\"message\":\"x\"}", "Authorization", "nope").status());
    Prometheus refused = scrape();
    assertEquals(http.value("chat_chats_accepted_total", "transport", "http"),
        refused.value("chat_chats_accepted_total", "transport", "http"));
    assertEquals(http.value("chat_deliveries_total"), refused.value("chat_deliveries_total"));

    // a third session: every chat is now delivered three times
    LineClient carol = connect();
    carol.registerAndLogin("carol", "pw-carol");                   // 2 messages
    int m = 5;
    for (int i = 0; i < m; i++) {                                  // m messages, m chats, 3m deliveries
      alice.send(chat(token, "to three " + i));
      expectSentAndOwnCopy(alice, "to three " + i);
      expectBroadcast(bob, "to three " + i);
      expectBroadcast(carol, "to three " + i);
    }
    Prometheus three = scrapeOnceCounted(refused, 3 * m);
    assertEquals(3.0, three.value("chat_sessions"));
    assertEquals(refused.value("chat_messages_in_total") + 2 + m, three.value("chat_messages_in_total"));
    assertEquals(refused.value("chat_chats_accepted_total", "transport", "tcp") + m,
        three.value("chat_chats_accepted_total", "transport", "tcp"));
    assertEquals(refused.value("chat_deliveries_total") + 3 * m, three.value("chat_deliveries_total"));
    assertEquals(refused.value("chat_broadcast_writes_total") + 3 * m, three.value("chat_broadcast_writes_total"));
  }

  @Test
  @DisplayName("a receiver that stops reading and gets cut off is counted once in chat_slow_consumers_dropped")
  void slowConsumerIsCounted() throws Exception {
    // a burst well over the default chat rate: only that limit is turned off
    server(new JsonObject().put("tcp.maxPendingBytes", 65536).put("limits.chatMessagesPerSecond", 0));
    Http http = server().http();
    http.register("alice", "pw-alice");
    http.register("nick", "pw-nick");
    double dropped = value("chat_slow_consumers_dropped_total");

    // alice sends, and reads everything she gets on a thread of her own, counting lines
    Socket alice = rawLogin("alice", "pw-alice", 0);
    String token = new JsonObject(rawLine(alice.getInputStream())).getString("token");
    AtomicLong aliceLines = new AtomicLong();
    Thread drain = new Thread(() -> {
      byte[] buf = new byte[65536];
      try {
        InputStream in = alice.getInputStream();
        alice.setSoTimeout(0);
        int k;
        while ((k = in.read(buf)) != -1) {
          for (int i = 0; i < k; i++) {
            if (buf[i] == '\n') {
              aliceLines.incrementAndGet();
            }
          }
        }
      } catch (IOException e) {
        // closed
      }
    }, "alice-drain");
    drain.setDaemon(true);
    drain.start();

    // nick logs in with a tiny receive buffer, then never reads again
    Socket nick = rawLogin("nick", "pw-nick", 4096);
    String nickLogin = rawLine(nick.getInputStream());
    assertTrue(nickLogin.contains("\"status\":\"success\""), nickLogin);
    awaitValue(2, "chat_sessions");

    // ~1 KB chats, 20 at a time, each batch sent once alice has read all of the previous one (her
    // unread output stays far below the 64 KiB limit however slowly her thread is scheduled),
    // until nick is cut off; bounded: at most 40,000 chats (about 40 MB to nick), 90 s
    String padding = "x".repeat(1000);
    StringBuilder batch = new StringBuilder();
    int sent = 0;
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
    while (value("chat_slow_consumers_dropped_total") == dropped && sent < 40_000 && System.nanoTime() < deadline) {
      for (int round = 0; round < 5; round++) {
        batch.setLength(0);
        for (int i = 0; i < 20; i++, sent++) {
          batch.append(chat(token, sent + ":" + padding));
        }
        alice.getOutputStream().write(batch.toString().getBytes(StandardCharsets.UTF_8));
        awaitAtLeast(aliceLines, 2L * sent, "lines read by alice"); // her success reply and her own copy of each chat
      }
    }
    assertEquals(dropped + 1, value("chat_slow_consumers_dropped_total"), "after " + sent + " chats");
    awaitValue(1, "chat_sessions");
    awaitValue(1, "chat_connections");
    assertClosedWithin(nick, 30);

    // alice, who reads, was not the one cut off: she keeps chatting and the count stays at one
    alice.getOutputStream().write(chat(token, "still here").getBytes(StandardCharsets.UTF_8));
    awaitAtLeast(aliceLines, 2L * sent + 2, "alice's reply and copy of one more chat");
    assertEquals(dropped + 1, value("chat_slow_consumers_dropped_total"));
    assertEquals(1.0, value("chat_connections"));
    assertEquals(sent + 1.0, value("chat_chats_accepted_total", "transport", "tcp"));
  }

  /** Polls (bounded, 10 s) until {@code counter} reaches {@code expected}. */
  private static void awaitAtLeast(AtomicLong counter, long expected, String what) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (counter.get() < expected && System.nanoTime() < deadline) {
      LockSupport.parkNanos(200_000);
    }
    assertTrue(counter.get() >= expected, what + ": " + counter.get() + " of " + expected);
  }

  /** Reads (and drops) whatever was in flight until the server's close shows, within {@code seconds}. */
  private static void assertClosedWithin(Socket s, int seconds) throws IOException {
    s.setSoTimeout(1000);
    InputStream in = s.getInputStream();
    byte[] buf = new byte[65536];
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (System.nanoTime() < deadline) {
      try {
        if (in.read(buf) == -1) {
          return;
        }
      } catch (java.net.SocketTimeoutException e) {
        // still open, nothing to read
      } catch (IOException e) {
        return; // reset: closed too
      }
    }
    throw new AssertionError("the server did not close the slow consumer's connection within " + seconds + " s");
  }

  /** A raw socket (receive buffer set before connecting when {@code receiveBuffer} > 0) with a login sent. */
  private Socket rawLogin(String user, String password, int receiveBuffer) throws IOException {
    Socket s = new Socket();
    closeables.add(s);
    if (receiveBuffer > 0) {
      s.setReceiveBufferSize(receiveBuffer);
    }
    s.connect(new InetSocketAddress("127.0.0.1", server().tcpPort()), 5000);
    s.setSoTimeout(5000);
    s.getOutputStream().write(login(user, password).encode().getBytes(StandardCharsets.UTF_8));
    return s;
  }

  /** One newline-terminated line, byte by byte (nothing beyond it is consumed). */
  private static String rawLine(InputStream in) throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    int b;
    while ((b = in.read()) != -1 && b != '\n') {
      line.write(b);
    }
    return line.toString(StandardCharsets.UTF_8);
  }

  @Test
  @DisplayName("the event-loop delay is sampled on its own, with no traffic")
  void eventLoopDelayIsSampled() {
    server();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    double count = value("chat_event_loop_delay_seconds_count");
    while (count == 0 && System.nanoTime() < deadline) {
      pause(100);
      count = value("chat_event_loop_delay_seconds_count");
    }
    assertTrue(count > 0, "no event-loop delay sample within 5 s");
    double first = count;
    awaitGrowth(first);
    assertTrue(value("chat_event_loop_delay_seconds_sum") >= 0);
  }

  private void awaitGrowth(double from) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (value("chat_event_loop_delay_seconds_count") <= from && System.nanoTime() < deadline) {
      pause(100);
    }
    assertTrue(value("chat_event_loop_delay_seconds_count") > from, "the event-loop delay is sampled once, not periodically");
  }

  @Test
  @DisplayName("with metrics.enabled=false, /metrics is 404 and registration, login, chat and health still work")
  void metricsOff() {
    server(new JsonObject().put("metrics.enabled", false));
    Http http = server().http();
    Http.Response metrics = http.get("/metrics");
    assertEquals(404, metrics.status());
    assertEquals("{\"type\":\"error\",\"status\":\"error\",\"message\":\"Not found\"}", metrics.body());

    assertEquals(200, http.get("/health/live").status());
    assertEquals(200, http.get("/health/ready").status());
    LineClient alice = connect();
    String token = alice.registerAndLogin("alice", "pw-alice");
    http.register("bob", "pw-bob");
    LineClient bob = connect();
    bob.login("bob", "pw-bob");
    alice.send(chat(token, "metrics off"));
    expectSentAndOwnCopy(alice, "metrics off");
    expectBroadcast(bob, "metrics off");
    http.register("carol", "pw-carol");
    String httpToken = http.login("carol", "pw-carol");
    assertEquals(200, http.post("/api/chat", "{\"message\":\"by http\"}", "Authorization", httpToken).status());
    expectBroadcast(alice, "by http");
    expectBroadcast(bob, "by http");
    assertEquals(404, http.get("/metrics").status(), "still 404 after traffic");
  }

  @Test
  @DisplayName("chat.Main fills the same registry with Vert.x's own HTTP and pool meters and the JVM meters")
  void mainExposesVertxMeters(@TempDir Path root) throws Exception {
    Path data = Files.createDirectory(root.resolve("data"));
    try (ServerProcess p = ServerProcess.start(data, root, Map.of("CHAT_HTTP_PORT", "0", "CHAT_TCP_PORT", "0",
        "CHAT_AUTH_HASHCOST", "low", "CHAT_HOST", "127.0.0.1"))) {
      ServerProcess.Ports ports = p.awaitListening(Duration.ofSeconds(60));
      Http http = new Http(ports.http());
      http.register("alice", "pw-alice");
      http.login("alice", "pw-alice");
      try (LineClient c = new LineClient(ports.tcp())) {
        c.login("alice", "pw-alice");

        Prometheus m = Prometheus.scrape(http);
        assertTrue(m.has("vertx_http_server_requests_total"), "vertx_http_server_requests_total\n" + m.text());
        double requests = m.matching("vertx_http_server_requests_total").stream().mapToDouble(Prometheus.Sample::value).sum();
        assertTrue(requests >= 2, "register and login were requests: " + requests);
        assertTrue(m.has("vertx_pool_in_use", "pool_type", "sql"), "vertx_pool_in_use{pool_type=\"sql\"}\n" + m.text());
        assertTrue(m.has("vertx_pool_queue_pending", "pool_name", "chat-password-hashing"),
            "vertx_pool_queue_pending{pool_name=\"chat-password-hashing\"}\n" + m.text());
        assertTrue(m.has("jvm_memory_used_bytes"), "jvm_memory_used_bytes");
        // the server's own meters share the registry
        assertEquals(1.0, m.value("chat_sessions"));
        assertEquals(1.0, m.value("chat_logins_total", "outcome", "success", "transport", "tcp"));
        assertEquals(1.0, m.value("chat_logins_total", "outcome", "success", "transport", "http"));
        // Vert.x's per-write socket and per-message event-bus meters stay off
        assertFalse(m.samples().stream().anyMatch(s -> s.name().startsWith("vertx_net_server")
            || s.name().startsWith("vertx_eventbus")), "per-delivery Vert.x meters are on");
      }
    }
  }
}
