package chat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.turbo.TurboFilter;
import ch.qos.logback.core.spi.FilterReply;
import org.slf4j.Marker;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Lets through at most one warning or error every {@link #INTERVAL_MILLIS} from the clustered
 * event bus (its connections to other nodes). When a node dies, the bus logs a failed connection,
 * with its stack trace, for every chat sent to that node until the cluster drops it: hundreds of
 * lines a second. The first one of each interval still shows (a blocked event-bus port stays
 * visible); the member leaving is logged by the session registry. Installed by LogbackDefaults.
 */
public final class EventBusLogThrottle extends TurboFilter {

  static final long INTERVAL_MILLIS = 10_000;
  private static final String THROTTLED = "io.vertx.core.eventbus.impl.clustered";

  private final AtomicLong nextAllowed = new AtomicLong();

  @Override
  public FilterReply decide(Marker marker, Logger logger, Level level, String format, Object[] params, Throwable t) {
    if (level == null || !level.isGreaterOrEqual(Level.WARN) || !logger.getName().startsWith(THROTTLED)) {
      return FilterReply.NEUTRAL;
    }
    long now = System.currentTimeMillis();
    long allowed = nextAllowed.get();
    if (now >= allowed && nextAllowed.compareAndSet(allowed, now + INTERVAL_MILLIS)) {
      return FilterReply.NEUTRAL;
    }
    return FilterReply.DENY;
  }
}
