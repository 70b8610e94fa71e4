package chat;

import chat.support.Http;
import chat.support.LineClient;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Runs after {@code package}: the shaded jar, started exactly as the Dockerfile's ENTRYPOINT
 * starts it (with the image's environment: JAVA_OPTS and the rest), in an empty data folder,
 * serves a full conversation and stops on SIGTERM; and does the same as a cluster node, where
 * the JVM flags the image gives for Hazelcast must keep it from warning. First, the image's
 * class-data-sharing training run: the starts below map the archive it writes, and load SQLite's
 * native library from a folder, as the image does from /app/lib. Also: the archive {@code mvn
 * package} trains for the README's run command is one that command can map.
 */
class JarLaunchIT {

  private static final Pattern LISTENING = Pattern.compile("listening: HTTP port (\\d+), TCP port (\\d+)");

  /** The class-data-sharing archive the training run wrote, as the Dockerfile's RUN writes /app/chat-server.jsa. */
  @TempDir
  static Path cds;
  static Path archive;
  /** SQLite's native library as mvn package copies it out of the jar (chat.SqliteLibrary), which the image copies to /app/lib. */
  static final Path sqliteLib = Path.of("target/sqlite-native").toAbsolutePath();

  @TempDir
  Path data;
  Process process;
  /** Every line the server printed up to its listening line. */
  final List<String> startupLines = new ArrayList<>();

  /**
   * The Dockerfile's training run ({@code java $JAVA_OPTS -XX:ArchiveClassesAtExit=... -jar ...
   * --exit-after-startup}, checked against the Dockerfile by DockerfileTest): the server starts,
   * stops by itself with status 0, and the JVM writes an archive that a JVM with the image's flags
   * can map (-Xshare:on fails when it cannot).
   */
  @BeforeAll
  static void trainTheClassDataSharingArchive() throws Exception {
    Path jar = Path.of("target/chat-server.jar").toAbsolutePath();
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    archive = cds.resolve("chat-server.jsa");
    assertTrue(Files.isRegularFile(sqliteLib.resolve("libsqlitejdbc.so")), "mvn package copied SQLite's library to " + sqliteLib);
    Path training = Files.createDirectories(cds.resolve("training"));
    ProcessBuilder pb = new ProcessBuilder("sh", "-c",
        "exec \"$JAVA\" -Dorg.sqlite.lib.path=\"$LIB\" $JAVA_OPTS -XX:ArchiveClassesAtExit=\"$JSA\" -jar \"$JAR\""
            + " --exit-after-startup")
        .directory(training.toFile()).redirectErrorStream(true).redirectOutput(cds.resolve("training.out").toFile());
    pb.environment().keySet().removeIf(k -> k.startsWith("CHAT_"));
    pb.environment().putAll(DockerfileTest.imageEnv());
    pb.environment().putAll(Map.of("JAVA", java, "JAR", jar.toString(), "JSA", archive.toString(), "LIB", sqliteLib.toString(),
        "CHAT_HTTP_PORT", "0", "CHAT_TCP_PORT", "0", "CHAT_HOST", "127.0.0.1", "CHAT_AUTH_HASHCOST", "low"));
    Process p = pb.start();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the training run stops by itself");
    String out = Files.readString(cds.resolve("training.out"));
    assertEquals(0, p.exitValue(), out);
    assertTrue(out.contains("listening: HTTP port") && out.contains("Stopped"), out);
    assertTrue(Files.size(archive) > 1_000_000, "an archive of the loaded classes: " + Files.size(archive));

    ProcessBuilder check = new ProcessBuilder("sh", "-c",
        "exec \"$JAVA\" -XX:SharedArchiveFile=\"$JSA\" -Xshare:on $JAVA_OPTS -jar \"$JAR\" --version")
        .redirectErrorStream(true).redirectOutput(cds.resolve("check.out").toFile());
    check.environment().putAll(DockerfileTest.imageEnv());
    check.environment().putAll(Map.of("JAVA", java, "JAR", jar.toString(), "JSA", archive.toString()));
    Process c = check.start();
    assertTrue(c.waitFor(30, TimeUnit.SECONDS));
    assertEquals(0, c.exitValue(), "the image's JVM flags can map the archive: " + Files.readString(cds.resolve("check.out")));
  }

  @Test
  @Timeout(60)
  @DisplayName("mvn package trains target/chat-server.jsa and copies SQLite's library, and the README's run command"
      + " starts with both")
  void packageTrainsTheArchiveOfTheReadmeRunCommand() throws Exception {
    Path archive = Path.of("target/chat-server.jsa");
    assertTrue(Files.size(archive) > 1_000_000, "an archive of the loaded classes: " + Files.size(archive));
    Matcher run = Pattern.compile("(?m)^mvn -q -DskipTests package && (java .*)$").matcher(Files.readString(Path.of("README.md")));
    assertTrue(run.find(), "the README's run command");
    List<String> command = new ArrayList<>(List.of(run.group(1).split(" ")));
    assertTrue(command.contains("-XX:SharedArchiveFile=target/chat-server.jsa"), run.group(1));
    assertTrue(command.contains("-Dorg.sqlite.lib.path=target/sqlite-native"), run.group(1));
    assertEquals(List.of("-jar", "target/chat-server.jar"), command.subList(command.size() - 2, command.size()));
    command.set(0, Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.add(1, "-Xshare:on"); // fails to start when the archive cannot be mapped
    // from the project folder, as a user runs it; its data in this test's folder
    ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
    pb.environment().keySet().removeIf(k -> k.startsWith("CHAT_"));
    pb.environment().putAll(Map.of("CHAT_HTTP_PORT", "0", "CHAT_TCP_PORT", "0", "CHAT_HOST", "127.0.0.1",
        "CHAT_DB_URL", "jdbc:sqlite:" + data.resolve("usr.db"), "CHAT_AVATAR_DIR", data.resolve("avatar").toString()));
    process = pb.start();
    waitForListening(new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8)));
    String maps = Files.readString(Path.of("/proc/" + process.pid() + "/maps"));
    assertTrue(maps.contains(sqliteLib.resolve("libsqlitejdbc.so").toString()), "SQLite's library mapped from " + sqliteLib);
    process.destroy();
    assertTrue(process.waitFor(10, TimeUnit.SECONDS), "stopped within 10 s of SIGTERM");
    assertEquals(0, process.exitValue());
    assertTrue(Files.exists(data.resolve("usr.db")), "the database where CHAT_DB_URL says");
  }

  @AfterEach
  void kill() {
    if (process != null) {
      process.destroyForcibly();
    }
  }

  @Test
  @Timeout(90)
  @DisplayName("the jar started by the Dockerfile's entrypoint command serves HTTP and TCP from its working directory")
  void dockerEntrypointCommandRunsTheJar() throws Exception {
    Path jar = Path.of("target/chat-server.jar").toAbsolutePath();
    assertTrue(Files.exists(jar), "mvn package built " + jar);
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Matcher ports = startAsTheImageDoes(jar, java, Map.of());
    assertNoJvmWarning();
    // SQLite's library is the one of the folder given, not a copy written to /tmp at the start
    String maps = Files.readString(Path.of("/proc/" + process.pid() + "/maps"));
    assertTrue(maps.contains(sqliteLib.resolve("libsqlitejdbc.so").toString()), "mapped from " + sqliteLib);
    assertTrue(startupLines.get(startupLines.size() - 1).contains("cluster off"),
        "one server, no cluster: " + startupLines.get(startupLines.size() - 1));
    int http = Integer.parseInt(ports.group(1));
    int tcp = Integer.parseInt(ports.group(2));

    new Http(http).register("docker", "pw-docker");
    try (LineClient c = new LineClient(tcp)) {
      String token = c.login("docker", "pw-docker");
      c.send("{\"type\":\"heartbeat\",\"token\":\"" + token + "\"}");
      c.expect("{\"type\":\"heartbeat\",\"status\":\"success\"}");
    }
    assertEquals(0, runHealthcheck(java, jar, http), "the image's HEALTHCHECK command sees a ready server");
    assertTrue(Files.exists(data.resolve("usr.db")), "usr.db in the working directory");
    assertTrue(Files.exists(data.resolve("avatar/default/default_avatar.png")), "default avatar installed");
    assertTrue(Files.isDirectory(data.resolve("avatar/docker")), "the user's avatar folder");

    process.destroy(); // SIGTERM, as docker stop sends
    assertTrue(process.waitFor(10, TimeUnit.SECONDS), "stopped within 10 s of SIGTERM");
    assertEquals(0, process.exitValue());
  }

  @Test
  @Timeout(120)
  @DisplayName("the same command with CHAT_CLUSTER_ENABLED=true runs a cluster node, and the image's JAVA_OPTS keep"
      + " Hazelcast from warning about Java modules")
  void dockerEntrypointCommandRunsAClusterNode() throws Exception {
    Path jar = Path.of("target/chat-server.jar").toAbsolutePath();
    assertTrue(Files.exists(jar), "mvn package built " + jar);
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    // a cluster of one on this machine; free ports rather than the image's 5701 and 5702, which
    // other servers on a shared build machine may hold
    int member = freePort();
    int eventBus = freePort();
    while (eventBus == member) {
      eventBus = freePort();
    }
    Matcher ports = startAsTheImageDoes(jar, java, Map.of(
        "CHAT_CLUSTER_ENABLED", "true",
        "CHAT_CLUSTER_HOST", "127.0.0.1",
        "CHAT_CLUSTER_PORT", String.valueOf(member),
        "CHAT_CLUSTER_MEMBERS", "127.0.0.1:" + member,
        "CHAT_CLUSTER_EVENTBUSPORT", String.valueOf(eventBus)));
    assertTrue(startupLines.get(startupLines.size() - 1).contains("cluster on"), startupLines.get(startupLines.size() - 1));
    assertNoJvmWarning();
    assertFalse(startupLines.stream().anyMatch(l -> l.contains("without proper access to required Java packages")),
        "Hazelcast has the module access it asks for:\n" + String.join("\n", startupLines));

    int http = Integer.parseInt(ports.group(1));
    int tcp = Integer.parseInt(ports.group(2));
    new Http(http).register("node", "pw-node");
    try (LineClient c = new LineClient(tcp)) {
      String token = c.login("node", "pw-node");
      c.send("{\"type\":\"heartbeat\",\"token\":\"" + token + "\"}");
      c.expect("{\"type\":\"heartbeat\",\"status\":\"success\"}");
    }
    process.destroy(); // SIGTERM: the node leaves the cluster and stops
    assertTrue(process.waitFor(20, TimeUnit.SECONDS), "stopped within 20 s of SIGTERM");
    assertEquals(0, process.exitValue());
  }

  /**
   * {@code sh -c 'exec java -XX:SharedArchiveFile=... -Dorg.sqlite.lib.path=... $JAVA_OPTS -jar ...'} as the ENTRYPOINT, with
   * the image's ENV, test ports and a cheap hash, plus {@code extraEnv}; returns the listening line's match.
   */
  private Matcher startAsTheImageDoes(Path jar, String java, Map<String, String> extraEnv) throws IOException {
    ProcessBuilder pb = new ProcessBuilder("sh", "-c",
        "exec \"$JAVA\" -XX:SharedArchiveFile=\"$JSA\" -Dorg.sqlite.lib.path=\"$LIB\" $JAVA_OPTS -jar \"$JAR\" \"$@\"",
        "chat-server")
        .directory(data.toFile())
        .redirectErrorStream(true);
    pb.environment().keySet().removeIf(k -> k.startsWith("CHAT_"));
    Map<String, String> image = DockerfileTest.imageEnv();
    assertEquals(dockerfileJavaOpts(), image.get("JAVA_OPTS"));
    pb.environment().putAll(image);
    pb.environment().put("JAVA", java);
    pb.environment().put("JAR", jar.toString());
    pb.environment().put("JSA", archive.toString());
    pb.environment().put("LIB", sqliteLib.toString());
    pb.environment().put("CHAT_HTTP_PORT", "0");
    pb.environment().put("CHAT_TCP_PORT", "0");
    pb.environment().put("CHAT_AUTH_HASHCOST", "low");
    pb.environment().putAll(extraEnv);
    process = pb.start();
    BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    Matcher ports = waitForListening(out);
    // keep reading, so that a full pipe never blocks the server
    Thread drain = new Thread(() -> {
      try {
        while (out.readLine() != null) {
          // discard
        }
      } catch (IOException ignored) {
        // the process ended
      }
    }, "jar-output");
    drain.setDaemon(true);
    drain.start();
    return ports;
  }

  /** The JVM accepted every flag of JAVA_OPTS: it warns on stderr ("WARNING: ...") about an unknown module or package. */
  private void assertNoJvmWarning() {
    assertFalse(startupLines.stream().anyMatch(l -> l.startsWith("WARNING:")),
        "no JVM warning:\n" + String.join("\n", startupLines));
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  /**
   * The Dockerfile's HEALTHCHECK command line, read from the Dockerfile (the image's archive and jar
   * replaced by the ones of this test), with the container's environment.
   */
  private int runHealthcheck(String java, Path jar, int httpPort) throws Exception {
    Matcher cmd = Pattern.compile("(?m)^\\s*CMD (\\[.*\\])$").matcher(Files.readString(Path.of("Dockerfile")));
    assertTrue(cmd.find(), "the Dockerfile's HEALTHCHECK CMD");
    List<String> command = new ArrayList<>();
    for (Object arg : new io.vertx.core.json.JsonArray(cmd.group(1))) {
      command.add(arg.toString().replace("/app/chat-server.jsa", archive.toString()).replace("/app/chat-server.jar", jar.toString()));
    }
    assertEquals("java", command.get(0), command.toString());
    command.set(0, java);
    ProcessBuilder pb = new ProcessBuilder(command).directory(data.toFile()).redirectErrorStream(true)
        .redirectOutput(data.resolve("healthcheck.out").toFile());
    pb.environment().put("CHAT_HTTP_PORT", String.valueOf(httpPort));
    Process check = pb.start();
    assertTrue(check.waitFor(30, TimeUnit.SECONDS), "healthcheck finished");
    return check.exitValue();
  }

  /** The image's JAVA_OPTS, as its ENV line sets them. */
  private static String dockerfileJavaOpts() throws IOException {
    Matcher m = Pattern.compile("(?m)^ENV JAVA_OPTS=\"([^\"]*)\"").matcher(Files.readString(Path.of("Dockerfile")));
    assertTrue(m.find(), "the Dockerfile sets JAVA_OPTS");
    return m.group(1);
  }

  private Matcher waitForListening(BufferedReader out) throws IOException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    String line;
    while (System.nanoTime() < deadline && (line = out.readLine()) != null) {
      startupLines.add(line);
      Matcher m = LISTENING.matcher(line);
      if (m.find()) {
        return m;
      }
    }
    assertNotNull(null, "the server logged its listening line:\n" + String.join("\n", startupLines));
    return null;
  }
}
