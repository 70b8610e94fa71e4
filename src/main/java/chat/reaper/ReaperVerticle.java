package chat.reaper;

import chat.auth.SessionRegistry;
import chat.protocol.Addresses;
import chat.protocol.OwnerCommands;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.HashSet;
import java.util.Set;
import java.util.function.LongSupplier;

/**
 * The idle sweep of PROTOCOL.md §4.7: every {@code reaper.intervalSeconds} it asks the owner of
 * each session whose user has been inactive for {@code reaper.idleSeconds} to close it, and asks
 * every TCP verticle to close connections that never logged in and sent no complete message for
 * as long. A session still there one sweep after its owner was asked is released here: the
 * idle rule frees every session, even one that no live connection holds.
 */
public final class ReaperVerticle extends VerticleBase {

  private static final Logger log = LoggerFactory.getLogger(ReaperVerticle.class);

  private final SessionRegistry sessions;
  private final long idleMillis;
  private final long intervalMillis;
  private final LongSupplier clock;
  /** The sessions asked to close at the last sweep (touched only on this verticle's context). */
  private Set<SessionRegistry.IdleSession> asked = Set.of();

  public ReaperVerticle(SessionRegistry sessions, long idleMillis, long intervalMillis, LongSupplier clock) {
    this.sessions = sessions;
    this.idleMillis = idleMillis;
    this.intervalMillis = intervalMillis;
    this.clock = clock;
  }

  @Override
  public Future<?> start() {
    vertx.setPeriodic(intervalMillis, id -> sweep());
    return Future.succeededFuture();
  }

  private void sweep() {
    sessions.idleSince(clock.getAsLong() - idleMillis).onSuccess(idle -> {
      Set<SessionRegistry.IdleSession> askedNow = new HashSet<>();
      for (SessionRegistry.IdleSession s : idle) {
        if (asked.contains(s)) {
          // asked a sweep ago and still there: no connection holds it (its login reply never
          // reached it, e.g. after the 120 s request timeout), or its owner is gone; without
          // this the user could never log in again
          log.warn("Releasing the session of {}: its connection did not close it", s.username());
          sessions.release(s.username(), s.ref());
        } else {
          log.info("Closing the idle session of {}", s.username());
          vertx.eventBus().send(s.ref().owner(), OwnerCommands.closeIdle(s.ref().connection(), s.username()));
          askedNow.add(s);
        }
      }
      asked = askedNow;
    });
    // each node sweeps its own connections
    vertx.eventBus().publish(Addresses.SWEEP_UNAUTHENTICATED, idleMillis, new io.vertx.core.eventbus.DeliveryOptions().setLocalOnly(true));
  }
}
