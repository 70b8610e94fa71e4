package chat.admin;

import chat.auth.SessionRegistry;
import chat.auth.TokenStore;
import chat.protocol.OwnerCommands;
import chat.store.AdminQueue;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.function.LongSupplier;

/**
 * Carries out the requests of the admin commands ({@link AdminCli}) in the running server. Every
 * {@code admin.pollMillis} it reads the {@code admin_queue} rows not yet done, oldest first, and
 * for each one claims it (so it runs exactly once, even with two servers on one database),
 * carries it out and records a short result:
 *
 * <ul>
 *   <li>{@code kick}: the owner of the user's session closes it with {@code Replies.KICKED};
 *       result {@code kicked} or {@code no session};</li>
 *   <li>{@code revoke}: every token of the user is revoked, then the session is kicked; result
 *       e.g. {@code revoked 2 tokens, session closed} or {@code revoked 0 tokens, no session}.</li>
 * </ul>
 *
 * All database work goes through the async pool; nothing here blocks the event loop. Polls never
 * overlap (the next one is scheduled when one ends). Done rows older than an hour are deleted.
 */
public final class AdminVerticle extends VerticleBase {

  private static final Logger log = LoggerFactory.getLogger(AdminVerticle.class);

  static final String KICKED = "kicked";
  static final String NO_SESSION = "no session";
  static final String FAILED_PREFIX = "failed: ";
  /** At most this many requests per poll; the rest wait for the next one. */
  private static final int BATCH = 100;
  private static final long KEEP_DONE_MILLIS = 60 * 60 * 1000L;
  private static final long PURGE_INTERVAL_MILLIS = 10 * 60 * 1000L;

  private final AdminQueue queue;
  private final TokenStore tokens;
  private final SessionRegistry sessions;
  private final long pollMillis;
  private final LongSupplier clock;

  private volatile boolean stopped;
  private long pollTimer = -1;
  private long purgeTimer = -1;
  private boolean failing;
  /** The poll in progress: stop() waits for it, so the database is not closed under its query. */
  private Future<Void> polling = Future.succeededFuture();

  public AdminVerticle(AdminQueue queue, TokenStore tokens, SessionRegistry sessions, long pollMillis, LongSupplier clock) {
    this.queue = queue;
    this.tokens = tokens;
    this.sessions = sessions;
    this.pollMillis = pollMillis;
    this.clock = clock;
  }

  @Override
  public Future<?> start() {
    return queue.ensureTable().onSuccess(v -> {
      purge();
      purgeTimer = vertx.setPeriodic(PURGE_INTERVAL_MILLIS, id -> purge());
      poll();
    });
  }

  @Override
  public Future<?> stop() {
    stopped = true;
    vertx.cancelTimer(pollTimer);
    vertx.cancelTimer(purgeTimer);
    return polling.otherwiseEmpty();
  }

  private void poll() {
    if (stopped) {
      return;
    }
    polling = queue.pending(BATCH)
        .compose(this::processInOrder)
        .andThen(ar -> {
          if (ar.failed() && !failing) {
            failing = true;
            log.warn("Cannot read the admin queue (will keep trying every {} ms): {}", pollMillis, ar.cause().toString());
          } else if (ar.succeeded() && failing) {
            failing = false;
            log.info("Reading the admin queue again");
          }
          if (!stopped) {
            pollTimer = vertx.setTimer(pollMillis, id -> poll());
          }
        });
  }

  private Future<Void> processInOrder(List<AdminQueue.Request> requests) {
    Future<Void> chain = Future.succeededFuture();
    for (AdminQueue.Request r : requests) {
      chain = chain.compose(v -> process(r));
    }
    return chain;
  }

  private Future<Void> process(AdminQueue.Request r) {
    return queue.claim(r.id(), clock.getAsLong()).compose(claimed -> {
      if (!claimed) {
        return Future.succeededFuture(); // another server took it
      }
      return execute(r)
          .recover(err -> Future.succeededFuture(FAILED_PREFIX + err.getMessage()))
          .compose(result -> {
            log.info("Admin request {}: {} {}: {}", r.id(), r.command(), r.username(), result);
            return queue.finish(r.id(), result);
          });
    });
  }

  private Future<String> execute(AdminQueue.Request r) {
    return switch (r.command()) {
      case AdminQueue.KICK -> kick(r.username());
      case AdminQueue.REVOKE -> tokens.revokeUser(r.username()).compose(n -> kick(r.username())
          .map(k -> "revoked " + n + (n == 1 ? " token, " : " tokens, ") + (KICKED.equals(k) ? "session closed" : k)));
      default -> Future.succeededFuture(FAILED_PREFIX + "unknown command '" + r.command() + "'");
    };
  }

  private Future<String> kick(String username) {
    return sessions.holder(username).map(ref -> {
      if (ref == null) {
        return NO_SESSION;
      }
      vertx.eventBus().send(ref.owner(), OwnerCommands.kick(ref.connection(), username));
      return KICKED;
    });
  }

  private void purge() {
    if (stopped) {
      return;
    }
    queue.purgeDoneBefore(clock.getAsLong() - KEEP_DONE_MILLIS)
        .onFailure(err -> log.debug("Could not purge the admin queue: {}", err.toString()));
  }
}
