package chat.cluster;

import chat.auth.SessionRef;
import chat.auth.SessionRegistry;
import chat.protocol.OwnerCommands;
import com.hazelcast.cluster.Member;
import com.hazelcast.cluster.MembershipEvent;
import com.hazelcast.cluster.MembershipListener;
import com.hazelcast.core.EntryEvent;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.core.LifecycleEvent;
import com.hazelcast.map.IMap;
import com.hazelcast.map.MapEvent;
import com.hazelcast.map.listener.EntryAddedListener;
import com.hazelcast.map.listener.EntryEvictedListener;
import com.hazelcast.map.listener.EntryExpiredListener;
import com.hazelcast.map.listener.EntryRemovedListener;
import com.hazelcast.map.listener.EntryUpdatedListener;
import com.hazelcast.map.listener.MapClearedListener;
import com.hazelcast.query.Predicate;
import com.hazelcast.query.Predicates;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * The one-session-per-user rule across every node. The truth is a Hazelcast IMap, user to the
 * connection holding the session ({@code node, owner address, connection}): taking a session is
 * its atomic {@code putIfAbsent}, so of two nodes racing to log one user in, exactly one wins.
 *
 * <p>On the hot path nothing waits for the network: each node keeps its own sessions (with their
 * activity times, for its reaper) and a view of every node's sessions that the map's entry events
 * keep current, so "is this user online" (chat, heartbeat) is a local read when the answer is
 * yes; a no ({@code error_Nli}) is confirmed with the map.
 * Activity on a session held elsewhere (a heartbeat sent over another node) is forwarded to the
 * connection's owner. Each node's reaper sweeps only its own sessions: no double work.
 *
 * <p>When a node leaves or dies, the oldest remaining node removes that node's entries (once the
 * cluster has noticed: at once when its connections are refused, at most {@code cluster.failureSeconds}
 * when the node goes silent); their users can log in elsewhere.
 */
final class ClusterSessionRegistry implements SessionRegistry {

  private static final Logger log = LoggerFactory.getLogger(ClusterSessionRegistry.class);
  private static final char SEP = '\t';
  /** The backstop sweep for sessions of members that are gone. */
  private static final long SWEEP_MILLIS = 15_000;

  /** A session held by one of this node's connections. */
  private static final class Mine {
    final SessionRef ref;
    volatile long lastActiveMillis;

    Mine(SessionRef ref, long now) {
      this.ref = ref;
      this.lastActiveMillis = now;
    }
  }

  private final Vertx vertx;
  private final HazelcastInstance hazelcast;
  private final IMap<String, String> sessions;
  private final String nodeId;
  private final LongSupplier clock;
  private final ConcurrentHashMap<String, Mine> mine = new ConcurrentHashMap<>();
  /** Every node's sessions, as the map's events tell them. */
  private final ConcurrentHashMap<String, SessionRef> everyone = new ConcurrentHashMap<>();

  private ClusterSessionRegistry(Vertx vertx, HazelcastInstance hazelcast, LongSupplier clock) {
    this.vertx = vertx;
    this.hazelcast = hazelcast;
    this.sessions = hazelcast.getMap(ClusterNode.SESSIONS_MAP);
    this.nodeId = ClusterNode.nodeId(hazelcast.getCluster().getLocalMember());
    this.clock = clock;
  }

  /** Blocking (registers listeners and reads the map): call it on a worker. */
  static ClusterSessionRegistry open(Vertx vertx, HazelcastInstance hazelcast, LongSupplier clock) {
    ClusterSessionRegistry r = new ClusterSessionRegistry(vertx, hazelcast, clock);
    r.sessions.addEntryListener(r.new ViewUpdater(), true);
    // entries already there: an event that came in meanwhile is newer than this snapshot
    for (Map.Entry<String, String> e : r.sessions.entrySet()) {
      r.everyone.putIfAbsent(e.getKey(), ref(e.getValue()));
    }
    hazelcast.getCluster().addMembershipListener(r.new GoneNodeSweeper());
    hazelcast.getLifecycleService().addLifecycleListener(event -> {
      if (event.getState() == LifecycleEvent.LifecycleState.MERGED) {
        vertx.executeBlocking(() -> {
          r.reconcileAfterMerge();
          return null;
        }, false)
            .onFailure(err -> log.warn("Could not check this node's sessions after rejoining the cluster: {}", err.toString()));
      }
    });
    vertx.setPeriodic(SWEEP_MILLIS, SWEEP_MILLIS, id -> r.sweep("periodic check"));
    return r;
  }

