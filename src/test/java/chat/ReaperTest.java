package chat;

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
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * PROTOCOL.md §4.7 (the idle reaper) and the sliding token expiry of §2, with timeouts of one
 * second: the only tests that legitimately wait on the clock, always bounded by those settings.
 */
@ExtendWith(VertxExtension.class)
class ReaperTest {

  private static final String IDLE_TIMEOUT = "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Idle timeout\"}";
  private static final String PING = "{\"type\":\"ping\"}";
  private static final String HEARTBEAT_OK = "{\"type\":\"heartbeat\",\"status\":\"success\"}";
  private static final String HEARTBEAT_ERROR = "{\"type\":\"heartbeat\",\"status\":\"error\"}";
  private static final String CHAT_SENT = "{\"type\":\"chat\",\"status\":\"success\"}";
  private static final String CHAT_INVALID_TOKEN = "{\"type\":\"chat\",\"status\":\"error_It\",\"message\":\"Invalid token\"}";
  private static final String UNKNOWN_TYPE =
      "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Unknown message type\"}";
  private static final String ALREADY_LOGGED_IN =
      "{\"type\":\"login\",\"status\":\"error_-1\",\"message\":\"Account already logged in\"}";

  /** idleSeconds = intervalSeconds = 1: an idle connection goes between 1 and about 2 s after its last activity. */
  private static final JsonObject FAST_REAPER = new JsonObject().put("reaper.idleSeconds", 1).put("reaper.intervalSeconds", 1);
  /** Generous upper bound on how long a reap may take, for a loaded 2-core machine. */
  private static final long REAP_WITHIN_MILLIS = 4500;
  /** For a client that does not read, whose close cannot flush: the reap plus a grace period before it is cut off. */
  private static final long NON_READER_REAPED_WITHIN_MILLIS = 7000;

  @TempDir
  Path dir;
  Vertx vertx;
  TestServer server;
  private final List<LineClient> clients = new ArrayList<>();

  @BeforeEach
  void init(Vertx vertx) {
    this.vertx = vertx;
  }

  @AfterEach
  void stop() {
    clients.forEach(LineClient::close);
    if (server != null) {
      server.close();
    }
  }

  // ---- helpers ----

  private void start(JsonObject overrides) {
    server = TestServer.start(vertx, dir, overrides);
  }

  private LineClient connect() {
    LineClient c = server.connect();
    clients.add(c);
    return c;
  }

  private String online(LineClient c, String user) {
    server.http().register(user, "pw-" + user);
    return c.login(user, "pw-" + user);
  }

  private static String heartbeatJson(String token) {
    return new JsonObject().put("type", "heartbeat").put("token", token).encode();
  }

