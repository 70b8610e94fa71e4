package chat.auth;

import io.vertx.core.Future;

import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/** Tokens of one node, in memory, safe to use from every event loop. */
public final class LocalTokenStore implements TokenStore {

  private static final class Entry {
    final Holder holder;
    volatile long lastUsedMillis;

    Entry(Holder holder, long now) {
      this.holder = holder;
      this.lastUsedMillis = now;
    }
  }

  private final ConcurrentHashMap<String, Entry> tokens = new ConcurrentHashMap<>();
  private final SecureRandom random = new SecureRandom();
  private final long ttlMillis;
  private final LongSupplier clock;

  public LocalTokenStore(long ttlMillis, LongSupplier clock) {
    this.ttlMillis = ttlMillis;
    this.clock = clock;
  }

  @Override
  public Future<String> issue(Holder holder) {
    byte[] bytes = new byte[16];
    random.nextBytes(bytes);
    String token = HexFormat.of().formatHex(bytes);
    tokens.put(token, new Entry(holder, clock.getAsLong()));
    return Future.succeededFuture(token);
  }

  @Override
  public Future<Holder> use(String token) {
    Entry e = token == null ? null : tokens.get(token);
    if (e == null) {
      return Future.succeededFuture();
    }
    long now = clock.getAsLong();
    if (now - e.lastUsedMillis >= ttlMillis) {
      tokens.remove(token, e);
      return Future.succeededFuture();
    }
    e.lastUsedMillis = now;
    return Future.succeededFuture(e.holder);
  }

  @Override
  public Future<Integer> revokeUser(String username) {
    int before = tokens.size();
    tokens.values().removeIf(e -> e.holder.username().equals(username));
    return Future.succeededFuture(before - tokens.size());
  }

  @Override
  public Future<Integer> purgeExpired() {
    long now = clock.getAsLong();
    int before = tokens.size();
    tokens.values().removeIf(e -> now - e.lastUsedMillis >= ttlMillis);
    return Future.succeededFuture(before - tokens.size());
  }

  /** How many tokens are held (expired ones included until purged). */
  public int size() {
    return tokens.size();
  }
}
