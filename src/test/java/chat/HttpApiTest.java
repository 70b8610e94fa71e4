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

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every row of PROTOCOL.md §3 over real HTTP: exact status, exact body. */
@ExtendWith(VertxExtension.class)
class HttpApiTest {

  // ---- the documented bodies, verbatim from PROTOCOL.md ----
  private static final String INVALID_JSON = "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Invalid JSON\"}";
  private static final String REGISTERED = "{\"type\":\"register_1\",\"error\":false,\"message\":\"User registered successfully\"}";
  private static final String NAME_TAKEN = "{\"type\":\"register_0\",\"success\":false,\"message\":\"Username already exists\"}";
  private static final String BAD_USERNAME = "{\"type\":\"register_-2\",\"success\":false,\"message\":\"Invalid username. Must be 2-20 characters, start with a letter or symbol, and contain only letters, numbers, or symbols: _!@#$%^&+-~?\"}";
  private static final String BAD_AVATAR = "{\"type\":\"register_0\",\"success\":false,\"message\":\"Invalid avatar format. Only .png or .jpg allowed\"}";
  private static final String BAD_PASSWORD = "{\"type\":\"register_-4\",\"success\":false,\"message\":\"Invalid password. Must be 1-1024 characters\"}";
  private static final String ALREADY_LOGGED_IN = "{\"type\":\"login\",\"status\":\"error_0\",\"message\":\"Account already logged in\"}";
  private static final String BAD_CREDENTIALS = "{\"type\":\"login_0\",\"status\":\"error\",\"message\":\"Invalid credentials\"}";
  private static final String CHAT_SENT = "{\"type\":\"chat\",\"status\":\"success\"}";
  private static final String CHAT_UNAUTHORIZED = "{\"type\":\"chat\",\"status\":\"error\"}";
  private static final String MISSING_MESSAGE = "{\"type\":\"chat\",\"status\":\"error\",\"message\":\"Missing message\"}";
  private static final String TOO_LONG = "{\"type\":\"chat\",\"status\":\"error\",\"message\":\"Message too long\"}";
  // [ext] replies of this server for routes the protocol does not define
  private static final String NOT_FOUND = "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Not found\"}";
  private static final String METHOD_NOT_ALLOWED = "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Method not allowed\"}";

  private static final List<String> NON_OBJECT_BODIES =
      List.of("[1,2]", "\"hi\"", "null", "123", "garbage", "", "{\"username\":", "{\"a\":tru}", "{\"a\":1,}", "{\"a\":1} {}");

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

  private Path avatarDir() {
    return dir.resolve("avatar");
  }

  private Http.Response register(JsonObject body) {
    return http.post("/api/register", body.encode());
  }

  private static JsonObject user(String username, String password) {
    return new JsonObject().put("username", username).put("password", password);
  }

  private Http.Response login(String username, String password) {
    return http.post("/api/login", user(username, password).encode());
  }

  private Http.Response chat(String body, String... headers) {
    return http.post("/api/chat", body, headers);
  }

  private static String chatBody(String message) {
    return new JsonObject().put("message", message).encode();
  }

  private static void assertReply(int status, String body, Http.Response r) {
    assertEquals(status + " " + body, r.status() + " " + r.body());
  }

  /** The documented HTTP login success body, with any 32-hex token; returns the token. */
  private static String assertLoggedIn(String avatarUrl, Http.Response r) {
    assertEquals(200, r.status(), r.body());
    Pattern p = Pattern.compile(Pattern.quote("{\"type\":\"login_1\",\"status\":\"success\",\"token\":\"")
        + "([0-9a-f]{32})" + Pattern.quote("\",\"avatar\":\"" + avatarUrl + "\"}"));
    var m = p.matcher(r.body());
    assertTrue(m.matches(), "login body: " + r.body());
    return m.group(1);
  }

  /** A §4.5 broadcast line: the documented keys in order, then only extra keys. */
  private static void assertBroadcast(String user, String message, String avatar, String line) {
    String prefix = "{\"type\":\"chat\",\"user\":\"" + user + "\",\"message\":\"" + message + "\",\"avatar\":\"" + avatar + "\"";
    assertTrue(line.startsWith(prefix), "broadcast: " + line);
    assertTrue(line.substring(prefix.length()).matches("(,\"[A-Za-z]+\":(-?[0-9]+|\"[^\"]*\"))*\\}"), "broadcast: " + line);
  }

  private record Raw(int status, Map<String, String> headers, byte[] body) {
    String text() {
      return new String(body, StandardCharsets.UTF_8);
    }
  }

