package chat.support;

import io.vertx.core.json.JsonObject;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;

/** One database on the tests' PostgreSQL server, made for one test (or class) and dropped after it. */
public final class PgDatabase implements TestDatabase {

  private final Postgres server;
  public final String name;
  private boolean dropped;

  PgDatabase(Postgres server, String name) {
    this.server = server;
    this.name = name;
  }

  public Postgres server() {
    return server;
  }

  public String url() {
    return server.url(name);
  }

  @Override
  public Backend backend() {
    return Backend.POSTGRESQL;
  }

  @Override
  public JsonObject config() {
    return new JsonObject().put("db.url", url()).put("db.user", server.user).put("db.password", server.password);
  }

  @Override
  public Connection open() throws SQLException {
    return DriverManager.getConnection(url(), server.user, server.password);
  }

  @Override
  public synchronized void close() {
    if (!dropped) {
      dropped = true;
      server.drop(name);
    }
  }

  @Override
  public String toString() {
    return name;
  }
}
