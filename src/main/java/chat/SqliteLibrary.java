package chat;

import org.sqlite.util.LibraryLoaderUtil;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * {@code java -cp chat-server.jar chat.SqliteLibrary FOLDER}: copies SQLite's native library for
 * this machine (the one sqlite-jdbc itself would pick) out of the jar into FOLDER, for
 * {@code -Dorg.sqlite.lib.path=FOLDER}. Without that property sqlite-jdbc writes the library to
 * the temporary folder at every start, compares it byte by byte with the jar's, scans the folder
 * for stale copies and runs {@code uname}: about 0.1 s of a start (README, Performance).
 * {@code mvn package} runs it into {@code target/sqlite-native}, which the README's run command
 * and the image use.
 *
 * <p>The copy is written beside the target and renamed over it, so a server that has the old
 * library mapped keeps its file: writing into a mapped library would crash that server. Exit 0
 * also when the jar has no library for this machine (sqlite-jdbc then finds none either and looks
 * on {@code java.library.path}); 2 for bad arguments or when the folder cannot be written.
 */
public final class SqliteLibrary {

  private SqliteLibrary() {
  }

  public static void main(String[] args) {
    if (args.length != 1) {
      System.err.println("usage: java -cp chat-server.jar chat.SqliteLibrary FOLDER");
      System.exit(2);
    }
    try {
      // quiet when it worked: mvn package runs it
      if (copyTo(Path.of(args[0])) == null) {
        System.err.println("chat.SqliteLibrary: no SQLite library in the jar for "
            + LibraryLoaderUtil.getNativeLibResourcePath() + ": nothing copied");
      }
    } catch (IOException e) {
      System.err.println("chat.SqliteLibrary: cannot write to " + args[0] + ": " + e);
      System.exit(2);
    }
  }

  /** The library copied into {@code folder} (created if missing), or null when the jar has none for this machine. */
  static Path copyTo(Path folder) throws IOException {
    String name = LibraryLoaderUtil.getNativeLibName();
    try (InputStream in = LibraryLoaderUtil.class.getResourceAsStream(LibraryLoaderUtil.getNativeLibResourcePath() + "/" + name)) {
      if (in == null) {
        return null;
      }
      Files.createDirectories(folder);
      Path target = folder.resolve(name);
      // not Files.createTempFile: its owner-only mode would follow the rename, and the image's
      // non-root user could not load a library the build stage's root wrote
      Path partial = folder.resolve(name + ".partial");
      try {
        Files.copy(in, partial, StandardCopyOption.REPLACE_EXISTING);
        Files.move(partial, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      } finally {
        Files.deleteIfExists(partial);
      }
      return target;
    }
  }
}
