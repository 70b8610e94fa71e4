package chat.store;

import chat.config.ChatConfig;
import chat.metrics.ServerMetrics;
import io.micrometer.core.instrument.Timer;
import io.agroal.api.AgroalDataSource;
import io.agroal.api.configuration.supplier.AgroalDataSourceConfigurationSupplier;
import io.agroal.api.security.NamePrincipal;
import io.agroal.api.security.SimplePassword;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.jdbcclient.JDBCPool;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * The {@code users} table, through vertx-jdbc-client over an Agroal pool. The table keeps the
 * original server's layout, {@code users(name TEXT PRIMARY KEY, passwd TEXT, avatar TEXT DEFAULT
 * 'default_avatar.png')}; {@code passwd} now holds Argon2id hashes.
 *
 * <p>Transactions: vertx-jdbc-client 5.0.x returns a connection to the pool with autocommit off
 * after {@code withTransaction}/{@code begin()} (VERTX5-NOTES.md), so the one transaction here
 * uses plain {@code BEGIN IMMEDIATE}/{@code COMMIT} statements on one connection instead.
 */
public final class UserStore {

  private static final Logger log = LoggerFactory.getLogger(UserStore.class);

  public record User(String name, String passwd, String avatar) {
  }

  /** What a stored password is, for listing: never the password or hash itself. */
  public enum PasswordState { HASHED, PLAIN_TEXT, NONE }

  /** One user as the admin commands list it: no password, no hash. */
  public record Summary(String name, String avatar, PasswordState password) {
  }

  private final AgroalDataSource dataSource;
  private final Pool pool;
  private final boolean sqlite;
  private final AtomicInteger inFlight = new AtomicInteger();
  private Timer operations;

  /** SQLite: how long a statement waits for a lock held elsewhere (db.busyTimeoutMillis). */
  private final int busyTimeoutMillis;

  private UserStore(AgroalDataSource dataSource, Pool pool, boolean sqlite, int busyTimeoutMillis) {
    this.busyTimeoutMillis = busyTimeoutMillis;
    this.dataSource = dataSource;
    this.pool = pool;
    this.sqlite = sqlite;
  }

  /** Reports operations in flight and their duration (DB pool usage) to the server's metrics. */
  public void measureWith(ServerMetrics metrics, int poolSize) {
    operations = metrics.dbOperations();
    metrics.gauge("chat_db_operations_in_flight", "Database operations submitted and not yet completed (queued or running)",
        inFlight::get);
    metrics.gauge("chat_db_pool_max_connections", "Database connections the pool may open", () -> poolSize);
  }

  /** Counts an operation while it runs; the hot path never touches the database. */
  private <T> Future<T> tracked(Supplier<Future<T>> operation) {
    Timer timer = operations;
    if (timer == null) {
      return operation.get();
    }
    long start = System.nanoTime();
    inFlight.incrementAndGet();
    return operation.get().andThen(r -> {
      inFlight.decrementAndGet();
      timer.record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
    });
  }

  /**
   * Whether the database answers, for the readiness check. On SQLite it takes the write lock
   * and lets go of it at once ({@code BEGIN IMMEDIATE; ROLLBACK}): readers always get through in
   * WAL mode, but a registration needs the write lock.
   */
  public Future<Void> ping(long waitMillis) {
    long wait = Math.min(waitMillis, busyTimeoutMillis);
    if (!sqlite) {
      return tracked(() -> pool.query("SELECT 1").execute().mapEmpty());
    }
    // the lock is waited for at most waitMillis, not the busy timeout: a probe of a locked database
    // must not hold the pool's one connection (and the logins queued behind it) for seconds
    return tracked(() -> pool.withConnection(c -> c.query("PRAGMA busy_timeout = " + wait).execute()
        .compose(r -> c.query("BEGIN IMMEDIATE").execute())
        .compose(r -> c.query("ROLLBACK").execute())
        .eventually(() -> c.query("PRAGMA busy_timeout = " + busyTimeoutMillis).execute())
        .mapEmpty()));
  }


  /** Creates the pool. Nothing touches the database until {@link #prepare}. */
  public static UserStore open(Vertx vertx, ChatConfig config) throws SQLException {
    boolean sqlite = config.dbUrl.startsWith("jdbc:sqlite:");
    AgroalDataSource ds = AgroalDataSource.from(new AgroalDataSourceConfigurationSupplier()
        .connectionPoolConfiguration(cp -> cp
            .maxSize(config.dbPoolSize)
            .acquisitionTimeout(Duration.ofSeconds(10))
            .connectionFactoryConfiguration(cf -> {
              cf.jdbcUrl(config.dbUrl);
              if (!config.dbUser.isEmpty()) {
                cf.principal(new NamePrincipal(config.dbUser));
              }
              if (!config.dbPassword.isEmpty()) {
                cf.credential(new SimplePassword(config.dbPassword));
              }
              if (sqlite) {
                // WAL: readers never block the writer. synchronous=FULL: a registration is on
                // disk before register_1 is sent. secure_delete: replaced plain-text passwords
                // are overwritten, not left in free pages.
                cf.jdbcProperty("journal_mode", "WAL");
                cf.jdbcProperty("synchronous", "FULL");
                // busy_timeout: how long a statement waits for a lock held elsewhere (an admin
                // command, a backup) before it fails; a registration then gets register_-1
                cf.jdbcProperty("busy_timeout", Integer.toString(config.dbBusyTimeoutMillis));
                cf.jdbcProperty("secure_delete", "true");
              }
              return cf;
            })));
    Pool pool = JDBCPool.pool(vertx, ds, new PoolOptions().setMaxSize(config.dbPoolSize));
    return new UserStore(ds, pool, sqlite, config.dbBusyTimeoutMillis);
  }

