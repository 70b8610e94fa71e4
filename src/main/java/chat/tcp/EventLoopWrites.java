package chat.tcp;

import io.vertx.core.net.NetSocket;
import io.vertx.core.net.impl.VertxConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;

/**
 * Gives a socket Vert.x's direct write path in place of its thread-safe write queue.
 *
 * <p>Every Vert.x connection gets a multi-producer queue for writes made from other threads; its
 * first chunk is a 1025-slot array, about 4.7 kB of heap per connection, more than half of what
 * an idle session costs. Our sockets are only ever written from their own event loop (replies and
 * broadcasts both run there), and nothing is written to a socket that is not writable (it is cut
 * off instead), so that queue never holds anything. Vert.x has the exact replacement, the queue it
 * uses for HTTP's strict thread mode, but no option for it on a NetServer; this swaps it in. The
 * old queue is then young garbage, collected before it is ever promoted.
 *
 * <p>It reaches into Vert.x internals, so it checks what it finds: on a Vert.x version where the
 * field or the class is not there any more, {@link #available()} is false, sockets keep their
 * queue (about 4.7 kB more per connection, same behaviour), and the startup log says so once.
 * {@code EventLoopWritesTest} fails on such a version, so an upgrade cannot lose it silently.
 */
final class EventLoopWrites {

  private static final Logger log = LoggerFactory.getLogger(EventLoopWrites.class);

  private static final MethodHandle NEW_DIRECT_QUEUE;
  private static final Field QUEUE;

  static {
    MethodHandle make = null;
    Field field = null;
    try {
      Class<?> direct = Class.forName(VertxConnection.class.getName() + "$DirectOutboundMessageQueue");
      Constructor<?> constructor = direct.getDeclaredConstructor(VertxConnection.class);
      constructor.setAccessible(true);
      field = VertxConnection.class.getDeclaredField("outboundMessageQueue");
      field.setAccessible(true);
      if (!field.getType().isAssignableFrom(direct)) {
        throw new NoSuchFieldException("outboundMessageQueue has type " + field.getType());
      }
      make = MethodHandles.lookup().unreflectConstructor(constructor);
    } catch (ReflectiveOperationException | RuntimeException e) {
      log.warn("Vert.x's direct write queue is not available ({}): each TCP connection keeps about 4.7 kB more", e.toString());
      make = null;
      field = null;
    }
    NEW_DIRECT_QUEUE = make;
    QUEUE = field;
  }

  private EventLoopWrites() {
  }

  static boolean available() {
    return QUEUE != null;
  }

  /** Must run on the socket's event loop, before anything is written to it. */
  static void install(NetSocket socket) {
    if (QUEUE != null && socket instanceof VertxConnection connection) {
      try {
        QUEUE.set(connection, NEW_DIRECT_QUEUE.invoke(connection));
      } catch (Throwable e) {
        log.debug("Kept the write queue of a connection: {}", e.toString());
      }
    }
  }

  /** Whether {@code socket} writes through the direct path (for tests). */
  static boolean installedOn(NetSocket socket) throws IllegalAccessException {
    return QUEUE != null && socket instanceof VertxConnection connection
        && QUEUE.get(connection).getClass().getSimpleName().equals("DirectOutboundMessageQueue");
  }
}
