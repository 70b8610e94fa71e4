package chat;

import chat.support.Http;
import chat.support.LineClient;
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

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** PROTOCOL.md §4.3 (one socket session per user), §3.2 (HTTP 409), §4.4 error_Nli and §4.6 heartbeat. */
@ExtendWith(VertxExtension.class)
class SessionRulesTest {

  private static final String PING = "{\"type\":\"ping\"}";
  private static final String ALREADY_LOGGED_IN =
      "{\"type\":\"login\",\"status\":\"error_-1\",\"message\":\"Account already logged in\"}";
  private static final String BAD_CREDENTIALS =
      "{\"type\":\"login\",\"status\":\"error_0\",\"message\":\"Invalid credentials\"}";
  private static final String INVALID_RESUME_TOKEN =
      "{\"type\":\"login\",\"status\":\"error_It\",\"message\":\"Invalid token\"}";
  private static final String HTTP_ALREADY_LOGGED_IN =
      "{\"type\":\"login\",\"status\":\"error_0\",\"message\":\"Account already logged in\"}";
  private static final String HTTP_BAD_CREDENTIALS =
      "{\"type\":\"login_0\",\"status\":\"error\",\"message\":\"Invalid credentials\"}";
  private static final String CHAT_SENT = "{\"type\":\"chat\",\"status\":\"success\"}";
  private static final String CHAT_NOT_LOGGED_IN =
      "{\"type\":\"chat\",\"status\":\"error_Nli\",\"message\":\"Not logged in\"}";
  private static final String HEARTBEAT_OK = "{\"type\":\"heartbeat\",\"status\":\"success\"}";
  private static final String HEARTBEAT_ERROR = "{\"type\":\"heartbeat\",\"status\":\"error\"}";

  @TempDir
  Path dir;
  TestServer server;
  Http http;
  private final List<LineClient> clients = new ArrayList<>();

  @BeforeEach
  void start(Vertx vertx) {
    server = TestServer.start(vertx, dir);
    http = server.http();
  }

  @AfterEach
  void stop() {
    clients.forEach(LineClient::close);
    server.close();
  }

  // ---- helpers ----

  private LineClient connect() {
    LineClient c = server.connect();
    clients.add(c);
    return c;
  }

  private static String loginJson(String user, String password) {
    return new JsonObject().put("type", "login").put("username", user).put("password", password).encode();
  }

  private static String resumeJson(String token) {
    return new JsonObject().put("type", "login").put("token", token).encode();
  }

  private static String chatJson(String token, String message) {
    return new JsonObject().put("type", "chat").put("token", token).put("message", message).encode();
  }

  private static String heartbeatJson(String token) {
    return new JsonObject().put("type", "heartbeat").put("token", token).encode();
  }

  private static String successLine(String token, String user) {
    return "{\"type\":\"login\",\"status\":\"success\",\"message\":\"Login successful\",\"token\":\"" + token
        + "\",\"username\":\"" + user + "\",\"avatar\":\"/avatar/" + user + "/default_avatar.png\"}";
  }

  /** The next raw line that is not the documented ping probe. */
  private static String lineSkippingPings(LineClient c) {
    while (true) {
      String line = c.readLine();
      if (!PING.equals(line)) {
        return line;
      }
    }
  }

  /** Sends {@code request} on {@code c} until its reply is no longer {@code whileReply}, for at most ~2 s. */
  private static String retryWhile(LineClient c, String request, String whileReply) {
    return retry(() -> lineSkippingPings(c.send(request)), whileReply::equals);
  }

  /** Repeats {@code attempt} while {@code again} holds for its result, for at most ~2 s (closes are processed asynchronously). */
  private static <T> T retry(Supplier<T> attempt, Predicate<T> again) {
    long deadline = System.nanoTime() + 2_000_000_000L;
    T result = attempt.get();
    while (again.test(result) && System.nanoTime() < deadline) {
      try {
        Thread.sleep(25);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        fail("interrupted");
      }
      result = attempt.get();
    }
    return result;
  }

  /** Registers over HTTP and logs in on a fresh connection; returns the token. */
  private String online(LineClient c, String user) {
    http.register(user, "pw-" + user);
    return c.login(user, "pw-" + user);
  }

  /** The sender's success reply and its own broadcast, in either order; returns the broadcast line. */
  private static String chatRoundTrip(LineClient c, String token, String message) {
    c.send(chatJson(token, message));
    String a = lineSkippingPings(c);
    assertTrue(CHAT_SENT.equals(a) || a.startsWith("{\"type\":\"chat\",\"user\":"), "the chat was refused: " + a);
    String b = lineSkippingPings(c);
    if (CHAT_SENT.equals(a)) {
      return b;
    }
    assertEquals(CHAT_SENT, b, "no success reply among " + a + " / " + b);
    return a;
  }

