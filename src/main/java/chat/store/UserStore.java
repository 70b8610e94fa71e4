package chat.store;

import chat.config.ChatConfig;
import chat.metrics.ServerMetrics;
import io.micrometer.core.instrument.Timer;
import io.agroal.api.AgroalDataSource;
import io.agroal.api.configuration.AgroalConnectionPoolConfiguration;
import io.agroal.api.configuration.supplier.AgroalDataSourceConfigurationSupplier;
import io.agroal.api.security.NamePrincipal;
import io.agroal.api.security.SimplePassword;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.jdbcclient.JDBCPool;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.RowSet;
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
 * The {@code users} table, through vertx-jdbc-client over an Agroal pool, on SQLite or PostgreSQL
 * ({@link Dialect}, chosen by {@code db.url}). The table keeps the original server's layout,
 * {@code users(name TEXT PRIMARY KEY, passwd TEXT, avatar TEXT DEFAULT 'default_avatar.png')};
 * {@code passwd} now holds Argon2id hashes.
 *
 * <p>Transactions: vertx-jdbc-client 5.0.x returns a connection to the pool with autocommit off
 * after {@code withTransaction}/{@code begin()} (VERTX5-NOTES.md), so the one kind of transaction
 * here (schema changes) uses plain {@code BEGIN}/{@code COMMIT} statements on one connection
 * instead. Every other write is one autocommit statement, so several servers (PostgreSQL) or a
 * server and the admin commands (SQLite) can share the database.
 */
public final class UserStore {

  static final Logger log = LoggerFactory.getLogger(UserStore.class);

  public record User(String name, String passwd, String avatar) {
  }

  /** What a stored password is, for listing: never the password or hash itself. */
  public enum PasswordState { HASHED, PLAIN_TEXT, NONE }

  /** One user as the admin commands list it: no password, no hash. */
  public record Summary(String name, String avatar, PasswordState password) {
  }

  private final Vertx vertx;
  private final AgroalDataSource dataSource;
  private final PoolOptions poolOptions;
  private final Dialect dialect;
  private final int poolSize;
  private final AtomicInteger inFlight = new AtomicInteger();
  private Timer operations;
  /** The pool in use; replaced when one of its connections is lost ({@link #replacePool}). Guarded by this. */
  private PoolInUse pool;
  /** Replaced pools with operations still running; each is closed when its last one ends. Guarded by this. */
  private final List<PoolInUse> retired = new ArrayList<>();
  private boolean closed;

  /** A pool and the operations running on it. Guarded by the store. */
  private static final class PoolInUse {
    final Pool pool;
    int operations;

    PoolInUse(Pool pool) {
      this.pool = pool;
    }
  }

  /** How long a statement waits for a lock held elsewhere (db.busyTimeoutMillis). */
  private final int busyTimeoutMillis;

  private UserStore(Vertx vertx, AgroalDataSource dataSource, PoolOptions poolOptions, Dialect dialect,
      int busyTimeoutMillis) {
    this.vertx = vertx;
    this.busyTimeoutMillis = busyTimeoutMillis;
    this.dataSource = dataSource;
    this.poolOptions = poolOptions;
    this.pool = new PoolInUse(JDBCPool.pool(vertx, dataSource, poolOptions));
    this.dialect = dialect;
    this.poolSize = poolOptions.getMaxSize();
  }

  /** The database this store speaks to. */
  public Dialect dialect() {
    return dialect;
  }

  /** Connections the pool may open: {@code db.poolSize}, or the database's default when it is 0. */
  public int poolSize() {
    return poolSize;
  }

