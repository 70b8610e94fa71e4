package chat.limits;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;

/**
 * What both limiters share: one {@link Slot} (a single {@code long} of state, changed by CAS) per
 * key in a {@link ConcurrentHashMap}, so no lock is ever taken, not even per key; an injectable
 * monotonic clock; and bounded memory.
 *
 * <p><b>Memory.</b> A slot whose state says "nothing to remember" (its window is over, its
 * bucket is full) is idle: {@link #purge()} removes idle slots, and the server calls it
 * periodically. The map never holds more than {@code maxKeys} slots (give or take one per thread
 * racing past the check): when it is full, an idle-slot purge runs at once (at most once per
 * second), and if the map is still full, a key that has no slot yet is <b>not tracked</b>: its
 * request is allowed and counted in {@link #untracked()}. Keys that already have a slot keep
 * being limited. So a flood of distinct keys cannot grow memory without bound, and it can only
 * make new keys unlimited for as long as the flood keeps the map full: it never locks anyone out.
 *
 * <p><b>Purging without losing counts.</b> The purge marks a slot {@link #DEAD} by CAS before
 * removing it; a caller that finds a dead slot drops it and starts a new one. A concurrent update
 * either lands before the mark (then the CAS to dead fails and the slot stays) or sees the mark.
 */
abstract class KeyedLimiter {

  /** The state of a slot that was purged or reset; never a valid state. */
  static final long DEAD = Long.MIN_VALUE;

  /** One key's state. */
  static final class Slot extends AtomicLong {
    private static final long serialVersionUID = 1L;

    Slot(long initial) {
      super(initial);
    }
  }

  private static final long FULL_PURGE_EVERY_NANOS = 1_000_000_000L;

  private final ConcurrentHashMap<String, Slot> slots = new ConcurrentHashMap<>();
  private final int maxKeys;
  private final LongSupplier nanoClock;
  private final long epochNanos;
  private final AtomicLong lastFullPurge;
  private final LongAdder untracked = new LongAdder();

  /**
   * @param maxKeys   the most keys tracked at once
   * @param nanoClock a monotonic clock in nanoseconds ({@code System::nanoTime}; a fake one in tests)
   */
  KeyedLimiter(int maxKeys, LongSupplier nanoClock) {
    if (maxKeys < 1) {
      throw new IllegalArgumentException("maxKeys must be at least 1");
    }
    this.maxKeys = maxKeys;
    this.nanoClock = nanoClock;
    this.epochNanos = nanoClock.getAsLong();
    this.lastFullPurge = new AtomicLong(-FULL_PURGE_EVERY_NANOS);
  }

  /** Nanoseconds since this limiter was made; never negative. */
  final long now() {
    return Math.max(0, nanoClock.getAsLong() - epochNanos);
  }

  /** Whether a slot in this state may be forgotten at {@code now}: a fresh slot would behave the same. */
  abstract boolean isIdle(long state, long now);

  /** The key's slot, or null. May be {@link #DEAD}: then {@link #drop} it and ask again. */
  final Slot existing(String key) {
    return slots.get(key);
  }

  /**
   * The key's slot, made with {@code initial} when it has none; null when the map is full (the key
   * is not tracked). The returned slot may be {@link #DEAD}: then {@link #drop} it and ask again.
   */
  final Slot slot(String key, long initial, long now) {
    Slot s = slots.get(key);
    if (s != null) {
      return s;
    }
    if (slots.size() >= maxKeys) {
      long last = lastFullPurge.get();
      if (now - last >= FULL_PURGE_EVERY_NANOS && lastFullPurge.compareAndSet(last, now)) {
        purge(now);
      }
      if (slots.size() >= maxKeys) {
        untracked.increment();
        return null;
      }
    }
    Slot fresh = new Slot(initial);
    Slot raced = slots.putIfAbsent(key, fresh);
    return raced != null ? raced : fresh;
  }

  /** Removes a dead slot (if it is still the key's). */
  final void drop(String key, Slot dead) {
    slots.remove(key, dead);
  }

  /** Forgets the key now: its next request starts from a fresh slot. */
  final void forget(String key) {
    Slot s = slots.get(key);
    if (s != null) {
      s.set(DEAD);
      slots.remove(key, s);
    }
  }

  /** Removes every idle slot; returns how many. */
  public final int purge() {
    return purge(now());
  }

  private int purge(long now) {
    int[] removed = {0};
    slots.forEach((key, s) -> {
      long state = s.get();
      if (state == DEAD) {
        slots.remove(key, s);
      } else if (isIdle(state, now) && s.compareAndSet(state, DEAD)) {
        slots.remove(key, s);
        removed[0]++;
      }
    });
    return removed[0];
  }

  /** Keys tracked now (idle ones included until purged). */
  public final int size() {
    return slots.size();
  }

  /** The most keys tracked at once. */
  public final int maxKeys() {
    return maxKeys;
  }

  /** Requests of keys that were not tracked because the map was full (they were allowed). */
  public final long untracked() {
    return untracked.sum();
  }
}
