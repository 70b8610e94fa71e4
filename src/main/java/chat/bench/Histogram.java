package chat.bench;

/**
 * A log-bucket histogram of non-negative values (nanoseconds here), like HdrHistogram: O(1) and
 * allocation-free per value, so every delivery can be recorded. Values below 128 are exact; above,
 * each power of two is split into 64 buckets, so a percentile is within 1/64 (1.6 %) of the truth.
 * The maximum is exact. Not thread-safe: one histogram per thread.
 */
final class Histogram {

  private static final int SUB_BITS = 7;
  private static final int HALF = 1 << (SUB_BITS - 1);

  private final long[] counts = new long[(64 - SUB_BITS + 2) * HALF];
  private long count;
  private long max;

  void record(long value) {
    long v = Math.max(0, value);
    counts[index(v)]++;
    count++;
    if (v > max) {
      max = v;
    }
  }

  long count() {
    return count;
  }

  long max() {
    return max;
  }

  /** The value at percentile {@code p} (0-100]: the top of its bucket, never above the maximum; 0 when empty. */
  long percentile(double p) {
    if (count == 0) {
      return 0;
    }
    long rank = Math.max(1, (long) Math.ceil(p / 100 * count));
    long seen = 0;
    for (int i = 0; i < counts.length; i++) {
      seen += counts[i];
      if (seen >= rank) {
        return Math.min(upper(i), max);
      }
    }
    return max;
  }

  static int index(long v) {
    if (v < (1L << SUB_BITS)) {
      return (int) v;
    }
    // the top SUB_BITS-1 bits below the leading one pick the bucket within its power of two
    int shift = 63 - Long.numberOfLeadingZeros(v) - (SUB_BITS - 1);
    return shift * HALF + (int) (v >>> shift);
  }

  /** The largest value that falls into bucket {@code i}. */
  static long upper(int i) {
    if (i < (1 << SUB_BITS)) {
      return i;
    }
    int shift = i / HALF - 1;
    long sub = i - (long) shift * HALF;
    return ((sub + 1) << shift) - 1;
  }
}
