package chat;

import chat.support.Http;
import chat.support.LineClient;
import chat.support.TestServer;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * PROTOCOL.md §7 (abuse limits [ext]): failed logins per username and per address, chats per user
 * per second, registrations per address; their exact replies over TCP and HTTP (429), windows,
 * and the switches. Real server, real sockets; every client connects from 127.0.0.1 unless it
 * binds 127.0.0.2 to be "another address".
 */
@ExtendWith(VertxExtension.class)
class LimitsTest {

  private static final String TCP_TOO_MANY_ATTEMPTS =
      "{\"type\":\"login\",\"status\":\"error_0\",\"message\":\"Too many attempts\"}";
  private static final String HTTP_TOO_MANY_ATTEMPTS =
      "{\"type\":\"login_0\",\"status\":\"error\",\"message\":\"Too many attempts\"}";
  private static final String TCP_BAD_CREDENTIALS =
      "{\"type\":\"login\",\"status\":\"error_0\",\"message\":\"Invalid credentials\"}";
  private static final String HTTP_BAD_CREDENTIALS =
      "{\"type\":\"login_0\",\"status\":\"error\",\"message\":\"Invalid credentials\"}";
  private static final String INVALID_RESUME_TOKEN =
      "{\"type\":\"login\",\"status\":\"error_It\",\"message\":\"Invalid token\"}";
  private static final String TOO_MANY_MESSAGES =
      "{\"type\":\"chat\",\"status\":\"error\",\"message\":\"Too many messages\"}";
  private static final String CHAT_SENT = "{\"type\":\"chat\",\"status\":\"success\"}";
  private static final String TOO_MANY_REGISTRATIONS =
      "{\"type\":\"register_-5\",\"success\":false,\"message\":\"Too many registrations, try again later\"}";
  private static final String REGISTERED =
      "{\"type\":\"register_1\",\"error\":false,\"message\":\"User registered successfully\"}";
  private static final String NAME_TAKEN =
      "{\"type\":\"register_0\",\"success\":false,\"message\":\"Username already exists\"}";
  private static final String TCP_BAD_USERNAME =
      "{\"type\":\"register_-2\",\"success\":false,\"message\":\"Invalid username format\"}";
  private static final String BAD_PASSWORD =
      "{\"type\":\"register_-4\",\"success\":false,\"message\":\"Invalid password. Must be 1-1024 characters\"}";

  /** A second loopback address: the server sees connections from it as another client address. */
  private static final String OTHER_ADDRESS = "127.0.0.2";

  @TempDir
  Path dir;
  private TestServer server;
  private Http http;
  private final List<AutoCloseable> closeables = new ArrayList<>();

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

  private void start(Vertx vertx, JsonObject overrides) {
    server = TestServer.start(vertx, dir, overrides);
    http = server.http();
  }

  private LineClient connect() {
    LineClient c = server.connect();
    closeables.add(c);
    return c;
  }

  private static String loginJson(String user, String password) {
    return new JsonObject().put("type", "login").put("username", user).put("password", password).encode();
  }

  private static String registerJson(String user, String password) {
    return new JsonObject().put("type", "register").put("username", user).put("password", password).encode();
  }

  private static String chatJson(String token, String message) {
    return new JsonObject().put("type", "chat").put("token", token).put("message", message).encode();
  }

  private Http.Response httpLogin(String user, String password) {
    return http.post("/api/login", new JsonObject().put("username", user).put("password", password).encode());
  }

  private Http.Response httpRegister(String user, String password) {
    return http.post("/api/register", new JsonObject().put("username", user).put("password", password).encode());
  }

  private Http.Response httpChat(String token, String message) {
    return http.post("/api/chat", new JsonObject().put("message", message).encode(), "Authorization", token);
  }

  private static void assertResponse(int status, String body, Http.Response r) {
    assertEquals(body, r.body());
    assertEquals(status, r.status(), r.body());
  }

  /** A TCP login that must succeed; returns the reply line. */
  private static String expectLoginSuccess(LineClient c, String user, String password) {
    c.send(loginJson(user, password));
    String line = c.readLine();
    assertTrue(line.startsWith("{\"type\":\"login\",\"status\":\"success\"") && line.contains("\"username\":\"" + user + "\""),
        "login of " + user + " was refused: " + line);
    return line;
  }

