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

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every row of PROTOCOL.md §4.2-§4.4 and §4.6, and the framing rules of §4.1, over a real socket. */
@ExtendWith(VertxExtension.class)
class TcpApiTest {

  // ---- the documented lines, verbatim from PROTOCOL.md ----
  private static final String INVALID_JSON = "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Invalid JSON\"}";
  private static final String TOO_LARGE = "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Message too large\"}";
  private static final String UNKNOWN_TYPE = "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Unknown message type\"}";
  private static final String REGISTERED = "{\"type\":\"register_1\",\"error\":false,\"message\":\"User registered successfully\"}";
  private static final String NAME_TAKEN = "{\"type\":\"register_0\",\"success\":false,\"message\":\"Username already exists\"}";
  private static final String BAD_USERNAME = "{\"type\":\"register_-2\",\"success\":false,\"message\":\"Invalid username format\"}";
  private static final String BAD_AVATAR = "{\"type\":\"register_-3\",\"success\":false,\"message\":\"Invalid avatar format. Only .png or .jpg allowed\"}";
  private static final String BAD_PASSWORD = "{\"type\":\"register_-4\",\"success\":false,\"message\":\"Invalid password. Must be 1-1024 characters\"}";
  private static final String ALREADY_LOGGED_IN = "{\"type\":\"login\",\"status\":\"error_-1\",\"message\":\"Account already logged in\"}";
  private static final String BAD_CREDENTIALS = "{\"type\":\"login\",\"status\":\"error_0\",\"message\":\"Invalid credentials\"}";
  private static final String INVALID_RESUME_TOKEN = "{\"type\":\"login\",\"status\":\"error_It\",\"message\":\"Invalid token\"}";
  private static final String CHAT_SENT = "{\"type\":\"chat\",\"status\":\"success\"}";
  private static final String MISSING_TOKEN = "{\"type\":\"chat\",\"status\":\"error_Mt\",\"message\":\"Missing token\"}";
  private static final String INVALID_TOKEN = "{\"type\":\"chat\",\"status\":\"error_It\",\"message\":\"Invalid token\"}";
  private static final String NOT_LOGGED_IN = "{\"type\":\"chat\",\"status\":\"error_Nli\",\"message\":\"Not logged in\"}";
  private static final String MISSING_MESSAGE = "{\"type\":\"chat\",\"status\":\"error\",\"message\":\"Missing message\"}";
  private static final String TOO_LONG = "{\"type\":\"chat\",\"status\":\"error\",\"message\":\"Message too long\"}";
  private static final String HEARTBEAT_OK = "{\"type\":\"heartbeat\",\"status\":\"success\"}";
  private static final String HEARTBEAT_ERROR = "{\"type\":\"heartbeat\",\"status\":\"error\"}";
  private static final String PING = "{\"type\":\"ping\"}";

  private static final String UNKNOWN_HEX_TOKEN = "0123456789abcdef0123456789abcdef";
  private static final String DEFAULT_AVATAR_URL = "/avatar/alice/default_avatar.png";

  @TempDir
  Path dir;
  TestServer server;
  Http http;

  @BeforeEach
  void start(Vertx vertx) {
    server = TestServer.start(vertx, dir);
    http = server.http();
  }

  @AfterEach
  void stop() {
    server.close();
  }

  // ---- helpers ----

  /** The next line that is not a {@code {"type":"ping"}} probe (§4.3: clients ignore ping). */
  private static String nextLine(LineClient c) {
    while (true) {
      String line = c.readLine();
      if (!PING.equals(line)) {
        return line;
      }
    }
  }

  private static void expect(LineClient c, String exact) {
    assertEquals(exact, nextLine(c));
  }

  private static JsonObject msg(String type) {
    return new JsonObject().put("type", type);
  }

  private static JsonObject register(String username, String password) {
    return msg("register").put("username", username).put("password", password);
  }

  private static JsonObject login(String username, String password) {
    return msg("login").put("username", username).put("password", password);
  }

  private static JsonObject resume(String token) {
    return msg("login").put("token", token);
  }

  private static JsonObject chat(String token, String message) {
    return msg("chat").put("token", token).put("message", message);
  }

  private static JsonObject heartbeat(String token) {
    return msg("heartbeat").put("token", token);
  }

  /** Asserts the documented §4.3 success line, with any 32-hex token; returns the token. */
  private static String assertLoginSuccess(String username, String avatarUrl, String line) {
    Matcher m = Pattern.compile(Pattern.quote("{\"type\":\"login\",\"status\":\"success\",\"message\":\"Login successful\",\"token\":\"")
        + "([0-9a-f]{32})" + Pattern.quote("\",\"username\":\"" + username + "\",\"avatar\":\"" + avatarUrl + "\"}")).matcher(line);
    assertTrue(m.matches(), "login reply: " + line);
    return m.group(1);
  }