  // ---- tests ----

  @Test
  @DisplayName("a second login of a logged-in user is refused with error_-1, on another connection and on the same one")
  void secondLoginRefused() {
    LineClient holder = connect();
    String token = online(holder, "alice");

    LineClient other = connect();
    other.send(loginJson("alice", "pw-alice"));
    assertEquals(ALREADY_LOGGED_IN, other.readLine());

    holder.send(loginJson("alice", "pw-alice"));
    assertEquals(ALREADY_LOGGED_IN, lineSkippingPings(holder));

    // the refused attempts changed nothing: the holder still chats, the other connection still receives nothing
    String broadcast = chatRoundTrip(holder, token, "still here");
    assertTrue(broadcast.startsWith("{\"type\":\"chat\",\"user\":\"alice\",\"message\":\"still here\""), broadcast);
    other.send(chatJson(token, "from other"));
    assertEquals(CHAT_SENT, other.readLine());
    other.expectSilence(300);
  }

  @Test
  @DisplayName("a wrong password for an online user gets error_0 on the socket and 401 over HTTP, never error_-1 or 409")
  void wrongPasswordForOnlineUser() {
    LineClient holder = connect();
    online(holder, "alice");

    LineClient stranger = connect();
    stranger.send(loginJson("alice", "not-the-password"));
    assertEquals(BAD_CREDENTIALS, stranger.readLine());
    stranger.send(loginJson("alice", "pw-alice"));
    assertEquals(ALREADY_LOGGED_IN, stranger.readLine());

    holder.send(loginJson("alice", "wrong"));
    assertEquals(BAD_CREDENTIALS, lineSkippingPings(holder));

    Http.Response r = http.post("/api/login", new JsonObject().put("username", "alice").put("password", "wrong").encode());
    assertEquals(401, r.status());
    assertEquals(HTTP_BAD_CREDENTIALS, r.body());
  }

  @Test
  @DisplayName("the session ends when its connection closes: the user logs in again at once on a new connection")
  void sessionReleasedOnDisconnect() {
    LineClient first = connect();
    online(first, "alice");
    first.close();

    LineClient second = connect();
    String reply = retryWhile(second, loginJson("alice", "pw-alice"), ALREADY_LOGGED_IN);
    JsonObject json = new JsonObject(reply);
    assertEquals(successLine(json.getString("token"), "alice"), reply);
    assertTrue(json.getString("token").matches("[0-9a-f]{32}"), reply);

    // and the new connection now holds it
    LineClient third = connect();
    third.send(loginJson("alice", "pw-alice"));
    assertEquals(ALREADY_LOGGED_IN, third.readLine());
  }

  @Test
  @DisplayName("a connection that logs in as another user moves to that user, frees the first, and frees the second on close")
  void rebindingToAnotherUser() {
    http.register("bob", "pw-bob");
    LineClient x = connect();
    online(x, "alice");
    String bobToken = x.login("bob", "pw-bob");

    // alice is free at once: the switch released her before answering
    LineClient y = connect();
    y.send(loginJson("alice", "pw-alice"));
    String aliceReply = y.readLine();
    assertEquals(successLine(new JsonObject(aliceReply).getString("token"), "alice"), aliceReply);

    // bob is held by x
    LineClient z = connect();
    z.send(loginJson("bob", "pw-bob"));
    assertEquals(ALREADY_LOGGED_IN, z.readLine());
    String broadcast = chatRoundTrip(x, bobToken, "I am bob now");
    assertTrue(broadcast.startsWith("{\"type\":\"chat\",\"user\":\"bob\",\"message\":\"I am bob now\""), broadcast);
    assertTrue(y.readLine().startsWith("{\"type\":\"chat\",\"user\":\"bob\",\"message\":\"I am bob now\""));

    // closing x frees bob, and only bob
    x.close();
    String bobAgain = retryWhile(z, loginJson("bob", "pw-bob"), ALREADY_LOGGED_IN);
    assertEquals(successLine(new JsonObject(bobAgain).getString("token"), "bob"), bobAgain);
    LineClient w = connect();
    w.send(loginJson("alice", "pw-alice"));
    assertEquals(ALREADY_LOGGED_IN, w.readLine());
  }

