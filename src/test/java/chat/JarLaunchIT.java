package chat;

import chat.support.Http;
import chat.support.LineClient;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Runs after {@code package}: the shaded jar, started exactly as the Dockerfile's ENTRYPOINT
 * starts it, in an empty data folder, serves a full conversation and stops on SIGTERM.
 */
class JarLaunchIT {

  private static final Pattern LISTENING = Pattern.compile("listening: HTTP port (\\d+), TCP port (\\d+)");

  @TempDir
  Path data;
  Process process;

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
    ProcessBuilder pb = new ProcessBuilder("sh", "-c",
        "exec \"$JAVA\" $JAVA_OPTS -jar \"$JAR\" \"$@\"", "chat-server")
        .directory(data.toFile())
        .redirectErrorStream(true);
    pb.environment().put("JAVA", java);
    pb.environment().put("JAR", jar.toString());
    pb.environment().put("JAVA_OPTS", dockerfileJavaOpts());
    pb.environment().put("CHAT_HTTP_PORT", "0");
    pb.environment().put("CHAT_TCP_PORT", "0");
    pb.environment().put("CHAT_AUTH_HASHCOST", "low");
    process = pb.start();
    BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    Matcher ports = waitForListening(out);
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

  /** The Dockerfile's HEALTHCHECK command line, with the container's environment. */
  private int runHealthcheck(String java, Path jar, int httpPort) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx32m", "-jar",
        jar.toString(), "healthcheck").directory(data.toFile()).redirectErrorStream(true)
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

  private static Matcher waitForListening(BufferedReader out) throws IOException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    String line;
    while (System.nanoTime() < deadline && (line = out.readLine()) != null) {
      Matcher m = LISTENING.matcher(line);
      if (m.find()) {
        return m;
      }
    }
    assertNotNull(null, "the server logged its listening line");
    return null;
  }
}
