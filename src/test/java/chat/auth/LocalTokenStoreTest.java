package chat.auth;

import io.vertx.core.Future;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LocalTokenStoreTest {

  private static final long TTL = 10_000;
  private final AtomicLong now = new AtomicLong(1_700_000_000_000L);
  private final LocalTokenStore store = new LocalTokenStore(TTL, now::get);
  private final TokenStore.Holder alice = new TokenStore.Holder("alice", "/avatar/alice/default_avatar.png");
  private final TokenStore.Holder bob = new TokenStore.Holder("bob", "/avatar/bob/me.png");

  private static <T> T done(Future<T> f) {
    assertTrue(f.isComplete(), "the local store completes at once");
    assertTrue(f.succeeded(), () -> "failed: " + f.cause());
    return f.result();
  }

  private String issue(TokenStore.Holder h) {
    return done(store.issue(h));
  }

  private TokenStore.Holder use(String token) {
    return done(store.use(token));
  }

  @Test
  @DisplayName("tokens are 32 lowercase hex characters and never repeat")
  void tokenFormat() {
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < 2000; i++) {
      String t = issue(alice);
      assertTrue(t.matches("[0-9a-f]{32}"), t);
      assertTrue(seen.add(t), "token issued twice: " + t);
    }
    assertEquals(2000, store.size());
  }

  @Test
  @DisplayName("use returns the token's holder; unknown, null and empty tokens give null")
  void useReturnsHolder() {
    String a = issue(alice);
    String b = issue(bob);
    assertEquals(alice, use(a));
    assertEquals(bob, use(b));
    assertNull(use(null));
    assertNull(use(""));
    assertNull(use("0".repeat(32)));
    assertNull(use(a.toUpperCase()));
    assertEquals(2, store.size());
  }

  @Test
  @DisplayName("a user may hold several tokens, each valid on its own")
  void severalTokensPerUser() {
    String t1 = issue(alice);
    String t2 = issue(alice);
    assertTrue(!t1.equals(t2));
    assertEquals(alice, use(t1));
    assertEquals(alice, use(t2));
  }

  @Test
  @DisplayName("every successful use refreshes the expiry (sliding window)")
  void slidingExpiry() {
    String t = issue(alice);
    // used just before expiry, again and again: far beyond one TTL after issue, still valid
    for (int i = 0; i < 5; i++) {
      now.addAndGet(TTL - 1);
      assertEquals(alice, use(t), "use " + i);
    }
    assertTrue(now.get() - 1_700_000_000_000L > 4 * TTL);
    // and once left alone for more than the TTL, it expires too
    now.addAndGet(TTL + 1);
    assertNull(use(t));
  }

  @Test
  @DisplayName("an expired token gives null and is removed from memory, and stays invalid")
  void expiredIsRemoved() {
    String t = issue(alice);
    String other = issue(bob);
    now.addAndGet(TTL / 2);
    assertEquals(bob, use(other));
    now.addAndGet(TTL / 2 + 1);
    assertEquals(2, store.size());
    assertNull(use(t));
    assertEquals(1, store.size(), "the expired token is dropped on use");
    // going back in time (clock adjustment) does not resurrect it
    now.addAndGet(-TTL);
    assertNull(use(t));
    assertEquals(bob, use(other));
  }

  @Test
  @DisplayName("a token is valid just under the TTL after its last use and invalid just over it")
  void ttlBoundary() {
    String fresh = issue(alice);
    String stale = issue(alice);
    now.addAndGet(TTL - 1);
    assertEquals(alice, use(fresh));
    now.addAndGet(2);
    assertNull(use(stale), "TTL + 1 ms after issue");
    assertEquals(alice, use(fresh), "only 1 ms after its last use");
  }

  @Test
  @DisplayName("purgeExpired removes exactly the expired tokens and reports how many")
  void purgeExpired() {
    String a1 = issue(alice);          // issued at 0, never used: expires
    String a2 = issue(alice);          // issued at 0, used at 8000: lives
    now.addAndGet(3000);
    String b1 = issue(bob);            // issued at 3000: lives until 13000
    String b2 = issue(bob);            // issued at 3000, never used: lives until 13000
    now.addAndGet(5000);               // 8000
    assertEquals(alice, use(a2));
    now.addAndGet(4000);               // 12000: a1 is 12000 old, the others at most 9000
    assertEquals(1, done(store.purgeExpired()));
    assertEquals(3, store.size());
    assertNull(use(a1));
    assertEquals(alice, use(a2));      // refreshed to 12000
    assertEquals(bob, use(b1));        // refreshed to 12000
    now.addAndGet(1500);               // 13500: b2 is 10500 old
    assertEquals(1, done(store.purgeExpired()));
    assertEquals(2, store.size());
    assertNull(use(b2));
    assertEquals(0, done(store.purgeExpired()), "nothing left to purge");
    now.addAndGet(TTL + 1);
    assertEquals(2, done(store.purgeExpired()));
    assertEquals(0, store.size());
  }

  @Test
  @DisplayName("the map is keyed by the 16-digit selector only: no whole token is ever a key")
  void mapNeverHoldsWholeTokens() {
    Set<String> issued = new HashSet<>();
    for (int i = 0; i < 200; i++) {
      issued.add(issue(i % 2 == 0 ? alice : bob));
    }
    Set<String> keys = store.keys();
    assertEquals(200, keys.size());
    for (String key : keys) {
      assertEquals(16, key.length(), key);
      assertFalse(issued.contains(key), "a whole token is a key");
    }
    for (String t : issued) {
      assertTrue(keys.contains(t.substring(0, 16)));
    }
  }

  @Test
  @DisplayName("the right selector with a wrong verifier is refused, at every position of the verifier; the token still works after")
  void wrongVerifierRefused() {
    String t = issue(alice);
    for (int i = 16; i < 32; i++) {
      char c = t.charAt(i);
      String wrong = t.substring(0, i) + (c == 'f' ? 'e' : Character.forDigit(Character.digit(c, 16) + 1, 16)) + t.substring(i + 1);
      assertNull(use(wrong), "verifier digit " + (i - 16) + " changed");
    }
    assertNull(use(t.substring(0, 16) + t.substring(16).toUpperCase()));
    assertNull(use(t.substring(0, 16) + "\u0000".repeat(16)));
    assertNull(use(t.substring(0, 16) + "\u00e9".repeat(16)));
    assertEquals(alice, use(t), "failed guesses do not spoil the token");
  }

  @Test
  @DisplayName("a wrong selector with the right verifier, and tokens of another length, are refused")
  void wrongSelectorAndLengthRefused() {
    String t = issue(alice);
    String other = issue(bob);
    assertNull(use(other.substring(0, 16) + t.substring(16)), "bob's selector with alice's verifier");
    assertNull(use(t.substring(16) + t.substring(0, 16)), "halves swapped");
    assertNull(use(t.substring(0, 16)), "the selector alone");
    assertNull(use(t.substring(0, 31)));
    assertNull(use(t + "0"));
    assertNull(use(" " + t.substring(1)));
    assertEquals(alice, use(t));
    assertEquals(bob, use(other));
  }

  @Test
  @DisplayName("purging an empty store removes nothing")
  void purgeEmpty() {
    assertEquals(0, done(store.purgeExpired()));
    assertEquals(0, store.size());
  }
}