  /** A raw HTTP/1.1 GET whose request target goes out exactly as written. */
  private Raw rawGet(String target) {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", server.httpPort()), 5000);
      s.setSoTimeout(5000);
      OutputStream out = s.getOutputStream();
      out.write(("GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      InputStream in = s.getInputStream();
      ByteArrayOutputStream all = new ByteArrayOutputStream();
      in.transferTo(all);
      byte[] bytes = all.toByteArray();
      String text = new String(bytes, StandardCharsets.ISO_8859_1);
      int end = text.indexOf("\r\n\r\n");
      assertTrue(end > 0, "no HTTP response head for " + target + ": " + text);
      String[] lines = text.substring(0, end).split("\r\n");
      int status = Integer.parseInt(lines[0].split(" ")[1]);
      Map<String, String> headers = new LinkedHashMap<>();
      for (int i = 1; i < lines.length; i++) {
        int colon = lines[i].indexOf(':');
        headers.put(lines[i].substring(0, colon).trim().toLowerCase(Locale.ROOT), lines[i].substring(colon + 1).trim());
      }
      byte[] body = java.util.Arrays.copyOfRange(bytes, end + 4, bytes.length);
      return new Raw(status, headers, body);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  // ---- §3 Invalid JSON ----

  @Test
  @DisplayName("§3 a register body that is not a JSON object gets 400 Invalid JSON")
  void registerNonObjectBodyIsInvalidJson() {
    for (String body : NON_OBJECT_BODIES) {
      assertReply(400, INVALID_JSON, http.post("/api/register", body));
    }
  }

  @Test
  @DisplayName("§3 a login body that is not a JSON object gets 400 Invalid JSON")
  void loginNonObjectBodyIsInvalidJson() {
    for (String body : NON_OBJECT_BODIES) {
      assertReply(400, INVALID_JSON, http.post("/api/login", body));
    }
  }

  @Test
  @DisplayName("§3 a chat body that is not a JSON object, with a valid token, gets 400 Invalid JSON")
  void chatNonObjectBodyIsInvalidJson() {
    http.register("alice", "pw");
    String token = http.login("alice", "pw");
    for (String body : NON_OBJECT_BODIES) {
      assertReply(400, INVALID_JSON, chat(body, "Authorization", token));
    }
  }

  @Test
  @DisplayName("§3 replies are application/json with charset utf-8")
  void repliesAreJsonUtf8() {
    Http.Response r = http.post("/api/register", "[1,2]");
    assertEquals("application/json; charset=utf-8", r.header("Content-Type"));
    http.register("alice", "pw");
    assertEquals("application/json; charset=utf-8", login("alice", "pw").header("Content-Type"));
  }

  // ---- §3.1 register ----

  @Test
  @DisplayName("§3.1 created: 200 register_1, and the avatar folder <avatar dir>/<username>/ exists")
  void registerCreatesUserAndAvatarFolder() {
    assertFalse(Files.exists(avatarDir().resolve("alice")));
    assertReply(200, REGISTERED, register(user("alice", "secret")));
    assertTrue(Files.isDirectory(avatarDir().resolve("alice")));
    assertReply(200, REGISTERED, register(user("a#b?c%d", "secret")));
    assertTrue(Files.isDirectory(avatarDir().resolve("a#b?c%d")));
  }

  @Test
  @DisplayName("§3.1 name taken: 403 register_0, whatever the password")
  void registerNameTaken() {
    assertReply(200, REGISTERED, register(user("alice", "secret")));
    assertReply(403, NAME_TAKEN, register(user("alice", "secret")));
    assertReply(403, NAME_TAKEN, register(user("alice", "other").put("avatar", "me.png")));
  }

  @Test
  @DisplayName("§3.1 missing or non-string username: 400 register_-2")
  void registerMissingOrNonStringUsername() {
    List<JsonObject> bodies = List.of(
        new JsonObject().put("password", "pw"),
        new JsonObject().putNull("username").put("password", "pw"),
        new JsonObject().put("username", 123).put("password", "pw"),
        new JsonObject().put("username", true).put("password", "pw"),
        new JsonObject().put("username", new io.vertx.core.json.JsonArray().add("alice")).put("password", "pw"),
        new JsonObject().put("username", new JsonObject().put("a", "alice")).put("password", "pw"),
        new JsonObject());
    for (JsonObject body : bodies) {
      assertReply(400, BAD_USERNAME, register(body));
    }
  }

  @Test
  @DisplayName("§2 usernames of 2 and 20 characters are accepted, 1 and 21 refused")
  void usernameLengthLimits() {
    assertReply(200, REGISTERED, register(user("ab", "pw")));
    assertReply(200, REGISTERED, register(user("a".repeat(20), "pw")));
    assertReply(400, BAD_USERNAME, register(user("a", "pw")));
    assertReply(400, BAD_USERNAME, register(user("b".repeat(21), "pw")));
    assertReply(400, BAD_USERNAME, register(user("", "pw")));
  }

  @Test
  @DisplayName("§2 a username starting with a digit is refused, digits later are fine")
  void usernameLeadingDigitRefused() {
    assertReply(400, BAD_USERNAME, register(user("1abc", "pw")));
    assertReply(400, BAD_USERNAME, register(user("9_", "pw")));
    assertReply(200, REGISTERED, register(user("abc1", "pw")));
    assertReply(200, REGISTERED, register(user("Z09", "pw")));
  }

  @Test
  @DisplayName("§2 each allowed symbol is accepted, inside and as the first character")
  void usernameEachAllowedSymbol(Vertx vertx) {
    // 25 registrations from one address are over the default limits.registrationsPerAddress (20 an hour,
    // covered by LimitsTest): this test runs with that limit off
    server.close();
    server = TestServer.start(vertx, dir, new JsonObject().put("limits.registrationsPerAddress", 0));
    http = server.http();
    for (char c : "_!@#$%^&+-~?".toCharArray()) {
      assertReply(200, REGISTERED, register(user("a" + c + "b", "pw")));
      assertReply(200, REGISTERED, register(user(c + "x", "pw")));
    }
    assertReply(200, REGISTERED, register(user("_!@#$%^&+-~?", "pw")));
  }

  @Test
  @DisplayName("§2 characters outside the allowed set are refused")
  void usernameOtherCharactersRefused() {
    for (String name : List.of("a b", "a*b", "a.b", "a/b", "a\\b", "a\"b", "a'b", "a=b", "h\u00e9llo", "a\u0000b", "\tab", "ab ")) {
      assertReply(400, BAD_USERNAME, register(user(name, "pw")));
    }
  }

  @Test
  @DisplayName("§2 a trailing newline is refused (whole-string match)")
  void usernameTrailingNewlineRefused() {
    assertReply(400, BAD_USERNAME, register(user("alice\n", "pw")));
    assertReply(400, BAD_USERNAME, register(user("alice\r\n", "pw")));
    assertReply(400, BAD_USERNAME, register(user("\nalice", "pw")));
    assertReply(200, REGISTERED, register(user("alice", "pw")));
  }

  @Test
  @DisplayName("§2 usernames are case-sensitive: Alice and alice are two users")
  void usernamesCaseSensitive() {
    assertReply(200, REGISTERED, register(user("Alice", "upper")));
    assertReply(200, REGISTERED, register(user("alice", "lower")));
    assertLoggedIn("/avatar/Alice/default_avatar.png", login("Alice", "upper"));
    assertLoggedIn("/avatar/alice/default_avatar.png", login("alice", "lower"));
    assertReply(401, BAD_CREDENTIALS, login("Alice", "lower"));
    assertReply(401, BAD_CREDENTIALS, login("ALICE", "upper"));
  }

  @Test
  @DisplayName("§3.1 bad avatar: 400 register_0 with the avatar message")
  void registerBadAvatar() {
    List<Object> bad = List.of("x.gif", "x.png.gif", "png", "x.jpeg", "../a.png", ".png", ".hidden.png", "a/b.png", "a\\b.png",
        "a\u0000.png", "a\u0001.png", "a\n.png", "a\u007f.png", "b".repeat(61) + ".png", 123, true, new JsonObject());
    for (Object avatar : bad) {
      assertReply(400, BAD_AVATAR, register(user("alice", "pw").put("avatar", avatar)));
    }
    assertEquals(65, ("b".repeat(61) + ".png").length());
  }

  @Test
  @DisplayName("§2 an avatar of 64 characters is accepted")
  void avatarOf64CharactersAccepted() {
    String avatar = "c".repeat(60) + ".jpg";
    assertEquals(64, avatar.length());
    assertReply(200, REGISTERED, register(user("alice", "pw").put("avatar", avatar)));
    assertLoggedIn("/avatar/alice/" + avatar, login("alice", "pw"));
  }

  @Test
  @DisplayName("§2 an absent, null or empty avatar means default_avatar.png")
  void avatarAbsentNullOrEmptyMeansDefault() {
    assertReply(200, REGISTERED, register(user("absent", "pw")));
    assertReply(200, REGISTERED, register(user("nullav", "pw").putNull("avatar")));
    assertReply(200, REGISTERED, register(user("emptyav", "pw").put("avatar", "")));
    assertLoggedIn("/avatar/absent/default_avatar.png", login("absent", "pw"));
    assertLoggedIn("/avatar/nullav/default_avatar.png", login("nullav", "pw"));
    assertLoggedIn("/avatar/emptyav/default_avatar.png", login("emptyav", "pw"));
  }

  @Test
  @DisplayName("§2 .PNG and .JPG endings are accepted (case-insensitive)")
  void avatarUppercaseExtensionsAccepted() {
    assertReply(200, REGISTERED, register(user("alice", "pw").put("avatar", "Me.PNG")));
    assertReply(200, REGISTERED, register(user("bob", "pw").put("avatar", "me.JPG")));
    assertReply(200, REGISTERED, register(user("carol", "pw").put("avatar", "me.Jpg")));
    assertLoggedIn("/avatar/alice/Me.PNG", login("alice", "pw"));
    assertLoggedIn("/avatar/bob/me.JPG", login("bob", "pw"));
  }

  @Test
  @DisplayName("§3.1 bad password (missing, null, empty, non-string, 1025 characters): 400 register_-4")
  void registerBadPassword() {
    List<JsonObject> bodies = List.of(
        new JsonObject().put("username", "alice"),
        new JsonObject().put("username", "alice").putNull("password"),
        new JsonObject().put("username", "alice").put("password", ""),
        new JsonObject().put("username", "alice").put("password", 123),
        new JsonObject().put("username", "alice").put("password", false),
        new JsonObject().put("username", "alice").put("password", new JsonObject()),
        new JsonObject().put("username", "alice").put("password", "p".repeat(1025)));
    for (JsonObject body : bodies) {
      assertReply(400, BAD_PASSWORD, register(body));
    }
    // nothing was stored: the name is still free
    assertReply(200, REGISTERED, register(user("alice", "pw")));
  }

  @Test
  @DisplayName("§2 passwords of 1 and 1024 characters are accepted and work for login")
  void passwordLengthLimitsAccepted() {
    String longPw = "p".repeat(1024);
    assertReply(200, REGISTERED, register(user("alice", longPw)));
    assertReply(200, REGISTERED, register(user("bob", "x")));
    assertLoggedIn("/avatar/alice/default_avatar.png", login("alice", longPw));
    assertLoggedIn("/avatar/bob/default_avatar.png", login("bob", "x"));
    assertReply(401, BAD_CREDENTIALS, login("alice", "p".repeat(1023)));
  }

  @Test
  @DisplayName("§2 validation order: username, then avatar, then password, then the database")
  void registerValidationOrder() {
    assertReply(200, REGISTERED, register(user("taken", "pw")));
    // all three bad: the username wins
    assertReply(400, BAD_USERNAME, register(new JsonObject().put("username", "1").put("avatar", "x.gif").put("password", "")));
    // username good, avatar and password bad: the avatar wins
    assertReply(400, BAD_AVATAR, register(new JsonObject().put("username", "fresh").put("avatar", "x.gif").put("password", "")));
    // only the password bad
    assertReply(400, BAD_PASSWORD, register(new JsonObject().put("username", "fresh").put("avatar", "ok.png").put("password", "")));
    // a taken name is only found after all three rules passed
    assertReply(400, BAD_AVATAR, register(new JsonObject().put("username", "taken").put("avatar", "x.gif").put("password", "pw")));
    assertReply(400, BAD_PASSWORD, register(new JsonObject().put("username", "taken").put("password", 5)));
    assertReply(403, NAME_TAKEN, register(user("taken", "pw2")));
  }

  @Test
  @DisplayName("§3.1 database error: 500 register_-1 with a short reason, no SQL or stack")
  void registerDatabaseError() throws Exception {
    assertReply(200, REGISTERED, register(user("alice", "pw")));
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + server.db());
         Statement st = c.createStatement()) {
      st.execute("ALTER TABLE users RENAME TO users_gone");
    }
    Http.Response r = register(user("bob", "pw"));
    assertEquals(500, r.status(), r.body());
    assertTrue(r.body().matches("\\{\"type\":\"register_-1\",\"error\":true,\"message\":\"[^\"]{1,100}\"\\}"), r.body());
    String reason = r.json().getString("message").toLowerCase(Locale.ROOT);
    for (String leak : List.of("sql", "exception", "users", "table", "select", "insert", "at ")) {
      assertFalse(reason.contains(leak), "reason leaks internals: " + r.body());
    }
  }

  @Test
  @DisplayName("§3.1 two concurrent registrations of one name: exactly one gets register_1")
  void concurrentRegistrationsOfOneName() {
    HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    List<CompletableFuture<HttpResponse<String>>> calls = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      HttpRequest req = HttpRequest.newBuilder(http.uri("/api/register")).timeout(Duration.ofSeconds(30))
          .header("Content-Type", "application/json")
          .POST(HttpRequest.BodyPublishers.ofString(user("racer", "pw" + i).encode())).build();
      calls.add(client.sendAsync(req, HttpResponse.BodyHandlers.ofString()));
    }
    int created = 0;
    for (CompletableFuture<HttpResponse<String>> call : calls) {
      HttpResponse<String> r = call.join();
      if (r.statusCode() == 200) {
        assertEquals(REGISTERED, r.body());
        created++;
      } else {
        assertEquals("403 " + NAME_TAKEN, r.statusCode() + " " + r.body());
      }
    }
    assertEquals(1, created);
  }

