package chat.store;

import io.agroal.api.configuration.supplier.AgroalConnectionFactoryConfigurationSupplier;
import io.vertx.core.Future;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.SqlConnection;

import java.sql.SQLException;
import java.util.List;
import java.util.Locale;

/**
 * Everything that differs between the two databases the server runs on, in one place: SQLite
 * (embedded, one node, the default) and PostgreSQL (shared by several nodes), chosen by the
 * prefix of {@code db.url}. The tables are the same on both: {@code users(name TEXT PRIMARY KEY,
 * passwd TEXT, avatar TEXT DEFAULT 'default_avatar.png')} and {@code admin_queue}; SQL that both
 * understand ({@code INSERT ... ON CONFLICT (name) DO NOTHING}, {@code CREATE TABLE IF NOT
 * EXISTS}, plain {@code SELECT}/{@code UPDATE}/{@code DELETE}) stays in {@link UserStore} and
 * {@link AdminQueue}.
 */
public enum Dialect {

  /**
   * The original server's database: one file, one writer. WAL mode, synchronous=FULL,
   * secure_delete, a busy timeout; a write transaction takes the write lock at once
   * ({@code BEGIN IMMEDIATE}); an original server's {@code usr.db} is upgraded and scrubbed of
   * plain-text passwords.
   */
  SQLITE("jdbc:sqlite:", 1) {
    @Override
    void configure(AgroalConnectionFactoryConfigurationSupplier cf, int busyTimeoutMillis) {
      // WAL: readers never block the writer. synchronous=FULL: a registration is on disk before
      // register_1 is sent. secure_delete: replaced plain-text passwords are overwritten, not
      // left in free pages.
      cf.jdbcProperty("journal_mode", "WAL");
      cf.jdbcProperty("synchronous", "FULL");
      // busy_timeout: how long a statement waits for a lock held elsewhere (an admin command, a
      // backup) before it fails; a registration then gets register_-1
      cf.jdbcProperty("busy_timeout", Integer.toString(busyTimeoutMillis));
      cf.jdbcProperty("secure_delete", "true");
    }

    @Override
    String beginWrite() {
      return "BEGIN IMMEDIATE";
    }

    @Override
    String lockSchema() {
      return null; // BEGIN IMMEDIATE already holds the one write lock
    }

    @Override
    String tableInfo(String table) {
      return "PRAGMA table_info(" + table + ")";
    }

    @Override
    String createAdminQueue() {
      return "CREATE TABLE IF NOT EXISTS admin_queue (id INTEGER PRIMARY KEY AUTOINCREMENT, command TEXT NOT NULL, "
          + "username TEXT NOT NULL, requested_at INTEGER NOT NULL, done_at INTEGER, result TEXT)";
    }

    @Override
    String lastInsertId() {
      return "SELECT last_insert_rowid()";
    }

    @Override
    String orderByName() {
      // the 3.1 layout has no key: a name may appear twice, in insertion order
      return "name, rowid";
    }

    @Override
    Future<Void> ping(SqlConnection c, long waitMillis, int busyTimeoutMillis) {
      // take the write lock and let go of it at once: readers always get through in WAL mode, but a
      // registration needs the write lock. It is waited for at most waitMillis, not the busy
      // timeout: a probe of a locked database must not hold the pool's one connection (and the
      // logins queued behind it) for seconds
      long wait = Math.min(waitMillis, busyTimeoutMillis);
      return c.query("PRAGMA busy_timeout = " + wait).execute()
          .compose(r -> c.query("BEGIN IMMEDIATE").execute())
          .compose(r -> c.query("ROLLBACK").execute())
          .eventually(() -> c.query("PRAGMA busy_timeout = " + busyTimeoutMillis).execute())
          .mapEmpty();
    }

    @Override
    Future<Boolean> isScrubbed(SqlConnection c) {
      // a file this server has not yet rewritten (an original usr.db) may hold plain text in free
      // space, e.g. rows deleted by hand
      return c.query("PRAGMA user_version").execute()
          .map(rows -> ((Number) rows.iterator().next().getValue(0)).intValue() == SCRUBBED_MARK);
    }

    @Override
    List<String> markScrubbed() {
      return List.of("PRAGMA user_version = " + SCRUBBED_MARK);
    }

    @Override
    List<String> scrub() {
      // rewrite every page and empty the WAL, so no copy of a plain-text password stays on disk
      return List.of("PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA user_version = " + SCRUBBED_MARK,
          "PRAGMA wal_checkpoint(TRUNCATE)");
    }

    @Override
    String scrubbedMessage() {
      return "Rewrote the database file ({} password(s) hashed); no plain-text password remains on disk";
    }

    @Override
    Future<Void> upgradeOriginalLayout(SqlConnection c, boolean hasAvatar) {
      UserStore.log.info("Upgrading table 'users' from the original 3.1 layout (name, passwd) to (name PRIMARY KEY, passwd, avatar)");
      String copyAvatar = hasAvatar ? "avatar" : "'default_avatar.png'";
      return c.query(UserStore.createUsers("users_upgraded")).execute()
          // the 3.1 table had no key: the first row of a duplicated name is the one it logged in with
          .compose(r -> c.query("INSERT OR IGNORE INTO users_upgraded (name, passwd, avatar) SELECT name, passwd, "
              + copyAvatar + " FROM users WHERE name IS NOT NULL ORDER BY rowid").execute())
          .compose(r -> c.query("DROP TABLE users").execute())
          .compose(r -> c.query("ALTER TABLE users_upgraded RENAME TO users").execute())
          .mapEmpty();
    }

    @Override
    boolean canHold(String text) {
      return true;
    }

    @Override
    boolean isConnectionLost(Throwable err) {
      return false; // a file does not go away under an open connection
    }
  },

