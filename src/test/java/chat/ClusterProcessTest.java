package chat;

import chat.support.ClusterNodes;
import chat.support.ClusterNodes.Node;
import chat.support.Http;
import chat.support.LineClient;
import chat.support.LineInbox;
import chat.support.PgDatabase;
import chat.support.Prometheus;
import chat.support.Postgres;
import chat.support.RawHttp;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Cluster mode ({@code cluster.enabled=true}) as it is deployed: three servers, each its own JVM
 * ({@link ClusterNodes}), Hazelcast members of one cluster on the loopback interface, sharing one
 * PostgreSQL database. What a client sees must not depend on which node it talks to:
 * broadcasts reach every session on every node once and in each author's order; one socket
 * session per user across all nodes; tokens work on every node, expire and are revoked
 * everywhere, and are usable on every node as soon as the login has answered; the reaper works
 * cluster-wide; a node killed with -9 gives its users back at once and costs the others nothing;
 * a replacement node joins the running ones; a node stopped with SIGTERM gives its users back too.
 *
 * <p>Four clusters, one after the other (tests of a group share theirs; the next group's start
 * stops the previous one): the default settings; short token and reaper times; one for the node
 * failure and rejoin, which change its membership; and one whose nodes find each other through a
 * DNS name, as on Kubernetes, instead of a member list.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClusterProcessTest {

  private static final String REGISTERED = "{\"type\":\"register_1\",\"error\":false,\"message\":\"User registered successfully\"}";
  private static final String CHAT_SENT = "{\"type\":\"chat\",\"status\":\"success\"}";
  private static final String ALREADY_LOGGED_IN = "{\"type\":\"login\",\"status\":\"error_-1\",\"message\":\"Account already logged in\"}";
  private static final String HTTP_ALREADY_LOGGED_IN = "{\"type\":\"login\",\"status\":\"error_0\",\"message\":\"Account already logged in\"}";
  private static final String HTTP_BAD_CREDENTIALS = "{\"type\":\"login_0\",\"status\":\"error\",\"message\":\"Invalid credentials\"}";
  private static final String NOT_LOGGED_IN = "{\"type\":\"chat\",\"status\":\"error_Nli\",\"message\":\"Not logged in\"}";
  private static final String INVALID_TOKEN_CHAT = "{\"type\":\"chat\",\"status\":\"error_It\",\"message\":\"Invalid token\"}";
  private static final String INVALID_TOKEN_LOGIN = "{\"type\":\"login\",\"status\":\"error_It\",\"message\":\"Invalid token\"}";
  private static final String HTTP_CHAT_UNAUTHORIZED = "{\"type\":\"chat\",\"status\":\"error\"}";
  private static final String HEARTBEAT_OK = "{\"type\":\"heartbeat\",\"status\":\"success\"}";
  private static final String HEARTBEAT_ERROR = "{\"type\":\"heartbeat\",\"status\":\"error\"}";
  private static final String IDLE_TIMEOUT = "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Idle timeout\"}";
  private static final String KICKED = "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Session closed by an administrator\"}";
  private static final String PING = "{\"type\":\"ping\"}";
  private static final String SHUTTING_DOWN = "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Server shutting down\"}";
  private static final String MISSING_MESSAGE = "{\"type\":\"chat\",\"status\":\"error\",\"message\":\"Missing message\"}";

  /** auth.tokenTtlSeconds of the "timers" cluster. */
  private static final int SHORT_TTL_SECONDS = 4;
  /** reaper.idleSeconds and reaper.intervalSeconds of the "timers" cluster. */
  private static final int REAPER_IDLE_SECONDS = 3;
  private static final int REAPER_INTERVAL_SECONDS = 1;

  private static final SecureRandom RANDOM = new SecureRandom();

  private static Path root;
  private static PgDatabase db;
  private static ClusterNodes cluster;
  private static String clusterKind;

  @BeforeAll
  static void database() throws IOException {
    root = Files.createTempDirectory("chat-cluster-test-");
    db = Postgres.server().newDatabase();
  }

  @AfterAll
  static void stopEverything() throws IOException {
    try {
      stopCluster();
    } finally {
      try {
        if (db != null) {
          db.close();
        }
      } finally {
        deleteTree(root);
      }
    }
  }

  // ---- the clusters ----

  /** The cluster of {@code kind}, started at its first use; the cluster of another kind is stopped first. */
  private static ClusterNodes cluster(String kind, Map<String, String> env) {
    return cluster(kind, env, false);
  }

  private static ClusterNodes cluster(String kind, Map<String, String> env, boolean kubernetesDns) {
    if (!kind.equals(clusterKind)) {
      stopCluster();
      ClusterNodes c = new ClusterNodes(root, db, 3, env);
      if (kubernetesDns) {
        c.kubernetesDns();
      }
      long t0 = System.nanoTime();
      try {
        c.start();
      } catch (RuntimeException | Error e) {
        c.close();
        throw e;
      }
      System.out.println("[figures] " + kind + " cluster of 3 nodes up in " + millisSince(t0) + " ms: "
          + c.live().stream().map(n -> n.ports.line().replaceAll(".*(started in \\d+ ms).*", "$1")).toList());
      cluster = c;
      clusterKind = kind;
    }
    return cluster;
  }

  private static void stopCluster() {
    if (cluster != null) {
      cluster.close();
      cluster = null;
      clusterKind = null;
    }
  }

  /** Default settings. */
  private static ClusterNodes shared() {
    return cluster("shared", Map.of());
  }

  /** Short token TTL and reaper times. */
  private static ClusterNodes timers() {
    return cluster("timers", Map.of(
        "CHAT_AUTH_TOKENTTLSECONDS", Integer.toString(SHORT_TTL_SECONDS),
        "CHAT_REAPER_IDLESECONDS", Integer.toString(REAPER_IDLE_SECONDS),
        "CHAT_REAPER_INTERVALSECONDS", Integer.toString(REAPER_INTERVAL_SECONDS)));
  }

  /** Default settings; its membership changes (a node is killed, a new one joins). */
  private static ClusterNodes failover() {
    return cluster("failover", Map.of());
  }

  /** Default settings; the nodes find each other through a DNS name (cluster.kubernetesService), not a member list. */
  private static ClusterNodes kubernetes() {
    return cluster("kubernetes", Map.of(), true);
  }

  // ---- wire helpers ----

  private static String password(String user) {
    return "pw-" + user;
  }

  private static String tag() {
    return HexFormat.of().formatHex(new byte[] {(byte) RANDOM.nextInt(), (byte) RANDOM.nextInt(), (byte) RANDOM.nextInt()});
  }

  private static void register(Node node, String user) {
    Http.Response r = node.http.post("/api/register",
        new JsonObject().put("username", user).put("password", password(user)).encode());
    assertEquals(200, r.status(), r.body());
    assertEquals(REGISTERED, r.body());
  }

  private static String loginJson(String user, String pw) {
    return new JsonObject().put("type", "login").put("username", user).put("password", pw).encode();
  }

  private static String loginJson(String user) {
    return loginJson(user, password(user));
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

  private static String httpBody(String user, String pw) {
    return new JsonObject().put("username", user).put("password", pw).encode();
  }

  private static String chatBody(String message) {
    return new JsonObject().put("message", message).encode();
  }

  private static String avatar(String user) {
    return "/avatar/" + user + "/default_avatar.png";
  }

  /** The documented socket login success (§4.3), exactly. */
  private static String tcpLoginOk(String token, String user) {
    return "{\"type\":\"login\",\"status\":\"success\",\"message\":\"Login successful\",\"token\":\"" + token
        + "\",\"username\":\"" + user + "\",\"avatar\":\"" + avatar(user) + "\"}";
  }

  /** The documented HTTP login success (§3.2), exactly. */
  private static String httpLoginOk(String token, String user) {
    return "{\"type\":\"login_1\",\"status\":\"success\",\"token\":\"" + token + "\",\"avatar\":\"" + avatar(user) + "\"}";
  }

  /** The next line that is not a ping. */
  private static String reply(LineClient c) {
    while (true) {
      String line = c.readLine();
      if (!PING.equals(line)) {
        return line;
      }
    }
  }

  private static String reply(LineClient c, String request) {
    c.send(request);
    return reply(c);
  }

  /** The token of a login success line, after checking the whole line. */
  private static String tokenOf(String loginReply, String user) {
    JsonObject r = new JsonObject(loginReply);
    String token = r.getString("token");
    assertTrue(token != null && token.matches("[0-9a-f]{32}"), loginReply);
    assertEquals(tcpLoginOk(token, user), loginReply);
    return token;
  }

  /** Logs the user in on this connection (password), asserting the exact success reply; returns the token. */
  private static String login(LineClient c, String user) {
    return tokenOf(reply(c, loginJson(user)), user);
  }

  /** HTTP login, asserting the exact success reply; returns the token. */
  private static String httpLogin(Node node, String user) {
    Http.Response r = node.http.post("/api/login", httpBody(user, password(user)));
    assertEquals(200, r.status(), r.body());
    String token = r.json().getString("token");
    assertTrue(token != null && token.matches("[0-9a-f]{32}"), r.body());
    assertEquals(httpLoginOk(token, user), r.body());
    return token;
  }

  private static Http.Response httpChat(Node node, String token, String message) {
    return node.http.post("/api/chat", chatBody(message), "Authorization", token);
  }

  private static void assertHttpChatSent(Node node, String token, String message) {
    Http.Response r = httpChat(node, token, message);
    assertEquals(200, r.status(), node + ": " + r.body());
    assertEquals(CHAT_SENT, r.body(), node.toString());
  }

  private static boolean isBroadcast(String line) {
    return line.startsWith("{\"type\":\"chat\",\"user\":");
  }

  /** A broadcast whose message starts with {@code prefix}. */
  private static Predicate<String> broadcastWith(String prefix) {
    return line -> isBroadcast(line) && new JsonObject(line).getString("message", "").startsWith(prefix);
  }

  /** Asserts the documented broadcast (§4.5), exactly: {@code {type,user,message,avatar,ts}}, ts a number. */
  private static void assertBroadcast(String line, String user, String message) {
    JsonObject b = new JsonObject(line);
    assertEquals(List.of("type", "user", "message", "avatar", "ts"), new ArrayList<>(b.fieldNames()), line);
    assertEquals("chat", b.getValue("type"), line);
    assertEquals(user, b.getValue("user"), line);
    assertEquals(message, b.getValue("message"), line);
    assertEquals(avatar(user), b.getValue("avatar"), line);
    assertTrue(b.getValue("ts") instanceof Number, line);
  }

  /**
   * Sends {@code request} on {@code c} until the reply is not {@code ALREADY_LOGGED_IN} (the
   * session is still held elsewhere) or the deadline passes; returns the last reply.
   */
  private static String retryWhileContested(LineClient c, String request, long deadlineNanos) {
    String r = reply(c, request);
    while (ALREADY_LOGGED_IN.equals(r) && System.nanoTime() < deadlineNanos) {
      ClusterNodes.sleep(100);
      r = reply(c, request);
    }
    return r;
  }

  /**
   * Waits (bounded) until every live node knows {@code token} and, with {@code session}, that its
   * user holds a socket session (without: that it holds none). The probe is a socket chat without
   * a message: checked in the documented order, it answers {@code error_It} (unknown token),
   * {@code error_Nli} (no session) or {@code Missing message}, and broadcasts nothing. Tests that
   * use a fresh token on another node call this first: how soon a login is visible elsewhere is
   * the subject of {@link #loginIsUsableOnEveryOtherNodeAtOnce} alone.
   */
  private static void awaitKnownEverywhere(ClusterNodes c, String token, boolean session) {
    String want = session ? MISSING_MESSAGE : NOT_LOGGED_IN;
    String probe = new JsonObject().put("type", "chat").put("token", token).encode();
    for (Node node : c.live()) {
      try (LineClient s = node.connect()) {
        long deadline = deadlineIn(5000);
        String r = reply(s, probe);
        while (!want.equals(r) && System.nanoTime() < deadline) {
          ClusterNodes.sleep(20);
          r = reply(s, probe);
        }
        assertEquals(want, r, node + " did not learn of the token" + (session ? " and its session" : "") + " within 5 s");
      }
    }
  }

  /** Sends {@code request} on {@code c} until the reply is {@code want} or the deadline passes; returns the last reply. */
  private static String retryUntil(LineClient c, String request, String want, long deadlineNanos) {
    String r = reply(c, request);
    while (!want.equals(r) && System.nanoTime() < deadlineNanos) {
      ClusterNodes.sleep(100);
      r = reply(c, request);
    }
    return r;
  }

  private static long deadlineIn(long millis) {
    return System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
  }

  private static long millisSince(long nanos) {
    return (System.nanoTime() - nanos) / 1_000_000;
  }

  private static List<String> texts(List<LineInbox.Line> lines) {
    return lines.stream().map(LineInbox.Line::text).toList();
  }

  /** A reply and how long after some event it came. */
  private record Timed(String line, long millis) {
  }

  private static <T> T await(Future<T> f) throws Exception {
    return f.get(120, TimeUnit.SECONDS);
  }

  // ==== the "shared" cluster: default settings ====

  @Test
  @Order(1)
  @DisplayName("broadcast: 6 authors (TCP and HTTP, 2 per node) x 50 chats reach all 6 sessions on the 3 nodes exactly once, each author's in order")
  void everyChatReachesEverySessionOnEveryNodeOnceInOrder() throws Exception {
    ClusterNodes c = shared();
    int perAuthor = 50;
    String tag = "bc-" + tag();
    List<String> tcpAuthors = new ArrayList<>();
    List<String> httpAuthors = new ArrayList<>();
    Map<String, LineInbox> sessions = new LinkedHashMap<>();
    Map<String, String> tokens = new LinkedHashMap<>();
    Map<String, Node> nodeOf = new LinkedHashMap<>();
    ExecutorService pool = Executors.newCachedThreadPool();
    try {
      for (int k = 0; k < 3; k++) {
        Node node = c.node(k);
        String author = "bcTcp" + k;
        String listener = "bcListen" + k;
        String httpAuthor = "bcHttp" + k;
        for (String u : List.of(author, listener, httpAuthor)) {
          register(node, u);
          nodeOf.put(u, node);
        }
        for (String u : List.of(author, listener)) {
          LineClient client = node.connect();
          tokens.put(u, login(client, u));
          sessions.put(u, new LineInbox(client, u));
        }
        tokens.put(httpAuthor, httpLogin(node, httpAuthor));
        tcpAuthors.add(author);
        httpAuthors.add(httpAuthor);
      }

      CountDownLatch go = new CountDownLatch(1);
      List<Future<?>> senders = new ArrayList<>();
      for (String author : tcpAuthors) {
        senders.add(pool.submit(() -> {
          go.await();
          for (int seq = 0; seq < perAuthor; seq++) {
            sessions.get(author).send(chatJson(tokens.get(author), tag + " " + author + " " + seq));
          }
          return null;
        }));
      }
      for (String author : httpAuthors) {
        senders.add(pool.submit(() -> {
          go.await();
          for (int seq = 0; seq < perAuthor; seq++) {
            assertHttpChatSent(nodeOf.get(author), tokens.get(author), tag + " " + author + " " + seq);
          }
          return null;
        }));
      }
      go.countDown();
      for (Future<?> f : senders) {
        await(f);
      }

      int total = (tcpAuthors.size() + httpAuthors.size()) * perAuthor;
      Predicate<String> ours = broadcastWith(tag + " ");
      for (Map.Entry<String, LineInbox> s : sessions.entrySet()) {
        List<LineInbox.Line> got = s.getValue().await(ours, total, 60_000);
        assertEquals(total, got.size(), s.getKey() + " (on " + nodeOf.get(s.getKey()) + ") received " + got.size()
            + " of the " + total + " chats");
      }
      for (String author : tcpAuthors) {
        assertEquals(perAuthor, sessions.get(author).await(CHAT_SENT::equals, perAuthor, 30_000).size(),
            author + ": every chat is answered success: " + texts(sessions.get(author).lines()));
      }
      // a duplicate would arrive after the last expected copy: give it time to show
      ClusterNodes.sleep(1000);

      List<String> authors = Stream.concat(tcpAuthors.stream(), httpAuthors.stream()).toList();
      for (Map.Entry<String, LineInbox> s : sessions.entrySet()) {
        String receiver = s.getKey();
        Map<String, List<Integer>> heard = new LinkedHashMap<>();
        authors.forEach(a -> heard.put(a, new ArrayList<>()));
        int successes = 0;
        for (String line : texts(s.getValue().lines())) {
          if (CHAT_SENT.equals(line) && tcpAuthors.contains(receiver)) {
            successes++;
          } else if (!PING.equals(line)) {
            assertTrue(ours.test(line), receiver + " got an unexpected line: " + line);
            String[] parts = new JsonObject(line).getString("message").split(" ");
            String author = parts[1];
            assertBroadcast(line, author, tag + " " + author + " " + parts[2]);
            heard.get(author).add(Integer.parseInt(parts[2]));
          }
        }
        List<Integer> inOrder = IntStream.range(0, perAuthor).boxed().toList();
        for (String author : authors) {
          assertEquals(inOrder, heard.get(author), receiver + " (on " + nodeOf.get(receiver) + ") heard " + author + " (on "
              + nodeOf.get(author) + ") out of order, twice or not at all");
        }
        assertEquals(tcpAuthors.contains(receiver) ? perAuthor : 0, successes, receiver);
      }
    } finally {
      pool.shutdownNow();
      sessions.values().forEach(LineInbox::close);
    }
  }

  @Test
  @Order(2)
  @DisplayName("login race: 20 rounds of two TCP logins of one user on two nodes at once: exactly one success and one error_-1")
  void twoNodesRacingToLogInOneUserExactlyOneWins() throws Exception {
    ClusterNodes c = shared();
    int rounds = 20;
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      for (int i = 0; i < rounds; i++) {
        register(c.node(i % 3), "race" + i);
      }
      for (int i = 0; i < rounds; i++) {
        String user = "race" + i;
        Node a = c.node(i % 3);
        Node b = c.node((i + 1) % 3);
        try (LineClient ca = a.connect(); LineClient cb = b.connect()) {
          CyclicBarrier together = new CyclicBarrier(2);
          Callable<String> onA = () -> {
            together.await();
            return reply(ca, loginJson(user));
          };
          Callable<String> onB = () -> {
            together.await();
            return reply(cb, loginJson(user));
          };
          Future<String> fa = pool.submit(onA);
          Future<String> fb = pool.submit(onB);
          String ra = await(fa);
          String rb = await(fb);
          boolean aWon = !ALREADY_LOGGED_IN.equals(ra);
          String round = "round " + i + " (" + a + " vs " + b + "): " + ra + " | " + rb;
          assertEquals(ALREADY_LOGGED_IN, aWon ? rb : ra, round);
          tokenOf(aWon ? ra : rb, user); // the other one is the exact success reply
          LineClient winner = aWon ? ca : cb;
          LineClient loser = aWon ? cb : ca;

          // the winner holds the session on every node: the third node refuses too
          try (LineClient third = c.node((i + 2) % 3).connect()) {
            assertEquals(ALREADY_LOGGED_IN, reply(third, loginJson(user)), round);
          }
          // once the winner leaves, the loser's connection gets the session
          winner.close();
          assertEquals(user, new JsonObject(retryWhileContested(loser, loginJson(user), deadlineIn(10_000)))
              .getString("username"), round + ": the session was not released after the winner left");
        }
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  @Order(3)
  @DisplayName("a token issued on one node works at once on the others: HTTP chat, heartbeat, token resume")
  void tokenIssuedOnOneNodeWorksOnTheOthers() {
    ClusterNodes c = shared();
    String tag = "tok-" + tag();
    // a token of an HTTP login on each node works on the two others (and then still on its own)
    for (int k = 0; k < 3; k++) {
      String user = "tokHttp" + k;
      register(c.node(k), user);
      String token = httpLogin(c.node(k), user);
      awaitKnownEverywhere(c, token, false);
      for (int j = 1; j <= 3; j++) {
        assertHttpChatSent(c.node((k + j) % 3), token, tag + " issued on " + k + ", used on " + (k + j) % 3);
      }
    }

    // a socket session on node 0: its token drives a heartbeat over node 1 and an HTTP chat over
    // node 2 (Bearer), which the session on node 0 hears
    String user = "tokTcp";
    register(c.node(0), user);
    LineClient s0 = c.node(0).connect();
    String token = login(s0, user);
    awaitKnownEverywhere(c, token, true);
    try (LineInbox onNode0 = new LineInbox(s0, user); LineClient s1 = c.node(1).connect()) {
      assertEquals(HEARTBEAT_OK, reply(s1, heartbeatJson(token)));
      Http.Response r = c.node(2).http.post("/api/chat", chatBody(tag + " bearer"), "Authorization", "Bearer " + token);
      assertEquals(200, r.status(), r.body());
      assertEquals(CHAT_SENT, r.body());
      LineInbox.Line heard = onNode0.awaitFirst(broadcastWith(tag + " bearer"), 10_000);
      assertNotNull(heard, "the session on node 0 did not hear the HTTP chat sent over node 2: " + texts(onNode0.lines()));
      assertBroadcast(heard.text(), user, tag + " bearer");
    }

    // the socket on node 0 is gone: the token resumes a session on node 1 (the same token, refreshed)
    try (LineClient s1 = c.node(1).connect(); LineClient s2 = c.node(2).connect()) {
      assertEquals(tcpLoginOk(token, user), retryWhileContested(s1, resumeJson(token), deadlineIn(10_000)));
      // which is now the session: node 2 refuses the same resume
      assertEquals(ALREADY_LOGGED_IN, reply(s2, resumeJson(token)));
    }

    // a token from an HTTP login on node 2 resumes a socket on node 0
    String httpUser = "tokResume";
    register(c.node(2), httpUser);
    String httpToken = httpLogin(c.node(2), httpUser);
    awaitKnownEverywhere(c, httpToken, false);
    try (LineClient s0b = c.node(0).connect()) {
      assertEquals(tcpLoginOk(httpToken, httpUser), reply(s0b, resumeJson(httpToken)));
    }
  }

  @Test
  @Order(4)
  @DisplayName("user reset-password (admin command) revokes the user's tokens on every node and closes its session on its node")
  void revokedTokensAreDeadOnEveryNode() {
    ClusterNodes c = shared();
    String user = "revoked1";
    register(c.node(1), user);
    String httpToken = httpLogin(c.node(0), user);
    LineClient s2 = c.node(2).connect();
    String tcpToken = login(s2, user);
    awaitKnownEverywhere(c, httpToken, true);
    awaitKnownEverywhere(c, tcpToken, true);
    assertHttpChatSent(c.node(1), httpToken, "before the revocation");
    try (LineInbox session = new LineInbox(s2, user)) {
      ClusterNodes.Cli r = c.admin("pw-new-" + user + "\n", "user", "reset-password", user, "--password-stdin");
      assertEquals(0, r.exit(), r.out() + r.err());
      assertEquals("password of " + user + " reset; running server: revoked 2 tokens, session closed", r.out().strip(),
          r.out() + r.err());
      // the session on node 2 is closed with the administrator's message, whichever node carried the request out
      assertNotNull(session.awaitFirst(KICKED::equals, 10_000), "no kick message: " + texts(session.lines()));
      assertTrue(session.awaitEnd(10_000), "the session was not closed");
      assertEquals(List.of(KICKED), texts(session.lines()).stream().filter(l -> !PING.equals(l) && !isBroadcast(l)).toList());
    }
    // every token of the user is dead on every node
    for (Node node : c.live()) {
      for (String token : List.of(tcpToken, httpToken)) {
        Http.Response chat = httpChat(node, token, "after the revocation");
        assertEquals(401, chat.status(), node + ": " + chat.body());
        assertEquals(HTTP_CHAT_UNAUTHORIZED, chat.body(), node.toString());
        try (LineClient s = node.connect()) {
          assertEquals(INVALID_TOKEN_CHAT, reply(s, chatJson(token, "after the revocation")), node.toString());
          assertEquals(HEARTBEAT_ERROR, reply(s, heartbeatJson(token)), node.toString());
          assertEquals(INVALID_TOKEN_LOGIN, reply(s, resumeJson(token)), node.toString());
        }
      }
      Http.Response old = node.http.post("/api/login", httpBody(user, password(user)));
      assertEquals(401, old.status(), node + ": " + old.body());
      assertEquals(HTTP_BAD_CREDENTIALS, old.body());
    }
    // the new password works, and its token is good on another node
    try (LineClient s1 = c.node(1).connect()) {
      String fresh = tokenOf(retryWhileContested(s1, loginJson(user, "pw-new-" + user), deadlineIn(10_000)), user);
      assertHttpChatSent(c.node(0), fresh, "with the new token");
    }
  }

  @Test
  @Order(5)
  @DisplayName("session kick (admin command) closes a session on whichever node holds it; the user can log in elsewhere")
  void kickReachesTheSessionOnAnyNode() {
    ClusterNodes c = shared();
    List<LineInbox> sessions = new ArrayList<>();
    try {
      for (int k = 0; k < 3; k++) {
        String user = "kicked" + k;
        register(c.node(k), user);
        LineClient s = c.node(k).connect();
        login(s, user);
        sessions.add(new LineInbox(s, user));
      }
      for (int k = 0; k < 3; k++) {
        String user = "kicked" + k;
        ClusterNodes.Cli r = c.admin(null, "session", "kick", user);
        assertEquals(0, r.exit(), r.out() + r.err());
        assertEquals("kicked " + user + ": session closed", r.out().strip());
        LineInbox s = sessions.get(k);
        assertNotNull(s.awaitFirst(KICKED::equals, 10_000), user + " on node " + k + ": " + texts(s.lines()));
        assertTrue(s.awaitEnd(10_000), user + " on node " + k + " was not closed");
        for (int other = k + 1; other < 3; other++) {
          assertFalse(sessions.get(other).ended(), "kicking " + user + " closed kicked" + other + " too");
        }
        try (LineClient elsewhere = c.node((k + 1) % 3).connect()) {
          tokenOf(retryWhileContested(elsewhere, loginJson(user), deadlineIn(10_000)), user);
        }
      }
    } finally {
      sessions.forEach(LineInbox::close);
    }
  }

  @Test
  @Order(6)
  @DisplayName("HTTP login on node B answers 409 while the user holds a socket session on node A, and 200 once it is closed")
  void httpLoginElsewhereIsRefusedWhileSessionHeld() {
    ClusterNodes c = shared();
    String user = "held409";
    register(c.node(0), user);
    LineClient s0 = c.node(0).connect();
    login(s0, user);
    try {
      for (Node node : c.live()) {
        Http.Response r = node.http.post("/api/login", httpBody(user, password(user)));
        assertEquals(409, r.status(), node + ": " + r.body());
        assertEquals(HTTP_ALREADY_LOGGED_IN, r.body(), node.toString());
      }
      // credentials first: a wrong password is 401 whoever is online
      Http.Response wrong = c.node(1).http.post("/api/login", httpBody(user, "wrong"));
      assertEquals(401, wrong.status(), wrong.body());
      assertEquals(HTTP_BAD_CREDENTIALS, wrong.body());
    } finally {
      s0.close();
    }
    // once the socket on node 0 is closed, node 1 logs the user in over HTTP (no socket session: node 2 then takes one)
    long deadline = deadlineIn(10_000);
    Http.Response r = c.node(1).http.post("/api/login", httpBody(user, password(user)));
    while (r.status() == 409 && System.nanoTime() < deadline) {
      ClusterNodes.sleep(100);
      r = c.node(1).http.post("/api/login", httpBody(user, password(user)));
    }
    assertEquals(200, r.status(), "still refused after the session on node 0 closed: " + r.body());
    String token = r.json().getString("token");
    assertEquals(httpLoginOk(token, user), r.body());
    try (LineClient s2 = c.node(2).connect()) {
      login(s2, user);
    }
  }

  @Test
  @Order(7)
  @DisplayName("chat and heartbeat over node B for a user whose session is on node A succeed; a user with no session anywhere gets error_Nli everywhere")
  void sessionsOnOtherNodesCountForChatAndHeartbeat() {
    ClusterNodes c = shared();
    String tag = "nli-" + tag();
    String online = "nliOnline";
    String offline = "nliOffline";
    register(c.node(0), online);
    register(c.node(1), offline);
    // connections on nodes 1 and 2 that never log in
    LineClient s1 = c.node(1).connect();
    LineClient s2 = c.node(2).connect();
    LineClient s0 = c.node(0).connect();
    try (LineInbox b = new LineInbox(s1, "b"); LineInbox cc = new LineInbox(s2, "c")) {
      String token = login(s0, online);
      awaitKnownEverywhere(c, token, true);
      try (LineInbox session = new LineInbox(s0, online)) {
        // the user is logged in (on node 0): node 1 accepts its chat, node 2 its heartbeat, as one node would
        b.send(chatJson(token, tag + " via node 1"));
        assertEquals(CHAT_SENT, b.awaitFirst(l -> !PING.equals(l), 10_000).text());
        cc.send(heartbeatJson(token));
        assertEquals(HEARTBEAT_OK, cc.awaitFirst(l -> !PING.equals(l), 10_000).text());
        LineInbox.Line heard = session.awaitFirst(broadcastWith(tag + " via node 1"), 10_000);
        assertNotNull(heard, "the session on node 0 did not hear the chat accepted by node 1: " + texts(session.lines()));
        assertBroadcast(heard.text(), online, tag + " via node 1");
        // connections without a session hear nothing, not even the chat they sent
        ClusterNodes.sleep(300);
        assertEquals(List.of(CHAT_SENT), texts(b.lines()));
        assertEquals(List.of(HEARTBEAT_OK), texts(cc.lines()));
      }
      // the session on node 0 is closed: now the user has none anywhere, and every node says so
      for (Node node : c.live()) {
        try (LineClient s = node.connect()) {
          assertEquals(NOT_LOGGED_IN, retryUntil(s, chatJson(token, tag + " after close"), NOT_LOGGED_IN, deadlineIn(10_000)),
              node + ": still logged in 10 s after its session closed");
          assertEquals(HEARTBEAT_ERROR, reply(s, heartbeatJson(token)), node.toString());
        }
      }
    }
    // a user who only logged in over HTTP has no session: error_Nli and a failed heartbeat on every node
    String httpToken = httpLogin(c.node(1), offline);
    awaitKnownEverywhere(c, httpToken, false);
    for (Node node : c.live()) {
      try (LineClient s = node.connect()) {
        assertEquals(NOT_LOGGED_IN, reply(s, chatJson(httpToken, tag + " no session")), node.toString());
        assertEquals(HEARTBEAT_ERROR, reply(s, heartbeatJson(httpToken)), node.toString());
      }
    }
  }

  @Test
  @Order(8)
  @DisplayName("read your login everywhere: as soon as a login on node A has answered, its token and its session work on node B (200 HTTP logins, 200 token resumes, 200 socket logins)")
  void loginIsUsableOnEveryOtherNodeAtOnce() throws IOException {
    ClusterNodes c = shared();
    int rounds = 200;
    String tag = "rw-" + tag();
    for (int i = 0; i < rounds; i++) {
      register(c.node(i % 3), "rw" + i);
    }
    List<String> httpFailures = new ArrayList<>();
    List<String> resumeFailures = new ArrayList<>();
    List<String> loginFailures = new ArrayList<>();
    // HTTP: a login on A, at once an HTTP chat on B with its token (kept-alive connections, as a
    // load balancer in front of the nodes holds them)
    List<String> tokens = new ArrayList<>();
    RawHttp[] http = {new RawHttp(c.node(0).ports.http()), new RawHttp(c.node(1).ports.http()),
        new RawHttp(c.node(2).ports.http())};
    try {
      for (int i = 0; i < rounds; i++) {
        int a = i % 3;
        int b = (i + 1) % 3;
        RawHttp.Response login = http[a].post("/api/login", httpBody("rw" + i, password("rw" + i)).getBytes(UTF_8),
            "Content-Type", "application/json");
        assertEquals(200, login.status(), login.text());
        String token = new JsonObject(login.text()).getString("token");
        assertEquals(httpLoginOk(token, "rw" + i), login.text());
        tokens.add(token);
        RawHttp.Response r = http[b].post("/api/chat", chatBody(tag + " http " + i).getBytes(UTF_8),
            "Content-Type", "application/json", "Authorization", token);
        if (r.status() != 200) {
          httpFailures.add("rw" + i + " node " + a + " -> " + b + ": " + r.status() + " " + r.text());
        }
      }
    } finally {
      for (RawHttp h : http) {
        h.close();
      }
    }
    LineClient[] others = {c.node(0).connect(), c.node(1).connect(), c.node(2).connect()};
    try {
      // sockets, with tokens every node has known for a while: a resume on A, at once a chat on B
      // over a connection without a session (the session alone is new)
      for (int i = 0; i < rounds; i++) {
        Node a = c.node((i + 1) % 3);
        int b = (i + 2) % 3;
        try (LineClient s = a.connect()) {
          assertEquals(tcpLoginOk(tokens.get(i), "rw" + i), reply(s, resumeJson(tokens.get(i))));
          String r = reply(others[b], chatJson(tokens.get(i), tag + " resumed " + i));
          if (!CHAT_SENT.equals(r)) {
            resumeFailures.add("rw" + i + " node " + a.index + " -> " + b + ": " + r);
          }
        }
      }
      // sockets: a password login on A (a new token and a new session), at once a chat on B
      for (int i = 0; i < rounds; i++) {
        Node a = c.node(i % 3);
        int b = (i + 1) % 3;
        try (LineClient s = a.connect()) {
          String token = tokenOf(retryWhileContested(s, loginJson("rw" + i), deadlineIn(10_000)), "rw" + i);
          String r = reply(others[b], chatJson(token, tag + " socket " + i));
          if (!CHAT_SENT.equals(r)) {
            loginFailures.add("rw" + i + " node " + a.index + " -> " + b + ": " + r);
          }
        }
      }
    } finally {
      for (LineClient o : others) {
        o.close();
      }
    }
    assertTrue(httpFailures.isEmpty() && resumeFailures.isEmpty() && loginFailures.isEmpty(),
        "refused at once on another node: " + httpFailures.size() + " of " + rounds + " tokens of HTTP logins "
            + httpFailures + "; " + resumeFailures.size() + " of " + rounds + " sessions opened by token "
            + resumeFailures + "; " + loginFailures.size() + " of " + rounds + " socket logins " + loginFailures);
  }

  // ==== the "timers" cluster: auth.tokenTtlSeconds 4, reaper.idleSeconds 3, reaper.intervalSeconds 1 ====

  @Test
  @Order(10)
  @DisplayName("sliding expiry is shared: a token kept in use on node B past its TTL still works on A and C; left unused past the TTL it is dead on every node")
  void slidingExpiryIsSharedAcrossNodes() {
    ClusterNodes c = timers();
    String tag = "ttl-" + tag();
    String user = "slider";
    register(c.node(0), user);
    long issued = System.nanoTime();
    String token = httpLogin(c.node(0), user);
    long ttl = TimeUnit.SECONDS.toMillis(SHORT_TTL_SECONDS);

    // used on node 1 only, every 1.5 s, until 2.5 TTLs after it was issued
    long lastUseStarted = issued;
    int uses = 0;
    while (millisSince(issued) < 2.5 * ttl) {
      ClusterNodes.sleep(1500);
      long started = System.nanoTime();
      long gap = (started - lastUseStarted) / 1_000_000;
      assertTrue(gap < ttl - 1000, "the machine stalled: " + gap + " ms between two uses, too close to the TTL for this test");
      assertHttpChatSent(c.node(1), token, tag + " use " + uses++);
      lastUseStarted = started;
    }
    // nodes 0 (which issued it) and 2 (which never saw it) take it 2 s after the last use on node 1
    ClusterNodes.sleep(2000 - millisSince(lastUseStarted));
    assertHttpChatSent(c.node(0), token, tag + " on node 0, " + millisSince(issued) + " ms after issue");
    assertHttpChatSent(c.node(2), token, tag + " on node 2, " + millisSince(issued) + " ms after issue");
    long lastUseEnded = System.nanoTime();

    // then left unused longer than the TTL: dead everywhere, over HTTP and on sockets
    ClusterNodes.sleep(ttl + 700);
    assertTrue(millisSince(lastUseEnded) > ttl);
    for (Node node : List.of(c.node(2), c.node(1), c.node(0))) {
      Http.Response r = httpChat(node, token, tag + " expired");
      assertEquals(401, r.status(), node + ": " + r.body());
      assertEquals(HTTP_CHAT_UNAUTHORIZED, r.body());
    }
    for (Node node : c.live()) {
      try (LineClient s = node.connect()) {
        assertEquals(INVALID_TOKEN_CHAT, reply(s, chatJson(token, tag + " expired")), node.toString());
        assertEquals(INVALID_TOKEN_LOGIN, reply(s, resumeJson(token)), node.toString());
      }
    }
  }

  @Test
  @Order(11)
  @DisplayName("reaper: an idle session on node A is closed once, by node A; a session on B kept alive by heartbeats sent over C is not reaped")
  void reaperWorksClusterWide() {
    ClusterNodes c = timers();
    String idle = "idler";
    String kept = "keeper";
    register(c.node(0), idle);
    register(c.node(1), kept);

    LineClient ci = c.node(0).connect();
    long idleLoginSent = System.nanoTime();
    login(ci, idle);
    LineClient ck = c.node(1).connect();
    String keptToken = login(ck, kept);
    awaitKnownEverywhere(c, keptToken, true);
    try (LineInbox idleSession = new LineInbox(ci, idle); LineInbox keptSession = new LineInbox(ck, kept);
        LineClient viaNode2 = c.node(2).connect()) {
      // heartbeats over node 2 (a connection without a session) every second, for three idle times
      long start = System.nanoTime();
      while (millisSince(start) < 3L * REAPER_IDLE_SECONDS * 1000) {
        assertEquals(HEARTBEAT_OK, reply(viaNode2, heartbeatJson(keptToken)));
        ClusterNodes.sleep(1000);
      }

      // the idle session: "Idle timeout", then the close, no sooner than the idle time after its login
      assertTrue(idleSession.awaitEnd(10_000), "the idle session on node 0 was not closed: " + texts(idleSession.lines()));
      List<String> idleLines = texts(idleSession.lines()).stream().filter(l -> !PING.equals(l)).toList();
      assertEquals(List.of(IDLE_TIMEOUT), idleLines);
      long closedAfter = (idleSession.endedNanos() - idleLoginSent) / 1_000_000;
      assertTrue(closedAfter >= REAPER_IDLE_SECONDS * 1000L - 100, "reaped " + closedAfter + " ms after its login");
      assertTrue(closedAfter <= (REAPER_IDLE_SECONDS + REAPER_INTERVAL_SECONDS + 5) * 1000L,
          "reaped only " + closedAfter + " ms after its login");

      // the kept session heard nothing and is open; it still holds its session
      assertFalse(keptSession.ended(), "the session kept alive over node 2 was closed: " + texts(keptSession.lines()));
      assertEquals(List.of(), texts(keptSession.lines()).stream().filter(l -> !PING.equals(l)).toList());
      keptSession.send(heartbeatJson(keptToken));
      assertNotNull(keptSession.awaitFirst(HEARTBEAT_OK::equals, 10_000), texts(keptSession.lines()).toString());
      try (LineClient other = c.node(0).connect()) {
        assertEquals(ALREADY_LOGGED_IN, reply(other, loginJson(kept)));
      }

      // closed once, by its own node's reaper; nobody released it behind the owner's back
      List<String> closings = new ArrayList<>();
      for (Node node : c.live()) {
        node.log("Closing the idle session of " + idle).stream()
            .filter(l -> l.endsWith("Closing the idle session of " + idle)).forEach(l -> closings.add(node.index + ": " + l));
        assertEquals(List.of(), node.log("Releasing the session of " + idle), node.toString());
        assertEquals(List.of(), node.log("Closing the idle session of " + kept), node.toString());
      }
      assertEquals(1, closings.size(), "the idle session should be closed by exactly one reaper: " + closings);
      assertTrue(closings.get(0).startsWith("0: "), "closed by another node's reaper: " + closings);

      // its user logs in again, on another node
      try (LineClient again = c.node(2).connect()) {
        tokenOf(retryWhileContested(again, loginJson(idle), deadlineIn(10_000)), idle);
      }
    }
  }

  // ==== the "failover" cluster: a node killed, then replaced ====

  @Test
  @Order(20)
  @DisplayName("kill -9 of a node: within 10 s its users log in elsewhere (password, token), tokens stay valid, chats between the other nodes lose nothing")
  void killedNodeGivesItsUsersBackAndTheOthersLoseNothing() throws Exception {
    ClusterNodes c = failover();
    Node doomed = c.node(0);
    Node b = c.node(1);
    Node cc = c.node(2);
    String tag = "fo-" + tag();
    for (String u : List.of("foPassword", "foToken", "foGone", "foHttp", "foSender", "foRecvB", "foRecvC")) {
      register(b, u);
    }
    // on the node that will die: three sessions, and a token of an HTTP login
    LineClient victimP = doomed.connect();
    login(victimP, "foPassword");
    LineClient victimT = doomed.connect();
    String victimToken = login(victimT, "foToken");
    LineClient victimG = doomed.connect();
    String goneToken = login(victimG, "foGone");
    String httpToken = httpLogin(doomed, "foHttp");
    for (String token : List.of(victimToken, goneToken)) {
      awaitKnownEverywhere(c, token, true);
    }
    awaitKnownEverywhere(c, httpToken, false);

    // the flow: a sender on B, receivers on B and C
    LineClient sc = b.connect();
    String senderToken = login(sc, "foSender");
    LineClient rb = b.connect();
    login(rb, "foRecvB");
    LineClient rc = cc.connect();
    login(rc, "foRecvC");
    ExecutorService pool = Executors.newCachedThreadPool();
    AtomicBoolean stop = new AtomicBoolean();
    try (LineInbox sender = new LineInbox(sc, "foSender"); LineInbox recvB = new LineInbox(rb, "foRecvB");
        LineInbox recvC = new LineInbox(rc, "foRecvC")) {
      Future<Integer> sending = pool.submit(() -> {
        int seq = 0;
        while (!stop.get()) {
          sender.send(chatJson(senderToken, tag + " " + seq++));
          Thread.sleep(20);
        }
        return seq;
      });
      Predicate<String> ours = broadcastWith(tag + " ");
      assertEquals(20, recvC.await(ours, 20, 30_000).size(), "the chats do not flow: " + texts(recvC.lines()));

      long killed = System.nanoTime();
      doomed.kill();
      victimP.close();
      victimT.close();
      victimG.close();

      // its users get their sessions back on the other nodes within 10 s: by password on B, by token on C
      long deadline = killed + TimeUnit.SECONDS.toNanos(10);
      Future<Timed> byPassword = pool.submit(() -> {
        try (LineClient s = b.connect()) {
          return new Timed(retryWhileContested(s, loginJson("foPassword"), deadline), millisSince(killed));
        }
      });
      Future<Timed> byToken = pool.submit(() -> {
        try (LineClient s = cc.connect()) {
          return new Timed(retryWhileContested(s, resumeJson(victimToken), deadline), millisSince(killed));
        }
      });
      Timed p = await(byPassword);
      Timed t = await(byToken);
      System.out.println("[figures] after kill -9: password login on another node after " + p.millis()
          + " ms, token resume on another node after " + t.millis() + " ms");
      assertTrue(p.line().startsWith("{\"type\":\"login\",\"status\":\"success\""),
          "password login on node 1, " + p.millis() + " ms after the kill: " + p.line());
      tokenOf(p.line(), "foPassword");
      assertEquals(tcpLoginOk(victimToken, "foToken"), t.line(), "token resume on node 2, " + t.millis() + " ms after the kill");
      assertTrue(p.millis() <= 10_500 && t.millis() <= 10_500, p.millis() + " / " + t.millis() + " ms");

      // a user of the dead node who does not come back is logged in nowhere, as every node says
      // (error_Nli, failed heartbeat), and can log in over HTTP (no 409) within 10 s too
      String probe = new JsonObject().put("type", "chat").put("token", goneToken).encode();
      for (Node node : List.of(b, cc)) {
        try (LineClient s = node.connect()) {
          String r = retryUntil(s, probe, NOT_LOGGED_IN, deadline);
          assertEquals(NOT_LOGGED_IN, r, node + ": foGone still online " + millisSince(killed) + " ms after the kill");
          assertEquals(NOT_LOGGED_IN, reply(s, chatJson(goneToken, "after the kill")), node.toString());
          assertEquals(HEARTBEAT_ERROR, reply(s, heartbeatJson(goneToken)), node.toString());
        }
      }
      Http.Response gone = cc.http.post("/api/login", httpBody("foGone", password("foGone")));
      assertEquals(200, gone.status(), millisSince(killed) + " ms after the kill: " + gone.body());

      // the token of the HTTP login on the dead node still works on the others
      assertHttpChatSent(cc, httpToken, "from a token of the dead node");
      assertHttpChatSent(b, httpToken, "from a token of the dead node");

      // keep the flow going a while, then stop it and count
      ClusterNodes.sleep(2000);
      stop.set(true);
      int sent = await(sending);
      assertEquals(sent, sender.await(CHAT_SENT::equals, sent, 30_000).size(),
          "every chat of the sender is accepted: " + texts(sender.lines()).stream().filter(l -> !isBroadcast(l)).toList());
      List<Integer> all = IntStream.range(0, sent).boxed().toList();
      for (LineInbox in : List.of(sender, recvB, recvC)) {
        in.await(ours, sent, 30_000);
      }
      ClusterNodes.sleep(500);
      for (LineInbox in : List.of(sender, recvB, recvC)) {
        List<Integer> seqs = new ArrayList<>();
        for (String line : texts(in.matching(ours))) {
          String message = new JsonObject(line).getString("message");
          assertBroadcast(line, "foSender", message);
          seqs.add(Integer.parseInt(message.substring(message.lastIndexOf(' ') + 1)));
        }
        if (!all.equals(seqs)) {
          List<Integer> missing = new ArrayList<>(all);
          missing.removeAll(seqs);
          fail(in.client().socket().getPort() + ": of " + sent + " chats, received " + seqs.size() + "; missing " + missing
              + "; in order and once: " + seqs.equals(seqs.stream().sorted().distinct().toList()));
        }
      }
    } finally {
      stop.set(true);
      pool.shutdownNow();
    }
  }

  @Test
  @Order(21)
  @DisplayName("a replacement node joins the running ones: 3 members, chats flow both ways, one session per user across old and new nodes")
  void replacementNodeJoinsTheRunningCluster() throws Exception {
    ClusterNodes c = failover();
    if (c.node(0).alive()) {
      c.node(0).kill(); // run alone: the failure test did not kill it
    }
    c.awaitMembers(2, Duration.ofSeconds(60));
    Node b = c.node(1);
    Node cc = c.node(2);
    String bId = b.nodeId;
    String tag = "rj-" + tag();
    for (String u : List.of("rjNew", "rjOldB", "rjOldC", "rjHttp", "rjFlowS", "rjFlowR")) {
      register(b, u);
    }
    // before the new node exists: a session on C and a token of an HTTP login on B
    LineClient sc = cc.connect();
    login(sc, "rjOldC");
    String httpToken = httpLogin(b, "rjHttp");
    // and chats flowing from B to C while it joins
    LineClient flowSender = b.connect();
    String flowToken = login(flowSender, "rjFlowS");
    LineClient flowReceiver = cc.connect();
    login(flowReceiver, "rjFlowR");
    ExecutorService pool = Executors.newSingleThreadExecutor();
    AtomicBoolean stop = new AtomicBoolean();
    String flowTag = "rjf-" + tag();
    Predicate<String> flow = broadcastWith(flowTag + " ");
    try (LineInbox flowS = new LineInbox(flowSender, "rjFlowS"); LineInbox flowR = new LineInbox(flowReceiver, "rjFlowR")) {
      Future<Integer> sending = pool.submit(() -> {
        int seq = 0;
        while (!stop.get()) {
          flowS.send(chatJson(flowToken, flowTag + " " + seq++));
          Thread.sleep(20);
        }
        return seq;
      });
      assertEquals(10, flowR.await(flow, 10, 30_000).size(), "the chats do not flow: " + texts(flowR.lines()));

      long t0 = System.nanoTime();
      Node fresh = c.restart(0);
      System.out.println("[figures] replacement node listening after " + millisSince(t0) + " ms: " + fresh.ports.line());
      assertEquals(3, fresh.membersAtStartup, fresh.ports.line());
      c.awaitMembers(3, Duration.ofSeconds(60));
      assertTrue(b.alive() && cc.alive() && b.nodeId.equals(bId), "the old nodes kept running");
      ClusterNodes.sleep(1000);
      stop.set(true);
      int sent = await(sending);
      assertEquals(sent, flowS.await(CHAT_SENT::equals, sent, 30_000).size(), "every chat is accepted while the node joins");
      List<Integer> all = IntStream.range(0, sent).boxed().toList();
      for (LineInbox in : List.of(flowS, flowR)) {
        in.await(flow, sent, 30_000);
      }
      ClusterNodes.sleep(500);
      for (LineInbox in : List.of(flowS, flowR)) {
        List<Integer> seqs = texts(in.matching(flow)).stream()
            .map(l -> new JsonObject(l).getString("message")).map(m -> Integer.parseInt(m.substring(m.lastIndexOf(' ') + 1)))
            .toList();
        assertEquals(all, seqs, "chats between the old nodes while the new one joined: lost, repeated or out of order");
      }
    } finally {
      stop.set(true);
      pool.shutdownNow();
    }
    Node fresh = c.node(0);

    LineClient sn = fresh.connect();
    String newToken = login(sn, "rjNew");
    LineClient sb = b.connect();
    String oldToken = login(sb, "rjOldB");
    awaitKnownEverywhere(c, newToken, true);
    awaitKnownEverywhere(c, oldToken, true);
    try (LineInbox onNew = new LineInbox(sn, "rjNew"); LineInbox onB = new LineInbox(sb, "rjOldB");
        LineInbox onC = new LineInbox(sc, "rjOldC")) {
      onNew.send(chatJson(newToken, tag + " from the new node"));
      onB.send(chatJson(oldToken, tag + " from an old node"));
      assertHttpChatSent(cc, httpToken, tag + " over HTTP on an old node");
      assertHttpChatSent(fresh, httpToken, tag + " over HTTP on the new node, token from an old one");
      Predicate<String> ours = broadcastWith(tag + " ");
      for (LineInbox in : List.of(onNew, onB, onC)) {
        in.await(ours, 4, 20_000);
      }
      ClusterNodes.sleep(500);
      for (LineInbox in : List.of(onNew, onB, onC)) {
        List<String> heard = texts(in.matching(ours));
        assertEquals(4, heard.size(), "each chat once: " + heard);
        assertBroadcast(heard.stream().filter(l -> l.contains("from the new node")).findFirst().orElseThrow(), "rjNew",
            tag + " from the new node");
        assertBroadcast(heard.stream().filter(l -> l.contains("from an old node")).findFirst().orElseThrow(), "rjOldB",
            tag + " from an old node");
        assertEquals(2, heard.stream().filter(l -> l.contains("\"user\":\"rjHttp\"")).count(), heard.toString());
      }

      // one session per user, across old and new nodes, both ways
      for (Node old : List.of(b, cc)) {
        try (LineClient s = old.connect()) {
          assertEquals(ALREADY_LOGGED_IN, reply(s, loginJson("rjNew")), old.toString());
        }
        Http.Response r = old.http.post("/api/login", httpBody("rjNew", password("rjNew")));
        assertEquals(409, r.status(), old + ": " + r.body());
        assertEquals(HTTP_ALREADY_LOGGED_IN, r.body());
      }
      try (LineClient s = fresh.connect()) {
        assertEquals(ALREADY_LOGGED_IN, reply(s, loginJson("rjOldB")));
        assertEquals(ALREADY_LOGGED_IN, reply(s, loginJson("rjOldC")));
        // and a session on an old node counts there: a heartbeat over the new node
        assertEquals(HEARTBEAT_OK, reply(s, heartbeatJson(oldToken)));
      }
      Http.Response r = fresh.http.post("/api/login", httpBody("rjOldB", password("rjOldB")));
      assertEquals(409, r.status(), r.body());
      assertEquals(HTTP_ALREADY_LOGGED_IN, r.body());
    }
  }

  @Test
  @Order(22)
  @DisplayName("a node that leaves (SIGTERM) says so to its sessions and exits 0; its users log in on another node within 10 s; the others see 2 members")
  void nodeLeavingGracefullyGivesItsUsersBack() {
    ClusterNodes c = failover();
    if (!c.node(0).alive()) {
      c.restart(0); // run alone after a failed rejoin test
      c.awaitMembers(3, Duration.ofSeconds(60));
    }
    Node leaving = c.node(0);
    Node b = c.node(1);
    register(b, "lvSession");
    LineClient s = leaving.connect();
    String token = login(s, "lvSession");
    awaitKnownEverywhere(c, token, true);
    try (LineInbox session = new LineInbox(s, "lvSession")) {
      long stopped = System.nanoTime();
      leaving.process.terminate();
      assertNotNull(session.awaitFirst(SHUTTING_DOWN::equals, 15_000), "no shutdown message: " + texts(session.lines()));
      assertTrue(session.awaitEnd(15_000), "the session was not closed");
      assertEquals(0, leaving.process.awaitExit(Duration.ofSeconds(30)), leaving.process.transcript());
      try (LineClient elsewhere = b.connect()) {
        String r = retryWhileContested(elsewhere, resumeJson(token), stopped + TimeUnit.SECONDS.toNanos(10));
        assertEquals(tcpLoginOk(token, "lvSession"), r, millisSince(stopped) + " ms after SIGTERM");
      }
      System.out.println("[figures] after SIGTERM: session resumed on another node " + millisSince(stopped) + " ms later");
    }
    c.awaitMembers(2, Duration.ofSeconds(30));
    for (Node n : c.live()) {
      assertEquals(2.0, Prometheus.scrape(n.http).value("chat_cluster_members"), n + ": /metrics after a node left");
    }
  }

  @Test
  @Order(30)
  @DisplayName("Kubernetes discovery (cluster.kubernetesService): three nodes that find each other through a DNS name form one cluster")
  void nodesFoundThroughDnsFormOneCluster() {
    ClusterNodes c = kubernetes(); // start() has waited until every node sees 3 members
    for (Node n : c.live()) {
      Prometheus metrics = Prometheus.scrape(n.http);
      assertEquals("gauge", metrics.type("chat_cluster_members"), n.toString());
      assertEquals(3.0, metrics.value("chat_cluster_members"), n + " sees the others in /metrics");
    }
    String tag = "k8s-" + tag();
    String user = "k8sUser";
    register(c.node(0), user);
    LineClient s0 = c.node(0).connect();
    String token = login(s0, user);
    awaitKnownEverywhere(c, token, true);
    try (LineInbox onNode0 = new LineInbox(s0, user)) {
      // the session on node 0 holds the user on node 2 too, and an HTTP chat over node 1 reaches it
      Http.Response elsewhere = c.node(2).http.post("/api/login", httpBody(user, password(user)));
      assertEquals(409, elsewhere.status(), elsewhere.body());
      assertEquals(HTTP_ALREADY_LOGGED_IN, elsewhere.body());
      assertHttpChatSent(c.node(1), token, tag + " over node 1");
      LineInbox.Line heard = onNode0.awaitFirst(broadcastWith(tag + " over node 1"), 10_000);
      assertNotNull(heard, "the session on node 0 did not hear the chat sent over node 1: " + texts(onNode0.lines()));
      assertBroadcast(heard.text(), user, tag + " over node 1");
    }
  }

  private static void deleteTree(Path dir) throws IOException {
    if (dir == null || !Files.exists(dir)) {
      return;
    }
    try (Stream<Path> all = Files.walk(dir)) {
      for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