  // ---- §3.2 login ----

  @Test
  @DisplayName("§3.2 success: 200 login_1 with a 32-hex token and the avatar URL")
  void loginSuccess() {
    http.register("alice", "secret");
    String t1 = assertLoggedIn("/avatar/alice/default_avatar.png", login("alice", "secret"));
    String t2 = assertLoggedIn("/avatar/alice/default_avatar.png", login("alice", "secret"));
    assertNotEquals(t1, t2, "each login issues its own token");
  }

  @Test
  @DisplayName("§3.2 success with a custom avatar: the URL names it")
  void loginCustomAvatarUrl() {
    assertReply(200, REGISTERED, register(user("alice", "pw").put("avatar", "me.png")));
    assertLoggedIn("/avatar/alice/me.png", login("alice", "pw"));
  }

  @Test
  @DisplayName("§2 the avatar URL percent-encodes the username: a#b?c%d -> a%23b%3Fc%25d")
  void loginAvatarUrlPercentEncoded() {
    assertReply(200, REGISTERED, register(user("a#b?c%d", "pw")));
    assertLoggedIn("/avatar/a%23b%3Fc%25d/default_avatar.png", login("a#b?c%d", "pw"));
  }

  @Test
  @DisplayName("§3.2 wrong password: 401 login_0")
  void loginWrongPassword() {
    http.register("alice", "secret");
    assertReply(401, BAD_CREDENTIALS, login("alice", "wrong"));
    assertReply(401, BAD_CREDENTIALS, login("alice", "Secret"));
  }

