package chat;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.sqlite.util.LibraryLoaderUtil;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** chat.SqliteLibrary, which mvn package runs into target/sqlite-native (JarLaunchIT starts servers on that copy). */
class SqliteLibraryTest {

  @TempDir
  Path folder;

  @Test
  @DisplayName("copies the library sqlite-jdbc would load on this machine, readable by every user, into a new folder")
  void copiesThisMachinesLibrary() throws IOException {
    Path target = folder.resolve("a/b");
    Path copied = SqliteLibrary.copyTo(target);
    assertNotNull(copied, "the jar has a library for " + LibraryLoaderUtil.getNativeLibResourcePath());
    assertEquals(target.resolve(LibraryLoaderUtil.getNativeLibName()), copied);
    byte[] inJar;
    try (InputStream in = LibraryLoaderUtil.class.getResourceAsStream(
        LibraryLoaderUtil.getNativeLibResourcePath() + "/" + LibraryLoaderUtil.getNativeLibName())) {
      inJar = in.readAllBytes();
    }
    assertTrue(inJar.length > 100_000, "a real library: " + inJar.length + " bytes");
    assertArrayEquals(inJar, Files.readAllBytes(copied));
    // the image's build stage copies it as root, the server runs as another user
    assertTrue(Files.getPosixFilePermissions(copied).contains(PosixFilePermission.OTHERS_READ),
        Files.getPosixFilePermissions(copied).toString());
    assertEquals(List.of(copied), Files.list(target).toList(), "nothing else left in the folder");
  }

  @Test
  @DisplayName("a second copy replaces the file by a rename: a server that has the old one mapped keeps it intact")
  void replacesByRenameNotInPlace() throws IOException {
    Path first = SqliteLibrary.copyTo(folder);
    Object firstFile = Files.readAttributes(first, BasicFileAttributes.class).fileKey();
    Path second = SqliteLibrary.copyTo(folder);
    assertEquals(first, second);
    assertNotEquals(firstFile, Files.readAttributes(second, BasicFileAttributes.class).fileKey(),
        "a new file (inode), not the old one written over");
    assertEquals(List.of(second), Files.list(folder).toList(), "no partial copy left behind");
  }
}
