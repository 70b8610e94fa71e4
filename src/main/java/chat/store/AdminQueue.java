package chat.store;

import io.vertx.core.Future;
import io.vertx.sqlclient.Pool;
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
 * process share the SQLite file safely (WAL, busy_timeout). Same pool as {@link UserStore}.
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

  static final String CREATE_TABLE = "CREATE TABLE IF NOT EXISTS admin_queue ("
      + "id INTEGER PRIMARY KEY AUTOINCREMENT, command TEXT NOT NULL, username TEXT NOT NULL, "
      + "requested_at INTEGER NOT NULL, done_at INTEGER, result TEXT)";

  private final Pool pool;

  private AdminQueue(Pool pool) {
    this.pool = pool;
  }

  /** The queue in the database of {@code users}, over its pool. */
  public static AdminQueue of(UserStore users) {
    return new AdminQueue(users.pool());
  }

  /** Creates the table when it is absent; touches nothing else. */
  public Future<Void> ensureTable() {
    return pool.query(CREATE_TABLE).execute().mapEmpty();
  }

  /** Adds a request; completes with its id. */
  public Future<Long> enqueue(String command, String username, long nowMillis) {
    // last_insert_rowid() belongs to the connection: insert and read it on the same one
    return pool.withConnection(c -> c
        .preparedQuery("INSERT INTO admin_queue (command, username, requested_at) VALUES (?, ?, ?)")
        .execute(Tuple.of(command, username, nowMillis))
        .compose(r -> c.query("SELECT last_insert_rowid()").execute())
        .map(rows -> rows.iterator().next().getLong(0)));
  }

  /** Requests not yet claimed, oldest first, at most {@code limit}. */
  public Future<List<Request>> pending(int limit) {
    return pool.preparedQuery("SELECT id, command, username, requested_at FROM admin_queue "
            + "WHERE done_at IS NULL ORDER BY id LIMIT ?")
        .execute(Tuple.of(limit))
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
    return pool.preparedQuery("UPDATE admin_queue SET done_at = ? WHERE id = ? AND done_at IS NULL")
        .execute(Tuple.of(nowMillis, id))
        .map(r -> r.rowCount() == 1);
  }

  /** Records what a claimed request did. */
  public Future<Void> finish(long id, String result) {
    return pool.preparedQuery("UPDATE admin_queue SET result = ? WHERE id = ?").execute(Tuple.of(result, id)).mapEmpty();
  }

  /** The request's state, or {@code null} when there is no such row. */
  public Future<State> state(long id) {
    return pool.preparedQuery("SELECT done_at, result FROM admin_queue WHERE id = ?").execute(Tuple.of(id))
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
    return pool.preparedQuery("DELETE FROM admin_queue WHERE id = ? AND done_at IS NULL").execute(Tuple.of(id))
        .map(r -> r.rowCount() == 1);
  }

  /** Deletes requests done before {@code cutoffMillis}; completes with how many. */
  public Future<Integer> purgeDoneBefore(long cutoffMillis) {
    return pool.preparedQuery("DELETE FROM admin_queue WHERE done_at IS NOT NULL AND done_at < ?")
        .execute(Tuple.of(cutoffMillis))
        .map(r -> r.rowCount());
  }
}