  /** Logs in on {@code c} with a password, asserting the exact success line; returns the token. */
  private static String socketLogin(LineClient c, String username, String password, String avatarUrl) {
    c.send(login(username, password));
    return assertLoginSuccess(username, avatarUrl, nextLine(c));
  }

  /**
   * A §4.5 broadcast: the documented keys in their order, then only extra keys. {@code jsonMessage}
   * is the message as it appears inside the JSON string (escapes included).
   */
  private static void assertBroadcast(String user, String jsonMessage, String avatar, String line) {
    String prefix = "{\"type\":\"chat\",\"user\":\"" + user + "\",\"message\":\"" + jsonMessage + "\",\"avatar\":\"" + avatar + "\"";
    assertTrue(line.startsWith(prefix), "broadcast: " + line);
    assertTrue(line.substring(prefix.length()).matches("(,\"[A-Za-z]+\":(-?[0-9]+|\"[^\"]*\"))*\\}"), "broadcast: " + line);
  }

  /** The sender gets the success reply and its own broadcast, in either order (§4.5); returns the broadcast. */
  private static String expectSentAndBroadcast(LineClient c, String user, String jsonMessage, String avatar) {
    String first = nextLine(c);
    String second = nextLine(c);
    boolean replyFirst = CHAT_SENT.equals(first);
    String reply = replyFirst ? first : second;
    String broadcast = replyFirst ? second : first;
    assertEquals(CHAT_SENT, reply, "lines: " + first + " / " + second);
    assertBroadcast(user, jsonMessage, avatar, broadcast);
    return broadcast;
  }

  /** Proves that everything sent before was answered and nothing else is pending: the next line is the reply to this probe. */
  private static void expectNothingElse(LineClient c) {
    c.send(msg("no-such-type"));
    assertEquals(UNKNOWN_TYPE, nextLine(c));
  }

  private static String padded(String head, int totalBytes) {
    String tail = "\"}";
    int n = totalBytes - head.getBytes(StandardCharsets.UTF_8).length - tail.length();
    return head + "x".repeat(n) + tail;
  }