  @Test
  @DisplayName("§3.2 unknown user: 401 login_0")
  void loginUnknownUser() {
    assertReply(401, BAD_CREDENTIALS, login("nobody", "secret"));
  }

  @Test
  @DisplayName("§3.2 missing or non-string username/password: 401 login_0")
  void loginMissingOrNonStringFields() {
    http.register("alice", "secret");
    List<JsonObject> bodies = List.of(
        new JsonObject(),
        new JsonObject().put("username", "alice"),
        new JsonObject().put("password", "secret"),
        new JsonObject().put("username", "alice").putNull("password"),
        new JsonObject().put("username", "alice").put("password", ""),
        new JsonObject().put("username", "alice").put("password", 123),
        new JsonObject().put("username", "alice").put("password", new io.vertx.core.json.JsonArray().add("secret")),
        new JsonObject().putNull("username").put("password", "secret"),
        new JsonObject().put("username", 42).put("password", "secret"),
        new JsonObject().put("username", new JsonObject()).put("password", "secret"));
    for (JsonObject body : bodies) {
      assertReply(401, BAD_CREDENTIALS, http.post("/api/login", body.encode()));
    }
  }

  @Test
  @DisplayName("§3.2 right credentials while the user holds a socket session: 409; a wrong password still 401")
  void loginWhileSocketSessionIs409() {
    http.register("alice", "secret");
    try (LineClient c = server.connect()) {
      c.login("alice", "secret");
      assertReply(409, ALREADY_LOGGED_IN, login("alice", "secret"));
      assertReply(401, BAD_CREDENTIALS, login("alice", "wrong"));
      assertReply(401, BAD_CREDENTIALS, http.post("/api/login", new JsonObject().put("username", "alice").encode()));
    }
  }