  /** {@code chat_limited_total{limit="<label>"}} as /metrics shows it; 0 when absent. */
  private double limitedCount(String label) {
    Http.Response r = http.get("/metrics");
    assertEquals(200, r.status());
    Matcher m = Pattern.compile("(?m)^chat_limited_total\\{limit=\"" + label + "\",?\\} ([0-9.Ee+-]+)$").matcher(r.body());
    return m.find() ? Double.parseDouble(m.group(1)) : 0;
  }

  /** A TCP client bound to another local address, as a client on another machine would be. */
  private RawClient connectFrom(String localAddress) {
    RawClient c = new RawClient(localAddress, server.tcpPort());
    closeables.add(c);
    return c;
  }

  private static final class RawClient implements AutoCloseable {
    private final Socket socket = new Socket();
    private final BufferedReader in;
    private final OutputStream out;

    RawClient(String localAddress, int port) {
      try {
        socket.bind(new InetSocketAddress(localAddress, 0));
        socket.connect(new InetSocketAddress("127.0.0.1", port), 5000);
        socket.setSoTimeout(5000);
        in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
        out = socket.getOutputStream();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    String request(String json) {
      try {
        out.write(json.getBytes(StandardCharsets.UTF_8));
        out.flush();
        String line = in.readLine();
        assertNotNull(line, "connection closed by the server");
        return line;
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    @Override
    public void close() throws IOException {
      socket.close();
    }
  }

  /**
   * The replies of {@code count} pipelined chats on a logged-in connection, with the broadcasts of the
   * accepted ones (which the sender's own session receives too) checked and removed. Returns the
   * replies in order.
   */
  private static List<String> chatReplies(LineClient c, int count, String author, String prefix) {
    List<String> replies = new ArrayList<>();
    int broadcasts = 0;
    while (replies.size() < count || broadcasts < replies.stream().filter(CHAT_SENT::equals).count()) {
      String line = c.readLine();
      if (line.startsWith("{\"type\":\"chat\",\"user\":")) {
        JsonObject b = new JsonObject(line);
        assertEquals(author, b.getString("user"), line);
        assertTrue(b.getString("message").startsWith(prefix), line);
        broadcasts++;
      } else {
        replies.add(line);
      }
    }
    return replies;
  }

  private static String burst(String token, String prefix, int n) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < n; i++) {
      b.append(chatJson(token, prefix + i));
    }
    return b.toString();
  }

  // ---- failed logins per username ----

  @Test
  @DisplayName("10 failed TCP logins of one user, then even the right password gets 'Too many attempts' (TCP and HTTP 429); other users log in")
  void loginFailuresPerUserOverTcp(Vertx vertx) {
    start(vertx, new JsonObject());
    http.register("alice", "pw-alice");
    http.register("bob", "pw-bob");
    LineClient c = connect();
    for (int i = 0; i < 10; i++) {
      c.send(loginJson("alice", "wrong-" + i)).expect(TCP_BAD_CREDENTIALS);
    }
    c.send(loginJson("alice", "pw-alice")).expect(TCP_TOO_MANY_ATTEMPTS);
    c.send(loginJson("alice", "wrong-again")).expect(TCP_TOO_MANY_ATTEMPTS);
    assertResponse(429, HTTP_TOO_MANY_ATTEMPTS, httpLogin("alice", "pw-alice"));

    // bob, from the same address, is not affected (12 failures < the address limit of 50)
    assertEquals(200, httpLogin("bob", "pw-bob").status());
    expectLoginSuccess(connect(), "bob", "pw-bob");
    assertEquals(3.0, limitedCount("login_user"));
    assertEquals(0.0, limitedCount("login_address"));
  }

  @Test
  @DisplayName("10 failed HTTP logins of one user (existing or not), then 429 'Too many attempts' even with the right password, on TCP too")
  void loginFailuresPerUserOverHttp(Vertx vertx) {
    start(vertx, new JsonObject());
    http.register("alice", "pw-alice");
    for (int i = 0; i < 10; i++) {
      assertResponse(401, HTTP_BAD_CREDENTIALS, httpLogin("alice", "wrong-" + i));
      assertResponse(401, HTTP_BAD_CREDENTIALS, httpLogin("ghost", "wrong-" + i));
    }
    assertResponse(429, HTTP_TOO_MANY_ATTEMPTS, httpLogin("alice", "pw-alice"));
    // a name nobody registered is limited the same way: the limit tells nothing about who exists
    assertResponse(429, HTTP_TOO_MANY_ATTEMPTS, httpLogin("ghost", "anything"));
    connect().send(loginJson("alice", "pw-alice")).expect(TCP_TOO_MANY_ATTEMPTS);
    http.register("carol", "pw-carol");
    assertEquals(200, httpLogin("carol", "pw-carol").status());
  }

  @Test
  @DisplayName("a right password clears the username's failures; failures interleaved with it never reach the limit")
  void successClearsUserCount(Vertx vertx) {
    start(vertx, new JsonObject());
    http.register("alice", "pw-alice");
    for (int round = 0; round < 3; round++) {
      for (int i = 0; i < 9; i++) {
        assertResponse(401, HTTP_BAD_CREDENTIALS, httpLogin("alice", "wrong"));
      }
      assertEquals(200, httpLogin("alice", "pw-alice").status(), "round " + round);
    }
  }

  @Test
  @DisplayName("the per-user window: after loginFailureWindowSeconds from the first failure the user logs in again")
  void loginWindowExpires(Vertx vertx) throws Exception {
    start(vertx, new JsonObject().put("limits.loginFailureWindowSeconds", 2).put("limits.loginFailuresPerUser", 3));
    http.register("alice", "pw-alice");
    long first = System.nanoTime();
    for (int i = 0; i < 3; i++) {
      assertResponse(401, HTTP_BAD_CREDENTIALS, httpLogin("alice", "wrong"));
    }
    assertResponse(429, HTTP_TOO_MANY_ATTEMPTS, httpLogin("alice", "pw-alice"));
    Http.Response r;
    long deadline = first + TimeUnit.SECONDS.toNanos(6);
    do {
      Thread.sleep(100);
      r = httpLogin("alice", "pw-alice");
      if (r.status() != 200) {
        assertResponse(429, HTTP_TOO_MANY_ATTEMPTS, r);
      }
    } while (r.status() != 200 && System.nanoTime() < deadline);
    long elapsedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - first);
    assertEquals(200, r.status(), "still limited " + elapsedMillis + " ms after the first failure: " + r.body());
    assertTrue(elapsedMillis >= 2000, "the limit ended after " + elapsedMillis + " ms, before its 2 s window");
  }

