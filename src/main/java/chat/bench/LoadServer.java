package chat.bench;

import org.bouncycastle.crypto.generators.Argon2BytesGenerator;
import org.bouncycastle.crypto.params.Argon2Parameters;

import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * The server under load: a child JVM launched by {@link Load} in a fresh temporary data folder, or
 * one already running ({@code --attach}). Also what Linux tells about a process (RSS, open files,
 * CPU time, CPU affinity) from /proc, for the server and for the generator itself.
 */
final class LoadServer implements AutoCloseable {

  static final String DEFAULT_JVM = "-XX:+UseSerialGC -Xms16m -Xmx512m -Xmn8m -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=20 -XX:CompileThresholdScaling=10";
  private static final Pattern LISTENING = Pattern.compile("Chat server listening: HTTP port (\\d+), TCP port (\\d+)");
  /**
   * The server runs at log level WARN (a log line per login would cost it CPU during a storm), but
   * its startup line, which names the ports, is logged at INFO by chat.Main: this configuration
   * keeps that one logger at INFO.
   */
  private static final String LOGBACK = """
      <configuration>
        <appender name="OUT" class="ch.qos.logback.core.ConsoleAppender">
          <encoder><pattern>%d{HH:mm:ss.SSS} %-5level [%thread] %logger{0} - %msg%n</pattern></encoder>
        </appender>
        <logger name="chat.Main" level="INFO"/>
        <root level="WARN"><appender-ref ref="OUT"/></root>
      </configuration>
      """;

  final boolean launched;
  final long pid;
  final int tcpPort;
  final int httpPort;
  final String hashCost;
  /** The CPUs the server may run on (from its affinity), or "" when unknown. */
  final String cpus;
  final boolean pinned;
  final String jvmFlags;
  final List<String> env;
  final long startupMillis;
  private final Process process;
  private final Path dir;
  private final Thread killer;

  private LoadServer(boolean launched, long pid, int tcpPort, int httpPort, String hashCost, boolean pinned, String jvmFlags,
      List<String> env, long startupMillis, Process process, Path dir, Thread killer) {
    this.launched = launched;
    this.pid = pid;
    this.tcpPort = tcpPort;
    this.httpPort = httpPort;
    this.hashCost = hashCost;
    this.pinned = pinned;
    this.cpus = pid > 0 ? cpusAllowed(pid) : "";
    this.jvmFlags = jvmFlags;
    this.env = env;
    this.startupMillis = startupMillis;
    this.process = process;
    this.dir = dir;
    this.killer = killer;
  }

  static LoadServer attach(int tcpPort, int httpPort, long pid, String hashCost) {
    String flags = pid > 0 ? ProcessHandle.of(pid).flatMap(h -> h.info().arguments())
        .map(a -> Arrays.stream(a).filter(s -> s.startsWith("-X") || s.startsWith("-D")).collect(Collectors.joining(" ")))
        .orElse("unknown") : "unknown";
    // pinned: its affinity leaves out some of the machine's CPUs
    boolean pinned = pid > 0 && !cpusAllowed(pid).isEmpty() && cpuList(cpusAllowed(pid)).cardinality() < onlineCpus();
    return new LoadServer(false, pid, tcpPort, httpPort, hashCost, pinned, flags, List.of(), -1, null, null, null);
  }