  @Test
  @DisplayName("§3.2 an HTTP login opens no socket session: a socket login afterwards succeeds")
  void httpLoginOpensNoSocketSession() {
    http.register("alice", "secret");
    http.login("alice", "secret");
    http.login("alice", "secret");
    try (LineClient c = server.connect()) {
      c.login("alice", "secret");
    }
  }

  // ---- §3.3 chat ----

  @Test
  @DisplayName("§3.3 sent with Authorization: <token>: 200 and the broadcast reaches socket sessions")
  void chatWithPlainToken() {
    http.register("alice", "pw");
    http.register("bob", "pw");
    String token = http.login("alice", "pw");
    try (LineClient bob = server.connect()) {
      bob.login("bob", "pw");
      assertReply(200, CHAT_SENT, chat(chatBody("hello"), "Authorization", token));
      assertBroadcast("alice", "hello", "/avatar/alice/default_avatar.png", bob.readLine());
    }
  }

  @Test
  @DisplayName("§3.3 [ext] sent with Authorization: Bearer <token>: 200 and the broadcast")
  void chatWithBearerToken() {
    assertReply(200, REGISTERED, register(user("alice", "pw").put("avatar", "me.png")));
    http.register("bob", "pw");
    String token = http.login("alice", "pw");
    try (LineClient bob = server.connect()) {
      bob.login("bob", "pw");
      assertReply(200, CHAT_SENT, chat(chatBody("hi there"), "Authorization", "Bearer " + token));
      assertBroadcast("alice", "hi there", "/avatar/alice/me.png", bob.readLine());
    }
  }