  @Override
  public Future<SessionRef> bind(String username, SessionRef ref) {
    String value = value(ref);
    return vertx.executeBlocking(() -> {
      String existing = sessions.putIfAbsent(username, value);
      if (existing != null) {
        return ref(existing);
      }
      mine.put(username, new Mine(ref, clock.getAsLong()));
      everyone.put(username, ref);
      return null;
    }, false);
  }

  @Override
  public Future<Boolean> release(String username, SessionRef ref) {
    mine.computeIfPresent(username, (k, m) -> m.ref.equals(ref) ? null : m);
    String value = value(ref);
    return vertx.executeBlocking(() -> {
      boolean removed = sessions.remove(username, value);
      if (removed) {
        everyone.remove(username, ref);
      }
      return removed;
    }, false);
  }

  /** Asks the cluster (a login or an admin request, not the hot path): the truth, not the view. */
  @Override
  public Future<SessionRef> holder(String username) {
    return vertx.executeBlocking(() -> {
      String v = sessions.get(username);
      return v == null ? null : ref(v);
    }, false);
  }

  /**
   * Yes from the local view at once (the hot path: an author's own session). A no is confirmed
   * with the map, without blocking a thread: the view trails the map by the milliseconds its
   * events take, and a session just opened on another node must count (a chat or heartbeat sent
   * there right after the login).
   */
  @Override
  public Future<Boolean> isOnline(String username) {
    if (mine.containsKey(username) || everyone.containsKey(username)) {
      return Future.succeededFuture(true);
    }
    return Future.fromCompletionStage(sessions.getAsync(username), vertx.getOrCreateContext()).map(v -> v != null);
  }

  @Override
  public void touch(String username) {
    Mine m = mine.get(username);
    if (m != null) {
      m.lastActiveMillis = clock.getAsLong();
      return;
    }
    SessionRef elsewhere = everyone.get(username);
    if (elsewhere != null) {
      vertx.eventBus().send(elsewhere.owner(), OwnerCommands.touch(elsewhere.connection(), username));
    }
  }

  @Override
  public Future<List<IdleSession>> idleSince(long cutoffMillis) {
    List<IdleSession> idle = new ArrayList<>();
    mine.forEach((user, m) -> {
      if (m.lastActiveMillis < cutoffMillis) {
        idle.add(new IdleSession(user, m.ref));
      }
    });
    return Future.succeededFuture(idle);
  }

  /**
   * This node was cut off (a network split, or frozen past cluster.failureSeconds) and has merged
   * back into the cluster, whose session map may have moved on meanwhile: the others released
   * this node's sessions, and some of its users logged in elsewhere. Each session this node still
   * holds is claimed again; one whose user now holds another session ends, so that every user
   * holds one. The view is rebuilt from the map. Blocking: runs on a worker.
   */
  void reconcileAfterMerge() {
    int kept = 0;
    int ended = 0;
    for (Map.Entry<String, Mine> e : mine.entrySet()) {
      String user = e.getKey();
      SessionRef ref = e.getValue().ref;
      String ours = value(ref);
      String current = sessions.putIfAbsent(user, ours);
      if (current == null || current.equals(ours)) {
        kept++;
      } else {
        ended++;
        mine.remove(user, e.getValue());
        vertx.eventBus().send(ref.owner(), OwnerCommands.loggedInElsewhere(ref.connection(), user));
      }
    }
    everyone.clear();
    for (Map.Entry<String, String> e : sessions.entrySet()) {
      everyone.put(e.getKey(), ref(e.getValue()));
    }
    log.warn("This node rejoined the cluster after being cut off: {} of its session(s) kept, {} ended (their users"
        + " had logged in on another node)", kept, ended);
  }

