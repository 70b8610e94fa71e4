package chat.support;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The server as a separate JVM: {@code <java.home>/bin/java -cp <test classpath> chat.Main [args]}
 * in a given working directory (its data folder), with the inherited environment minus every
 * {@code CHAT_*} variable, plus the given ones.
 *
 * <p>stdout and stderr go to files outside the data folder, not to pipes: with pipes, the JDK
 * closes the stream under a blocked reader when the process exits ("Stream closed") and the last
 * lines, e.g. the shutdown log, are lost.
 *
 * <p>Its temporary directory ({@code java.io.tmpdir}) is {@code <logDir>/tmp}, not the machine's:
 * tests end their servers with kill -9, and what a killed JVM had there (sqlite-jdbc's copy of its
 * native library, half a megabyte each) then goes with the test's folder.
 */
public final class ServerProcess implements AutoCloseable {

  public static final Pattern LISTENING = Pattern.compile("Chat server listening: HTTP port (\\d+), TCP port (\\d+)");

  public record Ports(int http, int tcp, String line, long millisToLine) {
  }

  private final Process process;
  private final long startedNanos;
  private final Path out;
  private final Path err;
  private final Path tempDir;

  private ServerProcess(Process process, long startedNanos, Path out, Path err, Path tempDir) {
    this.process = process;
    this.startedNanos = startedNanos;
    this.out = out;
    this.err = err;
    this.tempDir = tempDir;
  }

  /** Starts {@code chat.Main} in {@code workDir}; its output goes to new files in {@code logDir}. */
  public static ServerProcess start(Path workDir, Path logDir, Map<String, String> env, String... args) {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    // light on a small shared machine; no effect on behaviour
    cmd.add("-XX:+UseSerialGC");
    cmd.add("-XX:TieredStopAtLevel=1");
    cmd.add("-Xmx256m");
    Path tempDir = logDir.resolve("tmp");
    cmd.add("-Djava.io.tmpdir=" + tempDir);
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add("chat.Main");
    cmd.addAll(List.of(args));
    try {
      Files.createDirectories(tempDir);
      Path out = Files.createTempFile(logDir, "server-", ".out");
      Path err = Files.createTempFile(logDir, "server-", ".err");
      ProcessBuilder pb = new ProcessBuilder(cmd).directory(workDir.toFile())
          .redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.PIPE);
      pb.environment().keySet().removeIf(k -> k.startsWith("CHAT_"));
      pb.environment().putAll(env);
      long t0 = System.nanoTime();
      return new ServerProcess(pb.start(), t0, out, err, tempDir);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public Process process() {
    return process;
  }

  /** The server's {@code java.io.tmpdir}, shared by the servers started with the same log folder. */
  public Path tempDir() {
    return tempDir;
  }

  public List<String> stdout() {
    return lines(out);
  }

  public List<String> stderr() {
    return lines(err);
  }

  private static List<String> lines(Path file) {
    try {
      String text = new String(Files.readAllBytes(file), StandardCharsets.UTF_8);
      return text.isEmpty() ? List.of() : List.of(text.split("\\R", -1)).stream().filter(l -> !l.isEmpty()).toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Waits (polling, bounded) for the startup line and returns the ports it names. */
  public Ports awaitListening(Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      boolean exited = !process.isAlive();
      for (String line : stdout()) {
        Matcher m = LISTENING.matcher(line);
        if (m.find()) {
          return new Ports(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)), line,
              (System.nanoTime() - startedNanos) / 1_000_000);
        }
      }
      if (exited) {
        throw new AssertionError("server exited with " + process.exitValue() + " before listening\n" + transcript());
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("no listening line within " + timeout + "\n" + transcript());
      }
      sleepQuietly(20);
    }
  }

  /** Waits for the process to end and returns its exit code; fails after the timeout. */
  public int awaitExit(Duration timeout) {
    try {
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new AssertionError("server still running after " + timeout + "\n" + transcript());
      }
      return process.exitValue();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** SIGTERM. */
  public void terminate() {
    process.destroy();
  }

  /** SIGKILL, and wait until the process is gone. */
  public void kill() {
    process.destroyForcibly();
    try {
      process.waitFor(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  public String transcript() {
    return "--- stdout ---\n" + String.join("\n", stdout()) + "\n--- stderr ---\n" + String.join("\n", stderr());
  }

  @Override
  public void close() {
    if (process.isAlive()) {
      kill();
    }
  }

  private static void sleepQuietly(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
