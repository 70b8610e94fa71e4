package chat.support;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Direct access to a SQLite file, independent of the server: plain sqlite-jdbc connections, one
 * per call, and the raw bytes of the database and its side files.
 */
public final class SqliteFile {

  private SqliteFile() {
  }

  public static Connection open(Path db) throws SQLException {
    return DriverManager.getConnection("jdbc:sqlite:" + db);
  }

  /** Runs statements one by one on one fresh connection (autocommit). */
  public static void exec(Path db, String... statements) {
    try (Connection c = open(db); Statement s = c.createStatement()) {
      for (String sql : statements) {
        s.execute(sql);
      }
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  /** One prepared statement with parameters (null allowed), on a fresh connection. */
  public static void update(Path db, String sql, Object... args) {
    try (Connection c = open(db); PreparedStatement p = c.prepareStatement(sql)) {
      for (int i = 0; i < args.length; i++) {
        p.setObject(i + 1, args[i]);
      }
      p.executeUpdate();
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The rows of a query, column label to value, on a fresh connection. */
  public static List<Map<String, Object>> query(Path db, String sql, Object... args) {
    try (Connection c = open(db); PreparedStatement p = c.prepareStatement(sql)) {
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

  /** The files of the database: {@code usr.db} and its side files ({@code -wal}, {@code -shm}, {@code -journal}). */
  public static List<Path> filesOf(Path db) {
    String name = db.getFileName().toString();
    try (Stream<Path> s = Files.list(db.getParent())) {
      return s.filter(p -> p.getFileName().toString().startsWith(name)).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The database files (of {@link #filesOf}) whose raw bytes contain {@code text} in UTF-8. */
  public static List<String> filesContaining(Path db, String text) {
    byte[] needle = text.getBytes(StandardCharsets.UTF_8);
    List<String> hits = new ArrayList<>();
    for (Path f : filesOf(db)) {
      try {
        if (indexOf(Files.readAllBytes(f), needle) >= 0) {
          hits.add(f.getFileName().toString());
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return hits;
  }

  static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }
}
