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

/** The token bucket on a fake clock: burst, refill rate, purge of full buckets, the bound on keys, concurrency. */
class TokenBucketLimiterTest {

  private static final long MS = 1_000_000L;
  private final AtomicLong clock = new AtomicLong(-5_000_000_000L);

  private TokenBucketLimiter limiter(int perSecond, int maxKeys) {
    return new TokenBucketLimiter(perSecond, Math.max(1, perSecond), maxKeys, clock::get);
  }

  private void advanceMillis(long ms) {
    clock.addAndGet(ms * MS);
  }

  private static int takeAll(TokenBucketLimiter l, String key, int attempts) {
    int granted = 0;
    for (int i = 0; i < attempts; i++) {
      if (l.tryAcquire(key)) {
        granted++;
      }
    }
    return granted;
  }

  @Test
  @DisplayName("a full bucket allows a burst of `perSecond`, then one more per 1/perSecond s; refused requests take nothing")
  void burstThenRate() {
    TokenBucketLimiter l = limiter(20, 100);
    assertEquals(20, takeAll(l, "alice", 100));
    advanceMillis(49);
    assertFalse(l.tryAcquire("alice"));
    advanceMillis(1); // 50 ms: one token back
    assertTrue(l.tryAcquire("alice"));
    assertFalse(l.tryAcquire("alice"));
    advanceMillis(500); // ten tokens back
    assertEquals(10, takeAll(l, "alice", 100));
    advanceMillis(5_000); // idle for long: full again, never more than the burst
    assertEquals(20, takeAll(l, "alice", 100));
  }

  @Test
  @DisplayName("a steady stream at the limit is never refused; faster is cut to the limit")
  void steadyRate() {
    TokenBucketLimiter l = limiter(10, 100);
    for (int i = 0; i < 100; i++) {
      assertTrue(l.tryAcquire("steady"), "message " + i);
      advanceMillis(100);
    }
    int granted = 0;
    for (int i = 0; i < 400; i++) { // 40 per second, for 10 seconds
      if (l.tryAcquire("fast")) {
        granted++;
      }
      advanceMillis(25);
    }
    assertEquals(10 + 100 - 1, granted, "the burst plus 10 per second over the 9.975 s that followed");
  }

  @Test
  @DisplayName("users have separate buckets")
  void separateBuckets() {
    TokenBucketLimiter l = limiter(5, 100);
    assertEquals(5, takeAll(l, "a", 10));
    assertEquals(5, takeAll(l, "b", 10));
  }

  @Test
  @DisplayName("perSecond 0 is no limit and tracks nothing")
  void off() {
    TokenBucketLimiter l = limiter(0, 100);
    assertFalse(l.enabled());
    assertEquals(10_000, takeAll(l, "a", 10_000));
    assertEquals(0, l.size());
  }

  @Test
  @DisplayName("purge forgets full buckets only; a purged user starts again with a full bucket, no more")
  void purge() {
    TokenBucketLimiter l = limiter(10, 100);
    takeAll(l, "busy", 10);
    takeAll(l, "light", 1);
    assertEquals(0, l.purge());
    advanceMillis(100); // light is full again, busy has one token of ten
    assertEquals(1, l.purge());
    assertEquals(1, l.size());
    assertEquals(1, takeAll(l, "busy", 10));
    assertEquals(10, takeAll(l, "light", 20));
  }

  @Test
  @DisplayName("a flood of distinct users never tracks more than maxKeys; tracked users stay limited")
  void boundedSize() {
    TokenBucketLimiter l = limiter(2, 500);
    for (int i = 0; i < 500; i++) {
      assertEquals(2, takeAll(l, "u" + i, 3));
    }
    for (int i = 0; i < 2000; i++) {
      assertTrue(l.tryAcquire("flood" + i));
    }
    assertEquals(500, l.size());
    assertEquals(2000, l.untracked());
    assertFalse(l.tryAcquire("u1"));
    advanceMillis(1000); // every bucket full again: the next new user purges them
    assertTrue(l.tryAcquire("new"));
    assertEquals(1, l.size());
  }

  @Test
  @DisplayName("threads racing on one bucket: exactly the burst is granted at a frozen clock")
  void concurrent() throws Exception {
    TokenBucketLimiter l = new TokenBucketLimiter(1000, 1000, 100, clock::get);
    int threads = 8;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      CyclicBarrier start = new CyclicBarrier(threads);
      List<Future<Integer>> results = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        Callable<Integer> task = () -> {
          start.await(10, TimeUnit.SECONDS);
          int granted = 0;
          for (int i = 0; i < 1000; i++) {
            if (l.tryAcquire("shared")) {
              granted++;
            }
            if (i % 100 == 0) {
              l.purge();
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
    } finally {
      pool.shutdownNow();
    }
  }
}
