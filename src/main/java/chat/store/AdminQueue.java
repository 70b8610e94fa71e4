package chat.store;

import io.vertx.core.Future;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.Tuple;

import java.util.ArrayList;
import java.util.List;

/**
 * The {@code admin_queue} table: the mailbox between the admin commands and the running server.
 * A command ({@code java -jar chat-server.jar session kick bob}) inserts a row; the server's
 * AdminVerticle polls for rows not yet done, claims each one, carries it out and writes a short
 * result, which the command waits for. No port and no secret: whoever can write the database can
 * already delete users.
 *
 * <p>Every write here is one autocommit statement, so the server and a command in another
 * process share the SQLite file safely (WAL, busy_timeout), and several servers share a
 * PostgreSQL database: each request is claimed by exactly one of them. Same pool as
 * {@link UserStore}.
 */
public final class AdminQueue {

  /** Close the user's socket session. */
  public static final String KICK = "kick";
  /** Revoke every token of the user, then close its session (after a delete or a password reset). */
  public static final String REVOKE = "revoke";

  /** A request not yet claimed. */
  public record Request(long id, String command, String username, long requestedAt) {
  }

  /**
   * A request's state: {@code doneAt} is set once a server has claimed it, {@code result} once it
   * has carried it out; both {@code null} while it waits.
   */
  public record State(Long doneAt, String result) {
  }

  private final UserStore users;
  private final Dialect dialect;

  private AdminQueue(UserStore users) {
    this.users = users;
    this.dialect = users.dialect();
  }

  /** The queue in the database of {@code users}, over its pool. */
  public static AdminQueue of(UserStore users) {
    return new AdminQueue(users);
  }

  /** Creates the table when it is absent (one server at a time); touches nothing else. */
  public Future<Void> ensureTable() {
    return users.inSchemaTransaction(c -> c.query(dialect.createAdminQueue()).execute().mapEmpty());
  }

  /** Adds a request; completes with its id. */
  public Future<Long> enqueue(String command, String username, long nowMillis) {
    // the last inserted id belongs to the connection: insert and read it on the same one
    return users.withConnection(c -> c
        .preparedQuery("INSERT INTO admin_queue (command, username, requested_at) VALUES (?, ?, ?)")
        .execute(Tuple.of(command, username, nowMillis))
        .compose(r -> c.query(dialect.lastInsertId()).execute())
        .map(rows -> rows.iterator().next().getLong(0)));
  }

  /** Requests not yet claimed, oldest first, at most {@code limit}. */
  public Future<List<Request>> pending(int limit) {
    return users.prepared("SELECT id, command, username, requested_at FROM admin_queue "
            + "WHERE done_at IS NULL ORDER BY id LIMIT ?", Tuple.of(limit))
        .map(rows -> {
          List<Request> out = new ArrayList<>(rows.size());
          for (Row r : rows) {
            out.add(new Request(r.getLong(0), r.getString(1), r.getString(2), r.getLong(3)));
          }
          return out;
        });
  }

  /**
   * Marks the request taken, if nobody has: completes with {@code true} for exactly one caller,
   * however many servers poll the same database.
   */
  public Future<Boolean> claim(long id, long nowMillis) {
    return users.prepared("UPDATE admin_queue SET done_at = ? WHERE id = ? AND done_at IS NULL", Tuple.of(nowMillis, id))
        .map(r -> r.rowCount() == 1);
  }

  /** Records what a claimed request did. */
  public Future<Void> finish(long id, String result) {
    return users.prepared("UPDATE admin_queue SET result = ? WHERE id = ?", Tuple.of(result, id)).mapEmpty();
  }

  /** The request's state, or {@code null} when there is no such row. */
  public Future<State> state(long id) {
    return users.prepared("SELECT done_at, result FROM admin_queue WHERE id = ?", Tuple.of(id))
        .map(rows -> {
          if (rows.size() == 0) {
            return null;
          }
          Row r = rows.iterator().next();
          return new State(r.getLong(0), r.getString(1));
        });
  }

  /** Withdraws a request that no server has claimed; completes with whether it did. */
  public Future<Boolean> withdraw(long id) {
    return users.prepared("DELETE FROM admin_queue WHERE id = ? AND done_at IS NULL", Tuple.of(id))
        .map(r -> r.rowCount() == 1);
  }

  /** Deletes requests done before {@code cutoffMillis}; completes with how many. */
  public Future<Integer> purgeDoneBefore(long cutoffMillis) {
    return users.prepared("DELETE FROM admin_queue WHERE done_at IS NOT NULL AND done_at < ?", Tuple.of(cutoffMillis))
        .map(r -> r.rowCount());
  }
}