  private void breakDatabase() throws Exception {
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + server.db());
         Statement st = c.createStatement()) {
      st.execute("ALTER TABLE users RENAME TO users_gone");
    }
  }

  // ---- §4.2 register ----

  @Test
  @DisplayName("§4.2 created: register_1; the same name again: register_0")
  void registerCreatedThenNameTaken() {
    try (LineClient c = server.connect()) {
      c.send(register("alice", "secret"));
      expect(c, REGISTERED);
      c.send(register("alice", "secret"));
      expect(c, NAME_TAKEN);
      c.send(register("alice", "other").put("avatar", "me.png"));
      expect(c, NAME_TAKEN);
      c.send(register("Alice", "secret"));
      expect(c, REGISTERED);
    }
  }

  @Test
  @DisplayName("§4.2 bad, missing or non-string username: register_-2 Invalid username format")
  void registerBadUsername() {
    List<JsonObject> bodies = List.of(
        msg("register").put("password", "pw"),
        msg("register").putNull("username").put("password", "pw"),
        msg("register").put("username", 12).put("password", "pw"),
        msg("register").put("username", new JsonObject()).put("password", "pw"),
        register("a", "pw"), register("b".repeat(21), "pw"), register("1abc", "pw"),
        register("alice\n", "pw"), register("a b", "pw"), register("h\u00e9llo", "pw"), register("", "pw"));
    try (LineClient c = server.connect()) {
      for (JsonObject body : bodies) {
        c.send(body);
        expect(c, BAD_USERNAME);
      }
      c.send(register("ab", "pw"));
      expect(c, REGISTERED);
      c.send(register("_!@#$%^&+-~?" + "a1", "pw"));
      expect(c, REGISTERED);
    }
  }

  @Test
  @DisplayName("§4.2 bad avatar: register_-3")
  void registerBadAvatar() {
    List<Object> bad = List.of("x.gif", "../a.png", ".png", "a/b.png", "a\\b.png", "a\u0000.png", "a\u0002.png",
        "d".repeat(61) + ".png", 7);
    try (LineClient c = server.connect()) {
      for (Object avatar : bad) {
        c.send(register("alice", "pw").put("avatar", avatar));
        expect(c, BAD_AVATAR);
      }
      c.send(register("alice", "pw").put("avatar", "OK.JPG"));
      expect(c, REGISTERED);
    }
  }

  @Test
  @DisplayName("§4.2 bad password (missing, null, empty, non-string, 1025 characters): register_-4")
  void registerBadPassword() {
    List<JsonObject> bodies = List.of(
        msg("register").put("username", "alice"),
        msg("register").put("username", "alice").putNull("password"),
        register("alice", ""),
        msg("register").put("username", "alice").put("password", 1234),
        register("alice", "p".repeat(1025)));
    try (LineClient c = server.connect()) {
      for (JsonObject body : bodies) {
        c.send(body);
        expect(c, BAD_PASSWORD);
      }
      c.send(register("alice", "p".repeat(1024)));
      expect(c, REGISTERED);
    }
  }

  @Test
  @DisplayName("§2 a password with a lone surrogate is refused (it would hash like '?'); '?' does not log in as '\\ud800' nor the reverse")
  void loneSurrogatePassword() {
    try (LineClient c = server.connect()) {
      for (String pw : List.of("\\ud800", "a\\udc00", "\\ud800\\ud800", "x\\udbff")) {
        c.send("{\"type\":\"register\",\"username\":\"lone\",\"password\":\"" + pw + "\"}");
        expect(c, BAD_PASSWORD);
      }
      c.send("{\"type\":\"register\",\"username\":\"lone\",\"password\":\"?\"}");
      expect(c, REGISTERED);
      c.send("{\"type\":\"login\",\"username\":\"lone\",\"password\":\"\\ud800\"}");
      expect(c, BAD_CREDENTIALS);
      c.send("{\"type\":\"register\",\"username\":\"pair\",\"password\":\"\\ud83d\\ude00\"}");
      expect(c, REGISTERED);
      c.send("{\"type\":\"login\",\"username\":\"pair\",\"password\":\"\\ud83d\\ude00\"}");
      assertTrue(nextLine(c).startsWith("{\"type\":\"login\",\"status\":\"success\""));
    }
  }

  @Test
  @DisplayName("§4.2 validation order: username, then avatar, then password, then the database")
  void registerValidationOrder() {
    try (LineClient c = server.connect()) {
      c.send(register("taken", "pw"));
      expect(c, REGISTERED);
      c.send(msg("register").put("username", "9").put("avatar", "x.gif").put("password", ""));
      expect(c, BAD_USERNAME);
      c.send(msg("register").put("username", "fresh").put("avatar", "x.gif").put("password", ""));
      expect(c, BAD_AVATAR);
      c.send(msg("register").put("username", "fresh").put("avatar", "ok.png").put("password", ""));
      expect(c, BAD_PASSWORD);
      c.send(msg("register").put("username", "taken").put("avatar", "x.gif").put("password", "pw"));
      expect(c, BAD_AVATAR);
      c.send(msg("register").put("username", "taken").put("password", ""));
      expect(c, BAD_PASSWORD);
    }
  }

  @Test
  @DisplayName("§4.2 database error: register_-1 with a short reason")
  void registerDatabaseError() throws Exception {
    breakDatabase();
    try (LineClient c = server.connect()) {
      c.send(register("bob", "pw"));
      String line = nextLine(c);
      assertTrue(line.matches("\\{\"type\":\"register_-1\",\"error\":true,\"message\":\"[^\"]{1,100}\"\\}"), line);
      String reason = new JsonObject(line).getString("message").toLowerCase(Locale.ROOT);
      for (String leak : List.of("sql", "exception", "table", "users")) {
        assertFalse(reason.contains(leak), line);
      }
      // the connection stays usable
      expectNothingElse(c);
    }
  }

  @Test
  @DisplayName("§4.2 registering does not log the connection in")
  void registerDoesNotLogIn() {
    try (LineClient c = server.connect()) {
      c.send(register("alice", "pw"));
      expect(c, REGISTERED);
      String token = http.login("alice", "pw");
      c.send(chat(token, "hi"));
      expect(c, NOT_LOGGED_IN);
      c.send(heartbeat(token));
      expect(c, HEARTBEAT_ERROR);
    }
  }

  // ---- §4.3 login ----

  @Test
  @DisplayName("§4.3 success: the documented line with token, username and avatar URL; the connection then receives broadcasts")
  void loginSuccess() {
    http.register("alice", "pw");
    http.register("bob", "pw");
    String bobToken = http.login("bob", "pw");
    try (LineClient c = server.connect()) {
      String token = socketLogin(c, "alice", "pw", DEFAULT_AVATAR_URL);
      assertNotEquals(bobToken, token);
      Http.Response r = http.post("/api/chat", new JsonObject().put("message", "to sockets").encode(), "Authorization", bobToken);
      assertEquals(200, r.status());
      assertBroadcast("bob", "to sockets", "/avatar/bob/default_avatar.png", nextLine(c));
    }
  }

  @Test
  @DisplayName("§4.3 success reply carries a custom avatar and a percent-encoded username in the URL")
  void loginSuccessAvatarUrl() {
    try (LineClient c = server.connect()) {
      c.send(register("a#b?c%d", "pw").put("avatar", "me.png"));
      expect(c, REGISTERED);
      socketLogin(c, "a#b?c%d", "pw", "/avatar/a%23b%3Fc%25d/me.png");
    }
  }

  @Test
  @DisplayName("§4.3 right credentials while the user has a session on another connection: error_-1")
  void loginAlreadyLoggedInElsewhere() {
    http.register("alice", "pw");
    try (LineClient a = server.connect(); LineClient b = server.connect()) {
      String token = socketLogin(a, "alice", "pw", DEFAULT_AVATAR_URL);
      b.send(login("alice", "pw"));
      expect(b, ALREADY_LOGGED_IN);
      // the holder keeps its session (a ping probe it may get is skipped)
      a.send(heartbeat(token));
      expect(a, HEARTBEAT_OK);
    }
  }

  @Test
  @DisplayName("§4.3 right credentials while this same connection already holds the user's session: error_-1")
  void loginAlreadyLoggedInOnThisConnection() {
    http.register("alice", "pw");
    try (LineClient a = server.connect()) {
      String token = socketLogin(a, "alice", "pw", DEFAULT_AVATAR_URL);
      a.send(login("alice", "pw"));
      expect(a, ALREADY_LOGGED_IN);
      // still logged in: chat works
      a.send(chat(token, "still here"));
      expectSentAndBroadcast(a, "alice", "still here", DEFAULT_AVATAR_URL);
    }
  }

  @Test
  @DisplayName("§4.3 wrong password for an online user: error_0, never error_-1")
  void loginWrongPasswordForOnlineUser() {
    http.register("alice", "pw");
    try (LineClient a = server.connect(); LineClient b = server.connect()) {
      socketLogin(a, "alice", "pw", DEFAULT_AVATAR_URL);
      b.send(login("alice", "wrong"));
      expect(b, BAD_CREDENTIALS);
      b.send(msg("login").put("username", "alice"));
      expect(b, BAD_CREDENTIALS);
    }
  }

  @Test
  @DisplayName("§4.3 wrong or missing username/password: error_0")
  void loginBadCredentials() {
    http.register("alice", "pw");
    List<JsonObject> bodies = List.of(
        login("alice", "wrong"),
        login("nobody", "pw"),
        login("ALICE", "pw"),
        msg("login"),
        msg("login").put("username", "alice"),
        msg("login").put("password", "pw"),
        msg("login").put("username", "alice").putNull("password"),
        msg("login").put("username", "alice").put("password", ""),
        msg("login").put("username", "alice").put("password", 5),
        msg("login").put("username", 5).put("password", "pw"),
        msg("login").putNull("username").put("password", "pw"));
    try (LineClient c = server.connect()) {
      for (JsonObject body : bodies) {
        c.send(body);
        expect(c, BAD_CREDENTIALS);
      }
      socketLogin(c, "alice", "pw", DEFAULT_AVATAR_URL);
    }
  }

  @Test
  @DisplayName("§4.3 logging in as another user moves the connection and releases the first user")
  void loginAsAnotherUserReleasesFirst() {
    http.register("alice", "pw");
    http.register("bob", "pw");
    try (LineClient a = server.connect(); LineClient b = server.connect()) {
      socketLogin(a, "alice", "pw", DEFAULT_AVATAR_URL);
      socketLogin(a, "bob", "pw", "/avatar/bob/default_avatar.png");
      socketLogin(b, "alice", "pw", DEFAULT_AVATAR_URL);
      b.send(login("bob", "pw"));
      expect(b, ALREADY_LOGGED_IN);
    }
  }

  @Test
  @DisplayName("§4.3 [ext] token resume: success returns the same token and binds the connection")
  void resumeSuccessReturnsSameToken() {
    http.register("alice", "pw");
    String token = http.login("alice", "pw");
    try (LineClient c = server.connect()) {
      c.send(resume(token));
      assertEquals(token, assertLoginSuccess("alice", DEFAULT_AVATAR_URL, nextLine(c)));
      // bound: the token now works for a socket chat and the user counts as logged in
      c.send(chat(token, "resumed"));
      expectSentAndBroadcast(c, "alice", "resumed", DEFAULT_AVATAR_URL);
      assertEquals(409, http.post("/api/login", new JsonObject().put("username", "alice").put("password", "pw").encode()).status());
    }
  }

  @Test
  @DisplayName("§4.3 [ext] token resume with the matching username succeeds")
  void resumeWithMatchingUsername() {
    http.register("alice", "pw");
    String token = http.login("alice", "pw");
    try (LineClient c = server.connect()) {
      c.send(resume(token).put("username", "alice"));
      assertEquals(token, assertLoginSuccess("alice", DEFAULT_AVATAR_URL, nextLine(c)));
    }
  }

  @Test
  @DisplayName("§4.3 [ext] token resume with an unknown token: error_It")
  void resumeUnknownToken() {
    http.register("alice", "pw");
    try (LineClient c = server.connect()) {
      for (Object token : List.of(UNKNOWN_HEX_TOKEN, "", "not-a-token", 42)) {
        c.send(msg("login").put("token", token));
        expect(c, INVALID_RESUME_TOKEN);
      }
      c.send(msg("login").put("username", "alice").put("token", UNKNOWN_HEX_TOKEN));
      expect(c, INVALID_RESUME_TOKEN);
    }
  }

  @Test
  @DisplayName("§4.3 [ext] token resume naming another user than the token's: error_It")
  void resumeUsernameMismatch() {
    http.register("alice", "pw");
    http.register("bob", "pw");
    String token = http.login("alice", "pw");
    try (LineClient c = server.connect()) {
      c.send(resume(token).put("username", "bob"));
      expect(c, INVALID_RESUME_TOKEN);
      c.send(resume(token).put("username", "Alice"));
      expect(c, INVALID_RESUME_TOKEN);
      c.send(resume(token).put("username", "nobody"));
      expect(c, INVALID_RESUME_TOKEN);
      // not bound by the failed attempts
      c.send(chat(token, "x"));
      expect(c, NOT_LOGGED_IN);
    }
  }

  @Test
  @DisplayName("§4.3 [ext] token resume obeys the one-session rule: error_-1")
  void resumeWhileLoggedInElsewhere() {
    http.register("alice", "pw");
    try (LineClient a = server.connect(); LineClient b = server.connect()) {
      String token = socketLogin(a, "alice", "pw", DEFAULT_AVATAR_URL);
      b.send(resume(token));
      expect(b, ALREADY_LOGGED_IN);
    }
  }

  @Test
  @DisplayName("§4.3 [ext] with both password and token the password login is used")
  void passwordWinsOverToken() {
    http.register("alice", "pw");
    http.register("bob", "pw");
    String aliceToken = http.login("alice", "pw");
    try (LineClient c = server.connect(); LineClient d = server.connect()) {
      // a right password with a bogus token: a password login, with a fresh token
      c.send(login("alice", "pw").put("token", UNKNOWN_HEX_TOKEN));
      String fresh = assertLoginSuccess("alice", DEFAULT_AVATAR_URL, nextLine(c));
      assertNotEquals(UNKNOWN_HEX_TOKEN, fresh);
      assertNotEquals(aliceToken, fresh);
      // a wrong password with a valid token: the password decides
      String bobToken = http.login("bob", "pw");
      d.send(login("bob", "wrong").put("token", bobToken));
      expect(d, BAD_CREDENTIALS);
    }
  }

  // ---- §4.4 chat ----

  @Test
  @DisplayName("§4.4 token missing, null or empty: error_Mt (checked first)")
  void chatMissingToken() {
    try (LineClient c = server.connect()) {
      c.send(msg("chat").put("message", "hi"));
      expect(c, MISSING_TOKEN);
      c.send(msg("chat").putNull("token").put("message", "hi"));
      expect(c, MISSING_TOKEN);
      c.send(msg("chat").put("token", "").put("message", "hi"));
      expect(c, MISSING_TOKEN);
      c.send(msg("chat"));
      expect(c, MISSING_TOKEN);
    }
  }

  @Test
  @DisplayName("§4.4 token unknown: error_It (before the session and message checks)")
  void chatUnknownToken() {
    try (LineClient c = server.connect()) {
      c.send(chat(UNKNOWN_HEX_TOKEN, "hi"));
      expect(c, INVALID_TOKEN);
      c.send(msg("chat").put("token", UNKNOWN_HEX_TOKEN));
      expect(c, INVALID_TOKEN);
      c.send(msg("chat").put("token", 12345).put("message", "hi"));
      expect(c, INVALID_TOKEN);
      c.send(chat("x", "m".repeat(5000)));
      expect(c, INVALID_TOKEN);
    }
  }

  @Test
  @DisplayName("§4.4 a valid token whose user has no socket session: error_Nli (before the message checks)")
  void chatNotLoggedIn() {
    http.register("alice", "pw");
    http.register("bob", "pw");
    String aliceToken = http.login("alice", "pw");
    try (LineClient c = server.connect(); LineClient bob = server.connect()) {
      c.send(chat(aliceToken, "hi"));
      expect(c, NOT_LOGGED_IN);
      c.send(msg("chat").put("token", aliceToken));
      expect(c, NOT_LOGGED_IN);
      c.send(chat(aliceToken, "m".repeat(5000)));
      expect(c, NOT_LOGGED_IN);
      // the connection being logged in as someone else does not help: the token's user counts
      socketLogin(bob, "bob", "pw", "/avatar/bob/default_avatar.png");
      bob.send(chat(aliceToken, "hi"));
      expect(bob, NOT_LOGGED_IN);
    }
  }

  @Test
  @DisplayName("§4.4 message missing or not a string: Missing message")
  void chatMissingMessage() {
    http.register("alice", "pw");
    try (LineClient c = server.connect()) {
      String token = socketLogin(c, "alice", "pw", DEFAULT_AVATAR_URL);
      for (JsonObject body : List.of(
          msg("chat").put("token", token),
          msg("chat").put("token", token).putNull("message"),
          msg("chat").put("token", token).put("message", 12),
          msg("chat").put("token", token).put("message", false),
          msg("chat").put("token", token).put("message", new JsonObject().put("m", "x")))) {
        c.send(body);
        expect(c, MISSING_MESSAGE);
      }
      c.send(chat(token, "m".repeat(5000)).putNull("message"));
      expect(c, MISSING_MESSAGE);
    }
  }

  @Test
  @DisplayName("§4.4 a message of 4097 characters: Message too long; 4096 is sent")
  void chatMessageLengthLimit() {
    http.register("alice", "pw");
    try (LineClient c = server.connect()) {
      String token = socketLogin(c, "alice", "pw", DEFAULT_AVATAR_URL);
      c.send(chat(token, "m".repeat(4097)));
      expect(c, TOO_LONG);
      c.send(chat(token, "m".repeat(4096)));
      expectSentAndBroadcast(c, "alice", "m".repeat(4096), DEFAULT_AVATAR_URL);
    }
  }

  @Test
  @DisplayName("§4.4 sent: success and the broadcast to every session; connections without a session get nothing")
  void chatSuccessBroadcast() {
    http.register("alice", "pw");
    http.register("bob", "pw");
    try (LineClient a = server.connect(); LineClient b = server.connect(); LineClient idle = server.connect()) {
      String token = socketLogin(a, "alice", "pw", DEFAULT_AVATAR_URL);
      socketLogin(b, "bob", "pw", "/avatar/bob/default_avatar.png");
      a.send(chat(token, "hello all"));
      expectSentAndBroadcast(a, "alice", "hello all", DEFAULT_AVATAR_URL);
      assertBroadcast("alice", "hello all", DEFAULT_AVATAR_URL, nextLine(b));
      idle.expectSilence(300);
    }
  }

  @Test
  @DisplayName("§4.4 the author is the token's user, not the connection's")
  void chatAuthorIsTokensUser() {
    http.register("alice", "pw");
    http.register("bob", "pw");
    try (LineClient a = server.connect(); LineClient b = server.connect()) {
      String aliceToken = socketLogin(a, "alice", "pw", DEFAULT_AVATAR_URL);
      socketLogin(b, "bob", "pw", "/avatar/bob/default_avatar.png");
      b.send(chat(aliceToken, "sent by bob's socket"));
      expectSentAndBroadcast(b, "alice", "sent by bob's socket", DEFAULT_AVATAR_URL);
      assertBroadcast("alice", "sent by bob's socket", DEFAULT_AVATAR_URL, nextLine(a));
    }
  }

  // ---- §4.6 heartbeat ----

  @Test
  @DisplayName("§4.6 a valid token whose user has a socket session: heartbeat success")
  void heartbeatSuccess() {
    http.register("alice", "pw");
    try (LineClient a = server.connect(); LineClient other = server.connect()) {
      String token = socketLogin(a, "alice", "pw", DEFAULT_AVATAR_URL);
      a.send(heartbeat(token));
      expect(a, HEARTBEAT_OK);
      // the session is the user's, wherever the heartbeat comes from
      other.send(heartbeat(token));
      expect(other, HEARTBEAT_OK);
    }
  }

  @Test
  @DisplayName("§4.6 anything else gets a heartbeat error reply (it is sent)")
  void heartbeatErrors() {
    http.register("alice", "pw");
    String noSessionToken = http.login("alice", "pw");
    try (LineClient c = server.connect()) {
      for (JsonObject body : List.of(
          msg("heartbeat"),
          msg("heartbeat").putNull("token"),
          heartbeat(""),
          msg("heartbeat").put("token", 99),
          heartbeat(UNKNOWN_HEX_TOKEN),
          heartbeat(noSessionToken))) {
        c.send(body);
        expect(c, HEARTBEAT_ERROR);
      }
    }
  }

  // ---- §4.1 message types ----

  @Test
  @DisplayName("§4.1 an object whose type is missing, not a string or unknown: Unknown message type; the connection stays usable")
  void unknownMessageType() {
    try (LineClient c = server.connect()) {
      for (String text : List.of("{}", "{\"type\":\"foo\"}", "{\"type\":1}", "{\"type\":null}", "{\"type\":\"CHAT\"}",
          "{\"type\":[\"chat\"]}", "{\"type\":{\"t\":\"login\"}}", "{\"message\":\"hi\"}", "{\"type\":\"ping\"}")) {
        c.send(text);
        assertEquals(UNKNOWN_TYPE, c.readLine(), text);
      }
      c.send(heartbeat("x"));
      expect(c, HEARTBEAT_ERROR);
    }
  }

  // ---- §4.1 framing over a real socket ----

  @Test
  @DisplayName("§4.1 two objects in one write get two replies, in order")
  void twoObjectsInOneWrite() {
    try (LineClient c = server.connect()) {
      c.send(register("alice", "pw").encode() + login("alice", "pw").encode());
      expect(c, REGISTERED);
      assertLoginSuccess("alice", DEFAULT_AVATAR_URL, nextLine(c));
      c.send("{\"type\":\"nope\"}{\"type\":\"heartbeat\"}\n{\"type\":\"chat\"}");
      expect(c, UNKNOWN_TYPE);
      expect(c, HEARTBEAT_ERROR);
      expect(c, MISSING_TOKEN);
    }
  }

  @Test
  @DisplayName("§4.1 one object sent byte by byte is one message")
  void oneObjectByteByByte() {
    http.register("alice", "pw");
    try (LineClient c = server.connect()) {
      byte[] bytes = login("alice", "pw").encode().getBytes(StandardCharsets.UTF_8);
      for (byte b : bytes) {
        c.sendBytes(new byte[] {b});
      }
      assertLoginSuccess("alice", DEFAULT_AVATAR_URL, nextLine(c));
      expectNothingElse(c);
    }
  }

  @Test
  @DisplayName("§4.1 braces and quotes inside strings don't count; the text is echoed intact")
  void bracesAndQuotesInsideStrings() {
    http.register("alice", "pw");
    try (LineClient c = server.connect()) {
      String token = socketLogin(c, "alice", "pw", DEFAULT_AVATAR_URL);
      String text = "}{ \"quoted\" {{ \\\" }} \\";
      c.send(chat(token, text));
      String broadcast = expectSentAndBroadcast(c, "alice", "}{ \\\"quoted\\\" {{ \\\\\\\" }} \\\\", DEFAULT_AVATAR_URL);
      assertEquals(text, new JsonObject(broadcast).getString("message"));
      expectNothingElse(c);
    }
  }

  @Test
  @DisplayName("§4.1 multi-byte UTF-8 split across writes, at every byte of the text, is echoed back intact")
  void multiByteUtf8SplitAcrossWrites() {
    http.register("alice", "pw");
    try (LineClient c = server.connect()) {
      String token = socketLogin(c, "alice", "pw", DEFAULT_AVATAR_URL);
      String text = "h\u00e9llo \uD83D\uDE00 \u4e2d\u6587";
      byte[] bytes = chat(token, text).encode().getBytes(StandardCharsets.UTF_8);
      byte[] textBytes = text.getBytes(StandardCharsets.UTF_8);
      int start = indexOf(bytes, textBytes);
      assertTrue(start > 0);
      for (int cut = start + 1; cut < start + textBytes.length; cut++) {
        c.sendBytes(Arrays.copyOfRange(bytes, 0, cut));
        c.sendBytes(Arrays.copyOfRange(bytes, cut, bytes.length));
        String broadcast = expectSentAndBroadcast(c, "alice", text, DEFAULT_AVATAR_URL);
        assertEquals(text, new JsonObject(broadcast).getString("message"), "cut at byte " + cut);
      }
    }
  }

  @Test
  @DisplayName("§4.1 a frame that is not well-formed UTF-8 (overlong '/', encoded surrogate, past U+10FFFF, stray or cut bytes) gets Invalid JSON; every valid form is echoed")
  void invalidUtf8IsInvalidJson() {
    http.register("alice", "pw");
    try (LineClient c = server.connect()) {
      String token = socketLogin(c, "alice", "pw", DEFAULT_AVATAR_URL);
      byte[] head = ("{\"type\":\"chat\",\"token\":\"" + token + "\",\"message\":\"").getBytes(StandardCharsets.UTF_8);
      int[][] invalid = {{0xC0, 0xAF}, {0xC1, 0xBF}, {0xE0, 0x80, 0xAF}, {0xED, 0xA0, 0x80}, {0xED, 0xBF, 0xBF},
          {0xF0, 0x80, 0x80, 0xAF}, {0xF4, 0x90, 0x80, 0x80}, {0xF5, 0x80, 0x80, 0x80}, {0xFF}, {0xFE}, {0x80},
          {0xBF}, {0xC3}, {0xE2, 0x82}, {0xF0, 0x9F, 0x98}, {0xC3, 0x41}};
      for (int[] seq : invalid) {
        c.sendBytes(withTail(head, seq));
        expect(c, INVALID_JSON);
      }
      // the boundaries that are valid: U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFF, U+10000, U+10FFFF
      String text = "\u0080\u07ff\u0800\ud7ff\ue000\uffff\ud800\udc00\udbff\udfff";
      c.sendBytes(withTail(head, text.getBytes(StandardCharsets.UTF_8)));
      String broadcast = expectSentAndBroadcast(c, "alice", text, DEFAULT_AVATAR_URL);
      assertEquals(text, new JsonObject(broadcast).getString("message"));
      expectNothingElse(c);
    }
  }

  private static byte[] withTail(byte[] head, int[] seq) {
    byte[] b = new byte[seq.length];
    for (int i = 0; i < seq.length; i++) {
      b[i] = (byte) seq[i];
    }
    return withTail(head, b);
  }

  private static byte[] withTail(byte[] head, byte[] middle) {
    byte[] tail = "\"}".getBytes(StandardCharsets.UTF_8);
    byte[] out = Arrays.copyOf(head, head.length + middle.length + tail.length);
    System.arraycopy(middle, 0, out, head.length, middle.length);
    System.arraycopy(tail, 0, out, head.length + middle.length, tail.length);
    return out;
  }

  private static int indexOf(byte[] haystack, byte[] needle) {
    outer:
    for (int i = 0; i <= haystack.length - needle.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  @Test
  @DisplayName("§4.1 a garbage line gets one Invalid JSON, the rest of its line is dropped, and the connection stays usable")
  void garbageLineThenValidObject() {
    try (LineClient c = server.connect()) {
      c.send("hello there\n{\"type\":\"heartbeat\"}");
      expect(c, INVALID_JSON);
      expect(c, HEARTBEAT_ERROR);
      // an object on the garbage line itself is discarded with it: only one error, no reply for it
      c.send("junk {\"type\":\"heartbeat\"} more junk\n{\"type\":\"chat\"}\n");
      expect(c, INVALID_JSON);
      expect(c, MISSING_TOKEN);
      expectNothingElse(c);
    }
  }

  @Test
  @DisplayName("§4.1 a malformed brace-balanced object is dropped whole with Invalid JSON; the next object is answered")
  void malformedObjectThenValid() {
    try (LineClient c = server.connect()) {
      for (String bad : List.of("{\"type\":\"login\",}", "{\"a\":tru}", "{\"type\":\"heartbeat\" \"token\":1}", "{type:\"heartbeat\"}",
          "{\"type\":'heartbeat'}", "{\"type\":\"heartbeat\",\"x\":[1,2}")) {
        c.send(bad + "{\"type\":\"heartbeat\"}");
        assertEquals(INVALID_JSON, c.readLine(), bad);
        expect(c, HEARTBEAT_ERROR);
      }
      expectNothingElse(c);
    }
  }

  @Test
  @DisplayName("§4.1 valid JSON that is not an object ([1,2], \"hi\", null, 123) gets Invalid JSON, once per line")
  void nonObjectJsonIsInvalid() {
    try (LineClient c = server.connect()) {
      for (String text : List.of("[1,2]\n", "\"hi\"\n", "null\n", "123\n", "}\n", "true\n")) {
        c.send(text);
        assertEquals(INVALID_JSON, c.readLine(), text);
      }
      c.send("[1,2]\n\"hi\"\nnull\n123\n{\"type\":\"heartbeat\"}");
      expect(c, INVALID_JSON);
      expect(c, INVALID_JSON);
      expect(c, INVALID_JSON);
      expect(c, INVALID_JSON);
      expect(c, HEARTBEAT_ERROR);
      expectNothingElse(c);
    }
  }

  @Test
  @DisplayName("§4.1 replies are compact JSON lines ending in a single newline")
  void repliesAreCompactLines() {
    try (LineClient c = server.connect()) {
      c.send("  {  \"type\" : \"heartbeat\" ,\n \"token\" : \"x\" }  \n");
      // readLine strips exactly one \n; a \r or any spacing would break the exact match
      assertEquals(HEARTBEAT_ERROR, c.readLine());
      c.send("{\"type\":\"heartbeat\"}");
      assertEquals(HEARTBEAT_ERROR, c.readLine());
    }
  }

  @Test
  @DisplayName("§4.1 a frame of exactly 65536 bytes is accepted")
  void frameAtLimitAccepted() {
    http.register("alice", "pw");
    try (LineClient c = server.connect()) {
      String token = socketLogin(c, "alice", "pw", DEFAULT_AVATAR_URL);
      String frame = padded("{\"type\":\"heartbeat\",\"token\":\"" + token + "\",\"pad\":\"", 65536);
      assertEquals(65536, frame.getBytes(StandardCharsets.UTF_8).length);
      c.send(frame);
      expect(c, HEARTBEAT_OK);
      expectNothingElse(c);
    }
  }

  @Test
  @DisplayName("§4.1 a frame of 65537 bytes gets Message too large and the connection is closed")
  void frameOverLimitClosesConnection() {
    try (LineClient c = server.connect()) {
      String frame = padded("{\"type\":\"heartbeat\",\"token\":\"x\",\"pad\":\"", 65537);
      assertEquals(65537, frame.getBytes(StandardCharsets.UTF_8).length);
      c.send(frame);
      assertEquals(TOO_LARGE, c.readLine());
      c.expectClosed();
    }
  }

  @Test
  @DisplayName("§4.1 an unterminated object growing past 65536 bytes gets Message too large at once and the connection is closed")
  void unterminatedFrameOverLimitClosesConnection() {
    http.register("alice", "pw");
    try (LineClient c = server.connect()) {
      socketLogin(c, "alice", "pw", DEFAULT_AVATAR_URL);
      String open = "{\"type\":\"chat\",\"message\":\"";
      c.send(open + "y".repeat(65537 - open.length()));
      assertEquals(TOO_LARGE, c.readLine());
      c.expectClosed();
    }
  }
}
