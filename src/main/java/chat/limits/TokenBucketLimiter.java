package chat.limits;

import java.util.function.LongSupplier;

/**
 * A token bucket per key, for chats per user: {@code perSecond} tokens a second, holding at most
 * {@code burst}; each request takes one, and a request that finds the bucket empty is refused
 * (and takes nothing). A key idle for {@code burst / perSecond} seconds has a full bucket again.
 *
 * <p>Built as GCRA (the "virtual scheduling" form of a token bucket): each key's state is one
 * {@code long}, the time at which its bucket would be full again. So a request on a key that has a
 * slot costs one map lookup and one CAS, and allocates nothing; no locks. {@code perSecond} 0
 * means no limit.
 */
public final class TokenBucketLimiter extends KeyedLimiter {

  private final int perSecond;
  /** Nanoseconds one token takes to come back. */
  private final long interval;
  /** How far ahead of now the "full again" time may be and still allow a request: burst - 1 tokens. */
  private final long tolerance;

  /**
   * @param perSecond tokens per second; 0 for no limit
   * @param burst     the bucket's size (at least 1)
   * @param maxKeys   the most keys tracked at once (see {@link KeyedLimiter})
   * @param nanoClock a monotonic clock in nanoseconds
   */
  public TokenBucketLimiter(int perSecond, int burst, int maxKeys, LongSupplier nanoClock) {
    super(maxKeys, nanoClock);
    if (perSecond < 0 || burst < 1) {
      throw new IllegalArgumentException("perSecond must be >= 0 and burst >= 1");
    }
    this.perSecond = perSecond;
    this.interval = perSecond == 0 ? 0 : Math.max(1, 1_000_000_000L / perSecond);
    this.tolerance = interval * (burst - 1L);
  }

  public boolean enabled() {
    return perSecond > 0;
  }

  /** Takes a token from the key's bucket: true when there was one (or the limit is off, or the key cannot be tracked). */
  public boolean tryAcquire(String key) {
    if (perSecond == 0) {
      return true;
    }
    long now = now();
    while (true) {
      Slot s = slot(key, 0L, now);
      if (s == null) {
        return true;
      }
      long full = s.get();
      if (full == DEAD) {
        drop(key, s);
        continue;
      }
      long from = Math.max(full, now);
      if (from - now > tolerance) {
        return false;
      }
      if (s.compareAndSet(full, from + interval)) {
        return true;
      }
    }
  }

  @Override
  boolean isIdle(long state, long now) {
    return state <= now;
  }
}