  @Test
  @DisplayName("§3.3 a token obtained by a socket login works for HTTP chat")
  void chatWithSocketToken() {
    http.register("alice", "pw");
    try (LineClient alice = server.connect()) {
      String token = alice.login("alice", "pw");
      assertReply(200, CHAT_SENT, chat(chatBody("from http"), "Authorization", token));
      assertBroadcast("alice", "from http", "/avatar/alice/default_avatar.png", alice.readLine());
    }
  }

  @Test
  @DisplayName("§3.3 token missing or unknown: 401 {\"type\":\"chat\",\"status\":\"error\"}")
  void chatMissingOrUnknownToken() {
    http.register("alice", "pw");
    String token = http.login("alice", "pw");
    assertReply(401, CHAT_UNAUTHORIZED, chat(chatBody("hi")));
    assertReply(401, CHAT_UNAUTHORIZED, chat(chatBody("hi"), "Authorization", ""));
    assertReply(401, CHAT_UNAUTHORIZED, chat(chatBody("hi"), "Authorization", "Bearer "));
    assertReply(401, CHAT_UNAUTHORIZED, chat(chatBody("hi"), "Authorization", "0123456789abcdef0123456789abcdef"));
    assertReply(401, CHAT_UNAUTHORIZED, chat(chatBody("hi"), "Authorization", "Bearer 0123456789abcdef0123456789abcdef"));
    assertReply(401, CHAT_UNAUTHORIZED, chat(chatBody("hi"), "Authorization", token.toUpperCase(Locale.ROOT)));
    assertReply(401, CHAT_UNAUTHORIZED, chat(chatBody("hi"), "Authorization", token + "0"));
    // the right token still works afterwards
    assertReply(200, CHAT_SENT, chat(chatBody("hi"), "Authorization", token));
  }

  @Test
  @DisplayName("§3.3 the token is checked before the body")
  void chatTokenCheckedBeforeBody() {
    http.register("alice", "pw");
    String token = http.login("alice", "pw");
    assertReply(401, CHAT_UNAUTHORIZED, chat("not json"));
    assertReply(401, CHAT_UNAUTHORIZED, chat("not json", "Authorization", "ffffffffffffffffffffffffffffffff"));
    assertReply(401, CHAT_UNAUTHORIZED, chat("[1,2]", "Authorization", "Bearer nope"));
    assertReply(401, CHAT_UNAUTHORIZED, chat("{}", "Authorization", "nope"));
    assertReply(401, CHAT_UNAUTHORIZED, chat(chatBody("x".repeat(5000)), "Authorization", "nope"));
    assertReply(400, INVALID_JSON, chat("not json", "Authorization", token));
    assertReply(400, INVALID_JSON, chat("not json", "Authorization", "Bearer " + token));
  }

  @Test
  @DisplayName("§3.3 message missing or not a string: 400 Missing message")
  void chatMissingMessage() {
    http.register("alice", "pw");
    String token = http.login("alice", "pw");
    for (String body : List.of("{}", "{\"message\":null}", "{\"message\":123}", "{\"message\":true}",
        "{\"message\":{\"text\":\"hi\"}}", "{\"message\":[\"hi\"]}", "{\"msg\":\"hi\"}")) {
      assertReply(400, MISSING_MESSAGE, chat(body, "Authorization", token));
    }
  }

