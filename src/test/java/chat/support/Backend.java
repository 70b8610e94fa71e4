package chat.support;

import io.vertx.core.json.JsonObject;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;

/** The databases the server runs on; tests that apply to both take one as a parameter. */
public enum Backend {

  /** A {@code usr.db} file in the test's folder, as {@link TestServer} uses by default. */
  SQLITE {
    @Override
    public TestDatabase create(Path dir) {
      Path file = dir.resolve("usr.db");
      return new TestDatabase() {
        @Override
        public Backend backend() {
          return SQLITE;
        }

        @Override
        public JsonObject config() {
          return new JsonObject().put("db.url", "jdbc:sqlite:" + file);
        }

        @Override
        public Connection open() throws SQLException {
          return SqliteFile.open(file);
        }

        @Override
        public void close() {
          // the file is deleted with the test's folder
        }
      };
    }
  },

  /** A fresh database on the tests' PostgreSQL server ({@link Postgres}), dropped by {@link TestDatabase#close()}. */
  POSTGRESQL {
    @Override
    public TestDatabase create(Path dir) {
      return Postgres.server().newDatabase();
    }
  };

  /** A new, empty database for one test; {@code dir} is the test's own folder. */
  public abstract TestDatabase create(Path dir);
}