  // ---- failed logins per address ----

  @Test
  @DisplayName("50 failed logins from one address across usernames: then every login from it is refused, resume included; another address is not")
  void loginFailuresPerAddress(Vertx vertx) {
    start(vertx, new JsonObject());
    http.register("carol", "pw-carol");
    http.register("dave", "pw-dave");
    LineClient dave = connect();
    String daveToken = new JsonObject(expectLoginSuccess(dave, "dave", "pw-dave")).getString("token");
    dave.close();

    // 50 failures, at most 5 per username (under the per-user limit of 10), over both listeners,
    // some of them invalid resume tokens, which count against the address too
    LineClient c = connect();
    int failures = 0;
    for (int u = 0; u < 9; u++) {
      for (int i = 0; i < 5; i++) {
        if (i % 2 == 0) {
          c.send(loginJson("user" + u, "wrong")).expect(TCP_BAD_CREDENTIALS);
        } else {
          assertResponse(401, HTTP_BAD_CREDENTIALS, httpLogin("user" + u, "wrong"));
        }
        failures++;
      }
    }
    for (int i = 0; i < 5; i++) {
      c.send(new JsonObject().put("type", "login").put("token", "0".repeat(32)).encode()).expect(INVALID_RESUME_TOKEN);
      failures++;
    }
    assertEquals(50, failures);

    // carol never failed, yet her right password is refused from this address, over both listeners
    c.send(loginJson("carol", "pw-carol")).expect(TCP_TOO_MANY_ATTEMPTS);
    assertResponse(429, HTTP_TOO_MANY_ATTEMPTS, httpLogin("carol", "pw-carol"));
    // and so is a valid resume token
    c.send(new JsonObject().put("type", "login").put("token", daveToken).encode()).expect(TCP_TOO_MANY_ATTEMPTS);
    assertEquals(3.0, limitedCount("login_address"));
    assertEquals(0.0, limitedCount("login_user"));

    // from another address, carol logs in
    RawClient other = connectFrom(OTHER_ADDRESS);
    String reply = other.request(loginJson("carol", "pw-carol"));
    assertTrue(reply.startsWith("{\"type\":\"login\",\"status\":\"success\""), reply);
  }