  /**
   * Starts {@code java <jvmFlags> -cp <our class path> chat.Main} in a new temporary folder, pinned
   * to {@code cpu} when taskset exists and the machine has 2 CPUs or more, and waits until both
   * ports accept connections. {@code seed}, when not null, fills the data folder first.
   */
  static LoadServer launch(String hashCost, int cpu, String jvmFlags, List<String> extraEnv, long timeoutMillis,
      SeedUsers seed) throws IOException, InterruptedException {
    Path dir = Files.createTempDirectory("chat-load-");
    Path logback = dir.resolve("logback-load.xml");
    Files.writeString(logback, LOGBACK);
    if (seed != null) {
      seed.into(dir.resolve("usr.db"));
    }
    List<String> cmd = new ArrayList<>();
    boolean pin = onlineCpus() >= 2 && new File("/usr/bin/taskset").canExecute();
    if (pin) {
      cmd.addAll(List.of("/usr/bin/taskset", "-c", Integer.toString(cpu)));
    }
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(Arrays.asList(jvmFlags.trim().split("\\s+")));
    cmd.add("-Dlogback.configurationFile=" + logback);
    // its temporary files (sqlite-jdbc's copy of its native library) go with the folder, also when
    // the server has to be killed
    cmd.add("-Djava.io.tmpdir=" + Files.createDirectory(dir.resolve("tmp")));
    cmd.add("-cp");
    // the class path we run from, made absolute: the child runs in another folder
    cmd.add(Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
        .map(p -> Path.of(p).toAbsolutePath().toString()).collect(Collectors.joining(File.pathSeparator)));
    cmd.add("chat.Main");
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
        .redirectOutput(dir.resolve("server.log").toFile());
    pb.environment().keySet().removeIf(k -> k.startsWith("CHAT_")); // the report names every setting
    List<String> env = new ArrayList<>(List.of("CHAT_TCP_PORT=0", "CHAT_HTTP_PORT=0", "CHAT_HOST=127.0.0.1",
        "CHAT_LOG_LEVEL=WARN", "CHAT_LIMITS_ENABLED=false", "CHAT_TCP_MAXCONNECTIONS=20000", "CHAT_AUTH_HASHCOST=" + hashCost));
    env.addAll(extraEnv);
    for (String kv : env) {
      int eq = kv.indexOf('=');
      pb.environment().put(kv.substring(0, eq), kv.substring(eq + 1));
    }
    long t0 = System.nanoTime();
    Process process = pb.start();
    // no server is ever left behind, whatever happens to us (short of SIGKILL)
    Thread killer = new Thread(() -> {
      process.destroyForcibly();
      deleteQuietly(dir);
    }, "load-server-killer");
    Runtime.getRuntime().addShutdownHook(killer);
    try {
      int[] ports = awaitPorts(process, dir.resolve("server.log"), t0 + timeoutMillis * 1_000_000);
      long startup = (System.nanoTime() - t0) / 1_000_000;
      String cost = env.stream().filter(e -> e.startsWith("CHAT_AUTH_HASHCOST=")).reduce((a, b) -> b).orElseThrow()
          .substring("CHAT_AUTH_HASHCOST=".length());
      return new LoadServer(true, process.pid(), ports[1], ports[0], cost, pin, jvmFlags, env, startup, process, dir, killer);
    } catch (IOException | RuntimeException | InterruptedException e) {
      String tail = logTail(dir, 30);
      process.destroyForcibly();
      process.waitFor(10, TimeUnit.SECONDS);
      deleteQuietly(dir);
      Runtime.getRuntime().removeShutdownHook(killer);
      throw new IOException(e.getMessage() + (tail.isEmpty() ? "" : "\n--- server output ---\n" + tail), e);
    }
  }

