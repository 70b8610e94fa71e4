package chat.auth;

import io.vertx.core.Future;

import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * Tokens of one node, in memory, safe to use from every event loop.
 *
 * <p>A token is looked up without leaking it through timing: its first 16 hex digits are a
 * <em>selector</em>, the key of the map (a hash lookup and {@code String.equals} take longer the
 * more of the key matches, but the selector alone is worth nothing), and its last 16 hex digits
 * a <em>verifier</em> (64 random bits), compared in constant time. So an attacker who times
 * requests can at best find a selector, and must then still guess the verifier. The map never
 * holds a whole token as a key. O(1), and one 16-character substring per lookup.
 */
public final class LocalTokenStore implements TokenStore {

  private static final int TOKEN_LENGTH = 32;
  private static final int SELECTOR_LENGTH = 16;

  private static final class Entry {
    final Holder holder;
    final String verifier;
    volatile long lastUsedMillis;

    Entry(Holder holder, String verifier, long now) {
      this.holder = holder;
      this.verifier = verifier;
      this.lastUsedMillis = now;
    }
  }

  /** Selector to entry. */
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
    while (true) {
      random.nextBytes(bytes);
      String token = HexFormat.of().formatHex(bytes);
      Entry e = new Entry(holder, token.substring(SELECTOR_LENGTH), clock.getAsLong());
      // a repeated selector (one chance in 2^64 per live token) just draws again
      if (tokens.putIfAbsent(token.substring(0, SELECTOR_LENGTH), e) == null) {
        return Future.succeededFuture(token);
      }
    }
  }

  @Override
  public Future<Holder> use(String token) {
    if (token == null || token.length() != TOKEN_LENGTH) {
      return Future.succeededFuture();
    }
    String selector = token.substring(0, SELECTOR_LENGTH);
    Entry e = tokens.get(selector);
    if (e == null || !verifierMatches(e.verifier, token)) {
      return Future.succeededFuture();
    }
    long now = clock.getAsLong();
    if (now - e.lastUsedMillis >= ttlMillis) {
      tokens.remove(selector, e);
      return Future.succeededFuture();
    }
    e.lastUsedMillis = now;
    return Future.succeededFuture(e.holder);
  }

  /**
   * Whether the last 16 characters of {@code token} are {@code verifier}, in time that does not
   * depend on where they differ: every character is compared and the differences OR-ed, as
   * {@link java.security.MessageDigest#isEqual} does, without turning the strings into bytes.
   * Shared with the cluster-wide store, whose tokens have the same form.
   */
  public static boolean verifierMatches(String verifier, String token) {
    int diff = 0;
    for (int i = 0; i < TOKEN_LENGTH - SELECTOR_LENGTH; i++) {
      diff |= verifier.charAt(i) ^ token.charAt(SELECTOR_LENGTH + i);
    }
    return diff == 0;
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

  /** The keys of the map, for tests: selectors only, never whole tokens. */
  java.util.Set<String> keys() {
    return java.util.Set.copyOf(tokens.keySet());
  }

  /** How many tokens are held (expired ones included until purged). */
  public int size() {
    return tokens.size();
  }
}