  /** Reports operations in flight and their duration (DB pool usage) to the server's metrics. */
  public void measureWith(ServerMetrics metrics) {
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
   * Whether the database takes writes, for the readiness check. On SQLite it takes the write lock
   * and lets go of it at once ({@code BEGIN IMMEDIATE; ROLLBACK}): readers always get through in
   * WAL mode, but a registration needs the write lock. On PostgreSQL it asks whether the
   * database is writable (not a standby, not read-only).
   */
  public Future<Void> ping(long waitMillis) {
    return tracked(() -> withConnection(c -> dialect.ping(c, waitMillis, busyTimeoutMillis)));
  }

  /** Creates the pool. Nothing touches the database until {@link #prepare}. */
  public static UserStore open(Vertx vertx, ChatConfig config) throws SQLException {
    Dialect dialect = Dialect.of(config.dbUrl);
    if (dialect == null) {
      throw new IllegalArgumentException("db.url must start with " + Dialect.supportedPrefixes());
    }
    int poolSize = config.dbPoolSize > 0 ? config.dbPoolSize : dialect.defaultPoolSize();
    AgroalDataSource ds = AgroalDataSource.from(new AgroalDataSourceConfigurationSupplier()
        .connectionPoolConfiguration(cp -> cp
            .maxSize(poolSize)
            .acquisitionTimeout(Duration.ofSeconds(10))
            // a connection that died while it sat in Agroal (or came back from a replaced pool)
            // is not handed out again
            .validateOnBorrow(true)
            .connectionValidator(AgroalConnectionPoolConfiguration.ConnectionValidator.defaultValidator())
            .connectionFactoryConfiguration(cf -> {
              cf.jdbcUrl(config.dbUrl);
              if (!config.dbUser.isEmpty()) {
                cf.principal(new NamePrincipal(config.dbUser));
              }
              if (!config.dbPassword.isEmpty()) {
                cf.credential(new SimplePassword(config.dbPassword));
              }
              dialect.configure(cf, config.dbBusyTimeoutMillis);
              return cf;
            })));
    return new UserStore(vertx, ds, new PoolOptions().setMaxSize(poolSize), dialect, config.dbBusyTimeoutMillis);
  }

  /**
   * Runs {@code work} on the current pool. Vert.x's pool keeps its connections for good and never
   * checks them (vertx-jdbc-client 5.0.x): after a database server restart, every connection it
   * holds would fail every statement from then on. So when a statement fails because its
   * connection is gone, the pool is replaced by a fresh one, which Agroal gives only connections
   * that pass its check; the old one is closed as soon as the operations still running on it
   * end, which gives its connections back to Agroal (which drops the dead ones).
   */
  private <T> Future<T> db(Function<Pool, Future<T>> work) {
    PoolInUse current;
    synchronized (this) {
      current = pool;
      current.operations++;
    }
    Future<T> result;
    try {
      result = work.apply(current.pool);
    } catch (RuntimeException e) {
      result = Future.failedFuture(e);
    }
    return result.andThen(r -> {
      if (r.failed() && dialect.isConnectionLost(r.cause())) {
        replacePool(current, r.cause());
      }
      boolean closeIt;
      synchronized (this) {
        closeIt = --current.operations == 0 && retired.remove(current);
      }
      if (closeIt) {
        current.pool.close();
      }
    });
  }

  private void replacePool(PoolInUse broken, Throwable err) {
    synchronized (this) {
      if (pool != broken || closed) {
        return; // replaced already
      }
      log.warn("Lost a database connection ({}): replacing the connection pool", err.toString());
      pool = new PoolInUse(JDBCPool.pool(vertx, dataSource, poolOptions));
      // the failed operation still counts: db() closes the old pool when it and the others end
      retired.add(broken);
    }
  }

  <T> Future<T> withConnection(Function<SqlConnection, Future<T>> work) {
    return db(p -> p.withConnection(work));
  }

  Future<RowSet<Row>> query(String sql) {
    return db(p -> p.query(sql).execute());
  }

  Future<RowSet<Row>> prepared(String sql, Tuple args) {
    return db(p -> p.preparedQuery(sql).execute(args));
  }

  /**
   * Brings the table to the current layout (creating it, or opening an original server's
   * {@code usr.db} of the 3.1 or 3.1.3 layout) and replaces every plain-text password with a
   * hash made by {@code hashOnWorker}.
   */
  public Future<Void> prepare(Function<String, Future<String>> hashOnWorker, Predicate<String> isHash) {
    // a SQLite file this server has not yet rewritten (an original usr.db) may hold plain text in
    // free space, e.g. rows deleted by hand: rewrite it once even when no password needs hashing
    return withConnection(dialect::isScrubbed).compose(scrubbed -> ensureTable().compose(state ->
        state == TableState.CREATED
            ? execute(dialect.markScrubbed())
            : hashPlainTextPasswords(hashOnWorker, isHash, state == TableState.UPGRADED || !scrubbed)));
  }

  private enum TableState { CREATED, CURRENT, UPGRADED }

  /**
   * UPGRADED when an original 3.1 table was rebuilt (its old pages may hold plain text). One
   * schema change at a time, whatever the number of servers starting on the database.
   */
  private Future<TableState> ensureTable() {
    return inSchemaTransaction(c -> c.query(dialect.tableInfo("users")).execute().compose(rows -> {
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
        return c.query(createUsers("users")).execute().map(TableState.CREATED);
      }
      if (hasAvatar && nameIsKey) {
        return Future.succeededFuture(TableState.CURRENT);
      }
      if (!hasPasswd) {
        return Future.failedFuture(new IllegalStateException("table 'users' has no 'passwd' column: not a chat server database"));
      }
      return dialect.upgradeOriginalLayout(c, hasAvatar).map(TableState.UPGRADED);
    }));
  }

  /** The table of the original 3.1.3 server, the same on every database. */
  static String createUsers(String name) {
    return "CREATE TABLE IF NOT EXISTS " + name
        + " (name TEXT PRIMARY KEY, passwd TEXT, avatar TEXT DEFAULT 'default_avatar.png')";
  }

