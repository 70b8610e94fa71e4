package chat.tcp;

import chat.metrics.ServerMetrics;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.EventLoop;
import io.netty.channel.unix.IovArray;
import io.vertx.core.Context;
import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.buffer.BufferInternal;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;

/**
 * Writes every broadcast to every session holder of one TCP verticle, on its event loop.
 *
 * <p>Every holder receives the same byte stream, so a holder is written once per <em>pass</em>
 * with everything it has not had yet, in one send(2). Chats accepted while a pass runs are
 * appended to a shared log of batches (each batch: the lines accepted between two steps, encoded
 * once into one direct buffer) and reach the holders the pass has not visited yet in the same
 * write as the older ones; the holders already visited get them in the next pass. A pass is cut
 * into steps of {@link #STEP_HOLDERS} holders, and the event loop reads its sockets between steps.
 *
 * <p>So the work adapts to load by itself: at low load a pass writes one chat to each holder and
 * stops; under load a pass takes as long as writing to every holder once (about 8 µs a write on
 * the small VM we measure on, most of it the kernel's TCP send path) and each write carries all
 * the chats of the last pass. A chat reaches every holder within about one pass, whatever the
 * load, and the number of writes per second never exceeds holders / (time per write).
 *
 * <p>A pass runs backwards over the holder array: a holder that leaves during a pass is replaced
 * by the last one, which the pass has already visited or is about to, so no holder is skipped; a
 * holder that arrives during a pass starts at the end of the log and has nothing pending. Batches
 * are released once a whole pass has started after them.
 *
 * <p>{@code chat_broadcast_pass} on {@code /metrics} times the passes (one with sessions to write),
 * so it shows how long chats take to reach every session.
 */
final class Broadcaster {

  /** Holders written per step; the event loop reads its sockets between steps (about 1 ms of writes). */
  static final int STEP_HOLDERS = 128;

  private final ContextInternal context;
  private final EventLoop eventLoop;
  private final ServerMetrics.TcpStats stats;
  private final IovArray iov = new IovArray();

  /** Connections holding a session: an array with swap-remove, so passes allocate nothing. */
  private TcpConnection[] holders = new TcpConnection[64];
  private int holderCount;

  /** Broadcast lines accepted since the last step, not yet in the log. */
  private final ArrayList<Buffer> open = new ArrayList<>();
  /** Batches not yet known to have reached every holder; log.get(0) has sequence number logFirstSeq. */
  private final ArrayList<ByteBuf> log = new ArrayList<>();
  /** For each batch in the log, the number of lines appended before it (deliveries are counted per holder). */
  private final ArrayList<Long> linesBefore = new ArrayList<>();
  private long linesAppended;
  private long logFirstSeq;
  /** The sequence number the next batch gets. */
  private long headSeq;

  /** Next holder index the current pass visits (passes go downwards); -1 between passes. */
  private int passPos = -1;
  /** headSeq when the current pass started: every batch before it reaches every holder during the pass. */
  private long passStartSeq;
  /** System.nanoTime() when the current pass started, for chat_broadcast_pass; 0 for a pass without holders. */
  private long passStartNanos;
  private boolean stepScheduled;
  private boolean closed;

  private final Handler<Void> step = v -> step();
  /** The next step, after the event loop has read its sockets: Netty runs scheduled tasks after I/O. */
  private final Runnable stepAfterIo = () -> runStep();

  Broadcaster(Context context, ServerMetrics.TcpStats stats) {
    this.context = (ContextInternal) context;
    this.eventLoop = this.context.nettyEventLoop();
    this.stats = stats;
  }

  int holders() {
    return holderCount;
  }

  /** {@code c} now holds a session: it receives the broadcasts accepted from now on. */
  void add(TcpConnection c) {
    if (c.sessionIndex >= 0) {
      return;
    }
    if (holderCount == holders.length) {
      holders = Arrays.copyOf(holders, holders.length * 2);
    }
    c.sessionIndex = holderCount;
    c.nextSeq = headSeq;
    holders[holderCount++] = c;
  }

  /** {@code c} no longer holds a session (it closed). */
  void remove(TcpConnection c) {
    int i = c.sessionIndex;
    if (i < 0) {
      return;
    }
    TcpConnection last = holders[--holderCount];
    holders[i] = last;
    last.sessionIndex = i;
    holders[holderCount] = null;
    c.sessionIndex = -1;
  }

  /** A chat accepted on any listener of any verticle: its encoded line, shared, never modified. */
  void publish(Buffer line) {
    if (closed) {
      return;
    }
    open.add(line);
    if (!stepScheduled) {
      stepScheduled = true;
      context.runOnContext(step);
    }
  }

  /** Releases the log: the verticle stops. */
  void close() {
    closed = true;
    for (ByteBuf b : log) {
      b.release();
    }
    log.clear();
    linesBefore.clear();
    iov.release();
  }

  private void runStep() {
    context.runOnContext(step);
  }

  private void step() {
    stepScheduled = false;
    if (closed) {
      return;
    }
    appendOpenBatch();
    if (passPos < 0) {
      if (headSeq == passStartSeq) {
        return; // every holder has everything: idle until the next chat
      }
      passStartSeq = headSeq;
      passPos = holderCount - 1;
      passStartNanos = holderCount > 0 ? System.nanoTime() : 0;
    }
    // counted here and published once per step: the stats fields are volatile, read by /metrics
    long writes = 0;
    long deliveries = 0;
    for (int n = 0; n < STEP_HOLDERS && passPos >= 0; n++) {
      if (passPos >= holderCount) {
        passPos = holderCount - 1; // holders left during the step; the ones above are done
        if (passPos < 0) {
          break;
        }
      }
      TcpConnection h = holders[passPos--];
      if (h.nextSeq < headSeq) {
        int from = (int) (h.nextSeq - logFirstSeq);
        h.nextSeq = headSeq;
        writes++;
        deliveries += linesAppended - linesBefore.get(from);
        h.deliver(log, from, iov);
      }
    }
    if (passPos < 0 && passStartNanos != 0) {
      stats.broadcastPasses.record(System.nanoTime() - passStartNanos, TimeUnit.NANOSECONDS);
      passStartNanos = 0;
    }
    stats.broadcastWrites += writes;
    stats.deliveries += deliveries;
    if (passPos < 0) {
      releaseBefore(passStartSeq);
      if (headSeq == passStartSeq && open.isEmpty()) {
        return; // nothing arrived during the pass: done
      }
    }
    stepScheduled = true;
    eventLoop.schedule(stepAfterIo, 0, TimeUnit.NANOSECONDS);
  }

  /** The lines accepted since the last step become one batch: one direct buffer shared by every holder. */
  private void appendOpenBatch() {
    int lines = open.size();
    if (lines == 0) {
      return;
    }
    int bytes = 0;
    for (int i = 0; i < lines; i++) {
      bytes += open.get(i).length();
    }
    ByteBuf batch = PooledByteBufAllocator.DEFAULT.directBuffer(bytes, bytes);
    for (int i = 0; i < lines; i++) {
      batch.writeBytes(((BufferInternal) open.get(i)).getByteBuf());
    }
    open.clear();
    log.add(batch);
    linesBefore.add(linesAppended);
    linesAppended += lines;
    headSeq++;
  }

  private void releaseBefore(long seq) {
    int n = (int) (seq - logFirstSeq);
    if (n <= 0) {
      return;
    }
    for (int i = 0; i < n; i++) {
      log.get(i).release();
    }
    log.subList(0, n).clear();
    linesBefore.subList(0, n).clear();
    logFirstSeq = seq;
  }
}
