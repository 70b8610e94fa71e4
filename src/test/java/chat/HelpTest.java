package chat;

import chat.config.ConfigLoader;
import chat.support.ServerProcess;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code --help}, {@code --version} and bad arguments, run as the real process. */
class HelpTest {

  /** Holds the working directory and, beside it, the processes' output files. */
  @TempDir
  Path root;
  private Path dir;
  private final List<ServerProcess> processes = new ArrayList<>();

  @BeforeEach
  void workDir() throws IOException {
    dir = Files.createDirectory(root.resolve("data"));
  }

  @AfterEach
  void destroyAll() {
    for (ServerProcess p : processes) {
      p.close();
    }
  }

  /** Runs {@code chat.Main args} to its end (bounded) and returns it. */
  private ServerProcess run(String... args) {
    ServerProcess p = ServerProcess.start(dir, root, Map.of(), args);
    processes.add(p);
    p.awaitExit(Duration.ofSeconds(60));
    return p;
  }

  /** How --help shows a default: as is, the empty string as {@code ""}. */
  private static String shown(Object value) {
    return value instanceof String s && s.isEmpty() ? "\"\"" : String.valueOf(value);
  }

  @Test
  @DisplayName("--help exits 0 and lists every configuration key on one line with its default and its environment variable")
  void helpListsEveryKey() throws IOException {
    ServerProcess p = run("--help");
    assertEquals(0, p.process().exitValue(), p.transcript());
    assertTrue(p.stderr().isEmpty(), p.transcript());
    List<String> out = p.stdout();
    assertTrue(out.get(0).startsWith("chat-server " + Main.version()), out.get(0));
    assertTrue(out.stream().anyMatch(l -> l.contains("healthcheck")), "the healthcheck command is described");
    assertTrue(out.stream().anyMatch(l -> l.contains("--conf FILE")), "--conf is described");

    Map<String, Object> defaults = ConfigLoader.flatDefaults();
    assertTrue(defaults.size() >= 20, "the defaults were read: " + defaults.keySet());
    defaults.forEach((key, value) -> {
      List<String> rows = out.stream().filter(l -> l.trim().split("\\s+")[0].equals(key)).toList();
      assertEquals(1, rows.size(), () -> "one row for " + key + " in\n" + String.join("\n", out));
      List<String> columns = List.of(rows.get(0).trim().split("\\s+"));
      assertEquals(List.of(key, shown(value), ConfigLoader.envName(key)), columns, rows.get(0));
    });
    assertEquals("CHAT_AUTH_ARGON2_MEMORYKIB", ConfigLoader.envName("auth.argon2.memoryKiB"));
    assertTrue(!Files.exists(dir.resolve("usr.db")), "--help starts nothing");

    ServerProcess shortForm = run("-h");
    assertEquals(0, shortForm.process().exitValue(), shortForm.transcript());
    assertEquals(out, shortForm.stdout(), "-h prints the same as --help");
  }

  @Test
  @DisplayName("--version exits 0 and prints 'chat-server <version>'")
  void versionPrintsNameAndVersion() {
    ServerProcess p = run("--version");
    assertEquals(0, p.process().exitValue(), p.transcript());
    assertEquals(List.of("chat-server " + Main.version()), p.stdout());
    assertTrue(p.stderr().isEmpty(), p.transcript());
  }

  @Test
  @DisplayName("an unknown flag exits 2 with one error line naming it, and starts nothing")
  void unknownFlagExits2() {
    ServerProcess p = run("--frobnicate");
    assertEquals(2, p.process().exitValue(), p.transcript());
    List<String> err = p.stderr().stream().filter(l -> !l.isBlank()).toList();
    assertEquals(1, err.size(), p::transcript);
    assertTrue(err.get(0).contains("'--frobnicate'"), err.get(0));
    assertTrue(p.stdout().stream().noneMatch(l -> ServerProcess.LISTENING.matcher(l).find()), p.transcript());
    assertTrue(!Files.exists(dir.resolve("usr.db")), "no database is created");

    ServerProcess dangling = run("--conf");
    assertEquals(2, dangling.process().exitValue(), dangling.transcript());
    assertTrue(String.join("\n", dangling.stderr()).contains("'--conf'"), dangling.transcript());
  }
}
