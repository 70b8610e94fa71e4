package chat.cluster;

import chat.auth.TokenStore;
import com.hazelcast.map.IMap;
import com.hazelcast.replicatedmap.ReplicatedMap;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.Serializable;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Tokens shared by every node: a Hazelcast ReplicatedMap keeps a full copy on each node, so a
 * token issued on node A is checked on node B by a local read, with no network round trip per
 * chat. Same token format and constant-time check as {@link chat.auth.LocalTokenStore} (a
 * selector is the key, the verifier is compared in constant time).
 *
 * <p>The sliding expiry is shared: a use writes the new last-use time to the cluster when the
 * shared one is at least {@link #refreshMillis} old (so a busy token costs one replicated write
 * per refresh interval, not one per chat), and the node that sees the use also remembers it
 * exactly. So a token expires exactly {@code auth.tokenTtlSeconds} after its last use on the node
 * that used it, and at most one refresh interval earlier on the others. Each entry also carries
 * a Hazelcast TTL a little longer than that, so the engine evicts expired tokens everywhere.
 *
 * <p>Revocation (account deleted, password reset) removes the user's tokens and leaves a
 * per-user tombstone for one TTL: a refresh racing with the removal cannot bring a token issued
 * before the revocation back to life.
 */
final class ClusterTokenStore implements TokenStore {

  private static final Logger log = LoggerFactory.getLogger(ClusterTokenStore.class);
  private static final int TOKEN_LENGTH = 32;
  private static final int SELECTOR_LENGTH = 16;
  private static final long MAX_REFRESH_MILLIS = 10_000;
  /** How long a new token stays in {@link #recent}: far longer than replication takes. */
  private static final long RECENT_MILLIS = 60_000;

  /** One token, as replicated: its holder, verifier, when it was issued and last used (shared view). */
  record Entry(Holder holder, String verifier, long issuedMillis, long lastUsedMillis) implements Serializable {
  }

  private final Vertx vertx;
  /** Selector to entry, on every node. */
  private final ReplicatedMap<String, Entry> tokens;
  /**
   * Selector to entry for the tokens issued in the last minute, in a partitioned map whose write
   * is confirmed before the login is answered: the replicated copy on another node may trail the
   * login by a few milliseconds, and a client that logs in on one node and chats on the next at
   * once must not be refused. Only a token missing from the local copy is looked up here.
   */
  private final IMap<String, Entry> recent;
  /** Username to the time of its last revocation, on every node, for one TTL. */
  private final ReplicatedMap<String, Long> revocations;
  /** What this node knows of a token beyond the shared entry. */
  private static final class Seen {
    /** The last use on this node: newer than the shared one by less than one refresh interval. */
    volatile long usedAt;
    /** When this node last wrote the token's last use to the cluster. */
    volatile long sharedAt;
  }

  /** Selector to what this node has seen of the token. */
  private final ConcurrentHashMap<String, Seen> usedHere = new ConcurrentHashMap<>();
  private final SecureRandom random = new SecureRandom();
  private final long ttlMillis;
  private final long refreshMillis;
  private final LongSupplier clock;

  ClusterTokenStore(Vertx vertx, ReplicatedMap<String, Entry> tokens, IMap<String, Entry> recent,
      ReplicatedMap<String, Long> revocations, long ttlMillis, LongSupplier clock) {
    this.vertx = vertx;
    this.tokens = tokens;
    this.recent = recent;
    this.revocations = revocations;
    this.ttlMillis = ttlMillis;
    this.refreshMillis = Math.max(1, Math.min(ttlMillis / 100, MAX_REFRESH_MILLIS));
    this.clock = clock;
  }

  /** How stale the shared last-use time of a token in use may be: ttl / 100, at most 10 s. */
  long refreshMillis() {
    return refreshMillis;
  }

