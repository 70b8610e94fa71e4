package chat.cluster;

import chat.auth.SessionRef;
import chat.auth.SessionRegistry;
import chat.auth.TokenStore;
import chat.config.ChatConfig;
import com.hazelcast.replicatedmap.ReplicatedMap;
import chat.protocol.Addresses;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The cluster-wide token store and session registry on two real Hazelcast members in this JVM
 * (loopback, their own cluster name). The clock is ours, so expiry is exact; replication is
 * real, so reads on the other member are polled for a bounded time.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class ClusterStoresTest {

  private static final long TTL = 60_000;
  private final AtomicLong now = new AtomicLong(1_700_000_000_000L);
  private final String clusterName = "chat-test-" + UUID.randomUUID();
  private final List<Vertx> nodes = new ArrayList<>();
  private int[] ports;
  private Vertx vertxA;
  private Vertx vertxB;
  private ClusterStores a;
  private ClusterStores b;

  private final TokenStore.Holder alice = new TokenStore.Holder("alice", "/avatar/alice/default_avatar.png");

  @BeforeAll
  void startTwoMembers() throws Exception {
    ports = new int[] {freePort(), freePort(), freePort()};
    vertxA = join(0);
    vertxB = join(1);
    a = await(ClusterStores.open(vertxA, TTL, now::get));
    b = await(ClusterStores.open(vertxB, TTL, now::get));
    assertEquals(2, ClusterNode.members(vertxB));
  }

  @AfterAll
  void stop() {
    for (Vertx v : nodes) {
      try {
        v.close().await(30, TimeUnit.SECONDS);
      } catch (Exception ignored) {
        // best effort
      }
    }
  }

  private Vertx join(int index) throws Exception {
    StringBuilder members = new StringBuilder();
    for (int p : ports) {
      members.append(members.length() == 0 ? "" : ",").append("127.0.0.1:").append(p);
    }
    ChatConfig config = ChatConfig.withOverrides(new JsonObject().put("cluster.enabled", true)
        .put("cluster.name", clusterName).put("cluster.host", "127.0.0.1").put("cluster.port", ports[index])
        .put("cluster.members", members.toString()));
    Vertx v = ClusterNode.start(Vertx.builder(), new VertxOptions(), config).await(2, TimeUnit.MINUTES);
    nodes.add(v);
    return v;
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static <T> T await(Future<T> f) throws Exception {
    return f.await(30, TimeUnit.SECONDS);
  }

  private static void eventually(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("not within 10 s: " + what);
      }
      Thread.sleep(20);
    }
  }

  private static TokenStore.Holder use(ClusterStores s, String token) {
    try {
      return await(s.tokens().use(token));
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private static boolean online(ClusterStores s, String user) {
    try {
      return await(s.sessions().isOnline(user));
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  @Test
  @DisplayName("a token issued on one member is valid on the other, read locally there")
  void tokenIssuedOnAWorksOnB() throws Exception {
    String token = await(a.tokens().issue(alice));
    assertTrue(token.matches("[0-9a-f]{32}"), token);
    assertEquals(alice, use(a, token), "read-your-write on the issuing member");
    eventually("token visible on B", () -> alice.equals(use(b, token)));
    Future<TokenStore.Holder> onB = b.tokens().use(token);
    assertTrue(onB.isComplete(), "a token check on B completes at once: no network round trip");
    assertNull(use(b, token.substring(0, 31) + (token.charAt(31) == '0' ? '1' : '0')), "wrong verifier");
    assertNull(use(b, null));
    assertNull(use(b, "0".repeat(32)));
  }

  @Test
  @DisplayName("a token whose replicated copy has not reached a member yet is found in the recent-issue map there")
  void tokenNotYetReplicatedIsFoundInRecentMap() throws Exception {
    TokenStore.Holder gina = new TokenStore.Holder("gina", "/avatar/gina/default_avatar.png");
    // the state right after an issue on another member: in the recent map, not (yet) in the local copy
    String token = "0123456789abcdef" + "fedcba9876543210";
    com.hazelcast.map.IMap<String, ClusterTokenStore.Entry> recent =
        ClusterNode.hazelcast(vertxA).getMap(ClusterNode.RECENT_TOKENS_MAP);
    recent.set(token.substring(0, 16), new ClusterTokenStore.Entry(gina, token.substring(16), now.get(), now.get()));
    assertEquals(gina, use(b, token));
    assertEquals(gina, use(a, token));
    assertNull(use(b, token.substring(0, 16) + "0".repeat(16)), "wrong verifier");
    assertNull(use(b, "fedcba9876543210" + "0123456789abcdef"), "unknown everywhere");
    assertEquals(0, await(b.tokens().revokeUser("gina")), "no replicated copy to remove");
    assertNull(use(b, token), "revoked: the tombstone covers the recent map too");
  }

  @Test
  @DisplayName("the sliding expiry is shared: a use on B keeps the token alive on A; unused for a TTL, it is dead on both")
  void slidingExpiryIsShared() throws Exception {
    TokenStore.Holder carol = new TokenStore.Holder("carol", "/avatar/carol/default_avatar.png");
    String token = await(a.tokens().issue(carol));
    eventually("token visible on B", () -> use(b, token) != null);
    long refresh = ((ClusterTokenStore) b.tokens()).refreshMillis();
    now.addAndGet(TTL - 1000);
    long usedOnB = now.get();
    assertEquals(carol, use(b, token), "used on B just before its expiry");
    ReplicatedMap<String, ClusterTokenStore.Entry> onA = ClusterNode.hazelcast(vertxA).getReplicatedMap(ClusterNode.TOKENS_MAP);
    eventually("B's use replicated to A", () -> onA.get(token.substring(0, 16)).lastUsedMillis() == usedOnB);
    // so on A the token lives on past its first TTL
    now.addAndGet(2000);
    assertEquals(carol, use(a, token), "alive on A one TTL after issue: B's use counted");
    now.addAndGet(TTL - refresh - 1);
    assertEquals(carol, use(a, token), "still alive one TTL after its last use, minus the refresh interval");
    now.addAndGet(TTL + 1);
    assertNull(use(a, token), "unused for a TTL: dead on A");
    assertNull(use(b, token), "and on B");
  }

  @Test
  @DisplayName("a revoked token is dead on every member, and a late refresh cannot bring it back")
  void revokedEverywhere() throws Exception {
    TokenStore.Holder dave = new TokenStore.Holder("dave", "/avatar/dave/default_avatar.png");
    String t1 = await(a.tokens().issue(dave));
    String t2 = await(b.tokens().issue(dave));
    String other = await(a.tokens().issue(alice));
    eventually("both tokens visible on both", () -> use(a, t2) != null && use(b, t1) != null);
    ReplicatedMap<String, ClusterTokenStore.Entry> raw = ClusterNode.hazelcast(vertxA).getReplicatedMap(ClusterNode.TOKENS_MAP);
    ClusterTokenStore.Entry before = raw.get(t1.substring(0, 16));
    assertNotNull(before);

    assertEquals(2, await(b.tokens().revokeUser("dave")));
    assertNull(use(b, t1));
    eventually("t1 and t2 dead on A", () -> use(a, t1) == null && use(a, t2) == null);
    // a refresh written by another member just after the revocation
    raw.put(t1.substring(0, 16), new ClusterTokenStore.Entry(before.holder(), before.verifier(), before.issuedMillis(),
        now.get()));
    assertNull(use(a, t1), "the tombstone keeps it dead");
    eventually("dead on B too", () -> use(b, t1) == null);
    assertEquals(alice, use(a, other), "another user's token is untouched");
    now.addAndGet(1);
    String fresh = await(a.tokens().issue(dave));
    assertEquals(dave, use(a, fresh), "a token issued after the revocation works");
  }

  @Test
  @DisplayName("one session per user across members: the holder is seen everywhere, and released everywhere")
  void oneSessionAcrossMembers() throws Exception {
    SessionRef onA = new SessionRef("chat.tcp.owner.a", 1);
    SessionRef onB = new SessionRef("chat.tcp.owner.b", 7);
    assertNull(await(a.sessions().bind("erin", onA)));
    assertEquals(onA, await(b.sessions().bind("erin", onB)), "B is told who holds it");
    assertEquals(onA, await(b.sessions().holder("erin")));
    eventually("B's view sees erin online", () -> online(b, "erin"));
    assertTrue(b.sessions().isOnline("erin").isComplete(), "isOnline completes at once: a local view");
    assertFalse(await(b.sessions().release("erin", onB)), "B does not hold it");
    assertTrue(await(a.sessions().release("erin", onA)));
    eventually("B's view sees erin offline", () -> !online(b, "erin"));
    assertNull(await(b.sessions().bind("erin", onB)));
    assertEquals(List.of(), await(a.sessions().idleSince(Long.MAX_VALUE)).stream()
        .filter(s -> s.username().equals("erin")).toList(), "A's reaper does not see B's session");
    assertEquals(1, await(b.sessions().idleSince(Long.MAX_VALUE)).stream()
        .filter(s -> s.username().equals("erin")).count(), "B's reaper does");
    assertTrue(await(b.sessions().release("erin", onB)));
  }

  @Test
  @DisplayName("two members racing to bind the same users: exactly one wins each")
  void bindRace() throws Exception {
    int users = 40;
    List<Future<SessionRef>> fromA = new ArrayList<>();
    List<Future<SessionRef>> fromB = new ArrayList<>();
    for (int i = 0; i < users; i++) {
      fromA.add(a.sessions().bind("race" + i, new SessionRef("chat.tcp.owner.a", i)));
      fromB.add(b.sessions().bind("race" + i, new SessionRef("chat.tcp.owner.b", i)));
    }
    for (int i = 0; i < users; i++) {
      SessionRef ra = await(fromA.get(i));
      SessionRef rb = await(fromB.get(i));
      assertTrue((ra == null) != (rb == null), "exactly one winner for race" + i + ": " + ra + " / " + rb);
      SessionRef winner = ra == null ? new SessionRef("chat.tcp.owner.a", i) : new SessionRef("chat.tcp.owner.b", i);
      assertEquals(winner, ra == null ? rb : ra, "the loser is told the winner");
      assertEquals(winner, await(a.sessions().holder("race" + i)));
    }
  }

  @Test
  @DisplayName("the sessions of a member that leaves are released, and the user can bind on another member")
  void sessionsOfAGoneMemberAreReleased() throws Exception {
    Vertx vertxC = join(2);
    ClusterStores c = await(ClusterStores.open(vertxC, TTL, now::get));
    assertNull(await(c.sessions().bind("frank", new SessionRef("chat.tcp.owner.c", 3))));
    eventually("A sees frank online", () -> online(a, "frank"));
    vertxC.close().await(60, TimeUnit.SECONDS);
    nodes.remove(vertxC);
    long left = System.nanoTime();
    eventually("frank's session released", () -> !online(a, "frank") && !online(b, "frank"));
    assertTrue(System.nanoTime() - left < TimeUnit.SECONDS.toNanos(10));
    assertNull(await(b.sessions().bind("frank", new SessionRef("chat.tcp.owner.b", 4))));
    assertTrue(await(b.sessions().release("frank", new SessionRef("chat.tcp.owner.b", 4))));
  }

  @Test
  @DisplayName("the relay: the chats of one event-loop turn reach the other member in one message, in order, once; "
      + "this member's sessions get each once")
  void relayBatchesChatsPerTurn() throws Exception {
    ClusterRelay relayA = await(ClusterRelay.start(vertxA));
    await(ClusterRelay.start(vertxB));
    List<String> atA = new java.util.concurrent.CopyOnWriteArrayList<>();
    List<String> atB = new java.util.concurrent.CopyOnWriteArrayList<>();
    List<Integer> relayMessagesAtB = new java.util.concurrent.CopyOnWriteArrayList<>();
    await(vertxA.eventBus().<Buffer>consumer(Addresses.BROADCAST, m -> atA.add(m.body().toString())).completion());
    await(vertxB.eventBus().<Buffer>consumer(Addresses.BROADCAST, m -> atB.add(m.body().toString())).completion());
    await(vertxB.eventBus().<Buffer>consumer(ClusterRelay.ADDRESS, m -> relayMessagesAtB.add(m.body().getInt(8)))
        .completion());
    // the relay consumers are registered cluster-wide: wait until A's publishes reach B
    eventually("B's relay consumer known on A", () -> {
      relayA.publish(Buffer.buffer("probe"));
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        throw new RuntimeException(e);
      }
      return atB.contains("probe");
    });
    eventually("the probes arrived", () -> atA.size() == atB.size());
    atA.clear();
    atB.clear();
    relayMessagesAtB.clear();

    List<String> sent = List.of("one", "two", "three", "four", "five", "six", "seven");
    Context ctx = vertxA.getOrCreateContext(); // from this test thread: a new event-loop context
    Promise<Void> turn = Promise.promise();
    ctx.runOnContext(v -> { // one event-loop turn: one batch of five
      sent.subList(0, 5).forEach(line -> relayA.publish(Buffer.buffer(line)));
      // the batch leaves in a task the first publish queued; this one runs after it: only then is
      // "six" (from another thread, so in no order with this turn's chats otherwise) published
      ctx.runOnContext(w -> turn.complete());
    });
    await(turn.future());
    relayA.publish(Buffer.buffer("six")); // not on an event loop: a batch of one, at once
    Promise<Void> later = Promise.promise();
    ctx.runOnContext(v -> {
      relayA.publish(Buffer.buffer("seven"));
      later.complete();
    });
    await(later.future());
    eventually("B got the seven chats", () -> atB.size() >= 7);
    eventually("A got the seven chats", () -> atA.size() >= 7);
    Thread.sleep(500); // nothing more may come: no chat twice
    assertEquals(sent, atB, "B: every chat once, in order");
    assertEquals(sent, atA, "A: every chat once, in order");
    assertEquals(List.of(5, 1, 1), relayMessagesAtB, "one relay message per turn (lines per message)");
  }
}