  @Test
  @DisplayName("a refused login as another user leaves the connection bound to its own user")
  void refusedSwitchKeepsSession() {
    LineClient x = connect();
    String aliceToken = online(x, "alice");
    LineClient z = connect();
    online(z, "bob");

    x.send(loginJson("bob", "pw-bob"));
    assertEquals(ALREADY_LOGGED_IN, lineSkippingPings(x));
    x.send(loginJson("bob", "wrong"));
    assertEquals(BAD_CREDENTIALS, lineSkippingPings(x));
    x.send(resumeJson("0123456789abcdef0123456789abcdef"));
    assertEquals(INVALID_RESUME_TOKEN, lineSkippingPings(x));

    // x still holds alice and receives broadcasts; z still holds bob
    String broadcast = chatRoundTrip(x, aliceToken, "still alice");
    assertTrue(broadcast.startsWith("{\"type\":\"chat\",\"user\":\"alice\",\"message\":\"still alice\","), broadcast);
    assertTrue(lineSkippingPings(z).startsWith("{\"type\":\"chat\",\"user\":\"alice\",\"message\":\"still alice\","));
    LineClient w = connect();
    w.send(loginJson("alice", "pw-alice"));
    assertEquals(ALREADY_LOGGED_IN, w.readLine());
    w.send(loginJson("bob", "pw-bob"));
    assertEquals(ALREADY_LOGGED_IN, w.readLine());
  }

  @Test
  @DisplayName("a token resume as another user moves the connection to that user and frees the first")
  void resumeSwitchesUser() {
    http.register("bob", "pw-bob");
    String bobToken = http.login("bob", "pw-bob");
    LineClient x = connect();
    online(x, "alice");

    x.send(resumeJson(bobToken));
    assertEquals(successLine(bobToken, "bob"), x.readLine());
    LineClient y = connect();
    y.send(loginJson("alice", "pw-alice"));
    String alice = y.readLine();
    assertEquals(successLine(new JsonObject(alice).getString("token"), "alice"), alice);
    y.send(loginJson("bob", "pw-bob"));
    assertEquals(ALREADY_LOGGED_IN, y.readLine());
  }

  @Test
  @DisplayName("a login whose connection closes before the reply leaves no session behind")
  void loginAbandonedInFlight() {
    http.register("alice", "pw-alice");
    for (int i = 0; i < 5; i++) {
      LineClient leaving = connect();
      leaving.send(loginJson("alice", "pw-alice"));
      leaving.close();
    }
    LineClient c = connect();
    String reply = retryWhile(c, loginJson("alice", "pw-alice"), ALREADY_LOGGED_IN);
    assertEquals(successLine(new JsonObject(reply).getString("token"), "alice"), reply);
  }

  @Test
  @DisplayName("HTTP login answers 409 while the user has a socket session and 200 once it is closed")
  void httpLoginConflictsWithSocketSession() {
    LineClient holder = connect();
    String holderToken = online(holder, "alice");
    String body = new JsonObject().put("username", "alice").put("password", "pw-alice").encode();

    Http.Response conflict = http.post("/api/login", body);
    assertEquals(409, conflict.status());
    assertEquals(HTTP_ALREADY_LOGGED_IN, conflict.body());
    // the refused HTTP login leaves the holder's session alone (the holder may be probed with a ping)
    holder.send(heartbeatJson(holderToken));
    assertEquals(HEARTBEAT_OK, lineSkippingPings(holder));

    holder.close();
    Http.Response ok = retry(() -> http.post("/api/login", body), r -> r.status() == 409);
    assertEquals(200, ok.status(), ok.body());
    String token = ok.json().getString("token");
    assertEquals("{\"type\":\"login_1\",\"status\":\"success\",\"token\":\"" + token
        + "\",\"avatar\":\"/avatar/alice/default_avatar.png\"}", ok.body());

    // the HTTP login opened no socket session: a socket login still succeeds
    LineClient again = connect();
    again.send(loginJson("alice", "pw-alice"));
    String reply = again.readLine();
    assertEquals(successLine(new JsonObject(reply).getString("token"), "alice"), reply);
  }

  @Test
  @DisplayName("the token of an HTTP login chats on a socket only while its user has a socket session (error_Nli before)")
  void httpTokenNeedsSocketSessionForSocketChat() {
    http.register("bob", "pw-bob");
    String httpToken = http.login("bob", "pw-bob");

    LineClient anonymous = connect();
    anonymous.send(chatJson(httpToken, "too early"));
    assertEquals(CHAT_NOT_LOGGED_IN, anonymous.readLine());

    LineClient bobSocket = connect();
    String socketToken = bobSocket.login("bob", "pw-bob");
    assertNotEquals(httpToken, socketToken, "each login issues its own token");

    // the author is the token's user, whichever connection sends it
    anonymous.send(chatJson(httpToken, "now it works"));
    assertEquals(CHAT_SENT, anonymous.readLine());
    String broadcast = bobSocket.readLine();
    assertTrue(broadcast.startsWith("{\"type\":\"chat\",\"user\":\"bob\",\"message\":\"now it works\","), broadcast);
    anonymous.expectSilence(300);

    bobSocket.close();
    String after = retryWhile(anonymous, chatJson(httpToken, "gone again"), CHAT_SENT);
    assertEquals(CHAT_NOT_LOGGED_IN, after);
  }

