package chat.limits;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The fixed-window limiter on a fake clock: windows, release, reset, purge, the bound on keys, concurrency. */
class FixedWindowLimiterTest {

  private static final long MS = 1_000_000L;
  private final AtomicLong clock = new AtomicLong(987_654_321_000L);

  private FixedWindowLimiter limiter(int limit, long windowMillis, int maxKeys) {
    return new FixedWindowLimiter(limit, windowMillis, maxKeys, clock::get);
  }

  private void advanceMillis(long ms) {
    clock.addAndGet(ms * MS);
  }

  private static int acquireAll(FixedWindowLimiter l, String key, int attempts) {
    int granted = 0;
    for (int i = 0; i < attempts; i++) {
      if (l.tryAcquire(key)) {
        granted++;
      }
    }
    return granted;
  }

  @Test
  @DisplayName("exactly `limit` events per key per window, then refused until the window that the first event opened ends")
  void limitPerWindow() {
    FixedWindowLimiter l = limiter(3, 1000, 100);
    assertTrue(l.tryAcquire("alice"));
    advanceMillis(400);
    assertTrue(l.tryAcquire("alice"));
    assertTrue(l.tryAcquire("alice"));
    assertFalse(l.tryAcquire("alice"));
    assertEquals(3, l.count("alice"));
    advanceMillis(599); // 999 ms after the first event: still the same window
    assertFalse(l.tryAcquire("alice"), "refused attempts never extend or reopen the window");
    advanceMillis(1); // 1000 ms: a new window
    assertEquals(0, l.count("alice"));
    assertEquals(3, acquireAll(l, "alice", 10));
    assertFalse(l.tryAcquire("alice"));
  }

  @Test
  @DisplayName("keys are counted apart")
  void keysAreIndependent() {
    FixedWindowLimiter l = limiter(2, 1000, 100);
    assertEquals(2, acquireAll(l, "alice", 5));
    assertEquals(2, acquireAll(l, "bob", 5));
    assertEquals(2, l.count("alice"));
    assertEquals(0, l.count("carol"));
  }

  @Test
  @DisplayName("release gives one reserved event back, never below zero, and not into a later window")
  void release() {
    FixedWindowLimiter l = limiter(2, 1000, 100);
    assertTrue(l.tryAcquire("a"));
    assertTrue(l.tryAcquire("a"));
    assertFalse(l.tryAcquire("a"));
    l.release("a");
    assertEquals(1, l.count("a"));
    assertTrue(l.tryAcquire("a"));
    l.release("a");
    l.release("a");
    l.release("a");
    assertEquals(0, l.count("a"));
    assertTrue(l.tryAcquire("a"));
    advanceMillis(1000);
    l.release("a"); // its window is over: nothing to give back
    assertEquals(2, acquireAll(l, "a", 5));
    l.release("nobody");
    assertEquals(1, l.size(), "releasing an unknown key tracks nothing");
  }

  @Test
  @DisplayName("reset forgets the key's count")
  void reset() {
    FixedWindowLimiter l = limiter(2, 1000, 100);
    acquireAll(l, "a", 2);
    assertFalse(l.tryAcquire("a"));
    l.reset("a");
    assertEquals(0, l.count("a"));
    assertEquals(0, l.size());
    assertEquals(2, acquireAll(l, "a", 5));
  }

  @Test
  @DisplayName("limit 0 and null keys are never limited and track nothing")
  void offAndNull() {
    FixedWindowLimiter off = limiter(0, 1000, 100);
    assertFalse(off.enabled());
    assertEquals(10_000, acquireAll(off, "a", 10_000));
    assertEquals(0, off.size());
    FixedWindowLimiter on = limiter(1, 1000, 100);
    assertEquals(100, acquireAll(on, null, 100));
    assertEquals(0, on.size());
  }

  @Test
  @DisplayName("purge forgets keys whose window is over, and only those")
  void purge() {
    FixedWindowLimiter l = limiter(5, 1000, 100);
    for (int i = 0; i < 50; i++) {
      l.tryAcquire("old" + i);
    }
    advanceMillis(600);
    for (int i = 0; i < 10; i++) {
      l.tryAcquire("new" + i);
    }
    assertEquals(60, l.size());
    assertEquals(0, l.purge());
    advanceMillis(400);
    assertEquals(50, l.purge());
    assertEquals(10, l.size());
    assertEquals(1, l.count("new3"));
    advanceMillis(600);
    assertEquals(10, l.purge());
    assertEquals(0, l.size());
  }

  @Test
  @DisplayName("a flood of distinct keys never tracks more than maxKeys: idle keys are purged at once, then new keys go untracked")
  void boundedSize() {
    FixedWindowLimiter l = limiter(1, 1000, 1000);
    for (int i = 0; i < 1000; i++) {
      assertTrue(l.tryAcquire("user" + i));
    }
    assertEquals(1000, l.size());
    // full, nothing idle: new keys are allowed but not tracked; tracked keys stay limited
    for (int i = 0; i < 5000; i++) {
      assertTrue(l.tryAcquire("flood" + i));
    }
    assertEquals(1000, l.size());
    assertEquals(5000, l.untracked());
    assertFalse(l.tryAcquire("user7"), "a key tracked before the flood is still limited");
    // once the windows are over, the next new key triggers a purge and is tracked again
    advanceMillis(1000);
    assertTrue(l.tryAcquire("late"));
    assertEquals(1, l.size());
    assertFalse(l.tryAcquire("late"));
    assertEquals(5000, l.untracked());
  }

  @Test
  @DisplayName("16 threads racing on one key: exactly `limit` acquisitions succeed; on distinct keys, each gets its own")
  void concurrentAcquire() throws Exception {
    FixedWindowLimiter l = limiter(1000, 60_000, 100_000);
    int threads = 16;
    int perThread = 500;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      CyclicBarrier start = new CyclicBarrier(threads);
      List<Future<Integer>> results = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int id = t;
        Callable<Integer> task = () -> {
          start.await(10, TimeUnit.SECONDS);
          int granted = 0;
          for (int i = 0; i < perThread; i++) {
            if (l.tryAcquire("shared")) {
              granted++;
            }
            l.tryAcquire("own" + id);
            if (i % 100 == 0) {
              l.purge(); // a concurrent purge must not lose counts
            }
          }
          return granted;
        };
        results.add(pool.submit(task));
      }
      int total = 0;
      for (Future<Integer> f : results) {
        total += f.get(30, TimeUnit.SECONDS);
      }
      assertEquals(1000, total);
      assertEquals(1000, l.count("shared"));
      for (int t = 0; t < threads; t++) {
        assertEquals(perThread, l.count("own" + t));
      }
    } finally {
      pool.shutdownNow();
    }
  }
}
