package chat;

import chat.support.Http;
import chat.support.LineClient;
import chat.support.Prometheus;
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
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** PROTOCOL.md §4.5: who receives a chat, in which order, in which shape, and what a non-reading receiver gets. */
@ExtendWith(VertxExtension.class)
class BroadcastTest {

  private static final String PING = "{\"type\":\"ping\"}";
  private static final String CHAT_SENT = "{\"type\":\"chat\",\"status\":\"success\"}";

  @TempDir
  Path dir;
  Vertx vertx;
  TestServer server;
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
    closeables.clear();
    if (server != null) {
      server.close();
      server = null;
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

  /** A connection logged in as {@code user} (registered over HTTP first); returns it, its token in {@code tokens}. */
  private LineClient online(String user, List<String> tokens) {
    server().http().register(user, "pw-" + user);
    LineClient c = connect();
    tokens.add(c.login(user, "pw-" + user));
    return c;
  }

  private static String chatJson(String token, String message) {
    return new JsonObject().put("type", "chat").put("token", token).put("message", message).encode();
  }

  private static String prefix(String user, String plainMessage) {
    return "{\"type\":\"chat\",\"user\":\"" + user + "\",\"message\":\"" + plainMessage + "\",\"avatar\":\"/avatar/"
        + user + "/default_avatar.png\",\"ts\":";
  }

  /**
   * Asserts the documented broadcast, exactly: {@code {"type":"chat","user":u,"message":m,"avatar":...,"ts":n}}
   * with {@code from <= ts <= to}. For messages with no character JSON escapes.
   */
  private static void assertBroadcast(String line, String user, String plainMessage, long from, long to) {
    Object ts = new JsonObject(line).getValue("ts");
    assertTrue(ts instanceof Number, "ts is not a number in " + line);
    long millis = ((Number) ts).longValue();
    assertEquals(prefix(user, plainMessage) + millis + "}", line);
    assertTrue(millis >= from && millis <= to, "ts " + millis + " is not between " + from + " and " + to);
  }

  /** Asserts the broadcast's decoded fields and their order, for messages whose JSON spelling may vary. */
  private static void assertBroadcastValues(JsonObject b, String user, String message) {
    assertEquals(List.of("type", "user", "message", "avatar", "ts"), new ArrayList<>(b.fieldNames()), b.encode());
    assertEquals("chat", b.getValue("type"));
    assertEquals(user, b.getValue("user"));
    assertEquals(message, b.getValue("message"));
    assertEquals("/avatar/" + user + "/default_avatar.png", b.getValue("avatar"));
    assertTrue(b.getValue("ts") instanceof Number, b.encode());
  }

  /** The sender's success reply and its own broadcast, in either order; returns the broadcast line. */
  private static String senderLines(LineClient sender) {
    String a = sender.readLine();
    assertTrue(CHAT_SENT.equals(a) || a.startsWith("{\"type\":\"chat\",\"user\":"), "the chat was refused: " + a);
    String b = sender.readLine();
    if (CHAT_SENT.equals(a)) {
      return b;
    }
    assertEquals(CHAT_SENT, b, "no success reply among " + a + " / " + b);
    return a;
  }

  /** The next raw line that is not the documented ping probe. */
  private static String lineSkippingPings(LineClient c) {
    String line = c.readLine();
    while (PING.equals(line)) {
      line = c.readLine();
    }
    return line;
  }

  private static <T> T await(CompletableFuture<T> f, long seconds) {
    try {
      return f.get(seconds, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof AssertionError a) {
        throw a;
      }
      throw new AssertionError(e.getCause());
    } catch (TimeoutException e) {
      throw new AssertionError("no result within " + seconds + " s");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  /** Reads {@code count} broadcasts on a background thread; skips the sender's success replies if {@code sender}. */
  private static CompletableFuture<List<String>> collect(LineClient c, int count, boolean sender) {
    return collect(c, count, sender, new java.util.concurrent.atomic.AtomicInteger());
  }

  /** As above; {@code received} counts the broadcasts read so far, for a sender that keeps pace with its readers. */
  private static CompletableFuture<List<String>> collect(LineClient c, int count, boolean sender,
      java.util.concurrent.atomic.AtomicInteger received) {
    return CompletableFuture.supplyAsync(() -> {
      List<String> broadcasts = new ArrayList<>(count);
      int replies = 0;
      while (broadcasts.size() < count || (sender && replies < count)) {
        String line = c.readLine();
        if (sender && CHAT_SENT.equals(line)) {
          replies++;
        } else {
          broadcasts.add(line);
          received.incrementAndGet();
        }
      }
      return broadcasts;
    }, runnable -> {
      Thread t = new Thread(runnable, "reader");
      t.setDaemon(true);
      t.start();
    });
  }

  // ---- tests ----

  @Test
  @DisplayName("every chat reaches each of several logged-in connections exactly once, the sender's own included")
  void everySessionGetsEachChatOnce() {
    List<String> tokens = new ArrayList<>();
    String[] users = {"alice", "bob", "carol", "dave"};
    List<LineClient> clients = new ArrayList<>();
    for (String u : users) {
      clients.add(online(u, tokens));
    }
    for (int s = 0; s < users.length; s++) {
      long from = System.currentTimeMillis();
      clients.get(s).send(chatJson(tokens.get(s), "hello from " + users[s]));
      for (int r = 0; r < users.length; r++) {
        String line = r == s ? senderLines(clients.get(r)) : clients.get(r).readLine();
        assertBroadcast(line, users[s], "hello from " + users[s], from, System.currentTimeMillis());
      }
    }
    for (LineClient c : clients) {
      c.expectSilence(300);
    }
  }

  @Test
  @DisplayName("the broadcast is exactly {type,user,message,avatar,ts} with ts a recent epoch-millisecond number")
  void broadcastShape() {
    List<String> tokens = new ArrayList<>();
    LineClient alice = online("alice", tokens);
    LineClient bob = online("bob", tokens);
    long from = System.currentTimeMillis();
    alice.send(chatJson(tokens.get(0), "shape check"));
    String toBob = bob.readLine();
    String toAlice = senderLines(alice);
    long to = System.currentTimeMillis();
    assertBroadcast(toBob, "alice", "shape check", from, to);
    assertEquals(toBob, toAlice, "every receiver gets the same line");
    JsonObject parsed = new JsonObject(toBob);
    assertBroadcastValues(parsed, "alice", "shape check");
    assertTrue(parsed.getValue("ts") instanceof Long, "ts is an integer: " + toBob);
  }

  @Test
  @DisplayName("an HTTP chat reaches every socket session, its author being the token's user")
  void httpChatReachesSockets() {
    List<String> tokens = new ArrayList<>();
    LineClient alice = online("alice", tokens);
    LineClient bob = online("bob", tokens);
    Http http = server().http();
    http.register("carol", "pw-carol");
    String carolToken = http.login("carol", "pw-carol");

    long from = System.currentTimeMillis();
    Http.Response r = http.post("/api/chat", new JsonObject().put("message", "over http").encode(),
        "Authorization", carolToken);
    assertEquals(200, r.status());
    assertEquals(CHAT_SENT, r.body());
    long to = System.currentTimeMillis();
    assertBroadcast(alice.readLine(), "carol", "over http", from, to);
    assertBroadcast(bob.readLine(), "carol", "over http", from, to);

    from = System.currentTimeMillis();
    r = http.post("/api/chat", new JsonObject().put("message", "bearer too").encode(),
        "Authorization", "Bearer " + tokens.get(1));
    assertEquals(CHAT_SENT, r.body());
    to = System.currentTimeMillis();
    assertBroadcast(alice.readLine(), "bob", "bearer too", from, to);
    assertBroadcast(bob.readLine(), "bob", "bearer too", from, to);
    alice.expectSilence(200);
    bob.expectSilence(200);
  }

  @Test
  @DisplayName("connections without a session receive no broadcast")
  void connectionsWithoutSessionReceiveNothing() {
    List<String> tokens = new ArrayList<>();
    LineClient alice = online("alice", tokens);

    LineClient idle = connect();
    LineClient registeredOnly = connect();
    registeredOnly.send("{\"type\":\"register\",\"username\":\"bob\",\"password\":\"pw-bob\"}");
    assertEquals("{\"type\":\"register_1\",\"error\":false,\"message\":\"User registered successfully\"}",
        registeredOnly.readLine());
    LineClient refused = connect();
    refused.send("{\"type\":\"login\",\"username\":\"bob\",\"password\":\"wrong\"}");
    assertEquals("{\"type\":\"login\",\"status\":\"error_0\",\"message\":\"Invalid credentials\"}", refused.readLine());
    LineClient contested = connect();
    contested.send("{\"type\":\"login\",\"username\":\"alice\",\"password\":\"pw-alice\"}");
    assertEquals("{\"type\":\"login\",\"status\":\"error_-1\",\"message\":\"Account already logged in\"}",
        contested.readLine());
    // the sender uses alice's token from a connection that holds no session: it gets only the reply
    LineClient tokenOnly = connect();

    for (int i = 0; i < 3; i++) {
      long from = System.currentTimeMillis();
      tokenOnly.send(chatJson(tokens.get(0), "message " + i));
      assertEquals(CHAT_SENT, tokenOnly.readLine());
      // the contested login may have probed alice with a ping
      assertBroadcast(lineSkippingPings(alice), "alice", "message " + i, from, System.currentTimeMillis());
    }
    idle.expectSilence(300);
    registeredOnly.expectSilence(100);
    refused.expectSilence(100);
    contested.expectSilence(100);
    tokenOnly.expectSilence(100);
  }

  @Test
  @DisplayName("a connection that switched to another user still receives each broadcast exactly once")
  void switchedConnectionReceivesOnce() {
    List<String> tokens = new ArrayList<>();
    LineClient x = online("alice", tokens);
    server().http().register("bob", "pw-bob");
    String bobToken = x.login("bob", "pw-bob");
    LineClient carol = online("carol", tokens);

    long from = System.currentTimeMillis();
    carol.send(chatJson(tokens.get(1), "once"));
    assertBroadcast(x.readLine(), "carol", "once", from, System.currentTimeMillis());
    assertBroadcast(senderLines(carol), "carol", "once", from, System.currentTimeMillis());
    x.expectSilence(300);

    from = System.currentTimeMillis();
    x.send(chatJson(bobToken, "as bob"));
    assertBroadcast(senderLines(x), "bob", "as bob", from, System.currentTimeMillis());
    assertBroadcast(carol.readLine(), "bob", "as bob", from, System.currentTimeMillis());
    x.expectSilence(200);
  }

  @Test
  @DisplayName("500 pipelined chats of one author reach every receiver in the order they were sent")
  void perAuthorOrder() {
    // 500 chats at once are over the default limits.chatMessagesPerSecond (covered by LimitsTest)
    server(new JsonObject().put("limits.chatMessagesPerSecond", 0));
    List<String> tokens = new ArrayList<>();
    LineClient sender = online("alice", tokens);
    LineClient bob = online("bob", tokens);
    LineClient carol = online("carol", tokens);
    int n = 500;
    StringBuilder burst = new StringBuilder();
    for (int i = 0; i < n; i++) {
      burst.append(chatJson(tokens.get(0), "seq " + i));
    }
    CompletableFuture<List<String>> atSender = collect(sender, n, true);
    CompletableFuture<List<String>> atBob = collect(bob, n, false);
    CompletableFuture<List<String>> atCarol = collect(carol, n, false);
    long from = System.currentTimeMillis();
    sender.send(burst.toString());

    List<List<String>> all = List.of(await(atSender, 60), await(atBob, 60), await(atCarol, 60));
    long to = System.currentTimeMillis();
    for (List<String> received : all) {
      assertEquals(n, received.size());
      for (int i = 0; i < n; i++) {
        assertBroadcast(received.get(i), "alice", "seq " + i, from, to);
      }
    }
    sender.expectSilence(200);
    bob.expectSilence(100);
    carol.expectSilence(100);
  }

  @Test
  @DisplayName("chats that arrive together reach each session together: 500 pipelined chats take far fewer than 500 writes per session")
  void chatsArrivingTogetherShareWrites() {
    server(new JsonObject().put("limits.chatMessagesPerSecond", 0));
    List<String> tokens = new ArrayList<>();
    LineClient sender = online("alice", tokens);
    LineClient bob = online("bob", tokens);
    int n = 500;
    StringBuilder burst = new StringBuilder();
    for (int i = 0; i < n; i++) {
      burst.append(chatJson(tokens.get(0), "seq " + i));
    }
    Prometheus before = Prometheus.scrape(server().http());
    CompletableFuture<List<String>> atSender = collect(sender, n, true);
    CompletableFuture<List<String>> atBob = collect(bob, n, false);
    sender.send(burst.toString());
    assertEquals(n, await(atSender, 60).size());
    List<String> received = await(atBob, 60);
    for (int i = 0; i < n; i++) {
      assertTrue(received.get(i).startsWith(prefix("alice", "seq " + i)), received.get(i));
    }

    Prometheus after = Prometheus.scrapeWhen(server().http(),
        p -> p.value("chat_deliveries_total") >= before.value("chat_deliveries_total") + 2.0 * n
            && p.value("chat_broadcast_writes_total") > before.value("chat_broadcast_writes_total"));
    double deliveries = after.value("chat_deliveries_total") - before.value("chat_deliveries_total");
    double writes = after.value("chat_broadcast_writes_total") - before.value("chat_broadcast_writes_total");
    assertEquals(2.0 * n, deliveries);
    // the burst is read in a few turns of the event loop; one write per session per turn, not per chat
    // (on a machine busy with another build: 124 writes, 8 chats per write, over the 10 asked
    // before); a write per chat would make 1000
    assertTrue(writes >= 2 && writes <= 2 * n / 4.0, writes + " writes for " + deliveries + " deliveries");
  }

  @Test
  @DisplayName("300 sessions, 3 authors, sessions leaving and joining mid-stream: every session gets each chat once, in order")
  void manySessionsComingAndGoingGetEachChatOnceInOrder() {
    // more holders than one step of a broadcast pass writes: passes span several event-loop turns
    server(new JsonObject().put("limits.enabled", false).put("tcp.instances", 1));
    int sessions = 300;
    int perAuthor = 60;
    List<String> tokens = new ArrayList<>();
    List<LineClient> authors = List.of(online("author0", tokens), online("author1", tokens), online("author2", tokens));
    List<LineClient> stayers = new ArrayList<>();
    List<LineClient> leavers = new ArrayList<>();
    for (int i = 0; i < sessions; i++) {
      (i % 6 == 0 ? leavers : stayers).add(online("s" + i, tokens));
    }
    List<LineClient> joiners = new ArrayList<>();
    for (int round = 0; round < perAuthor; round++) {
      for (int a = 0; a < authors.size(); a++) {
        authors.get(a).send(chatJson(tokens.get(a), "a" + a + " n" + round));
      }
      if (round == perAuthor / 2) {
        leavers.forEach(LineClient::close);
        for (int j = 0; j < 10; j++) {
          joiners.add(online("j" + j, tokens));
        }
      }
    }
    for (LineClient c : stayers) {
      int[] next = new int[authors.size()];
      for (int k = 0; k < authors.size() * perAuthor; k++) {
        JsonObject b = new JsonObject(lineSkippingPings(c));
        int a = Integer.parseInt(b.getString("user").substring("author".length()));
        assertEquals("a" + a + " n" + next[a], b.getString("message"), "order or duplicate at a stayer");
        next[a]++;
      }
    }
    for (LineClient c : stayers.subList(0, 5)) {
      c.expectSilence(100); // nothing twice, after the last either
    }
    for (LineClient c : joiners) {
      // a joiner gets, of each author, everything from some chat on, once and in order
      int[] next = {-1, -1, -1};
      for (int k = 0; next[0] < perAuthor - 1 || next[1] < perAuthor - 1 || next[2] < perAuthor - 1; k++) {
        JsonObject b = new JsonObject(lineSkippingPings(c));
        int a = Integer.parseInt(b.getString("user").substring("author".length()));
        int n = Integer.parseInt(b.getString("message").substring(b.getString("message").indexOf('n') + 1));
        assertTrue(next[a] < 0 || n == next[a] + 1, "a joiner got n" + n + " of author" + a + " after n" + next[a]);
        next[a] = n;
      }
    }
  }

  @Test
  @DisplayName("messages with unicode, quotes, backslashes, braces and newlines arrive intact")
  void specialCharactersArriveIntact() {
    List<String> tokens = new ArrayList<>();
    LineClient alice = online("alice", tokens);
    LineClient bob = online("bob", tokens);
    String token = tokens.get(0);
    List<String> messages = List.of(
        "héllo wörld ✓ 你好 Ünïcödé 🎉👍🏽",
        "say \"hi\" and 'bye'",
        "back\\slash, a literal \\n and \\u0041 and \\\\ and \\\"",
        "line1\nline2\r\nline3\ttabbed",
        "braces } { ] [ and a lone } inside",
        "{\"type\":\"chat\",\"token\":\"x\",\"message\":\"nested\"}",
        "/slashes/ <html> &amp; \u00a0nbsp \u2028 sep");
    for (String m : messages) {
      alice.send(chatJson(token, m));
      assertBroadcastValues(new JsonObject(senderLines(alice)), "alice", m);
      String line = bob.readLine();
      assertBroadcastValues(new JsonObject(line), "alice", m);
      assertTrue(line.indexOf('\n') < 0 && line.indexOf('\r') < 0, "a broadcast is one line: " + line);
    }

    // written by hand with JSON escapes, and cut in the middle of a 4-byte UTF-8 character
    String escaped = "{\"type\":\"chat\",\"token\":\"" + token
        + "\",\"message\":\"\\u00e9\\ud83c\\udf89 \\\"q\\\" \\\\ \\/ \\n🎉end\"}";
    byte[] bytes = escaped.getBytes(StandardCharsets.UTF_8);
    int cut = escaped.substring(0, escaped.indexOf("🎉")).getBytes(StandardCharsets.UTF_8).length + 2;
    alice.sendBytes(java.util.Arrays.copyOfRange(bytes, 0, cut));
    alice.sendBytes(java.util.Arrays.copyOfRange(bytes, cut, bytes.length));
    String expected = "é🎉 \"q\" \\ / \n🎉end";
    assertBroadcastValues(new JsonObject(senderLines(alice)), "alice", expected);
    assertBroadcastValues(new JsonObject(bob.readLine()), "alice", expected);
    bob.expectSilence(200);
  }

  @Test
  @DisplayName("a receiver that stops reading is disconnected while the others still get every message in order")
  void slowReceiverIsCutOff() throws Exception {
    // 2000 chats at once: over the default limits.chatMessagesPerSecond (covered by LimitsTest), so it is off here
    server(new JsonObject().put("tcp.maxPendingBytes", 65536).put("limits.chatMessagesPerSecond", 0));
    List<String> tokens = new ArrayList<>();
    LineClient sender = online("alice", tokens);
    LineClient reader = online("bob", tokens);
    server().http().register("nick", "pw-nick");

    // nick logs in on a raw socket with a tiny receive buffer, then never reads again
    Socket nick = new Socket();
    closeables.add(nick);
    nick.setReceiveBufferSize(4096);
    nick.connect(new InetSocketAddress("127.0.0.1", server().tcpPort()), 5000);
    nick.setSoTimeout(5000);
    nick.getOutputStream().write("{\"type\":\"login\",\"username\":\"nick\",\"password\":\"pw-nick\"}"
        .getBytes(StandardCharsets.UTF_8));
    String nickLogin = rawLine(nick.getInputStream());
    assertTrue(nickLogin.startsWith("{\"type\":\"login\",\"status\":\"success\""), nickLogin);

    // 2000 chats of ~4 KB: about 8 MB per receiver, far more than the kernel buffers and 64 KiB of queue
    int n = 2000;
    String padding = "x".repeat(4000);
    java.util.concurrent.atomic.AtomicInteger senderGot = new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.atomic.AtomicInteger readerGot = new java.util.concurrent.atomic.AtomicInteger();
    CompletableFuture<List<String>> atSender = collect(sender, n, true, senderGot);
    CompletableFuture<List<String>> atReader = collect(reader, n, false, readerGot);
    long from = System.currentTimeMillis();
    StringBuilder batch = new StringBuilder();
    for (int i = 0; i < n; i++) {
      batch.append(chatJson(tokens.get(0), i + ":" + padding));
      if (batch.length() > 256 * 1024 || i == n - 1) {
        // the two readers here are test threads on a machine that may be busy: the sender keeps
        // within 256 chats (1 MB) of them, so that only nick, who never reads, falls behind
        long wait = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (Math.min(senderGot.get(), readerGot.get()) < i - 256 && System.nanoTime() < wait
            && !atSender.isDone() && !atReader.isDone()) {
          Thread.sleep(2);
        }
        sender.send(batch.toString());
        batch.setLength(0);
      }
    }
    List<String> gotByReader = await(atReader, 120);
    List<String> gotBySender = await(atSender, 120);
    long to = System.currentTimeMillis();
    for (List<String> received : List.of(gotByReader, gotBySender)) {
      assertEquals(n, received.size());
      for (int i = 0; i < n; i++) {
        assertBroadcast(received.get(i), "alice", i + ":" + padding, from, to);
      }
    }

    // nick's session ended while nick still reads nothing: a fresh connection can log in as nick
    LineClient again = connect();
    String reply = null;
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (System.nanoTime() < deadline) {
      again.send("{\"type\":\"login\",\"username\":\"nick\",\"password\":\"pw-nick\"}");
      reply = lineSkippingPings(again);
      if (!reply.contains("\"error_-1\"")) {
        break;
      }
      Thread.sleep(25);
    }
    assertTrue(reply != null && reply.startsWith("{\"type\":\"login\",\"status\":\"success\""),
        "nick's session did not end while nick was not reading: " + reply);
    // and nick's connection was closed: whatever was in flight drains, then the stream ends
    assertClosedWithin(nick, 20);
  }

  @Test
  @DisplayName("a client that never reads its own replies is cut off too: its unsent output stays bounded")
  void clientIgnoringItsRepliesIsCutOff() throws Exception {
    server(new JsonObject().put("tcp.maxPendingBytes", 65536));
    Socket raw = new Socket();
    closeables.add(raw);
    raw.setReceiveBufferSize(4096);
    raw.connect(new InetSocketAddress("127.0.0.1", server().tcpPort()), 5000);
    // 150,000 requests of 23 bytes, each answered by a 71-byte error: about 10 MB of replies, never read
    int n = 150_000;
    byte[] request = "{\"type\":\"no-such-type\"}".getBytes(StandardCharsets.UTF_8);
    byte[] chunk = new byte[request.length * 1000];
    for (int i = 0; i < 1000; i++) {
      System.arraycopy(request, 0, chunk, i * request.length, request.length);
    }
    CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
      try {
        for (int i = 0; i < n / 1000; i++) {
          raw.getOutputStream().write(chunk);
        }
      } catch (IOException e) {
        // the server cut us off
      }
    }, runnable -> {
      Thread t = new Thread(runnable, "writer");
      t.setDaemon(true);
      t.start();
    });
    try {
      writer.get(60, TimeUnit.SECONDS);
    } catch (TimeoutException e) {
      fail("the server neither read the requests nor closed the connection within 60 s");
    }

    // now read: a server that bounds its output closed the connection before sending every reply
    raw.setSoTimeout(2000);
    InputStream in = raw.getInputStream();
    byte[] buf = new byte[65536];
    long lines = 0;
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    boolean closed = false;
    while (!closed && System.nanoTime() < deadline) {
      try {
        int k = in.read(buf);
        if (k == -1) {
          closed = true;
        }
        for (int i = 0; i < k; i++) {
          if (buf[i] == '\n') {
            lines++;
          }
        }
      } catch (SocketTimeoutException e) {
        break; // the server went quiet without closing
      } catch (IOException e) {
        closed = true; // reset
      }
    }
    assertTrue(closed && lines < n, "the server kept the non-reading connection open and queued " + lines
        + " replies (about " + lines * 71 / 1024 + " KiB) although tcp.maxPendingBytes is 64 KiB");
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

  /** Drains the socket and asserts that the server ended the stream (FIN or reset) within the time. */
  private static void assertClosedWithin(Socket s, int seconds) throws IOException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    s.setSoTimeout(1000);
    InputStream in = s.getInputStream();
    byte[] buf = new byte[65536];
    while (System.nanoTime() < deadline) {
      try {
        if (in.read(buf) == -1) {
          return;
        }
      } catch (SocketTimeoutException e) {
        // keep waiting
      } catch (IOException e) {
        return; // reset: closed too
      }
    }
    fail("the server did not close the non-reading connection within " + seconds + " s");
  }
}