  /** Waits for the startup line, then until both ports accept a connection; returns {http, tcp}. */
  private static int[] awaitPorts(Process process, Path log, long deadline) throws IOException, InterruptedException {
    int[] ports = null;
    while (ports == null) {
      Matcher m = LISTENING.matcher(Files.readString(log, StandardCharsets.UTF_8));
      if (m.find()) {
        ports = new int[] {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2))};
      } else if (!process.isAlive()) {
        throw new IOException("the server exited with status " + process.exitValue() + " before listening");
      } else if (System.nanoTime() > deadline) {
        throw new IOException("the server did not log its listening line in time");
      } else {
        Thread.sleep(5);
      }
    }
    for (int port : ports) {
      while (true) {
        try (Socket s = new Socket()) {
          s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
          break;
        } catch (IOException e) {
          if (System.nanoTime() > deadline) {
            throw new IOException("port " + port + " does not accept connections: " + e.getMessage());
          }
          Thread.sleep(5);
        }
      }
    }
    return ports;
  }

  boolean alive() {
    return process == null || process.isAlive();
  }

  String logTail(int lines) {
    return dir == null ? "" : logTail(dir, lines);
  }

  private static String logTail(Path dir, int lines) {
    try {
      List<String> all = Files.readAllLines(dir.resolve("server.log"), StandardCharsets.ISO_8859_1);
      return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    } catch (IOException e) {
      return "";
    }
  }

  /** SIGTERM, then waits (a clean stop takes at most graceSeconds + 4 s); returns the exit status, or -1 if it had to be killed. */
  int stop() throws InterruptedException {
    if (process == null) {
      return 0;
    }
    process.destroy();
    int status = process.waitFor(20, TimeUnit.SECONDS) ? process.exitValue() : -1;
    if (status == -1) {
      process.destroyForcibly();
      process.waitFor(10, TimeUnit.SECONDS);
    }
    return status;
  }

  @Override
  public void close() {
    if (process == null) {
      return;
    }
    if (process.isAlive()) {
      process.destroyForcibly();
      try {
        process.waitFor(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    deleteQuietly(dir);
    try {
      Runtime.getRuntime().removeShutdownHook(killer);
    } catch (IllegalStateException e) {
      // already shutting down: the hook runs anyway
    }
  }

  private static void deleteQuietly(Path dir) {
    try (Stream<Path> files = Files.walk(dir)) {
      files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException | java.io.UncheckedIOException e) {
      // best effort: it is a temporary folder (which the shutdown hook may be deleting too)
    }
  }

  // ---- users written straight into a new database ----

  /**
   * Users put into the data folder before the server starts, for the storm scenario at production
   * cost: there, thousands of sessions need a password login only to exist (the receivers, and the
   * users whose tokens the resume phase uses), and at about 30 ms of one core per Argon2id hash at
   * production cost their setup would take many minutes. Their hashes are made here at the low
   * cost; every stored hash carries its own parameters (PROTOCOL.md §2), so their logins are cheap,
   * while the users of the storm itself are registered over TCP at the server's cost. The file has
   * the documented layout of §5, which the server opens as an original server's usr.db.
   */
  record SeedUsers(List<String> names, List<String> passwords) {
    void into(Path db) throws IOException {
      // hashing is the slow part: all CPUs, before the server starts
      String[] hashes = IntStream.range(0, names.size()).parallel().mapToObj(i -> lowCostHash(passwords.get(i)))
          .toArray(String[]::new);
      try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + db)) {
        try (Statement s = c.createStatement()) {
          s.execute("CREATE TABLE users (name TEXT PRIMARY KEY, passwd TEXT, avatar TEXT DEFAULT 'default_avatar.png')");
        }
        c.setAutoCommit(false);
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO users (name, passwd) VALUES (?, ?)")) {
          for (int i = 0; i < hashes.length; i++) {
            ps.setString(1, names.get(i));
            ps.setString(2, hashes[i]);
            ps.addBatch();
          }
          ps.executeBatch();
        }
        c.commit();
      } catch (SQLException e) {
        throw new IOException("could not write the users into " + db + ": " + e.getMessage(), e);
      }
    }

    /** Argon2id in the PHC string format at the server's low cost (m=256 KiB, t=1, p=1). */
    private static String lowCostHash(String password) {
      byte[] salt = new byte[16];
      new SecureRandom().nextBytes(salt);
      Argon2BytesGenerator g = new Argon2BytesGenerator();
      g.init(new Argon2Parameters.Builder(Argon2Parameters.ARGON2_id).withVersion(Argon2Parameters.ARGON2_VERSION_13)
          .withMemoryAsKB(256).withIterations(1).withParallelism(1).withSalt(salt).build());
      byte[] out = new byte[32];
      g.generateBytes(password.getBytes(StandardCharsets.UTF_8), out);
      Base64.Encoder b64 = Base64.getEncoder().withoutPadding();
      return "$argon2id$v=19$m=256,t=1,p=1$" + b64.encodeToString(salt) + "$" + b64.encodeToString(out);
    }
  }

  // ---- /proc ----

  /** VmRSS in KiB, or -1. */
  static long rssKiB(long pid) {
    String v = statusField(pid, "VmRSS:");
    return v == null ? -1 : Long.parseLong(v.replaceAll("[^0-9]", ""));
  }

  /** Open file descriptors, or -1. */
  static long fds(long pid) {
    try (Stream<Path> s = Files.list(Path.of("/proc", Long.toString(pid), "fd"))) {
      return s.count();
    } catch (IOException | SecurityException e) {
      return -1;
    }
  }

  /** utime + stime in clock ticks ({@link #CLOCK_TICKS} a second), or -1. */
  static long cpuTicks(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
      // the command name may hold spaces: count fields after its closing parenthesis (field 3 is the state)
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return Long.parseLong(f[11]) + Long.parseLong(f[12]);
    } catch (IOException | RuntimeException e) {
      return -1;
    }
  }

  /** Busy time of all CPUs together (/proc/stat, without idle, iowait and steal), in clock ticks, or -1. */
  static long machineTicks() {
    try {
      String[] f = Files.readAllLines(Path.of("/proc/stat")).get(0).trim().split("\\s+");
      long busy = 0;
      for (int i = 1; i < f.length && i <= 7; i++) { // user nice system (idle iowait) irq softirq
        if (i != 4 && i != 5) { // idle, iowait
          busy += Long.parseLong(f[i]);
        }
      }
      return busy;
    } catch (IOException | RuntimeException e) {
      return -1;
    }
  }

  static final long CLOCK_TICKS = clockTicks();

  private static long clockTicks() {
    try {
      Process p = new ProcessBuilder("getconf", "CLK_TCK").redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
      p.waitFor(5, TimeUnit.SECONDS);
      return Long.parseLong(out);
    } catch (IOException | RuntimeException | InterruptedException e) {
      return 100; // what Linux uses on every common architecture
    }
  }

  /** Cpus_allowed_list of a process, e.g. "0-1", or "" when unknown. */
  static String cpusAllowed(long pid) {
    String v = statusField(pid, "Cpus_allowed_list:");
    return v == null ? "" : v.trim();
  }

  private static String statusField(long pid, String name) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
        if (line.startsWith(name)) {
          return line.substring(name.length());
        }
      }
    } catch (IOException e) {
      return null;
    }
    return null;
  }

  /** CPUs online on the machine (not just those this process may use). */
  static int onlineCpus() {
    try {
      return cpuList(Files.readString(Path.of("/sys/devices/system/cpu/online")).trim()).cardinality();
    } catch (IOException | RuntimeException e) {
      return Runtime.getRuntime().availableProcessors();
    }
  }

  /** "0-2,5" as a set. */
  static BitSet cpuList(String list) {
    BitSet set = new BitSet();
    for (String part : list.split(",")) {
      if (part.isBlank()) {
        continue;
      }
      String[] r = part.trim().split("-");
      set.set(Integer.parseInt(r[0]), Integer.parseInt(r[r.length - 1]) + 1);
    }
    return set;
  }

  /** The soft limit of open files of this process, read at the start (reading it needs a file descriptor). */
  static final long OPEN_FILE_LIMIT = openFileLimit();

  /** The soft limit of open files of this process ("Max open files" in /proc/self/limits), or -1. */
  private static long openFileLimit() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/limits"))) {
        if (line.startsWith("Max open files")) {
          return Long.parseLong(line.substring("Max open files".length()).trim().split("\\s+")[0]);
        }
      }
    } catch (IOException | RuntimeException e) {
      return -1;
    }
    return -1;
  }
}
