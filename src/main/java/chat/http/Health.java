package chat.http;

import chat.store.UserStore;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.healthchecks.HealthChecks;
import io.vertx.ext.healthchecks.Status;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The checks behind {@code /health/live} and {@code /health/ready} (vertx-health-check). The
 * body lists each check with its status, so a failing probe says which check failed.
 */
public final class Health {

  private static final Logger log = LoggerFactory.getLogger(Health.class);

  private Health() {
  }

  /** Live: the HTTP event loop answers (the check runs on it). */
  public static HealthChecks liveness(Vertx vertx) {
    return HealthChecks.create(vertx).register("event-loop", promise -> promise.complete(Status.OK()));
  }

  /**
   * Ready: the database answers within {@code timeoutMillis} (on SQLite, its write lock can be
   * taken, which is what a registration needs).
   */
  public static HealthChecks readiness(Vertx vertx, UserStore users, long timeoutMillis) {
    // while a database check is still waiting (a hung database), later probes wait for that same
    // check instead of queueing one more in the pool each: probes never pile up
    Object lock = new Object();
    Future<?>[] pending = {null};
    // our own timer answers first, so a slow database is a plain KO (503) with a reason, not a
    // failed procedure (500)
    return HealthChecks.create(vertx).register("database", timeoutMillis + 1000, promise -> {
      long timer = vertx.setTimer(timeoutMillis, t -> promise.tryComplete(
          Status.KO(new JsonObject().put("reason", "the database did not answer within " + timeoutMillis + " ms"))));
      Future<?> ping;
      synchronized (lock) {
        ping = pending[0];
        if (ping == null) {
          Future<Void> started = users.ping();
          pending[0] = started;
          ping = started;
          started.onComplete(r -> {
            synchronized (lock) {
              if (pending[0] == started) {
                pending[0] = null;
              }
            }
          });
        }
      }
      ping.onComplete(r -> {
        vertx.cancelTimer(timer);
        if (r.succeeded()) {
          promise.tryComplete(Status.OK());
        } else {
          log.warn("Readiness: the database failed: {}", r.cause().toString());
          promise.tryComplete(Status.KO(new JsonObject().put("reason", "the database failed")));
        }
      });
    });
  }
}
