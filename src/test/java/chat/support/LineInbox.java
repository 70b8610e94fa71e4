package chat.support;

import io.vertx.core.json.JsonObject;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * Reads every line a {@link LineClient} receives on a background thread, with the time it came,
 * so that a test can wait for what it expects with a bound (instead of sleeping) while it does
 * other things, and then check what else arrived. Once an inbox is attached, read the client only
 * through it. The end of the stream (the server closed the connection) is recorded too.
 */
public final class LineInbox implements AutoCloseable {

  /** One line and when it was read ({@link System#nanoTime()}). */
  public record Line(String text, long nanos) {
    public JsonObject json() {
      return new JsonObject(text);
    }
  }

  private final LineClient client;
  private final List<Line> lines = new ArrayList<>();
  private final Thread reader;
  private boolean ended;
  private long endedNanos;

  public LineInbox(LineClient client, String name) {
    this.client = client;
    try {
      client.socket().setSoTimeout(0); // the reader waits as long as the connection lives
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    reader = new Thread(this::readAll, "inbox-" + name);
    reader.setDaemon(true);
    reader.start();
  }

  public LineClient client() {
    return client;
  }

  private void readAll() {
    try {
      while (true) {
        String line = client.readLine();
        synchronized (this) {
          lines.add(new Line(line, System.nanoTime()));
          notifyAll();
        }
      }
    } catch (AssertionError | RuntimeException e) {
      // "connection closed by the server", or the socket closed under us: the end either way
    } finally {
      synchronized (this) {
        ended = true;
        endedNanos = System.nanoTime();
        notifyAll();
      }
    }
  }

  /** Every line so far. */
  public synchronized List<Line> lines() {
    return new ArrayList<>(lines);
  }

  /** The lines so far that match. */
  public synchronized List<Line> matching(Predicate<String> which) {
    return lines.stream().filter(l -> which.test(l.text())).toList();
  }

  /** Whether the server closed the connection. */
  public synchronized boolean ended() {
    return ended;
  }

  public synchronized long endedNanos() {
    return endedNanos;
  }

  /**
   * Waits (at most {@code timeoutMillis}) until {@code count} lines match; returns the matching
   * lines, which may be fewer when the time is up or the connection ended.
   */
  public synchronized List<Line> await(Predicate<String> which, int count, long timeoutMillis) {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    while (true) {
      List<Line> found = lines.stream().filter(l -> which.test(l.text())).toList();
      long left = deadline - System.nanoTime();
      if (found.size() >= count || ended || left <= 0) {
        return found;
      }
      waitQuietly(left);
    }
  }

  /** Waits for the first line that matches; null when none came in time. */
  public Line awaitFirst(Predicate<String> which, long timeoutMillis) {
    List<Line> found = await(which, 1, timeoutMillis);
    return found.isEmpty() ? null : found.get(0);
  }

  /** Waits (at most {@code timeoutMillis}) for the end of the stream; returns whether it ended. */
  public synchronized boolean awaitEnd(long timeoutMillis) {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    while (!ended) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        return false;
      }
      waitQuietly(left);
    }
    return true;
  }

  private void waitQuietly(long nanos) {
    try {
      TimeUnit.NANOSECONDS.timedWait(this, nanos);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  public LineInbox send(String text) {
    client.send(text);
    return this;
  }

  public LineInbox send(JsonObject message) {
    client.send(message);
    return this;
  }

  @Override
  public void close() {
    client.close();
    try {
      reader.join(5000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
