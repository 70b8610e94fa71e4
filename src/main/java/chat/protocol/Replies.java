package chat.protocol;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;

/**
 * Every documented wire shape of PROTOCOL.md (docs/PROTOCOL.md), in one place. HTTP and TCP
 * both answer from here; a string of the protocol appears nowhere else in the code.
 */
public final class Replies {

  private Replies() {
  }

  private static JsonObject obj(Object... keyValues) {
    JsonObject o = new JsonObject();
    for (int i = 0; i < keyValues.length; i += 2) {
      o.put((String) keyValues[i], keyValues[i + 1]);
    }
    return o;
  }

  private static Reply reply(int status, Object... keyValues) {
    return Reply.of(status, obj(keyValues));
  }

  private static Reply error(int status, String message) {
    return reply(status, "type", "error", "status", "error", "message", message);
  }

  // ---- generic errors (HTTP and TCP) ----
  public static final Reply INVALID_JSON = error(400, "Invalid JSON");
  public static final Reply MESSAGE_TOO_LARGE = error(413, "Message too large");
  public static final Reply UNKNOWN_TYPE = error(400, "Unknown message type");
  public static final Reply IDLE_TIMEOUT = error(0, "Idle timeout");
  /** [ext] sent to every connection when the server stops (SIGTERM), just before it closes. */
  public static final Reply SHUTTING_DOWN = error(0, "Server shutting down");
  /** [ext] cluster: sent before closing a session whose user logged in on another node while this node was cut off. */
  public static final Reply LOGGED_IN_ELSEWHERE = error(0, "Session ended: logged in elsewhere");
  /** [ext] sent before an administrator's kick closes the session. */
  public static final Reply KICKED = error(0, "Session closed by an administrator");
  /** [ext] HTTP: a body over http.maxBodyBytes. */
  public static final Reply REQUEST_TOO_LARGE = error(413, "Request too large");
  /** [ext] HTTP: no such route. */
  public static final Reply NOT_FOUND = error(404, "Not found");
  /** [ext] HTTP: not a valid HTTP request (sent with 400, 414 or 431); the connection closes. */
  public static final Reply BAD_REQUEST = error(400, "Bad request");
  /** [ext] HTTP: the route exists but not for this method. */
  public static final Reply METHOD_NOT_ALLOWED = error(405, "Method not allowed");
  /** [ext] a login or registration that waited too long for a hashing worker; try again. */
  public static final Reply SERVER_BUSY = error(503, "Server busy, try again");
  /**
   * [ext] the listener kind is at its cap (tcp.maxConnections, http.maxConnections): TCP sends it
   * as its only line and closes; HTTP answers 503 with it and closes.
   */
  public static final Reply TOO_MANY_CONNECTIONS = error(503, "Too many connections");
  /** [ext] a fault of ours; never carries exception text. */
  public static final Reply INTERNAL_ERROR = error(500, "Internal error");

  /** Sent to the holder of a contested session to surface a dead connection; clients ignore it. */
  public static final Reply PING = reply(0, "type", "ping");

  // ---- registration (§3.1 HTTP, §4.2 TCP) ----
  public static final Reply REGISTERED =
      reply(200, "type", "register_1", "error", false, "message", "User registered successfully");
  public static final Reply NAME_TAKEN =
      reply(403, "type", "register_0", "success", false, "message", "Username already exists");
  public static final Reply HTTP_BAD_USERNAME = reply(400, "type", "register_-2", "success", false, "message",
      "Invalid username. Must be 2-20 characters, start with a letter or symbol, and contain only letters, numbers, or symbols: _!@#$%^&+-~?");
  public static final Reply TCP_BAD_USERNAME =
      reply(0, "type", "register_-2", "success", false, "message", "Invalid username format");
  private static final String BAD_AVATAR_TEXT = "Invalid avatar format. Only .png or .jpg allowed";
  /** HTTP answers a bad avatar with register_0: kept for compatibility with the original. */
  public static final Reply HTTP_BAD_AVATAR = reply(400, "type", "register_0", "success", false, "message", BAD_AVATAR_TEXT);
  public static final Reply TCP_BAD_AVATAR = reply(0, "type", "register_-3", "success", false, "message", BAD_AVATAR_TEXT);
  public static final Reply BAD_PASSWORD =
      reply(400, "type", "register_-4", "success", false, "message", "Invalid password. Must be 1-1024 characters");