  private String value(SessionRef ref) {
    return nodeId + SEP + ref.owner() + SEP + ref.connection();
  }

  private static SessionRef ref(String value) {
    int a = value.indexOf(SEP);
    int b = value.indexOf(SEP, a + 1);
    return new SessionRef(value.substring(a + 1, b), Long.parseLong(value.substring(b + 1)));
  }

  /** Keeps {@link #everyone} in step with the map. Runs on Hazelcast's event threads (one key's events in order). */
  private final class ViewUpdater implements EntryAddedListener<String, String>, EntryUpdatedListener<String, String>,
      EntryRemovedListener<String, String>, EntryEvictedListener<String, String>,
      EntryExpiredListener<String, String>, MapClearedListener {

    @Override
    public void entryAdded(EntryEvent<String, String> e) {
      everyone.put(e.getKey(), ref(e.getValue()));
    }

    @Override
    public void entryUpdated(EntryEvent<String, String> e) {
      everyone.put(e.getKey(), ref(e.getValue()));
    }

    @Override
    public void entryRemoved(EntryEvent<String, String> e) {
      forget(e);
    }

    @Override
    public void entryEvicted(EntryEvent<String, String> e) {
      forget(e);
    }

    @Override
    public void entryExpired(EntryEvent<String, String> e) {
      forget(e);
    }

    private void forget(EntryEvent<String, String> e) {
      String old = e.getOldValue();
      if (old == null) {
        everyone.remove(e.getKey());
      } else {
        everyone.remove(e.getKey(), ref(old));
      }
    }

    @Override
    public void mapCleared(MapEvent event) {
      everyone.clear();
    }
  }

  /**
   * Releases the sessions of nodes that are no longer members, on the oldest member only (so
   * once): every entry whose node is not in the current member list. Built from Hazelcast's own
   * predicates, so each member scans its own partitions. Blocking: call it on a worker.
   * Completes with how many sessions were released.
   */
  int releaseSessionsOfGoneNodes() {
    Set<Member> members = hazelcast.getCluster().getMembers();
    if (members.isEmpty() || !members.iterator().next().localMember()) {
      return 0;
    }
    List<Predicate<String, String>> alive = new ArrayList<>();
    Set<String> aliveIds = new java.util.HashSet<>();
    for (Member m : members) {
      String id = ClusterNode.nodeId(m);
      aliveIds.add(id);
      alive.add(Predicates.like("this", id + SEP + "%"));
    }
    Predicate<String, String> gone = Predicates.not(Predicates.or(alive.toArray(new Predicate[0])));
    Set<String> users = sessions.keySet(gone);
    int released = 0;
    for (String user : users) {
      String v = sessions.get(user);
      // removed only if it is still that gone node's entry: a user may have logged in again meanwhile
      if (v != null && !aliveIds.contains(v.substring(0, v.indexOf(SEP))) && sessions.remove(user, v)) {
        released++;
      }
    }
    return released;
  }

  private void sweep(String why) {
    vertx.executeBlocking(this::releaseSessionsOfGoneNodes, false).onComplete(r -> {
      if (r.succeeded() && r.result() > 0) {
        log.info("Released {} session(s) held on cluster members that are gone ({})", r.result(), why);
      } else if (r.failed()) {
        log.warn("Could not release the sessions of cluster members that are gone ({}): {}", why, r.cause().toString());
      }
    });
  }

  /**
   * Sweeps when a member leaves (or is declared dead after cluster.failureSeconds): at once, and
   * again a moment later, since the event may come while the dead member's partitions are still
   * being handed over; and every {@link #SWEEP_MILLIS} in case an event was missed.
   */
  private final class GoneNodeSweeper implements MembershipListener {

    @Override
    public void memberAdded(MembershipEvent event) {
    }

    @Override
    public void memberRemoved(MembershipEvent event) {
      String why = "member " + event.getMember().getAddress() + " left";
      log.info("Cluster member {} left ({} member(s) now)", event.getMember().getAddress(), event.getMembers().size());
      sweep(why);
      vertx.setTimer(2000, id -> sweep(why));
    }
  }
}
