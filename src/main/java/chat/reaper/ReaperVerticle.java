package chat.reaper;

import chat.auth.SessionRegistry;
import chat.protocol.Addresses;
import chat.protocol.OwnerCommands;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.function.LongSupplier;

/**
 * The idle sweep of PROTOCOL.md §4.7: every {@code reaper.intervalSeconds} it asks the owner of
 * each session whose user has been inactive for {@code reaper.idleSeconds} to close it, and asks
 * every TCP verticle to close connections that never logged in and sent no complete message for
 * as long.
 */
public final class ReaperVerticle extends VerticleBase {

  private static final Logger log = LoggerFactory.getLogger(ReaperVerticle.class);

  private final SessionRegistry sessions;
  private final long idleMillis;
  private final long intervalMillis;
  private final LongSupplier clock;

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
      for (SessionRegistry.IdleSession s : idle) {
        log.info("Closing the idle session of {}", s.username());
        vertx.eventBus().send(s.ref().owner(), OwnerCommands.closeIdle(s.ref().connection(), s.username()));
      }
    });
    vertx.eventBus().publish(Addresses.SWEEP_UNAUTHENTICATED, idleMillis);
  }
}