  /**
   * Brings the table to the current layout (creating it, or opening an original server's
   * {@code usr.db} of the 3.1 or 3.1.3 layout) and replaces every plain-text password with a
   * hash made by {@code hashOnWorker}.
   */
  public Future<Void> prepare(Function<String, Future<String>> hashOnWorker, Predicate<String> isHash) {
    return pool.query("PRAGMA user_version").execute().compose(version -> {
      // a file this server has not yet rewritten (an original usr.db) may hold plain text in free
      // space, e.g. rows deleted by hand: rewrite it once even when no password needs hashing
      boolean scrubbed = ((Number) version.iterator().next().getValue(0)).intValue() == SCRUBBED_MARK;
      return ensureTable().compose(state -> state == TableState.CREATED
          ? pool.query("PRAGMA user_version = " + SCRUBBED_MARK).execute().<Void>mapEmpty()
          : hashPlainTextPasswords(hashOnWorker, isHash, state == TableState.UPGRADED || !scrubbed));
    });
  }

  private enum TableState { CREATED, CURRENT, UPGRADED }

  /** {@code PRAGMA user_version} of a file rewritten by {@link #prepare} ("CHAT"); the original server left 0. */
  private static final int SCRUBBED_MARK = 0x43484154;

  /** UPGRADED when an original 3.1 table was rebuilt (its old pages may hold plain text). */
  private Future<TableState> ensureTable() {
    return pool.query("PRAGMA table_info(users)").execute().compose(rows -> {
      boolean hasAvatar = false;
      boolean nameIsKey = false;
      boolean hasPasswd = false;
      for (Row r : rows) {
        String column = r.getString("name");
        hasAvatar |= "avatar".equals(column);
        hasPasswd |= "passwd".equals(column);
        nameIsKey |= "name".equals(column) && r.getInteger("pk") == 1;
      }
      if (rows.size() == 0) {
        return pool.query(createTable("users")).execute().map(TableState.CREATED);
      }
      if (hasAvatar && nameIsKey) {
        return Future.succeededFuture(TableState.CURRENT);
      }
      if (!hasPasswd) {
        return Future.failedFuture(new IllegalStateException("table 'users' has no 'passwd' column: not a chat server database"));
      }
      log.info("Upgrading table 'users' from the original 3.1 layout (name, passwd) to (name PRIMARY KEY, passwd, avatar)");
      String copyAvatar = hasAvatar ? "avatar" : "'default_avatar.png'";
      return inTransaction(c -> c.query(createTable("users_upgraded")).execute()
          // the 3.1 table had no key: the first row of a duplicated name is the one it logged in with
          .compose(r -> c.query("INSERT OR IGNORE INTO users_upgraded (name, passwd, avatar) SELECT name, passwd, "
              + copyAvatar + " FROM users WHERE name IS NOT NULL ORDER BY rowid").execute())
          .compose(r -> c.query("DROP TABLE users").execute())
          .compose(r -> c.query("ALTER TABLE users_upgraded RENAME TO users").execute())
          .<Void>mapEmpty()).map(TableState.UPGRADED);
    });
  }

  private static String createTable(String name) {
    return "CREATE TABLE IF NOT EXISTS " + name
        + " (name TEXT PRIMARY KEY, passwd TEXT, avatar TEXT DEFAULT 'default_avatar.png')";
  }

  private Future<Void> inTransaction(Function<SqlConnection, Future<Void>> work) {
    return pool.withConnection(c -> c.query("BEGIN IMMEDIATE").execute()
        .compose(begun -> work.apply(c))
        .compose(
            done -> c.query("COMMIT").execute().<Void>mapEmpty(),
            err -> c.query("ROLLBACK").execute().transform(x -> Future.<Void>failedFuture(err))));
  }