  @Override
  public Future<String> issue(Holder holder) {
    return vertx.executeBlocking(() -> {
      byte[] bytes = new byte[16];
      while (true) {
        random.nextBytes(bytes);
        String token = HexFormat.of().formatHex(bytes);
        String selector = token.substring(0, SELECTOR_LENGTH);
        // a repeated selector (one chance in 2^64 per live token) just draws again
        if (!tokens.containsKey(selector)) {
          long now = clock.getAsLong();
          Entry e = new Entry(holder, token.substring(SELECTOR_LENGTH), now, now);
          recent.set(selector, e, RECENT_MILLIS, TimeUnit.MILLISECONDS);
          tokens.put(selector, e, engineTtl(), TimeUnit.MILLISECONDS);
          return token;
        }
      }
    }, false);
  }

  @Override
  public Future<Holder> use(String token) {
    if (token == null || token.length() != TOKEN_LENGTH) {
      return Future.succeededFuture();
    }
    String selector = token.substring(0, SELECTOR_LENGTH);
    Entry e = tokens.get(selector); // a local read: every node holds every token
    if (e == null) {
      // unknown here: maybe issued on another node a moment ago, its copy still on the way
      return Future.fromCompletionStage(recent.getAsync(selector), vertx.getOrCreateContext())
          .map(issued -> issued == null ? null : check(selector, token, issued));
    }
    return Future.succeededFuture(check(selector, token, e));
  }

  /** The token's holder if {@code e} is its entry and it is neither expired nor revoked (and then it is used); else null. */
  private Holder check(String selector, String token, Entry e) {
    if (!chat.auth.LocalTokenStore.verifierMatches(e.verifier, token)) {
      return null;
    }
    long now = clock.getAsLong();
    Seen seen = usedHere.get(selector);
    long lastUsed = seen == null ? e.lastUsedMillis : Math.max(e.lastUsedMillis, seen.usedAt);
    Long revokedAt = revocations.get(e.holder.username());
    if (now - lastUsed >= ttlMillis || (revokedAt != null && e.issuedMillis <= revokedAt)) {
      usedHere.remove(selector);
      vertx.executeBlocking(() -> tokens.remove(selector), false);
      return null;
    }
    if (seen == null) {
      seen = new Seen();
      Seen raced = usedHere.putIfAbsent(selector, seen);
      seen = raced == null ? seen : raced;
    }
    seen.usedAt = now;
    if (now - e.lastUsedMillis >= refreshMillis && now - seen.sharedAt >= refreshMillis) {
      seen.sharedAt = now;
      share(selector, e, now);
    }
    return e.holder;
  }

  /** Writes a newer last-use time to the cluster, off the event loop (a write may wait for its partition's owner). */
  private void share(String selector, Entry e, long now) {
    vertx.executeBlocking(() -> {
      Entry current = tokens.get(selector);
      if (current != null && current.lastUsedMillis < now && current.verifier.equals(e.verifier)) {
        tokens.put(selector, new Entry(e.holder, e.verifier, e.issuedMillis, now), engineTtl(), TimeUnit.MILLISECONDS);
      }
      return null;
    }, false).onFailure(err -> log.debug("Could not share a token's last use: {}", err.toString()));
  }

  /** The entry's TTL in the engine: past its expiry seen from any node, so the engine never evicts a live token. */
  private long engineTtl() {
    return ttlMillis + refreshMillis + 1000;
  }

  @Override
  public Future<Integer> revokeUser(String username) {
    return vertx.executeBlocking(() -> {
      revocations.put(username, clock.getAsLong(), engineTtl() + 60_000, TimeUnit.MILLISECONDS);
      int removed = 0;
      for (Map.Entry<String, Entry> t : tokens.entrySet()) {
        if (t.getValue().holder.username().equals(username) && tokens.remove(t.getKey()) != null) {
          usedHere.remove(t.getKey());
          removed++;
        }
      }
      return removed;
    }, false);
  }

  /**
   * The engine evicts expired entries itself (their TTL); this forgets this node's own record of
   * uses that are past the TTL. Completes with 0: what was evicted is the engine's to count.
   */
  @Override
  public Future<Integer> purgeExpired() {
    long now = clock.getAsLong();
    usedHere.values().removeIf(seen -> now - seen.usedAt >= ttlMillis);
    return Future.succeededFuture(0);
  }
}