  @Test
  @DisplayName("a successful login does not clear the address's failures")
  void successDoesNotClearAddressCount(Vertx vertx) {
    start(vertx, new JsonObject().put("limits.loginFailuresPerAddress", 6));
    http.register("alice", "pw-alice");
    for (int i = 0; i < 3; i++) {
      assertResponse(401, HTTP_BAD_CREDENTIALS, httpLogin("x" + i, "wrong"));
      assertResponse(401, HTTP_BAD_CREDENTIALS, httpLogin("y" + i, "wrong"));
      if (i < 2) {
        assertEquals(200, httpLogin("alice", "pw-alice").status(), "after " + 2 * (i + 1) + " failures");
      }
    }
    // 6 failures, interleaved with two successes that did not clear them
    assertResponse(429, HTTP_TOO_MANY_ATTEMPTS, httpLogin("alice", "pw-alice"));
  }

  // ---- chats per user per second ----

  @Test
  @DisplayName("30 pipelined chats: the first 20 are sent, the rest get 'Too many messages' and are not broadcast; others chat; a second later alice chats again")
  void chatRate(Vertx vertx) throws Exception {
    start(vertx, new JsonObject());
    http.register("alice", "pw-alice");
    http.register("bob", "pw-bob");
    LineClient alice = connect();
    String aliceToken = new JsonObject(expectLoginSuccess(alice, "alice", "pw-alice")).getString("token");
    LineClient bob = connect();
    String bobToken = new JsonObject(expectLoginSuccess(bob, "bob", "pw-bob")).getString("token");

    long sent = System.nanoTime();
    alice.send(burst(aliceToken, "m", 30));
    List<String> replies = chatReplies(alice, 30, "alice", "m");
    long elapsedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - sent);
    for (int i = 0; i < 20; i++) {
      assertEquals(CHAT_SENT, replies.get(i), "chat " + i + " of the burst of 20");
    }
    long extra = replies.subList(20, 30).stream().filter(CHAT_SENT::equals).count();
    for (String r : replies.subList(20, 30)) {
      assertTrue(CHAT_SENT.equals(r) || TOO_MANY_MESSAGES.equals(r), r);
    }
    // a token comes back every 50 ms: more than the burst only if the server took that long
    assertTrue(extra <= elapsedMillis / 50, extra + " chats over the burst were sent within " + elapsedMillis + " ms");
    long accepted = 20 + extra;

    // bob received exactly the accepted chats, in order, and nothing of the refused ones
    for (int i = 0; i < accepted; i++) {
      JsonObject b = bob.read();
      assertEquals("alice", b.getString("user"));
      assertEquals("m" + i, b.getString("message"));
    }
    // bob is not limited by alice's rate
    bob.send(chatJson(bobToken, "bob here"));
    String first = bob.readLine();
    String second = bob.readLine();
    assertTrue(CHAT_SENT.equals(first) || CHAT_SENT.equals(second), first + " / " + second);
    assertEquals("bob here", new JsonObject(CHAT_SENT.equals(first) ? second : first).getString("message"));
    assertEquals("bob here", alice.read().getString("message"));
    alice.expectSilence(200);
    assertTrue(limitedCount("chat") >= 30 - accepted);

    // a second after the burst the bucket is full again: 20 more, all sent
    Thread.sleep(1000);
    alice.send(burst(aliceToken, "again", 20));
    List<String> later = chatReplies(alice, 20, "alice", "again");
    for (String r : later) {
      assertEquals(CHAT_SENT, r);
    }
  }

  @Test
  @DisplayName("HTTP chat over the rate gets 429 'Too many messages'; the bucket is shared with the socket")
  void httpChatRate(Vertx vertx) throws Exception {
    // 1 per second: the next token comes a second later, far longer than a few local requests take
    start(vertx, new JsonObject().put("limits.chatMessagesPerSecond", 1));
    http.register("alice", "pw-alice");
    LineClient c = connect();
    String token = c.login("alice", "pw-alice");
    long start = System.nanoTime();
    assertResponse(200, CHAT_SENT, httpChat(token, "one"));
    c.readLine(); // its broadcast
    assertResponse(429, TOO_MANY_MESSAGES, httpChat(token, "two"));
    c.send(chatJson(token, "three")).expect(TOO_MANY_MESSAGES);
    long elapsedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    assertTrue(elapsedMillis < 1000, "the checks took " + elapsedMillis + " ms, longer than the 1 s refill: they proved nothing");
    c.expectSilence(100);
    assertEquals(2.0, limitedCount("chat"));
    Thread.sleep(1000);
    assertResponse(200, CHAT_SENT, httpChat(token, "later"));
  }