  /**
   * A database server shared by several nodes. Each node's pool holds its own connections;
   * registrations of one name on two nodes meet at the primary key. Schema changes run in a
   * transaction under an advisory lock, so nodes starting together on an empty database do not
   * trip over each other's {@code CREATE TABLE}. The original server never ran on PostgreSQL:
   * its 3.1 table layout is upgraded on SQLite only; plain-text passwords (say, rows copied over
   * from an original {@code usr.db}) are hashed here as well.
   */
  POSTGRESQL("jdbc:postgresql:", 10) {
    @Override
    void configure(AgroalConnectionFactoryConfigurationSupplier cf, int busyTimeoutMillis) {
      // defaults only: a parameter given in db.url wins over these
      cf.jdbcProperty("ApplicationName", "chat-server");
      // seconds: a database that does not accept a connection, or stops answering on one (a
      // network partition), fails the request instead of holding a pool connection for minutes
      cf.jdbcProperty("connectTimeout", "10");
      cf.jdbcProperty("socketTimeout", "60");
      cf.jdbcProperty("tcpKeepAlive", "true");
      // the counterpart of SQLite's busy timeout: how long a statement waits for a row or table
      // lock held elsewhere (0: no limit)
      cf.initialSql("SET lock_timeout = " + busyTimeoutMillis);
    }

    @Override
    String beginWrite() {
      return "BEGIN";
    }

    @Override
    String lockSchema() {
      // held until COMMIT or ROLLBACK; the key is "CHAT"
      return "SELECT pg_advisory_xact_lock(" + SCHEMA_LOCK_KEY + ")";
    }

    @Override
    String tableInfo(String table) {
      // the shape of SQLite's PRAGMA table_info: one row per column, name and pk (its position in
      // the primary key, 0 if none), in the schema the connection creates tables in
      return "SELECT c.column_name AS name, COALESCE((SELECT k.ordinal_position"
          + " FROM information_schema.table_constraints t JOIN information_schema.key_column_usage k"
          + " ON k.constraint_schema = t.constraint_schema AND k.constraint_name = t.constraint_name"
          + " WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = c.table_schema"
          + " AND t.table_name = c.table_name AND k.column_name = c.column_name), 0) AS pk"
          + " FROM information_schema.columns c WHERE c.table_schema = current_schema() AND c.table_name = '"
          + table + "' ORDER BY c.ordinal_position";
    }

    @Override
    String createAdminQueue() {
      // BIGINT: the times are epoch milliseconds (SQLite's INTEGER is 64 bits, PostgreSQL's 32)
      return "CREATE TABLE IF NOT EXISTS admin_queue (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
          + "command TEXT NOT NULL, username TEXT NOT NULL, requested_at BIGINT NOT NULL, done_at BIGINT, result TEXT)";
    }

    @Override
    String lastInsertId() {
      // INSERT ... RETURNING gives no rows through vertx-jdbc-client (VERTX5-NOTES.md); lastval()
      // belongs to the session, like SQLite's last_insert_rowid()
      return "SELECT lastval()";
    }

    @Override
    String orderByName() {
      // byte order, as SQLite sorts, whatever the database's collation
      return "name COLLATE \"C\"";
    }

    @Override
    Future<Void> ping(SqlConnection c, long waitMillis, int busyTimeoutMillis) {
      // a registration needs a database that takes writes: not a standby, not read-only
      return c.query("SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'").execute()
          .compose(rows -> {
            Row r = rows.iterator().next();
            return Boolean.TRUE.equals(r.getBoolean(0)) ? Future.<Void>succeededFuture()
                : Future.failedFuture(new IllegalStateException("the database is read-only"));
          });
    }

    @Override
    Future<Boolean> isScrubbed(SqlConnection c) {
      return Future.succeededFuture(true); // no file of ours: only passwords found in plain text count
    }

    @Override
    List<String> markScrubbed() {
      return List.of();
    }

    @Override
    List<String> scrub() {
      // the replaced rows stay as dead row versions until vacuumed: rewrite the table now
      return List.of("VACUUM FULL users");
    }

    @Override
    String scrubbedMessage() {
      return "Rewrote table users ({} password(s) hashed); PostgreSQL's WAL and backups may still hold the old rows";
    }

    @Override
    Future<Void> upgradeOriginalLayout(SqlConnection c, boolean hasAvatar) {
      return Future.failedFuture(new IllegalStateException("table 'users' is not (name PRIMARY KEY, passwd, avatar): "
          + "the original server's 3.1 layout is upgraded on SQLite only; open that usr.db with db.url=jdbc:sqlite:... "
          + "first, then copy its rows"));
    }

    @Override
    boolean canHold(String text) {
      return text.indexOf('\0') < 0; // TEXT cannot hold NUL: no stored name has one
    }

    @Override
    boolean isConnectionLost(Throwable err) {
      for (Throwable t = err; t != null; t = t.getCause()) {
        if (t instanceof SQLException e) {
          // 08003/08006/08007: the connection is closed or broke mid-statement; 57P01/57P02: the
          // server ended it (shutdown, pg_terminate_backend). Not 08001/08004/57P03: a new
          // connection was refused, and the pool holds nothing broken
          if (LOST_STATES.contains(e.getSQLState())) {
            return true;
          }
          String message = e.getMessage();
          if (message != null && message.toLowerCase(Locale.ROOT).contains("connection has been closed")) {
            return true;
          }
        }
      }
      return false;
    }
  };

