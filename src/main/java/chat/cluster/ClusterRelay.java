package chat.cluster;

import chat.protocol.Addresses;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.MessageConsumer;

import java.util.concurrent.ThreadLocalRandom;

/**
 * Carries the chats accepted on this node to the other nodes, in batches: every chat goes at once
 * to this node's TCP verticles (a local-only publish on {@link Addresses#BROADCAST}) and into the
 * batch of its event-loop thread; at the end of the event-loop turn the batch goes to every node in
 * one clustered event-bus message on {@link #ADDRESS}, whose receivers publish its lines on their
 * own BROADCAST, in order, local-only.
 *
 * <p>Why: a clustered event-bus message costs each side a frame encoded and parsed, a write and a
 * flush, and a task on the receiving event loop, whatever its size. Under load a turn accepts many
 * chats (each read of a sender's socket may carry several), and one message then carries them all.
 * At low load a batch holds one chat and waits for nothing: it leaves at the end of the same turn.
 *
 * <p>Order: a connection's chats are accepted on its event loop in order, a thread's batches leave
 * in order, and the clustered event bus keeps the order of the messages between two nodes; so one
 * author's chats arrive everywhere in the order they were sent. (A chat published from outside an
 * event loop, which the server's own paths never do, leaves at once: in no order with a batch
 * still waiting for the end of its turn on some event loop.)
 *
 * <p>Body: {@code origin (8 bytes) | line count (4) | then per line: length (4), bytes}. The
 * origin is this relay's random id: a clustered publish reaches the publisher's node too, whose
 * relay drops it (those chats went out locally already). Every node of a cluster must run a
 * version with this relay (a node without it would not see the others' chats).
 */
public final class ClusterRelay {

  /** Publish: a batch of chats accepted on one node, for the other nodes. */
  public static final String ADDRESS = "chat.cluster.relay";

  private static final DeliveryOptions LOCAL_ONLY = new DeliveryOptions().setLocalOnly(true);
  private static final int HEADER = 12;

  private final EventBus eventBus;
  private final long origin = ThreadLocalRandom.current().nextLong();
  /** The batch of the calling event-loop thread: only that thread touches it. */
  private final ThreadLocal<Batch> batches = ThreadLocal.withInitial(Batch::new);

  private ClusterRelay(EventBus eventBus) {
    this.eventBus = eventBus;
  }

  /** A relay for this node: receives the other nodes' batches from now on (once the registration completes). */
  public static Future<ClusterRelay> start(Vertx vertx) {
    ClusterRelay relay = new ClusterRelay(vertx.eventBus());
    MessageConsumer<Buffer> consumer = vertx.eventBus().consumer(ADDRESS, m -> relay.receive(m.body()));
    return consumer.completion().map(relay);
  }

  /** One accepted chat, its encoded broadcast line: to this node's sessions now, to the others' at the end of the turn. */
  public void publish(Buffer line) {
    eventBus.publish(Addresses.BROADCAST, line, LOCAL_ONLY);
    Context context = Vertx.currentContext();
    if (context == null || !context.isEventLoopContext()) {
      // not on an event loop (no end of turn to wait for): a batch of one, now
      eventBus.publish(ADDRESS, header(1).appendInt(line.length()).appendBuffer(line));
      return;
    }
    Batch batch = batches.get();
    if (batch.body == null) {
      batch.body = header(0); // the count is set when the batch leaves
      context.runOnContext(batch.send);
    }
    batch.body.appendInt(line.length()).appendBuffer(line);
    batch.lines++;
  }

  private Buffer header(int lines) {
    return Buffer.buffer(256).appendLong(origin).appendInt(lines);
  }

  /** A batch from any node: from another node, its lines go to this node's TCP verticles, in order. */
  private void receive(Buffer body) {
    if (body.length() < HEADER || body.getLong(0) == origin) {
      return;
    }
    int lines = body.getInt(8);
    int pos = HEADER;
    for (int i = 0; i < lines && pos + 4 <= body.length(); i++) {
      int length = body.getInt(pos);
      pos += 4;
      if (length < 0 || pos + length > body.length()) {
        return; // not a batch this version wrote
      }
      eventBus.publish(Addresses.BROADCAST, body.slice(pos, pos + length), LOCAL_ONLY);
      pos += length;
    }
  }

  /** The lines one event-loop thread accepted in the current turn. */
  private final class Batch {
    Buffer body;
    int lines;
    final Handler<Void> send = v -> {
      Buffer full = body.setInt(8, lines);
      body = null;
      lines = 0;
      eventBus.publish(ADDRESS, full);
    };
  }
}