  // ---- registrations per address ----

  @Test
  @DisplayName("20 registrations per address: the 21st gets register_-5 (TCP) and 429 (HTTP); failed ones don't count; input errors come first; another address registers")
  void registrationsPerAddress(Vertx vertx) {
    start(vertx, new JsonObject());
    LineClient c = connect();
    for (int i = 0; i < 10; i++) {
      c.send(registerJson("tcpuser" + i, "pw")).expect(REGISTERED);
    }
    // refused registrations do not count
    for (int i = 0; i < 5; i++) {
      c.send(registerJson("tcpuser" + i, "pw")).expect(NAME_TAKEN);
      c.send(registerJson("fresh" + i, "")).expect(BAD_PASSWORD);
    }
    for (int i = 0; i < 10; i++) {
      assertResponse(200, REGISTERED, httpRegister("httpuser" + i, "pw"));
    }
    c.send(registerJson("one-too-many", "pw")).expect(TOO_MANY_REGISTRATIONS);
    assertResponse(429, TOO_MANY_REGISTRATIONS, httpRegister("one-too-many", "pw"));
    // checked before the database: a taken name from this address gets register_-5 too
    c.send(registerJson("tcpuser0", "pw")).expect(TOO_MANY_REGISTRATIONS);
    // and after the input checks: bad input keeps its own reply
    c.send(registerJson("1bad", "pw")).expect(TCP_BAD_USERNAME);
    assertEquals(3.0, limitedCount("registration"));

    // the refused user was not created, and the users that were can log in
    assertResponse(401, HTTP_BAD_CREDENTIALS, httpLogin("one-too-many", "pw"));
    assertEquals(200, httpLogin("httpuser9", "pw").status());

    RawClient other = connectFrom(OTHER_ADDRESS);
    assertEquals(REGISTERED, other.request(registerJson("elsewhere", "pw")));
  }