  @Test
  @DisplayName("token resume binds a fresh connection after the first closed and returns the same token")
  void tokenResumeAfterReconnect() {
    LineClient first = connect();
    String token = online(first, "alice");
    first.close();

    LineClient second = connect();
    String reply = retryWhile(second, resumeJson(token), ALREADY_LOGGED_IN);
    assertEquals(successLine(token, "alice"), reply);

    // the resumed connection holds the session and receives broadcasts
    String broadcast = chatRoundTrip(second, token, "back again");
    assertTrue(broadcast.startsWith("{\"type\":\"chat\",\"user\":\"alice\",\"message\":\"back again\","), broadcast);
    LineClient third = connect();
    third.send(loginJson("alice", "pw-alice"));
    assertEquals(ALREADY_LOGGED_IN, third.readLine());
  }

  @Test
  @DisplayName("token resume is refused with error_-1 while another connection holds the session")
  void tokenResumeRefusedWhileHeld() {
    LineClient holder = connect();
    String token = online(holder, "alice");

    LineClient other = connect();
    other.send(resumeJson(token));
    assertEquals(ALREADY_LOGGED_IN, other.readLine());
    other.send(new JsonObject().put("type", "login").put("token", token).put("username", "alice").encode());
    assertEquals(ALREADY_LOGGED_IN, other.readLine());

    // the holder keeps its session
    String broadcast = chatRoundTrip(holder, token, "mine");
    assertTrue(broadcast.startsWith("{\"type\":\"chat\",\"user\":\"alice\",\"message\":\"mine\","), broadcast);
    other.expectSilence(200);
  }

  @Test
  @DisplayName("token resume with an unknown token or another user's name gets error_It and binds nothing")
  void tokenResumeInvalid() {
    http.register("alice", "pw-alice");
    http.register("bob", "pw-bob");
    String aliceToken = http.login("alice", "pw-alice");

    LineClient c = connect();
    c.send(resumeJson("0123456789abcdef0123456789abcdef"));
    assertEquals(INVALID_RESUME_TOKEN, c.readLine());
    c.send(resumeJson(""));
    assertEquals(INVALID_RESUME_TOKEN, c.readLine());
    c.send(new JsonObject().put("type", "login").put("token", aliceToken).put("username", "bob").encode());
    assertEquals(INVALID_RESUME_TOKEN, c.readLine());

    // nothing was bound: alice and bob are both free
    c.send(heartbeatJson(aliceToken));
    assertEquals(HEARTBEAT_ERROR, c.readLine());
    LineClient b = connect();
    b.send(loginJson("bob", "pw-bob"));
    String bob = b.readLine();
    assertEquals(successLine(new JsonObject(bob).getString("token"), "bob"), bob);

    // with the right name the same token binds
    c.send(new JsonObject().put("type", "login").put("token", aliceToken).put("username", "alice").encode());
    assertEquals(successLine(aliceToken, "alice"), c.readLine());
  }

  @Test
  @DisplayName("heartbeat succeeds only for a valid token whose user holds a live socket session")
  void heartbeatNeedsLiveSession() {
    http.register("bob", "pw-bob");
    String httpOnlyToken = http.login("bob", "pw-bob");

    LineClient holder = connect();
    String token = online(holder, "alice");
    holder.send(heartbeatJson(token));
    assertEquals(HEARTBEAT_OK, holder.readLine());

    LineClient other = connect();
    other.send(heartbeatJson(token));
    assertEquals(HEARTBEAT_OK, other.readLine(), "the token's user is online, from whichever connection");
    other.send(heartbeatJson(httpOnlyToken));
    assertEquals(HEARTBEAT_ERROR, other.readLine(), "bob has no socket session");
    other.send(heartbeatJson("0123456789abcdef0123456789abcdef"));
    assertEquals(HEARTBEAT_ERROR, other.readLine());
    other.send("{\"type\":\"heartbeat\"}");
    assertEquals(HEARTBEAT_ERROR, other.readLine());
    other.send("{\"type\":\"heartbeat\",\"token\":\"\"}");
    assertEquals(HEARTBEAT_ERROR, other.readLine());
    other.send("{\"type\":\"heartbeat\",\"token\":42}");
    assertEquals(HEARTBEAT_ERROR, other.readLine());

    holder.close();
    assertEquals(HEARTBEAT_ERROR, retryWhile(other, heartbeatJson(token), HEARTBEAT_OK));
  }
}