  /**
   * Runs {@code work} in one write transaction on one connection, holding the schema lock of the
   * database (SQLite: its write lock; PostgreSQL: an advisory lock), and commits it; rolls back
   * if it fails.
   */
  <T> Future<T> inSchemaTransaction(Function<SqlConnection, Future<T>> work) {
    String lock = dialect.lockSchema();
    return withConnection(c -> c.query(dialect.beginWrite()).execute()
        .compose(begun -> lock == null ? Future.succeededFuture() : c.query(lock).execute())
        .compose(locked -> work.apply(c))
        .compose(
            done -> c.query("COMMIT").execute().map(done),
            err -> c.query("ROLLBACK").execute().transform(x -> Future.<T>failedFuture(err))));
  }

  /** Runs the statements one after the other, each in autocommit. */
  private Future<Void> execute(List<String> statements) {
    Future<Void> chain = Future.succeededFuture();
    for (String sql : statements) {
      chain = chain.compose(v -> query(sql).mapEmpty());
    }
    return chain;
  }

  private Future<Void> hashPlainTextPasswords(Function<String, Future<String>> hashOnWorker, Predicate<String> isHash,
      boolean scrub) {
    return query("SELECT name, passwd FROM users").compose(rows -> {
      List<Future<?>> updates = new ArrayList<>();
      int noPassword = 0;
      for (Row r : rows) {
        String name = r.getString(0);
        String plain = r.getString(1);
        if (plain == null) {
          noPassword++;
        } else if (!isHash.test(plain)) {
          updates.add(hashOnWorker.apply(plain).compose(hash -> prepared("UPDATE users SET passwd = ? WHERE name = ? AND passwd = ?", Tuple.of(hash, name, plain))));
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
          .compose(all -> execute(dialect.scrub()))
          .onSuccess(r -> log.info(dialect.scrubbedMessage(), count));
    });
  }

  public Future<User> find(String name) {
    if (!dialect.canHold(name)) {
      return Future.succeededFuture();
    }
    return tracked(() -> prepared("SELECT name, passwd, avatar FROM users WHERE name = ?", Tuple.of(name)))
        .map(rows -> {
          if (rows.size() == 0) {
            return null;
          }
          Row r = rows.iterator().next();
          return new User(r.getString(0), r.getString(1), r.getString(2));
        });
  }

  public Future<Boolean> exists(String name) {
    if (!dialect.canHold(name)) {
      return Future.succeededFuture(false);
    }
    return tracked(() -> prepared("SELECT 1 FROM users WHERE name = ?", Tuple.of(name)))
        .map(rows -> rows.size() > 0);
  }

  /**
   * Completes with {@code false} when the name is taken; committed when it completes. Of two
   * inserts of one name at once (two servers on one PostgreSQL database, say), exactly one
   * inserts a row: the other waits for it at the primary key and then inserts nothing.
   */
  public Future<Boolean> insert(String name, String passwordHash, String avatar) {
    return tracked(() -> prepared("INSERT INTO users (name, passwd, avatar) VALUES (?, ?, ?) "
            + "ON CONFLICT (name) DO NOTHING", Tuple.of(name, passwordHash, avatar)))
        .map(r -> r.rowCount() == 1);
  }

  /** Replaces a password only if it is still {@code expected} (a legacy plain text being upgraded). */
  public Future<Void> replacePassword(String name, String expected, String passwordHash) {
    return tracked(() -> prepared("UPDATE users SET passwd = ? WHERE name = ? AND passwd = ?", Tuple.of(passwordHash, name, expected))).mapEmpty();
  }

  /**
   * Every user, sorted by name, with the state of its password (the password or hash itself never
   * leaves this method). Read only, and it needs no {@link #prepare}: it also reads an original
   * server's file, including the 3.1 layout without an {@code avatar} column (avatar then
   * {@code null}).
   */
  public Future<List<Summary>> list(Predicate<String> isHash) {
    return query(dialect.tableInfo("users")).compose(columns -> {
      if (columns.size() == 0) {
        return Future.failedFuture(new IllegalStateException("the database has no table 'users'"));
      }
      boolean hasAvatar = false;
      for (Row r : columns) {
        hasAvatar |= "avatar".equals(r.getString("name"));
      }
      return query("SELECT name, passwd, " + (hasAvatar ? "avatar" : "NULL")
          + " FROM users WHERE name IS NOT NULL ORDER BY " + dialect.orderByName());
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
    return prepared("DELETE FROM users WHERE name = ?", Tuple.of(name)).map(r -> r.rowCount() > 0);
  }

  /** Sets the user's password hash (one autocommit statement); completes with whether the user exists. */
  public Future<Boolean> setPassword(String name, String passwordHash) {
    return prepared("UPDATE users SET passwd = ? WHERE name = ?", Tuple.of(passwordHash, name)).map(r -> r.rowCount() > 0);
  }

  public Future<Void> close() {
    List<Future<Void>> closing = new ArrayList<>();
    synchronized (this) {
      closed = true;
      closing.add(pool.pool.close());
      for (PoolInUse p : retired) {
        closing.add(p.pool.close());
      }
      retired.clear();
    }
    return Future.join(closing).<Void>mapEmpty().onComplete(r -> dataSource.close());
  }
}
