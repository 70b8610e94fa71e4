package chat.net;

import io.micrometer.core.instrument.Counter;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * The open connections of one listener kind ({@code tcp}: plain and TLS TCP; {@code http}: HTTP
 * and HTTPS), counted across every verticle instance, and the cap on them
 * ({@code tcp.maxConnections}, {@code http.maxConnections}). One atomic operation per connection
 * opened or closed, nothing per message.
 */
public final class ConnectionCap {

  private final String listener;
  private final int max;
  private final AtomicInteger open = new AtomicInteger();
  private final Counter refused;

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
        return false;
      }
      if (open.compareAndSet(n, n + 1)) {
        return true;
      }
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
