package chat.limits;

import java.util.function.LongSupplier;

/**
 * At most {@code limit} events per key per window, for failed logins and registrations. The
 * window of a key opens at its first counted event and lasts {@code windowMillis}; when it is
 * over, the key's count starts again from zero. So a key that reached the limit is refused until
 * the window that its first event opened ends: at most {@code limit} events per key in any
 * {@code windowMillis} after that first one.
 *
 * <p>Events are <i>reserved</i> before the work they stand for ({@link #tryAcquire}) and given
 * back when the work turns out not to count ({@link #release}: a login that succeeded, a
 * registration that failed), so that concurrent requests can never get past the limit together.
 *
 * <p>Each key's state is one {@code long}, the window start (milliseconds since the limiter was
 * made, 40 bits: 34 years) and the count (23 bits), changed with one CAS; no locks. A limit of 0
 * means no limit (nothing is tracked). Limits above 8,388,607 act as 8,388,607.
 */
public final class FixedWindowLimiter extends KeyedLimiter {

  private static final int COUNT_BITS = 23;
  private static final long COUNT_MASK = (1L << COUNT_BITS) - 1;
  /** The largest count a slot holds. */
  public static final int MAX_LIMIT = (int) COUNT_MASK;

  private final int limit;
  private final long windowMillis;

  /**
   * @param limit        events allowed per key per window; 0 for no limit
   * @param windowMillis the window length
   * @param maxKeys      the most keys tracked at once (see {@link KeyedLimiter})
   * @param nanoClock    a monotonic clock in nanoseconds
   */
  public FixedWindowLimiter(int limit, long windowMillis, int maxKeys, LongSupplier nanoClock) {
    super(maxKeys, nanoClock);
    if (limit < 0 || windowMillis < 1) {
      throw new IllegalArgumentException("limit must be >= 0 and windowMillis >= 1");
    }
    this.limit = Math.min(limit, MAX_LIMIT);
    this.windowMillis = windowMillis;
  }

  public boolean enabled() {
    return limit > 0;
  }

  public int limit() {
    return limit;
  }

  /**
   * Reserves one event for {@code key}: true when the key is under its limit (or the limit is
   * off, the key is null, or the key cannot be tracked), false when the limit is reached.
   */
  public boolean tryAcquire(String key) {
    if (limit == 0 || key == null) {
      return true;
    }
    long now = now();
    long nowMillis = now / 1_000_000;
    while (true) {
      Slot s = slot(key, pack(nowMillis, 0), now);
      if (s == null) {
        return true;
      }
      long state = s.get();
      if (state == DEAD) {
        drop(key, s);
        continue;
      }
      long start = start(state);
      long count = count(state);
      if (nowMillis - start >= windowMillis) {
        start = nowMillis;
        count = 0;
      }
      if (count >= limit) {
        return false;
      }
      if (s.compareAndSet(state, pack(start, count + 1))) {
        return true;
      }
    }
  }

  /** Gives back one event reserved by {@link #tryAcquire}, if its window is still the current one. */
  public void release(String key) {
    if (limit == 0 || key == null) {
      return;
    }
    Slot s = existing(key);
    if (s == null) {
      return;
    }
    long nowMillis = now() / 1_000_000;
    while (true) {
      long state = s.get();
      if (state == DEAD || count(state) == 0 || nowMillis - start(state) >= windowMillis) {
        return;
      }
      if (s.compareAndSet(state, state - 1)) {
        return;
      }
    }
  }

  /** Forgets the key's count (a successful login clears its username's failures). */
  public void reset(String key) {
    if (limit != 0 && key != null) {
      forget(key);
    }
  }

  /** Events counted for the key in its current window. */
  public int count(String key) {
    Slot s = key == null ? null : existing(key);
    if (s == null) {
      return 0;
    }
    long state = s.get();
    if (state == DEAD || now() / 1_000_000 - start(state) >= windowMillis) {
      return 0;
    }
    return (int) count(state);
  }

  @Override
  boolean isIdle(long state, long now) {
    return now / 1_000_000 - start(state) >= windowMillis;
  }

  private static long pack(long startMillis, long count) {
    return (startMillis << COUNT_BITS) | count;
  }

  private static long start(long state) {
    return state >>> COUNT_BITS;
  }

  private static long count(long state) {
    return state & COUNT_MASK;
  }
}
