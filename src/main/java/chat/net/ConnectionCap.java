package chat.net;

import io.micrometer.core.instrument.Counter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The open connections of one listener kind ({@code tcp}: plain and TLS TCP; {@code http}: HTTP
 * and HTTPS), counted across every verticle instance, and the cap on them
 * ({@code tcp.maxConnections}, {@code http.maxConnections}). One atomic operation per connection
 * opened or closed, nothing per message.
 */
public final class ConnectionCap {

  private static final Logger log = LoggerFactory.getLogger(ConnectionCap.class);
  /** While refusing, one warning a minute at most: a flood of refusals must not flood the log. */
  private static final long WARN_EVERY_NANOS = TimeUnit.MINUTES.toNanos(1);

  private final String listener;
  private final int max;
  private final AtomicInteger open = new AtomicInteger();
  private final Counter refused;
  private final AtomicLong lastWarning = new AtomicLong(System.nanoTime() - WARN_EVERY_NANOS);

  /** @param refused counts the connections turned away */
  public ConnectionCap(String listener, int max, Counter refused) {
    this.listener = listener;
    this.max = max;
    this.refused = refused;
  }

  /**
   * Takes a place for a new connection. True: the caller must {@link #release} it exactly once
   * when that connection closes. False: the cap is reached, nothing was taken, and the refusal
   * is counted.
   */
  public boolean tryAcquire() {
    while (true) {
      int n = open.get();
      if (n >= max) {
        refused.increment();
        warn();
        return false;
      }
      if (open.compareAndSet(n, n + 1)) {
        return true;
      }
    }
  }

  private void warn() {
    long now = System.nanoTime();
    long last = lastWarning.get();
    if (now - last >= WARN_EVERY_NANOS && lastWarning.compareAndSet(last, now)) {
      log.warn("{} connections at their cap ({}.maxConnections = {}): refusing new ones "
          + "(chat_connections_refused_total counts them)", listener, listener, max);
    }
  }

  /** Gives back the place of a connection that {@link #tryAcquire} admitted. */
  public void release() {
    open.decrementAndGet();
  }

  /** Open admitted connections now. */
  public int open() {
    return open.get();
  }

  public int max() {
    return max;
  }

  public String listener() {
    return listener;
  }
}
