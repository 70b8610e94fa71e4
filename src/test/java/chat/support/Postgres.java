package chat.support;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The PostgreSQL server the tests use: a real one, never a stand-in. Each test gets a fresh
 * database of its own on it ({@link #newDatabase}).
 *
 * <p>Which server:
 * <ul>
 *   <li>{@code CHAT_TEST_PG_URL} set (e.g. {@code jdbc:postgresql://127.0.0.1:5432/postgres}, with
 *       {@code CHAT_TEST_PG_USER} and {@code CHAT_TEST_PG_PASSWORD}): that server; the user must be
 *       allowed to create databases.</li>
 *   <li>Otherwise a private server started for this JVM: {@code initdb} in a new folder under the
 *       temporary directory, {@code pg_ctl start} on a free port of 127.0.0.1 (password
 *       authentication over TCP, so db.user and db.password are really used), stopped and deleted
 *       when the JVM exits. The binaries are looked up in {@code CHAT_TEST_PG_BIN}, then
 *       {@code /usr/lib/postgresql/<newest>/bin} (Debian, Ubuntu), then the {@code PATH}. When
 *       there are none and the tests run as root on a system with {@code apt-get}, the
 *       {@code postgresql} package is installed first. As root, the server runs as the user
 *       {@code postgres} (PostgreSQL refuses to run as root).</li>
 * </ul>
 * Without any of these the tests fail, saying what to do: a skipped database test would hide
 * breakage.
 */
public final class Postgres {

  public static final String URL_ENV = "CHAT_TEST_PG_URL";
  public static final String USER_ENV = "CHAT_TEST_PG_USER";
  public static final String PASSWORD_ENV = "CHAT_TEST_PG_PASSWORD";
  public static final String BIN_ENV = "CHAT_TEST_PG_BIN";

  /** Folders of private servers: {@code chat-test-pg-<pid of the JVM that owns it>-<random>}. */
  private static final String DIR_PREFIX = "chat-test-pg-";
  private static final Pattern JDBC_URL = Pattern.compile("(jdbc:postgresql://[^/?]+)(/[^?]*)?(\\?.*)?");
  private static final SecureRandom RANDOM = new SecureRandom();

  private static Postgres instance;
  private static RuntimeException startFailure;

  /** {@code jdbc:postgresql://host:port} */
  private final String base;
  /** the database to connect to for CREATE/DROP DATABASE */
  private final String adminDatabase;
  /** {@code ?...} of the given URL, or "" */
  private final String params;
  public final String user;
  public final String password;
  /** The private server's folder and binaries, or null for a given server. */
  private final Path dir;
  private final Path bin;
  private final String runAs;

  private Postgres(String base, String adminDatabase, String params, String user, String password, Path dir, Path bin,
      String runAs) {
    this.base = base;
    this.adminDatabase = adminDatabase;
    this.params = params;
    this.user = user;
    this.password = password;
    this.dir = dir;
    this.bin = bin;
    this.runAs = runAs;
  }

  /** The server for this JVM, started at the first call. */
  public static synchronized Postgres server() {
    if (instance != null) {
      return instance;
    }
    if (startFailure != null) {
      throw startFailure; // once is enough: every later test fails with the first cause
    }
    try {
      String url = System.getenv(URL_ENV);
      instance = url != null && !url.isBlank()
          ? given(url, envOr(USER_ENV, ""), envOr(PASSWORD_ENV, ""))
          : startPrivate();
      return instance;
    } catch (RuntimeException e) {
      startFailure = e;
      throw e;
    }
  }

  /** Whether this is a server the tests started (and may stop and start again), not a given one. */
  public boolean isPrivate() {
    return dir != null;
  }

  /** The host:port part, {@code jdbc:postgresql://127.0.0.1:5432}. */
  public String base() {
    return base;
  }

  /** A JDBC URL for {@code database} on this server. */
  public String url(String database) {
    return base + "/" + database + params;
  }

  /** A new, empty database with a random name; {@link PgDatabase#close()} drops it. */
  public PgDatabase newDatabase() {
    String name = "chat_test_" + HexFormat.of().formatHex(randomBytes(6));
    try (Connection c = admin(); Statement s = c.createStatement()) {
      s.execute("CREATE DATABASE " + name);
    } catch (SQLException e) {
      throw new IllegalStateException("cannot create a test database on " + base + " as '" + user + "': " + e.getMessage()
          + (isPrivate() ? "" : " (the user given in " + USER_ENV + " needs the CREATEDB privilege)"), e);
    }
    return new PgDatabase(this, name);
  }

  Connection admin() throws SQLException {
    return DriverManager.getConnection(url(adminDatabase), user, password);
  }

  void drop(String name) {
    try (Connection c = admin(); Statement s = c.createStatement()) {
      // FORCE (PostgreSQL 13+): connections a failed test left open do not keep it alive
      s.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    } catch (SQLException e) {
      throw new IllegalStateException("cannot drop test database " + name + ": " + e.getMessage(), e);
    }
  }

  // ---- a given server ----

  private static Postgres given(String url, String user, String password) {
    Matcher m = JDBC_URL.matcher(url);
    if (!m.matches()) {
      throw new IllegalStateException(URL_ENV + " must look like jdbc:postgresql://host:port/database, got '" + url + "'");
    }
    String database = m.group(2) == null || m.group(2).length() <= 1 ? "postgres" : m.group(2).substring(1);
    Postgres pg = new Postgres(m.group(1), database, m.group(3) == null ? "" : m.group(3), user, password, null, null, null);
    try (Connection c = pg.admin()) {
      return pg;
    } catch (SQLException e) {
      throw new IllegalStateException("cannot connect to the PostgreSQL server of " + URL_ENV + " (" + m.group(1) + "/"
          + database + ", user '" + user + "'): " + e.getMessage(), e);
    }
  }

  // ---- a private server ----

  private static Postgres startPrivate() {
    Path bin = findBinaries();
    if (bin == null && isRoot() && onPath("apt-get")) {
      installPackage();
      bin = findBinaries();
    }
    if (bin == null) {
      throw new IllegalStateException("The PostgreSQL tests need a PostgreSQL server and found none. Either install the "
          + "server binaries (Debian/Ubuntu: apt-get install postgresql; they are looked up in " + BIN_ENV
          + ", /usr/lib/postgresql/*/bin and the PATH; the tests then start a private server), or point the tests at "
          + "a running server: " + URL_ENV + "=jdbc:postgresql://host:port/postgres " + USER_ENV + "=... " + PASSWORD_ENV
          + "=... (a user allowed to create databases).");
    }
    String runAs = isRoot() ? (userExists("postgres") ? "postgres" : "nobody") : null;
    Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
    removeAbandoned(tmp, bin, runAs);
    String user = "chat_test";
    String password = HexFormat.of().formatHex(randomBytes(12));
    IllegalStateException last = null;
    for (int attempt = 0; attempt < 3; attempt++) {
      Path dir = null;
      try {
        dir = Files.createDirectory(tmp.resolve(DIR_PREFIX + ProcessHandle.current().pid() + "-"
            + HexFormat.of().formatHex(randomBytes(4))), PosixFilePermissions.asFileAttribute(
            PosixFilePermissions.fromString("rwx------")));
        if (runAs != null) {
          UserPrincipal owner = dir.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName(runAs);
          Files.setOwner(dir, owner);
        }
        Path pwfile = dir.resolve("pwfile");
        Files.writeString(pwfile, password + "\n");
        if (runAs != null) {
          Files.setOwner(pwfile, Files.getOwner(dir));
        }
        int port = freePort();
        // trust over the Unix socket in the private folder (the tests do not use it), passwords over TCP
        run(runAs, bin.resolve("initdb").toString(), "-D", dir.resolve("data").toString(), "-U", user,
            "--pwfile=" + pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "-N");
        Files.delete(pwfile);
        // in the configuration file, so that a restart (stop(), start()) keeps them. Durability is
        // not under test here: no fsync, so the suite stays fast on a shared machine
        Files.writeString(dir.resolve("data").resolve("postgresql.conf"), "\n# chat-server tests\n"
            + "port = " + port + "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '" + dir + "'\n"
            + "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\n",
            StandardOpenOption.APPEND);
        Postgres pg = new Postgres("jdbc:postgresql://127.0.0.1:" + port, "postgres", "", user, password, dir, bin, runAs);
        pg.start();
        Runtime.getRuntime().addShutdownHook(new Thread(pg::stopAndDelete, "stop-test-postgres"));
        try (Connection c = pg.admin()) {
          System.err.println("[postgres] private server " + pg.base + " (" + bin + ", folder " + dir + ")");
          return pg;
        }
      } catch (IOException | SQLException | IllegalStateException e) {
        last = new IllegalStateException("could not start a private PostgreSQL server with " + bin + ": " + e.getMessage()
            + (dir != null ? logTail(dir.resolve("postgres.log")) : ""), e);
        if (dir != null) {
          stopQuietly(bin, runAs, dir);
          deleteTree(dir);
        }
      }
    }
    throw last;
  }

  /** Stops the private server (fast: its data is thrown away) and deletes its folder. */
  private void stopAndDelete() {
    stopQuietly(bin, runAs, dir);
    deleteTree(dir);
  }

  /** Stops the private server; {@link #start()} starts it again on the same port. */
  public void stop() {
    requirePrivate();
    run(runAs, bin.resolve("pg_ctl").toString(), "-D", dir.resolve("data").toString(), "-w", "-t", "60", "-m", "fast",
        "stop");
  }

  /** Starts the private server again after {@link #stop()}. */
  public void start() {
    requirePrivate();
    run(runAs, bin.resolve("pg_ctl").toString(), "-D", dir.resolve("data").toString(), "-l",
        dir.resolve("postgres.log").toString(), "-w", "-t", "60", "start");
  }

  private void requirePrivate() {
    if (!isPrivate()) {
      throw new IllegalStateException("only a private test server can be stopped and started");
    }
  }

  private static void stopQuietly(Path bin, String runAs, Path dir) {
    if (Files.exists(dir.resolve("data").resolve("postmaster.pid"))) {
      try {
        run(runAs, bin.resolve("pg_ctl").toString(), "-D", dir.resolve("data").toString(), "-w", "-t", "30", "-m",
            "immediate", "stop");
      } catch (RuntimeException e) {
        System.err.println("[postgres] could not stop the server in " + dir + ": " + e.getMessage());
      }
    }
  }

  /**
   * Private servers of test JVMs that are gone (killed before their shutdown hook ran): stop
   * them and delete their folders. A folder's name holds the pid of the JVM that owns it.
   */
  private static void removeAbandoned(Path tmp, Path bin, String runAs) {
    Pattern name = Pattern.compile(Pattern.quote(DIR_PREFIX) + "(\\d+)-[0-9a-f]+");
    try (Stream<Path> dirs = Files.list(tmp)) {
      for (Path d : dirs.toList()) {
        Matcher m = name.matcher(d.getFileName().toString());
        if (m.matches() && Files.isDirectory(d) && ProcessHandle.of(Long.parseLong(m.group(1))).isEmpty()) {
          System.err.println("[postgres] removing the abandoned test server folder " + d);
          stopQuietly(bin, runAs, d);
          deleteTree(d);
        }
      }
    } catch (IOException e) {
      // not ours to worry about: a new server gets a new folder anyway
    }
  }

  static Path findBinaries() {
    String given = System.getenv(BIN_ENV);
    if (given != null && !given.isBlank()) {
      return hasServer(Path.of(given)) ? Path.of(given) : null;
    }
    Path debian = Path.of("/usr/lib/postgresql");
    if (Files.isDirectory(debian)) {
      try (Stream<Path> versions = Files.list(debian)) {
        Path newest = versions.filter(v -> v.getFileName().toString().matches("\\d+(\\.\\d+)?"))
            .map(v -> v.resolve("bin")).filter(Postgres::hasServer)
            .max(Comparator.comparingDouble(v -> Double.parseDouble(v.getParent().getFileName().toString())))
            .orElse(null);
        if (newest != null) {
          return newest;
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    for (String p : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (!p.isEmpty() && hasServer(Path.of(p))) {
        // a symbolic link (/usr/local/bin/pg_ctl -> ...) leads to the real folder
        try {
          return Path.of(p).resolve("pg_ctl").toRealPath().getParent();
        } catch (IOException e) {
          return Path.of(p);
        }
      }
    }
    return null;
  }

  private static boolean hasServer(Path bin) {
    return Files.isExecutable(bin.resolve("initdb")) && Files.isExecutable(bin.resolve("pg_ctl"))
        && Files.isExecutable(bin.resolve("postgres"));
  }

  private static void installPackage() {
    System.err.println("[postgres] no PostgreSQL server binaries: installing the 'postgresql' package with apt-get");
    Map<String, String> env = Map.of("DEBIAN_FRONTEND", "noninteractive");
    try {
      runWithEnv(env, 900, "apt-get", "install", "-y", "-q", "postgresql");
    } catch (IllegalStateException first) {
      // a fresh machine may not have package lists yet
      runWithEnv(env, 900, "apt-get", "update", "-q");
      runWithEnv(env, 900, "apt-get", "install", "-y", "-q", "postgresql");
    }
  }

  // ---- processes ----

  /** Runs a command, as {@code runAs} when given (we are root then); fails with its output. */
  private static String run(String runAs, String... command) {
    List<String> cmd = new ArrayList<>();
    if (runAs != null) {
      cmd.addAll(List.of("runuser", "-u", runAs, "--"));
    }
    cmd.addAll(List.of(command));
    return runWithEnv(Map.of(), 120, cmd.toArray(String[]::new));
  }

  private static String runWithEnv(Map<String, String> env, int timeoutSeconds, String... command) {
    try {
      Path out = Files.createTempFile("chat-test-pg-cmd", ".out");
      try {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(out.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        // the server started by pg_ctl keeps no handle on our output file; it logs to its own
        pb.environment().putAll(env);
        Process p = pb.start();
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
          p.destroyForcibly();
          throw new IllegalStateException(String.join(" ", command) + " did not finish within " + timeoutSeconds + " s");
        }
        String output = Files.readString(out, StandardCharsets.UTF_8);
        if (p.exitValue() != 0) {
          throw new IllegalStateException(String.join(" ", command) + " exited with " + p.exitValue() + ": " + output.strip());
        }
        return output;
      } finally {
        Files.deleteIfExists(out);
      }
    } catch (IOException e) {
      throw new IllegalStateException(String.join(" ", command) + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private static boolean isRoot() {
    return "root".equals(System.getProperty("user.name"));
  }

  private static boolean userExists(String name) {
    try {
      return Files.readAllLines(Path.of("/etc/passwd")).stream().anyMatch(l -> l.startsWith(name + ":"));
    } catch (IOException e) {
      return false;
    }
  }

  private static boolean onPath(String program) {
    for (String p : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (!p.isEmpty() && Files.isExecutable(Path.of(p, program))) {
        return true;
      }
    }
    return false;
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static byte[] randomBytes(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }

  private static String envOr(String name, String otherwise) {
    String v = System.getenv(name);
    return v == null ? otherwise : v;
  }

  private static String logTail(Path log) {
    try {
      List<String> lines = Files.readAllLines(log);
      return "\n--- server log ---\n" + String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
    } catch (IOException e) {
      return "";
    }
  }

  private static void deleteTree(Path dir) {
    if (dir == null || !Files.exists(dir)) {
      return;
    }
    try (Stream<Path> all = Files.walk(dir)) {
      for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      System.err.println("[postgres] could not delete " + dir + ": " + e.getMessage());
    }
  }
}