  /** [ext] register_-5: the client address reached limits.registrationsPerAddress (HTTP 429). */
  public static final Reply TOO_MANY_REGISTRATIONS =
      reply(429, "type", "register_-5", "success", false, "message", "Too many registrations, try again later");

  /** register_-1: a short reason, never SQL, a stack trace or a class name. */
  public static final Reply REGISTER_FAILED =
      reply(500, "type", "register_-1", "error", true, "message", "Database error, please try again");

  // ---- login (§3.2 HTTP, §4.3 TCP) ----
  public static Reply httpLoggedIn(String token, String avatarUrl) {
    return reply(200, "type", "login_1", "status", "success", "token", token, "avatar", avatarUrl);
  }

  public static final Reply HTTP_ALREADY_LOGGED_IN =
      reply(409, "type", "login", "status", "error_0", "message", "Account already logged in");
  public static final Reply HTTP_BAD_CREDENTIALS =
      reply(401, "type", "login_0", "status", "error", "message", "Invalid credentials");
  /** [ext] the login-failure limit of the username or the client address is reached: a login failure's shape, 429. */
  public static final Reply HTTP_TOO_MANY_ATTEMPTS =
      reply(429, "type", "login_0", "status", "error", "message", "Too many attempts");

  public static Buffer tcpLoggedIn(String token, String username, String avatarUrl) {
    return Reply.line(obj("type", "login", "status", "success", "message", "Login successful",
        "token", token, "username", username, "avatar", avatarUrl));
  }

  public static final Reply TCP_ALREADY_LOGGED_IN =
      reply(0, "type", "login", "status", "error_-1", "message", "Account already logged in");
  public static final Reply TCP_BAD_CREDENTIALS =
      reply(0, "type", "login", "status", "error_0", "message", "Invalid credentials");
  /** [ext] the login-failure limit of the username or the client address is reached: a login failure's shape. */
  public static final Reply TCP_TOO_MANY_ATTEMPTS =
      reply(0, "type", "login", "status", "error_0", "message", "Too many attempts");
  public static final Reply TCP_INVALID_RESUME_TOKEN =
      reply(0, "type", "login", "status", "error_It", "message", "Invalid token");

  // ---- chat (§3.3 HTTP, §4.4 TCP) ----
  public static final Reply CHAT_SENT = reply(200, "type", "chat", "status", "success");
  public static final Reply HTTP_CHAT_UNAUTHORIZED = reply(401, "type", "chat", "status", "error");
  public static final Reply CHAT_MISSING_MESSAGE = reply(400, "type", "chat", "status", "error", "message", "Missing message");
  public static final Reply CHAT_TOO_LONG = reply(400, "type", "chat", "status", "error", "message", "Message too long");
  /** [ext] the author is over limits.chatMessagesPerSecond: same body on both listeners, HTTP 429. */
  public static final Reply CHAT_TOO_MANY_MESSAGES =
      reply(429, "type", "chat", "status", "error", "message", "Too many messages");
  public static final Reply TCP_CHAT_MISSING_TOKEN = reply(0, "type", "chat", "status", "error_Mt", "message", "Missing token");
  public static final Reply TCP_CHAT_INVALID_TOKEN = reply(0, "type", "chat", "status", "error_It", "message", "Invalid token");
  public static final Reply TCP_CHAT_NOT_LOGGED_IN = reply(0, "type", "chat", "status", "error_Nli", "message", "Not logged in");

  /** §4.5: encoded once per accepted chat, then written as-is to every session. */
  public static Buffer broadcast(String author, String message, String avatarUrl, long epochMillis) {
    return Reply.line(obj("type", "chat", "user", author, "message", message, "avatar", avatarUrl, "ts", epochMillis));
  }

  // ---- heartbeat (§4.6) ----
  public static final Reply HEARTBEAT_OK = reply(0, "type", "heartbeat", "status", "success");
  public static final Reply HEARTBEAT_ERROR = reply(0, "type", "heartbeat", "status", "error");
}
