package chat.admin;

import chat.Main;
import chat.auth.PasswordHasher;
import chat.config.ChatConfig;
import chat.config.ConfigException;
import chat.config.ConfigLoader;
import chat.protocol.Rules;
import chat.store.AdminQueue;
import chat.store.UserStore;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import org.slf4j.LoggerFactory;

import java.io.BufferedReader;
import java.io.Console;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * Administration commands run from the same jar ({@code java -jar chat-server.jar user list}).
 * They read the configuration exactly as the server does (defaults &lt; {@code --conf FILE} &lt;
 * {@code CHAT_*} variables) and open the same database with their own small Vert.x instance.
 *
 * <p>Changes the running server must act on (a kick, dropping a deleted user's tokens) travel
 * through the {@code admin_queue} table ({@link AdminQueue}), which the server polls every
 * {@code admin.pollMillis} ({@link AdminVerticle}); the command waits a few seconds for the result.
 *
 * <p>Results go to stdout, errors to stderr as one line. Exit status: 0 done, 1 failed (no such
 * user, bad password, no running server answered a kick, database error), 2 usage or
 * configuration error. Passwords are never taken as arguments, and no password, hash or token is
 * ever printed.
 */
public final class AdminCli {

  public static final String USAGE = """
      Usage: java -jar chat-server.jar [COMMAND] [--conf FILE] [--wait SECONDS]

      Without a command, runs the server. Administration commands (run them in the server's data
      folder, or with the same --conf FILE and CHAT_* variables as the server):

        user list                       every user: name, avatar, password state
        user delete NAME                delete the user; a running server drops its tokens and session
        user reset-password NAME [--password-stdin]
                                        set a new password, read from the first line of stdin (or
                                        asked twice on a terminal); a running server drops the
                                        user's tokens and session
        session kick NAME               close the user's socket session on the running server

      Options:
        --conf FILE       configuration file, as for the server
        --wait SECONDS    how long to wait for a running server to act (default 5)
        --password-stdin  read the new password from stdin even on a terminal

      Exit status: 0 done; 1 failed (no such user, bad password, no running server answered a
      kick, database error); 2 usage or configuration error.
      """;

  private static final Set<String> HELP = Set.of("help", "--help", "-h");
  private static final Set<String> GROUPS = Set.of("user", "session");
  private static final long DEFAULT_WAIT_MILLIS = 5000;
  private static final long DB_TIMEOUT_SECONDS = 60;

  private AdminCli() {
  }

  /** Whether {@code command} (the first argument) names an administration command. */
  public static boolean handles(String command) {
    return command != null && GROUPS.contains(command);
  }

  /** Whether the arguments name an administration command, also after a leading {@code --conf FILE}. */
  public static boolean handles(String[] args) {
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--conf")) {
        i++;
      } else if (!args[i].startsWith("--conf=")) {
        return handles(args[i]);
      }
    }
    return false;
  }

  /** Runs the command; returns the process exit code. */
  public static int run(String[] args) {
    return run(args, System.in, System.out, System.err, System.console());
  }

  static int run(String[] args, InputStream in, PrintStream out, PrintStream err, Console console) {
    Invocation inv;
    try {
      inv = Invocation.parse(args);
    } catch (UsageException e) {
      err.println("chat-server: " + e.getMessage());
      err.println();
      err.print(USAGE);
      return 2;
    }
    if (inv.help) {
      out.print(USAGE);
      return 0;
    }
    quietLogging();
    Vertx vertx = Vertx.vertx(Main.vertxOptions().setEventLoopPoolSize(1).setWorkerPoolSize(2).setInternalBlockingPoolSize(1));
    try {
      ChatConfig config;
      try {
        config = await(ConfigLoader.load(vertx, inv.confFile));
      } catch (Exception e) {
        err.println("chat-server: " + oneLine(e));
        return 2;
      }
      return new Session(vertx, config, inv, in, out, err, console).run();
    } catch (Failure e) {
      err.println("chat-server: " + e.getMessage());
      return 1;
    } catch (Exception e) {
      err.println("chat-server: " + oneLine(e));
      return 1;
    } finally {
      try {
        vertx.close().await(30, TimeUnit.SECONDS);
      } catch (Exception ignored) {
        // exiting anyway
      }
    }
  }

  // ---- the command line ----

  private static final class UsageException extends Exception {
    UsageException(String message) {
      super(message);
    }
  }

  /** A failure reported as one line, exit status 1. */
  private static final class Failure extends RuntimeException {
    Failure(String message) {
      super(message);
    }
  }

  private static final class Invocation {
    boolean help;
    String confFile;
    Long waitMillis;
    boolean passwordStdin;
    final List<String> words = new ArrayList<>();

    static Invocation parse(String[] args) throws UsageException {
      Invocation inv = new Invocation();
      for (int i = 0; i < args.length; i++) {
        String a = args[i];
        if (HELP.contains(a)) {
          inv.help = true;
        } else if (a.equals("--conf") || a.equals("--wait")) {
          if (i + 1 >= args.length) {
            throw new UsageException(a + " needs a value");
          }
          inv.option(a, args[++i]);
        } else if (a.startsWith("--conf=") || a.startsWith("--wait=")) {
          inv.option(a.substring(0, a.indexOf('=')), a.substring(a.indexOf('=') + 1));
        } else if (a.equals("--password-stdin")) {
          inv.passwordStdin = true;
        } else if (a.startsWith("-") && a.length() > 1) {
          throw new UsageException("unknown option '" + a + "'");
        } else {
          inv.words.add(a);
        }
      }
      if (inv.help) {
        return inv;
      }
      inv.check();
      return inv;
    }

    private void option(String name, String value) throws UsageException {
      if (name.equals("--conf")) {
        confFile = value;
        return;
      }
      try {
        double seconds = Double.parseDouble(value);
        if (!(seconds >= 0 && seconds <= 3600)) {
          throw new NumberFormatException();
        }
        waitMillis = Math.round(seconds * 1000);
      } catch (NumberFormatException e) {
        throw new UsageException("--wait needs a number of seconds from 0 to 3600, got '" + value + "'");
      }
    }

    String command() {
      return words.size() >= 2 ? words.get(0) + " " + words.get(1) : String.join(" ", words);
    }

    String name() {
      return words.get(2);
    }

    private void check() throws UsageException {
      if (words.isEmpty() || !GROUPS.contains(words.get(0))) {
        throw new UsageException("no command given");
      }
      if (words.size() == 1) {
        throw new UsageException("'" + words.get(0) + "' needs a command");
      }
      int expectedWords = switch (command()) {
        case "user list" -> 2;
        case "user delete", "user reset-password", "session kick" -> 3;
        default -> throw new UsageException("unknown command '" + command() + "'");
      };
      if (words.size() < expectedWords) {
        throw new UsageException("'" + command() + "' needs a user name");
      }
      if (words.size() > expectedWords) {
        if (command().equals("user reset-password")) {
          throw new UsageException("'user reset-password' takes no password argument (it would show in ps):"
              + " pass it on stdin or type it when asked");
        }
        throw new UsageException("too many arguments for '" + command() + "'");
      }
      if (passwordStdin && !command().equals("user reset-password")) {
        throw new UsageException("--password-stdin is only for 'user reset-password'");
      }
    }
  }

  // ---- the commands ----

  /** Whether the server answered a queued request, and what it did. */
  private record Answer(boolean answered, String result) {
  }

  private static final class Session {
    private final Vertx vertx;
    private final ChatConfig config;
    private final Invocation inv;
    private final InputStream in;
    private final PrintStream out;
    private final PrintStream err;
    private final Console console;
    private final long waitMillis;
    private UserStore users;

    Session(Vertx vertx, ChatConfig config, Invocation inv, InputStream in, PrintStream out, PrintStream err,
        Console console) {
      this.vertx = vertx;
      this.config = config;
      this.inv = inv;
      this.in = in;
      this.out = out;
      this.err = err;
      this.console = console;
      // a server polling slowly gets the time it needs
      this.waitMillis = inv.waitMillis != null ? inv.waitMillis
          : Math.max(DEFAULT_WAIT_MILLIS, 2L * config.adminPollMillis + 1000);
    }

    int run() throws Exception {
      requireDatabaseFile();
      users = UserStore.open(vertx, config);
      try {
        return switch (inv.command()) {
          case "user list" -> list();
          case "user delete" -> delete(inv.name());
          case "user reset-password" -> resetPassword(inv.name());
          case "session kick" -> kick(inv.name());
          default -> throw new IllegalStateException(inv.command());
        };
      } finally {
        try {
          users.close().await(30, TimeUnit.SECONDS);
        } catch (Exception ignored) {
          // exiting anyway
        }
      }
    }

    /** SQLite creates a missing file on open: refuse instead, the command is in the wrong folder. */
    private void requireDatabaseFile() {
      Path file = sqliteFile(config.dbUrl);
      if (file != null && !Files.exists(file)) {
        throw new Failure("no database file " + file.toAbsolutePath() + " (db.url " + config.dbUrl
            + "): run the command in the server's data folder, or give it the server's --conf FILE or CHAT_DB_URL");
      }
    }

    private int list() {
      List<UserStore.Summary> all = await(users.list(PasswordHasher::isHash));
      int nameWidth = 4;
      int avatarWidth = 6;
      for (UserStore.Summary u : all) {
        nameWidth = Math.max(nameWidth, printable(u.name()).length());
        avatarWidth = Math.max(avatarWidth, printable(avatar(u)).length());
      }
      for (UserStore.Summary u : all) {
        out.println(pad(printable(u.name()), nameWidth) + "  " + pad(printable(avatar(u)), avatarWidth) + "  "
            + switch (u.password()) {
              case HASHED -> "hashed";
              case PLAIN_TEXT -> "PLAIN TEXT (original server, hashed at next start)";
              case NONE -> "none";
            });
      }
      err.println(all.size() == 1 ? "1 user" : all.size() + " users");
      return 0;
    }

    private static String avatar(UserStore.Summary u) {
      return u.avatar() == null ? Rules.DEFAULT_AVATAR : u.avatar();
    }

    private int delete(String name) {
      AdminQueue queue = AdminQueue.of(users);
      await(queue.ensureTable());
      if (!await(users.delete(name))) {
        throw new Failure("no user '" + printable(name) + "'");
      }
      Answer a = ask(queue, AdminQueue.REVOKE, name);
      out.println("deleted user " + printable(name) + "; " + describeRevoke(a));
      return 0;
    }

    private int resetPassword(String name) {
      if (!await(users.exists(name))) {
        throw new Failure("no user '" + printable(name) + "'");
      }
      String password = readPassword(name);
      if (!Rules.isValidPassword(password)) {
        throw new Failure("invalid password: it must be 1-" + Rules.MAX_PASSWORD_LENGTH + " characters");
      }
      if (config.hashCost == ChatConfig.HashCost.LOW) {
        err.println("chat-server: warning: auth.hashCost is 'low': the new password gets a cheap hash");
      }
      PasswordHasher hasher = new PasswordHasher(PasswordHasher.Params.of(config));
      String hash = await(vertx.executeBlocking(() -> hasher.hash(password), false));
      AdminQueue queue = AdminQueue.of(users);
      await(queue.ensureTable());
      if (!await(users.setPassword(name, hash))) {
        throw new Failure("no user '" + printable(name) + "'");
      }
      Answer a = ask(queue, AdminQueue.REVOKE, name);
      out.println("password of " + printable(name) + " reset; " + describeRevoke(a));
      return 0;
    }

    private int kick(String name) {
      AdminQueue queue = AdminQueue.of(users);
      await(queue.ensureTable());
      Answer a = ask(queue, AdminQueue.KICK, name);
      if (!a.answered()) {
        throw new Failure(noServer() + " (the kick was withdrawn)");
      }
      if (a.result().startsWith(AdminVerticle.FAILED_PREFIX)) {
        throw new Failure("the server could not kick " + printable(name) + ": " + a.result());
      }
      out.println(switch (a.result()) {
        case AdminVerticle.KICKED -> "kicked " + printable(name) + ": session closed";
        case AdminVerticle.NO_SESSION -> "no session for " + printable(name);
        default -> a.result();
      });
      return 0;
    }

    private String describeRevoke(Answer a) {
      return a.answered() ? "running server: " + a.result()
          : noServer() + "; the change takes effect at once for new logins";
    }

    private String noServer() {
      return "no running server answered within " + seconds(waitMillis);
    }

    /**
     * Queues a request and waits for a running server to carry it out. When none does in time,
     * the request is withdrawn (a server started later has no tokens or sessions from before).
     */
    private Answer ask(AdminQueue queue, String command, String name) {
      long id = await(queue.enqueue(command, name, System.currentTimeMillis()));
      long deadline = System.nanoTime() + waitMillis * 1_000_000L;
      while (true) {
        AdminQueue.State s = await(queue.state(id));
        if (s != null && s.result() != null) {
          return new Answer(true, s.result());
        }
        if (System.nanoTime() >= deadline) {
          break;
        }
        sleep(Math.min(100, Math.max(1, (deadline - System.nanoTime()) / 1_000_000)));
      }
      if (await(queue.withdraw(id))) {
        return new Answer(false, null);
      }
      // claimed meanwhile: give the server a moment to write its result
      for (int i = 0; i < 20; i++) {
        AdminQueue.State s = await(queue.state(id));
        if (s != null && s.result() != null) {
          return new Answer(true, s.result());
        }
        sleep(100);
      }
      return new Answer(false, null);
    }

    private String readPassword(String name) {
      if (!inv.passwordStdin && console != null) {
        char[] first = console.readPassword("New password for %s: ", printable(name));
        if (first == null) {
          throw new Failure("no password given");
        }
        char[] second = console.readPassword("Repeat the new password: ");
        try {
          if (second == null || !Arrays.equals(first, second)) {
            throw new Failure("the two passwords differ; nothing was changed");
          }
          return new String(first);
        } finally {
          Arrays.fill(first, '\0');
          if (second != null) {
            Arrays.fill(second, '\0');
          }
        }
      }
      try {
        String line = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8)).readLine();
        if (line == null) {
          throw new Failure("no password on stdin (the first line is the new password)");
        }
        return line;
      } catch (IOException e) {
        throw new Failure("cannot read the password from stdin: " + e.getMessage());
      }
    }
  }

  // ---- helpers ----

  /** The file of a {@code jdbc:sqlite:} URL, or {@code null} (another database, or in memory). */
  static Path sqliteFile(String url) {
    if (!url.startsWith("jdbc:sqlite:")) {
      return null;
    }
    String rest = url.substring("jdbc:sqlite:".length());
    if (rest.startsWith("file:")) {
      rest = rest.substring("file:".length());
    }
    int query = rest.indexOf('?');
    if (query >= 0) {
      rest = rest.substring(0, query);
    }
    if (rest.isEmpty() || rest.contains(":memory:")) {
      return null;
    }
    return Path.of(rest);
  }

  private static <T> T await(Future<T> f) {
    try {
      return f.await(DB_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    } catch (java.util.concurrent.TimeoutException e) {
      throw new Failure("the database did not answer within " + DB_TIMEOUT_SECONDS + " s");
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new Failure("interrupted");
    }
  }

  private static String seconds(long millis) {
    return millis % 1000 == 0 ? (millis / 1000) + " s" : String.format(Locale.ROOT, "%.1f s", millis / 1000.0);
  }

  private static String pad(String s, int width) {
    return s.length() >= width ? s : s + " ".repeat(width - s.length());
  }

  /** Names come from the database: control characters never reach the terminal. */
  static String printable(String s) {
    if (s == null) {
      return "";
    }
    StringBuilder b = new StringBuilder(s.length());
    s.codePoints().forEach(c -> b.appendCodePoint(Character.isISOControl(c) ? '?' : c));
    return b.toString();
  }

  /** The first line of the deepest useful message (config errors, SQL errors). */
  private static String oneLine(Throwable e) {
    Throwable t = e;
    while ((t instanceof java.util.concurrent.CompletionException || t.getMessage() == null) && t.getCause() != null) {
      t = t.getCause();
    }
    if (t instanceof ConfigException) {
      return t.getMessage();
    }
    String m = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
    return m.strip().replaceAll("\\s*\\R\\s*", " ");
  }

  /**
   * The commands print their results on stdout: the server's log lines (stdout by default) would
   * mix in. Only warnings and errors are logged, and to stderr.
   */
  private static void quietLogging() {
    if (LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME) instanceof ch.qos.logback.classic.Logger root) {
      root.setLevel(ch.qos.logback.classic.Level.WARN);
      root.iteratorForAppenders().forEachRemaining(a -> {
        if (a instanceof ch.qos.logback.core.ConsoleAppender<?> console) {
          console.stop();
          console.setTarget("System.err");
          console.start();
        }
      });
    }
  }
}
