package chat.http;

import chat.store.UserStore;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.healthchecks.HealthChecks;
import io.vertx.ext.healthchecks.Status;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.TimeUnit;

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
   * Ready: the database answers within {@code timeoutMillis} and takes writes, which is what a
   * registration needs (on SQLite, its write lock can be taken; on PostgreSQL, it is not
   * read-only or a standby).
   */
  public static HealthChecks readiness(Vertx vertx, UserStore users, long timeoutMillis) {
    SharedCheck database = new SharedCheck(users, TimeUnit.MILLISECONDS.toNanos(timeoutMillis));
    // our own timer answers first, so a slow database is a plain KO (503) with a reason, not a
    // failed procedure (500)
    return HealthChecks.create(vertx).register("database", timeoutMillis + 1000, promise -> {
      Future<Void> ping = database.current();
      if (ping == null) {
        promise.tryComplete(late(timeoutMillis));
        return;
      }
      long timer = vertx.setTimer(timeoutMillis, t -> promise.tryComplete(late(timeoutMillis)));
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

  private static Status late(long timeoutMillis) {
    return Status.KO(new JsonObject().put("reason", "the database did not answer within " + timeoutMillis + " ms"));
  }

  /**
   * One database check at a time. While a database hangs, each check waits (SQLite's busy
   * timeout) on the pool's connection: a check per probe would pile them up in the pool. Probes
   * arriving while a check runs wait for that same check; once it has run past the timeout, they
   * are answered at once.
   */
  private static final class SharedCheck {
    private final UserStore users;
    private final long timeoutNanos;
    private Future<Void> running;
    private long startedNanos;

    SharedCheck(UserStore users, long timeoutNanos) {
      this.users = users;
      this.timeoutNanos = timeoutNanos;
    }

    /**
     * The check to wait for: the running one, or a new one; null when the running one is already
     * late. A check still running after 10 timeouts is given up on (a query that never returns
     * must not keep readiness DOWN for good): the next probe starts a fresh one.
     */
    synchronized Future<Void> current() {
      long now = System.nanoTime();
      if (running != null && now - startedNanos < 10 * timeoutNanos) {
        return now - startedNanos >= timeoutNanos ? null : running;
      }
      Future<Void> started = users.ping(TimeUnit.NANOSECONDS.toMillis(timeoutNanos));
      running = started;
      startedNanos = now;
      started.onComplete(r -> {
        synchronized (this) {
          if (running == started) {
            running = null;
          }
        }
      });
      return started;
    }
  }
}