  private Future<Void> hashPlainTextPasswords(Function<String, Future<String>> hashOnWorker, Predicate<String> isHash,
      boolean scrub) {
    return pool.query("SELECT name, passwd FROM users").execute().compose(rows -> {
      List<Future<?>> updates = new ArrayList<>();
      int noPassword = 0;
      for (Row r : rows) {
        String name = r.getString(0);
        String plain = r.getString(1);
        if (plain == null) {
          noPassword++;
        } else if (!isHash.test(plain)) {
          updates.add(hashOnWorker.apply(plain).compose(hash -> pool
              .preparedQuery("UPDATE users SET passwd = ? WHERE name = ? AND passwd = ?")
              .execute(Tuple.of(hash, name, plain))));
        }
      }
      if (noPassword > 0) {
        log.warn("{} user(s) of the original database have no password and cannot log in", noPassword);
      }
      if (updates.isEmpty() && !scrub) {
        return Future.succeededFuture();
      }
      int count = updates.size();
      if (count > 0) {
        log.info("Replacing {} plain-text password(s) from the original server with Argon2id hashes", count);
      }
      // also with nothing left to hash: a dropped 3.1 table (e.g. a duplicate name's losing row)
      // or rows deleted from an original file still sit in old pages until they are rewritten
      return Future.all(updates)
          // rewrite every page and empty the WAL, so no copy of a plain-text password stays on disk
          .compose(all -> pool.query("PRAGMA wal_checkpoint(TRUNCATE)").execute())
          .compose(r -> pool.query("VACUUM").execute())
          .compose(r -> pool.query("PRAGMA user_version = " + SCRUBBED_MARK).execute())
          .compose(r -> pool.query("PRAGMA wal_checkpoint(TRUNCATE)").execute())
          .onSuccess(r -> log.info("Rewrote the database file ({} password(s) hashed); no plain-text password remains on disk", count))
          .mapEmpty();
    });
  }

  public Future<User> find(String name) {
    return tracked(() -> pool.preparedQuery("SELECT name, passwd, avatar FROM users WHERE name = ?").execute(Tuple.of(name)))
        .map(rows -> {
          if (rows.size() == 0) {
            return null;
          }
          Row r = rows.iterator().next();
          return new User(r.getString(0), r.getString(1), r.getString(2));
        });
  }

  public Future<Boolean> exists(String name) {
    return tracked(() -> pool.preparedQuery("SELECT 1 FROM users WHERE name = ?").execute(Tuple.of(name)))
        .map(rows -> rows.size() > 0);
  }

  /** Completes with {@code false} when the name is taken; committed to disk when it completes. */
  public Future<Boolean> insert(String name, String passwordHash, String avatar) {
    return tracked(() -> pool.preparedQuery("INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?)")
        .execute(Tuple.of(name, passwordHash, avatar)))
        .map(r -> true)
        .recover(err -> isUniqueViolation(err) ? Future.succeededFuture(false) : Future.failedFuture(err));
  }

  /** Replaces a password only if it is still {@code expected} (a legacy plain text being upgraded). */
  public Future<Void> replacePassword(String name, String expected, String passwordHash) {
    return tracked(() -> pool.preparedQuery("UPDATE users SET passwd = ? WHERE name = ? AND passwd = ?")
        .execute(Tuple.of(passwordHash, name, expected))).mapEmpty();
  }

  /**
   * Every user, sorted by name, with the state of its password (the password or hash itself never
   * leaves this method). Read only, and it needs no {@link #prepare}: it also reads an original
   * server's file, including the 3.1 layout without an {@code avatar} column (avatar then
   * {@code null}).
   */
  public Future<List<Summary>> list(Predicate<String> isHash) {
    return pool.query("PRAGMA table_info(users)").execute().compose(columns -> {
      if (columns.size() == 0) {
        return Future.failedFuture(new IllegalStateException("the database has no table 'users'"));
      }
      boolean hasAvatar = false;
      for (Row r : columns) {
        hasAvatar |= "avatar".equals(r.getString("name"));
      }
      return pool.query("SELECT name, passwd, " + (hasAvatar ? "avatar" : "NULL")
          + " FROM users WHERE name IS NOT NULL ORDER BY name, rowid").execute();
    }).map(rows -> {
      List<Summary> out = new ArrayList<>(rows.size());
      for (Row r : rows) {
        String passwd = r.getString(1);
        PasswordState state = passwd == null ? PasswordState.NONE
            : isHash.test(passwd) ? PasswordState.HASHED : PasswordState.PLAIN_TEXT;
        out.add(new Summary(r.getString(0), r.getString(2), state));
      }
      return out;
    });
  }

  /** Deletes the user (one autocommit statement); completes with whether there was one. */
  public Future<Boolean> delete(String name) {
    return pool.preparedQuery("DELETE FROM users WHERE name = ?").execute(Tuple.of(name)).map(r -> r.rowCount() > 0);
  }

  /** Sets the user's password hash (one autocommit statement); completes with whether the user exists. */
  public Future<Boolean> setPassword(String name, String passwordHash) {
    return pool.preparedQuery("UPDATE users SET passwd = ? WHERE name = ?")
        .execute(Tuple.of(passwordHash, name)).map(r -> r.rowCount() > 0);
  }

  /** The pool, for the other tables of the same database ({@link AdminQueue}). */
  Pool pool() {
    return pool;
  }

  public Future<Void> close() {
    return pool.close().onComplete(r -> dataSource.close());
  }

  private static boolean isUniqueViolation(Throwable err) {
    for (Throwable t = err; t != null; t = t.getCause()) {
      if (t instanceof SQLException e) {
        // SQLite: SQLITE_CONSTRAINT (19); PostgreSQL and others: SQLSTATE 23505
        if (e.getErrorCode() == 19 || "23505".equals(e.getSQLState())) {
          return true;
        }
      }
    }
    return false;
  }
}
