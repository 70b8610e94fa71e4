package chat.tcp;

import java.util.concurrent.TimeUnit;

/**
 * When the next batch of broadcasts may be written (tcp.broadcastHoldPercent).
 *
 * <p>Writing a batch to a socket costs the kernel about the same for one chat as for twenty: on
 * loopback, 7-10 µs per write on the 2-core VM we measure on, most of it the TCP send path. So a
 * batch should carry as many chats as it can without making anyone wait long. After a batch took
 * {@code d} to write to every session (about 8 ms for 1000 sessions on that VM), the next one is
 * held back until {@code d x holdPercent / 100} has passed, at most {@link #MAX_HOLD_NANOS}: the
 * chats that arrive meanwhile, many of them replies to what was just written, join it. Writing
 * stays under {@code 100 / (100 + holdPercent)} of the loop's time while it is saturated, and the
 * latency it adds is a fraction of a round of writes.
 *
 * <p>An idle server, or one with few sessions, writes at once: the hold counts from the end of the
 * last batch and lasts a fraction of what that batch took.
 */
final class BroadcastPacer {

  /** The longest a batch is held back, whatever the last one cost: bounds the latency added. */
  static final long MAX_HOLD_NANOS = TimeUnit.MILLISECONDS.toNanos(5);

  private final int holdPercent;
  /** System.nanoTime before which the next batch is held back. */
  private long notBefore;

  BroadcastPacer(int holdPercent) {
    this.holdPercent = holdPercent;
  }

  /** How long a batch started now must wait before it is written, in nanoseconds; 0 or less: at once. */
  long waitNanos(long now) {
    return notBefore - now;
  }

  /** A batch was written from {@code start} to {@code end} (System.nanoTime). */
  void written(long start, long end) {
    notBefore = end + Math.min(MAX_HOLD_NANOS, (end - start) / 100 * holdPercent);
  }
}