  private static String chatJson(String token, String message) {
    return new JsonObject().put("type", "chat").put("token", token).put("message", message).encode();
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      fail("interrupted");
    }
  }

  /**
   * Waits for the Idle timeout message (the next line, pings aside) and the close that follows;
   * asserts they came no sooner than the idle time after {@code lastActivityNanos} and within the bound.
   */
  private static void expectReaped(LineClient c, long lastActivityNanos) {
    String line = c.readLine();
    while (PING.equals(line)) {
      line = c.readLine();
    }
    long elapsed = (System.nanoTime() - lastActivityNanos) / 1_000_000;
    assertEquals(IDLE_TIMEOUT, line);
    assertTrue(elapsed >= 900, "reaped after only " + elapsed + " ms, before the idle time of 1 s");
    assertTrue(elapsed <= REAP_WITHIN_MILLIS, "reaped only after " + elapsed + " ms");
    c.expectClosed();
  }

  // ---- the reaper ----

  @Test
  @DisplayName("an idle logged-in session gets 'Idle timeout', is closed, and its user can log in again")
  void idleSessionIsReaped() {
    start(FAST_REAPER);
    LineClient c = connect();
    online(c, "alice");
    long loggedIn = System.nanoTime();
    expectReaped(c, loggedIn);

    LineClient again = connect();
    long deadline = System.nanoTime() + 2_000_000_000L;
    String login = "{\"type\":\"login\",\"username\":\"alice\",\"password\":\"pw-alice\"}";
    String reply = again.send(login).readLine();
    while (ALREADY_LOGGED_IN.equals(reply) && System.nanoTime() < deadline) {
      sleep(25); // the close is processed asynchronously
      reply = again.send(login).readLine();
    }
    assertTrue(reply.startsWith("{\"type\":\"login\",\"status\":\"success\",\"message\":\"Login successful\","), reply);
  }

  @Test
  @DisplayName("a session that heartbeats every 300 ms stays open past several idle periods, then is reaped once it stops")
  void heartbeatingSessionStaysOpen() {
    start(FAST_REAPER);
    LineClient c = connect();
    String token = online(c, "alice");
    long start = System.nanoTime();
    long lastBeat = start;
    while (System.nanoTime() - start < 3_000_000_000L) {
      sleep(300);
      c.send(heartbeatJson(token));
      lastBeat = System.nanoTime();
      assertEquals(HEARTBEAT_OK, c.readLine(), "the heartbeating session was disturbed");
    }
    expectReaped(c, lastBeat);
  }

  @Test
  @DisplayName("a session that chats every 300 ms stays open: a chat counts as activity")
  void chattingSessionStaysOpen() {
    start(FAST_REAPER);
    LineClient c = connect();
    String token = online(c, "alice");
    long start = System.nanoTime();
    long lastChat = start;
    while (System.nanoTime() - start < 3_000_000_000L) {
      sleep(300);
      c.send(chatJson(token, "still here"));
      lastChat = System.nanoTime();
      String a = c.readLine();
      assertTrue(CHAT_SENT.equals(a) || a.startsWith("{\"type\":\"chat\",\"user\":"), "the chat was refused: " + a);
      String b = c.readLine();
      assertTrue(CHAT_SENT.equals(a) || CHAT_SENT.equals(b), "the chatting session was disturbed: " + a + " / " + b);
      String broadcast = CHAT_SENT.equals(a) ? b : a;
      assertTrue(broadcast.startsWith("{\"type\":\"chat\",\"user\":\"alice\",\"message\":\"still here\","), broadcast);
    }
    expectReaped(c, lastChat);
  }

  @Test
  @DisplayName("a connection that never logs in and sends nothing is closed with 'Idle timeout'")
  void silentAnonymousConnectionIsClosed() {
    start(FAST_REAPER);
    long connected = System.nanoTime();
    LineClient c = connect();
    expectReaped(c, connected);
  }

  @Test
  @DisplayName("a connection that never logs in stays open while it sends complete messages")
  void anonymousConnectionSendingMessagesStaysOpen() {
    start(FAST_REAPER);
    LineClient c = connect();
    long start = System.nanoTime();
    long last = start;
    while (System.nanoTime() - start < 3_000_000_000L) {
      sleep(300);
      c.send("{\"type\":\"no-such-type\"}");
      last = System.nanoTime();
      assertEquals(UNKNOWN_TYPE, c.readLine(), "the active connection was disturbed");
    }
    expectReaped(c, last);
  }

  @Test
  @DisplayName("a connection trickling bytes of an incomplete object is still closed: partial frames are no activity")
  void tricklingIncompleteObjectIsClosed() throws Exception {
    start(FAST_REAPER);
    LineClient c = connect();
    long connected = System.nanoTime();
    c.send("{\"type\":\"heartbeat\",\"token\":\"");
    Thread trickler = new Thread(() -> {
      // one byte every 150 ms, for up to 8 s: far past the idle time, stopped by the close
      for (int i = 0; i < 53 && !Thread.currentThread().isInterrupted(); i++) {
        try {
          Thread.sleep(150);
          c.send("a");
        } catch (InterruptedException e) {
          return;
        } catch (UncheckedIOException e) {
          return; // closed by the server, as expected
        }
      }
    }, "trickler");
    trickler.setDaemon(true);
    trickler.start();
    try {
      expectReaped(c, connected);
      assertTrue(trickler.isAlive(), "the trickle ended before the close: the test proved nothing");
    } finally {
      trickler.interrupt();
      trickler.join(2000);
    }
  }

  @Test
  @DisplayName("an idle session whose client stopped reading is still closed, and its user can log in again")
  void idleNonReadingSessionIsReaped() throws Exception {
    // a queue large enough that the slow-consumer cut-off never fires: only the reaper can end this session
    // 3000 chats at once: over the default limits.chatMessagesPerSecond (covered by LimitsTest), so it is off here
    start(FAST_REAPER.copy().put("tcp.maxPendingBytes", 64 * 1024 * 1024).put("limits.chatMessagesPerSecond", 0));
    server.http().register("nick", "pw-nick");
    Socket nick = new Socket();
    nick.setReceiveBufferSize(4096);
    try {
      nick.connect(new InetSocketAddress("127.0.0.1", server.tcpPort()), 5000);
      nick.setSoTimeout(5000);
      nick.getOutputStream().write("{\"type\":\"login\",\"username\":\"nick\",\"password\":\"pw-nick\"}"
          .getBytes(StandardCharsets.UTF_8));
      JsonObject login = new JsonObject(rawLine(nick.getInputStream()));
      assertEquals("success", login.getString("status"), login.encode());
      String token = login.getString("token");

      // another connection chats as nick (keeping nick active meanwhile): ~12 MB of broadcasts that nick
      // never reads, far more than the kernel buffers hold, so the server is left with unsent output
      LineClient sender = connect();
      String padding = "x".repeat(4000);
      int n = 3000;
      StringBuilder burst = new StringBuilder();
      for (int i = 0; i < n; i++) {
        burst.append(chatJson(token, i + ":" + padding));
      }
      sender.send(burst.toString());
      for (int i = 0; i < n; i++) {
        assertEquals(CHAT_SENT, sender.readLine());
      }
      long lastActivity = System.nanoTime();

      // nick is now idle: the reaper must end the session although nick reads nothing. Its last message
      // cannot leave, so allow the idle time, a sweep interval, and a few seconds of grace for the close
      LineClient again = connect();
      String loginJson = "{\"type\":\"login\",\"username\":\"nick\",\"password\":\"pw-nick\"}";
      long deadline = lastActivity + NON_READER_REAPED_WITHIN_MILLIS * 1_000_000L;
      String reply = again.send(loginJson).readLine();
      while (!reply.startsWith("{\"type\":\"login\",\"status\":\"success\"") && System.nanoTime() < deadline) {
        assertEquals(ALREADY_LOGGED_IN, reply);
        sleep(100);
        reply = again.send(loginJson).readLine();
      }
      assertTrue(reply.startsWith("{\"type\":\"login\",\"status\":\"success\",\"message\":\"Login successful\","),
          "nick's idle session was not ended within " + NON_READER_REAPED_WITHIN_MILLIS + " ms of inactivity: " + reply);
    } finally {
      nick.close();
    }
  }

  /** One newline-terminated line from a raw stream, byte by byte (nothing beyond it is consumed). */
  private static String rawLine(InputStream in) throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    int b;
    while ((b = in.read()) != -1 && b != '\n') {
      line.write(b);
    }
    return line.toString(StandardCharsets.UTF_8);
  }

  // ---- token expiry (§2: valid for auth.tokenTtlSeconds after its last successful use) ----

  @Test
  @DisplayName("a token unused for longer than its time to live is refused with error_It")
  void unusedTokenExpires() {
    start(new JsonObject().put("auth.tokenTtlSeconds", 1));
    LineClient c = connect();
    String token = online(c, "alice");
    c.send(heartbeatJson(token));
    assertEquals(HEARTBEAT_OK, c.readLine());

    sleep(1300);
    c.send(chatJson(token, "too late"));
    assertEquals(CHAT_INVALID_TOKEN, c.readLine());
    c.send(heartbeatJson(token));
    assertEquals(HEARTBEAT_ERROR, c.readLine());
    LineClient other = connect();
    other.send(new JsonObject().put("type", "login").put("token", token).encode());
    assertEquals("{\"type\":\"login\",\"status\":\"error_It\",\"message\":\"Invalid token\"}", other.readLine());
    assertEquals(401, server.http().post("/api/chat", "{\"message\":\"too late\"}", "Authorization", token).status());
  }

  @Test
  @DisplayName("a token used every 300 ms stays valid well past its time to live (sliding expiry), then expires once unused")
  void usedTokenSlides() {
    start(new JsonObject().put("auth.tokenTtlSeconds", 1));
    LineClient c = connect();
    String token = online(c, "alice");
    long start = System.nanoTime();
    int i = 0;
    while (System.nanoTime() - start < 3_000_000_000L) {
      sleep(300);
      c.send(chatJson(token, "tick " + i));
      String a = c.readLine();
      assertTrue(CHAT_SENT.equals(a) || a.startsWith("{\"type\":\"chat\",\"user\":"), "use " + i + " was refused: " + a);
      String b = c.readLine();
      assertTrue(CHAT_SENT.equals(a) || CHAT_SENT.equals(b), "use " + i + " was refused: " + a + " / " + b);
      i++;
    }
    sleep(1300);
    c.send(chatJson(token, "after a pause"));
    assertEquals(CHAT_INVALID_TOKEN, c.readLine());
  }
}