  /** {@code PRAGMA user_version} of a SQLite file rewritten by {@link UserStore#prepare} ("CHAT"); the original server left 0. */
  static final int SCRUBBED_MARK = 0x43484154;
  private static final java.util.Set<String> LOST_STATES = java.util.Set.of("08003", "08006", "08007", "57P01", "57P02");
  /** PostgreSQL's advisory lock for schema changes ("CHAT"). */
  static final long SCHEMA_LOCK_KEY = 0x43484154L;

  private final String urlPrefix;
  private final int defaultPoolSize;

  Dialect(String urlPrefix, int defaultPoolSize) {
    this.urlPrefix = urlPrefix;
    this.defaultPoolSize = defaultPoolSize;
  }

  /** The dialect of a JDBC URL, or {@code null} when the server does not support that database. */
  public static Dialect of(String jdbcUrl) {
    for (Dialect d : values()) {
      if (jdbcUrl.startsWith(d.urlPrefix)) { // as the drivers take them: lower case
        return d;
      }
    }
    return null;
  }

  /** The URL prefixes the server accepts, for messages. */
  public static String supportedPrefixes() {
    return SQLITE.urlPrefix + " or " + POSTGRESQL.urlPrefix;
  }

  /** Connections for {@code db.poolSize} 0: SQLite has one writer; PostgreSQL serves many. */
  public int defaultPoolSize() {
    return defaultPoolSize;
  }

  /** Driver properties and per-connection settings. */
  abstract void configure(AgroalConnectionFactoryConfigurationSupplier cf, int busyTimeoutMillis);

  /** Starts a transaction that will write. */
  abstract String beginWrite();

  /** Run first in a schema-changing transaction, so that one node at a time changes the schema; or null. */
  abstract String lockSchema();

  /** One row per column of {@code table} (a constant name), with {@code name} and {@code pk}; none if it is absent. */
  abstract String tableInfo(String table);

  abstract String createAdminQueue();

  /** The id of the row the connection inserted last. */
  abstract String lastInsertId();

  /** ORDER BY terms listing users by name (byte order). */
  abstract String orderByName();

  /** Completes when the database takes writes, on connection {@code c}. */
  abstract Future<Void> ping(SqlConnection c, long waitMillis, int busyTimeoutMillis);

  /** Whether no plain-text password can be left in the database's files from before (see {@link #scrub}). */
  abstract Future<Boolean> isScrubbed(SqlConnection c);

  /** Statements recording that a newly created database needs no scrubbing. */
  abstract List<String> markScrubbed();

  /** Statements, outside any transaction, that rewrite the stored users once plain-text passwords were replaced. */
  abstract List<String> scrub();

  /** The log line after {@link #scrub}, with {@code {}} for the count of hashed passwords. */
  abstract String scrubbedMessage();

  /**
   * Within a write transaction: rebuilds a {@code users} table of the original 3.1 layout (no key,
   * perhaps no avatar) as the current one.
   */
  abstract Future<Void> upgradeOriginalLayout(SqlConnection c, boolean hasAvatar);

  /** Whether a TEXT column can hold {@code text}: if not, no stored name equals it. */
  abstract boolean canHold(String text);

  /** Whether {@code err} means that the connection it happened on is gone for good (not that one statement failed). */
  abstract boolean isConnectionLost(Throwable err);
}