  @Test
  @DisplayName("the registration window: after registrationWindowSeconds the address registers again")
  void registrationWindowExpires(Vertx vertx) throws Exception {
    start(vertx, new JsonObject().put("limits.registrationsPerAddress", 2).put("limits.registrationWindowSeconds", 2));
    long first = System.nanoTime();
    assertResponse(200, REGISTERED, httpRegister("a1", "pw"));
    assertResponse(200, REGISTERED, httpRegister("a2", "pw"));
    assertResponse(429, TOO_MANY_REGISTRATIONS, httpRegister("a3", "pw"));
    Http.Response r;
    long deadline = first + TimeUnit.SECONDS.toNanos(6);
    int attempt = 0;
    do {
      Thread.sleep(100);
      r = httpRegister("b" + attempt++, "pw");
      if (r.status() != 200) {
        assertResponse(429, TOO_MANY_REGISTRATIONS, r);
      }
    } while (r.status() != 200 && System.nanoTime() < deadline);
    long elapsedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - first);
    assertEquals(200, r.status(), "still limited after " + elapsedMillis + " ms: " + r.body());
    assertTrue(elapsedMillis >= 2000, "the limit ended after " + elapsedMillis + " ms, before its 2 s window");
  }

  // ---- switches ----

  @Test
  @DisplayName("limits.enabled=false: 200 pipelined chats all sent, 100 failed logins never limited, 30 registrations from one address")
  void globalSwitchOff(Vertx vertx) {
    start(vertx, new JsonObject().put("limits.enabled", false));
    LineClient c = connect();
    for (int i = 0; i < 30; i++) {
      c.send(registerJson("user" + i, "pw")).expect(REGISTERED);
    }
    for (int i = 0; i < 100; i++) {
      if (i % 2 == 0) {
        c.send(loginJson("user0", "wrong")).expect(TCP_BAD_CREDENTIALS);
      } else {
        assertResponse(401, HTTP_BAD_CREDENTIALS, httpLogin("user0", "wrong"));
      }
    }
    String token = new JsonObject(expectLoginSuccess(c, "user0", "pw")).getString("token");
    c.send(burst(token, "b", 200));
    List<String> replies = chatReplies(c, 200, "user0", "b");
    for (String r : replies) {
      assertEquals(CHAT_SENT, r);
    }
    assertEquals(0.0, limitedCount("chat") + limitedCount("login_user") + limitedCount("login_address")
        + limitedCount("registration"));
  }

  @Test
  @DisplayName("limits.chatMessagesPerSecond=0 turns only the chat limit off: 200 chats sent, logins still limited")
  void chatLimitOffOnly(Vertx vertx) {
    start(vertx, new JsonObject().put("limits.chatMessagesPerSecond", 0));
    http.register("alice", "pw-alice");
    LineClient c = connect();
    String token = new JsonObject(expectLoginSuccess(c, "alice", "pw-alice")).getString("token");
    c.send(burst(token, "b", 200));
    for (String r : chatReplies(c, 200, "alice", "b")) {
      assertEquals(CHAT_SENT, r);
    }
    for (int i = 0; i < 10; i++) {
      assertResponse(401, HTTP_BAD_CREDENTIALS, httpLogin("alice", "wrong"));
    }
    assertResponse(429, HTTP_TOO_MANY_ATTEMPTS, httpLogin("alice", "pw-alice"));
  }

  @Test
  @DisplayName("limits.loginFailuresPerUser=0 turns only that limit off: 40 failures on one user, then the right password works; the address limit still holds")
  void userLimitOffOnly(Vertx vertx) {
    start(vertx, new JsonObject().put("limits.loginFailuresPerUser", 0));
    http.register("alice", "pw-alice");
    for (int i = 0; i < 40; i++) {
      assertResponse(401, HTTP_BAD_CREDENTIALS, httpLogin("alice", "wrong"));
    }
    assertEquals(200, httpLogin("alice", "pw-alice").status());
    for (int i = 0; i < 10; i++) {
      assertResponse(401, HTTP_BAD_CREDENTIALS, httpLogin("bob", "wrong"));
    }
    assertResponse(429, HTTP_TOO_MANY_ATTEMPTS, httpLogin("alice", "pw-alice"));
  }

  @Test
  @DisplayName("limits.loginFailuresPerAddress=0 and registrationsPerAddress=0 turn only those off: 60 failures across users, 25 registrations; the user limit still holds")
  void addressLimitsOffOnly(Vertx vertx) {
    start(vertx, new JsonObject().put("limits.loginFailuresPerAddress", 0).put("limits.registrationsPerAddress", 0));
    for (int i = 0; i < 25; i++) {
      assertResponse(200, REGISTERED, httpRegister("user" + i, "pw"));
    }
    for (int u = 0; u < 6; u++) {
      for (int i = 0; i < 10; i++) {
        assertResponse(401, HTTP_BAD_CREDENTIALS, httpLogin("user" + u, "wrong"));
      }
    }
    assertEquals(200, httpLogin("user20", "pw").status());
    assertResponse(429, HTTP_TOO_MANY_ATTEMPTS, httpLogin("user0", "pw"));
  }

  @Test
  @DisplayName("many people behind one address log in at once: only failures count against the address")
  void concurrentLoginsFromOneAddressAreNotLimited(Vertx vertx) {
    // more simultaneous logins than limits.loginFailuresPerAddress (default 50) allows failures
    start(vertx, new JsonObject().put("limits.registrationsPerAddress", 0));
    int users = 80;
    List<LineClient> clients = new ArrayList<>();
    for (int i = 0; i < users; i++) {
      LineClient c = connect();
      c.send(registerJson("nat" + i, "pw-nat" + i));
      assertEquals(REGISTERED, c.readLine());
      clients.add(c);
    }
    for (int i = 0; i < users; i++) {
      clients.get(i).send(loginJson("nat" + i, "pw-nat" + i));
    }
    for (int i = 0; i < users; i++) {
      JsonObject reply = clients.get(i).read();
      assertEquals("success", reply.getString("status"), "login " + i + " of " + users + ": " + reply.encode());
    }
    // failures still count: the default limit of 50 failures per address is reached and then holds
    LineClient guesser = connect();
    for (int i = 0; i < 50; i++) {
      guesser.send(loginJson("nat" + (i % users), "wrong"));
      assertEquals(TCP_BAD_CREDENTIALS, guesser.readLine());
    }
    guesser.send(loginJson("nobody", "wrong"));
    assertEquals(TCP_TOO_MANY_ATTEMPTS, guesser.readLine());
  }
}