  @Test
  @DisplayName("§3.3 a message of 4097 characters: 400 Message too long; 4096 is sent")
  void chatMessageLengthLimit() {
    http.register("alice", "pw");
    String token = http.login("alice", "pw");
    assertReply(400, TOO_LONG, chat(chatBody("m".repeat(4097)), "Authorization", token));
    assertReply(200, CHAT_SENT, chat(chatBody("m".repeat(4096)), "Authorization", token));
    assertReply(200, CHAT_SENT, chat(chatBody(""), "Authorization", token));
  }

  // ---- §3.4 avatars ----

  @Test
  @DisplayName("§3.4 an existing avatar file is served with its image content type and bytes")
  void avatarFileServed() throws IOException {
    assertReply(200, REGISTERED, register(user("alice", "pw").put("avatar", "me.png")));
    byte[] png = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 1, 2, 3, (byte) 0xff, 0};
    byte[] jpg = {(byte) 0xff, (byte) 0xd8, (byte) 0xff, 9, 8, 7};
    Files.write(avatarDir().resolve("alice").resolve("me.png"), png);
    Files.write(avatarDir().resolve("alice").resolve("photo.jpg"), jpg);

    Http.Response r = http.get("/avatar/alice/me.png");
    assertEquals(200, r.status());
    assertEquals("image/png", r.header("Content-Type"));
    assertArrayEquals(png, r.raw().body());

