package chat.support;

import io.vertx.core.json.JsonObject;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A database a test runs the server on, SQLite or PostgreSQL ({@link Backend}), with direct
 * access that is independent of the server: plain JDBC connections, one per call.
 */
public interface TestDatabase extends AutoCloseable {

  Backend backend();

  /** The flat {@code db.*} settings that point a server at this database. */
  JsonObject config();

  /** A new JDBC connection, autocommit. */
  Connection open() throws SQLException;

  /** Runs statements one by one on one fresh connection (autocommit). */
  default void exec(String... statements) {
    try (Connection c = open(); Statement s = c.createStatement()) {
      for (String sql : statements) {
        s.execute(sql);
      }
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  /** One prepared statement with parameters (null allowed), on a fresh connection; returns the update count. */
  default int update(String sql, Object... args) {
    try (Connection c = open(); PreparedStatement p = c.prepareStatement(sql)) {
      for (int i = 0; i < args.length; i++) {
        p.setObject(i + 1, args[i]);
      }
      return p.executeUpdate();
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The rows of a query, column label to value, on a fresh connection. */
  default List<Map<String, Object>> query(String sql, Object... args) {
    try (Connection c = open(); PreparedStatement p = c.prepareStatement(sql)) {
      for (int i = 0; i < args.length; i++) {
        p.setObject(i + 1, args[i]);
      }
      List<Map<String, Object>> rows = new ArrayList<>();
      try (ResultSet rs = p.executeQuery()) {
        ResultSetMetaData md = rs.getMetaData();
        while (rs.next()) {
          Map<String, Object> row = new LinkedHashMap<>();
          for (int i = 1; i <= md.getColumnCount(); i++) {
            row.put(md.getColumnLabel(i), rs.getObject(i));
          }
          rows.add(row);
        }
      }
      return rows;
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Deletes the database (PostgreSQL: DROP DATABASE; SQLite: the file goes with the test's folder). */
  @Override
  void close();
}
