package chat.tcp;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** tcp.broadcastHoldPercent: when the next batch of broadcasts may be written, on a clock of our own. */
class BroadcastPacerTest {

  private static final long MS = TimeUnit.MILLISECONDS.toNanos(1);

  @Test
  @DisplayName("a fresh pacer writes at once")
  void firstBatchIsNotHeld() {
    BroadcastPacer pacer = new BroadcastPacer(25);
    assertTrue(pacer.waitNanos(System.nanoTime()) <= 0);
  }

  @Test
  @DisplayName("after a batch that took d, the next one waits until d x percent / 100 after its end")
  void holdIsAFractionOfTheLastBatch() {
    BroadcastPacer pacer = new BroadcastPacer(25);
    long start = 1_000 * MS;
    pacer.written(start, start + 8 * MS);
    assertEquals(2 * MS, pacer.waitNanos(start + 8 * MS));
    assertEquals(MS, pacer.waitNanos(start + 9 * MS));
    assertEquals(0, pacer.waitNanos(start + 10 * MS));
    assertTrue(pacer.waitNanos(start + 11 * MS) < 0, "a chat after the hold is written at once");
  }

  @Test
  @DisplayName("a cheap batch (few sessions) makes a hold of microseconds")
  void cheapBatchesHoldBriefly() {
    BroadcastPacer pacer = new BroadcastPacer(25);
    pacer.written(0, 40_000);
    assertEquals(10_000, pacer.waitNanos(40_000));
  }

  @Test
  @DisplayName("the hold never passes 5 ms, however long the last batch took")
  void holdIsCapped() {
    BroadcastPacer pacer = new BroadcastPacer(100);
    pacer.written(0, 200 * MS);
    assertEquals(BroadcastPacer.MAX_HOLD_NANOS, pacer.waitNanos(200 * MS));
    assertEquals(5 * MS, BroadcastPacer.MAX_HOLD_NANOS);
  }

  @Test
  @DisplayName("0 percent writes every batch at once")
  void zeroPercentNeverHolds() {
    BroadcastPacer pacer = new BroadcastPacer(0);
    pacer.written(0, 50 * MS);
    assertEquals(0, pacer.waitNanos(50 * MS));
  }
}