    Http.Response j = http.get("/avatar/alice/photo.jpg");
    assertEquals(200, j.status());
    assertEquals("image/jpeg", j.header("Content-Type"));
    assertArrayEquals(jpg, j.raw().body());
  }

  @Test
  @DisplayName("§3.4 the avatar URL from login serves the file, also for a percent-encoded username")
  void avatarUrlFromLoginServesFile() throws IOException {
    assertReply(200, REGISTERED, register(user("a#b?c%d", "pw").put("avatar", "me.png")));
    byte[] png = {(byte) 0x89, 'P', 'N', 'G', 42};
    Files.write(avatarDir().resolve("a#b?c%d").resolve("me.png"), png);
    String url = new JsonObject(login("a#b?c%d", "pw").body()).getString("avatar");
    assertEquals("/avatar/a%23b%3Fc%25d/me.png", url);
    Raw r = rawGet(url);
    assertEquals(200, r.status());
    assertArrayEquals(png, r.body());
  }

  @Test
  @DisplayName("§3.4 a missing file falls back to the shipped default avatar")
  void avatarMissingFallsBackToDefault() throws IOException {
    http.register("alice", "pw");
    Path shipped = avatarDir().resolve("default").resolve("default_avatar.png");
    assertTrue(Files.isRegularFile(shipped));
    byte[] expected = Files.readAllBytes(shipped);
    assertTrue(expected.length > 0);
    try (InputStream in = getClass().getClassLoader().getResourceAsStream("avatar/default_avatar.png")) {
      assertNotNull(in);
      assertArrayEquals(in.readAllBytes(), expected, "the default avatar on disk is the shipped one");
    }
    for (String path : List.of("/avatar/alice/default_avatar.png", "/avatar/alice/nothing.png", "/avatar/nobody/x.jpg")) {
      Http.Response r = http.get(path);
      assertEquals(200, r.status(), path);
      assertEquals("image/png", r.header("Content-Type"), path);
      assertArrayEquals(expected, r.raw().body(), path);
    }
  }

  @Test
  @DisplayName("§3.4 ETag and Last-Modified are sent, and If-None-Match with the ETag gives 304")
  void avatarCachingHeaders() throws IOException {
    http.register("alice", "pw");
    Files.write(avatarDir().resolve("alice").resolve("me.png"), new byte[] {1, 2, 3});
    for (String path : List.of("/avatar/alice/me.png", "/avatar/alice/missing.png")) {
      Http.Response r = http.get(path);
      assertEquals(200, r.status());
      String etag = r.header("ETag");
      assertNotNull(etag, path);
      assertNotNull(r.header("Last-Modified"), path);
      Http.Response again = http.get(path, "If-None-Match", etag);
      assertEquals(304, again.status(), path);
      assertEquals(0, again.raw().body().length, path);
      Http.Response other = http.get(path, "If-None-Match", "\"something-else\"");
      assertEquals(200, other.status(), path);
    }
  }

  @Test
  @DisplayName("§3.4 path traversal in any encoding gets 404 and never the database")
  void avatarPathTraversalIs404() throws IOException {
    http.register("alice", "pw");
    assertTrue(Files.isRegularFile(server.db()));
    Files.writeString(dir.resolve("secret.png"), "SECRET");
    Files.writeString(avatarDir().resolve("secret.png"), "SECRET2");
    List<String> targets = List.of(
        "/avatar/../usr.db",
        "/avatar/%2e%2e/usr.db",
        "/avatar/%2E%2E/usr.db",
        "/avatar/alice/..%2f..%2fusr.db",
        "/avatar/alice/..%2F..%2Fusr.db",
        "/avatar/alice/%2e%2e%2f%2e%2e%2fusr.db",
        "/avatar/..%2f..%2fusr.db/x.png",
        "/avatar/..%2F..%2Fusr.db/x.png",
        "/avatar/alice/..%5c..%5cusr.db",
        "/avatar/alice/..%5C..%5Cusr.db",
        "/avatar/..%5c..%5cusr.db/x.png",
        "/avatar/alice/..\\..\\usr.db",
        "/avatar/alice/usr.db%00.png",
        "/avatar/alice%00/x.png",
        "/avatar/%00/x.png",
        "/avatar/alice/..",
        "/avatar/alice/%2e%2e",
        "/avatar/../secret.png",
        "/avatar/%2e%2e/secret.png",
        "/avatar/alice/..%2f..%2fsecret.png",
        "/avatar/alice/..%2fsecret.png",
        "/avatar/..%2fsecret.png/x.png",
        "/avatar/%2e%2e/%2e%2e/usr.db",
        "/avatar/./../usr.db",
        "/avatar/alice/../../usr.db",
        "/avatar/alice/%2e%2e/%2e%2e/usr.db");
    for (String target : targets) {
      Raw r = rawGet(target);
      assertEquals(404, r.status(), target + " -> " + r.status() + " " + r.text());
      assertFalse(r.text().contains("SQLite format"), target);
      assertFalse(r.text().contains("SECRET"), target);
    }
  }

  @Test
  @DisplayName("§3.4 symbolic links out of the avatar folder are not followed: a linked user folder or file gets the default avatar")
  void avatarSymlinksNotFollowed() throws IOException {
    http.register("alice", "pw");
    Files.writeString(dir.resolve("secret.png"), "SECRET");
    byte[] defaultAvatar = Files.readAllBytes(avatarDir().resolve("default").resolve("default_avatar.png"));
    Files.createSymbolicLink(avatarDir().resolve("evil"), dir);
    Files.createSymbolicLink(avatarDir().resolve("alice").resolve("link.png"), Path.of("../../secret.png"));
    for (String target : List.of("/avatar/evil/usr.db", "/avatar/evil/secret.png", "/avatar/alice/link.png")) {
      Http.Response r = http.get(target);
      assertEquals(200, r.status(), target);
      assertArrayEquals(defaultAvatar, r.raw().body(), target + " served something else than the default avatar");
    }
  }

  @Test
  @DisplayName("§3 [ext] a request that is not valid HTTP gets 400/414/431 with the Bad request JSON, then the connection closes")
  void invalidHttpGetsJson() throws IOException {
    String badRequest = "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Bad request\"}";
    // rawGet sends "GET <target> HTTP/1.1": a space in the target makes a bad request line
    Raw spaced = rawGet("/avatar/a b/c.png");
    assertEquals(400, spaced.status());
    assertEquals(badRequest, spaced.text());
    assertEquals("application/json; charset=utf-8", spaced.headers().get("content-type"));
    Raw longLine = rawGet("/avatar/a/" + "a".repeat(5000) + ".png");
    assertEquals(414, longLine.status());
    assertEquals(badRequest, longLine.text());
    Raw bigHeader = rawGet("/avatar/a/b.png HTTP/1.1\r\nX-Big: " + "b".repeat(9000) + "\r\nX-End: 1");
    assertEquals(431, bigHeader.status());
    assertEquals(badRequest, bigHeader.text());
    // HTTP/1.1 without Host: the router refuses it; the connection stays usable
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", server.httpPort()), 5000);
      s.setSoTimeout(5000);
      s.getOutputStream().write("GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
      String text = new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
      assertTrue(text.startsWith("HTTP/1.1 400 "), text);
      assertTrue(text.endsWith("\r\n\r\n" + badRequest), text);
    }
  }

  @Test
  @DisplayName("[ext] an unknown route gets 404 JSON, a GET on /api/login 405 JSON")
  void unknownRouteAndWrongMethod() {
    assertReply(404, NOT_FOUND, http.get("/nope"));
    assertReply(404, NOT_FOUND, http.post("/api/nope", "{}"));
    assertReply(405, METHOD_NOT_ALLOWED, http.get("/api/login"));
    assertReply(405, METHOD_NOT_ALLOWED, http.get("/api/register"));
    assertReply(405, METHOD_NOT_ALLOWED, http.get("/api/chat"));
  }
}
