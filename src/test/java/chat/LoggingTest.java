package chat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.IThrowableProxy;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import ch.qos.logback.core.read.ListAppender;
import chat.config.ChatConfig;
import chat.support.Http;
import chat.support.LineClient;
import chat.support.ServerProcess;
import chat.support.SqliteFile;
import chat.support.TestServer;
import io.vertx.core.Vertx;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * What the server logs: never a password or a token, whatever happens; the lines an operator
 * needs; {@code log.format=json} and {@code log.level} in the real process; a masked database URL.
 */
@ExtendWith(VertxExtension.class)
class LoggingTest {

  private static final Duration STARTUP = Duration.ofSeconds(60);

  private static final String PW_ALICE = "Alice-Secret-pw-4f1e9c";
  private static final String PW_BOB = "Bob-Secret-pw-77ad02";
  private static final String PW_WRONG = "Wrong-Secret-pw-c3b5e8";
  private static final String PW_CAROL = "Carol-Secret-pw-90aa1d";
  private static final String PW_HTTP_WRONG = "Http-Wrong-pw-5e21b7";
  /** A made-up token a client might send: as secret as a real one. */
  private static final String FORGED_TOKEN = "f00df00df00df00df00df00df00df00d";

  /** Holds the data folder and, beside it, the server processes' output files. */
  @TempDir
  Path root;
  private Path dir;
  private Vertx vertx;
  private TestServer server;
  private final List<AutoCloseable> closeables = new ArrayList<>();

  private ch.qos.logback.classic.Logger rootLogger;
  private Level rootLevel;
  private ListAppender<ILoggingEvent> captured;

  @BeforeEach
  void init(Vertx vertx) throws IOException {
    this.vertx = vertx;
    dir = Files.createDirectory(root.resolve("data"));
  }

  @AfterEach
  void stop() throws Exception {
    for (AutoCloseable c : closeables) {
      c.close();
    }
    if (server != null) {
      server.close();
    }
    if (captured != null) {
      rootLogger.detachAppender(captured);
      captured.stop();
      rootLogger.setLevel(rootLevel);
    }
  }

  /** Captures every event of every logger from now on, at DEBUG and above (what an operator may turn on). */
  private void captureLogs() {
    rootLogger = (ch.qos.logback.classic.Logger) LoggerFactory.getLogger(Logger.ROOT_LOGGER_NAME);
    rootLevel = rootLogger.getLevel();
    rootLogger.setLevel(Level.DEBUG);
    captured = new ListAppender<>();
    captured.setContext(rootLogger.getLoggerContext());
    captured.start();
    rootLogger.addAppender(captured);
  }

  /** Everything an appender could write of an event: message, arguments, throwable with causes, MDC, key-value pairs. */
  private static String fullText(ILoggingEvent e) {
    StringBuilder b = new StringBuilder();
    b.append(e.getFormattedMessage()).append('\n').append(e.getMessage()).append('\n');
    if (e.getArgumentArray() != null) {
      for (Object a : e.getArgumentArray()) {
        b.append(a).append('\n');
      }
    }
    IThrowableProxy t = e.getThrowableProxy();
    if (t != null) {
      b.append(ThrowableProxyUtil.asString(t)).append('\n');
    }
    b.append(e.getMDCPropertyMap()).append('\n');
    if (e.getKeyValuePairs() != null) {
      b.append(e.getKeyValuePairs()).append('\n');
    }
    return b.toString();
  }

  private List<ILoggingEvent> events() {
    synchronized (captured.list) {
      return new ArrayList<>(captured.list);
    }
  }

  private LineClient connect() {
    LineClient c = server.connect();
    closeables.add(c);
    return c;
  }

  private static JsonObject login(String user, String password) {
    return new JsonObject().put("type", "login").put("username", user).put("password", password);
  }

  private static String chat(String token, String message) {
    return new JsonObject().put("type", "chat").put("token", token).put("message", message).encode();
  }

  // ---- in-process: secrets ----

  @Test
  @DisplayName("no password and no token ever reaches the log, through registrations, logins, resumes, chats, heartbeats and database errors")
  void secretsAreNeverLogged() throws Exception {
    captureLogs();
    server = TestServer.start(vertx, dir);
    Http http = server.http();
    List<String> tokens = new ArrayList<>();

    // registrations over TCP and HTTP, and logins of both kinds
    LineClient a1 = connect();
    tokens.add(a1.registerAndLogin("alice", PW_ALICE));
    http.register("bob", PW_BOB);
    String bobHttp = http.login("bob", PW_BOB);
    tokens.add(bobHttp);

    // wrong passwords, a refused second session, a forged token
    LineClient a2 = connect();
    a2.send(login("alice", PW_WRONG));
    a2.expect("{\"type\":\"login\",\"status\":\"error_0\",\"message\":\"Invalid credentials\"}");
    assertEquals(401, http.post("/api/login", login("bob", PW_HTTP_WRONG).encode()).status());
    a2.send(login("alice", PW_ALICE));
    a2.expect("{\"type\":\"login\",\"status\":\"error_-1\",\"message\":\"Account already logged in\"}");
    a2.send(new JsonObject().put("type", "login").put("token", FORGED_TOKEN));
    a2.expect("{\"type\":\"login\",\"status\":\"error_It\",\"message\":\"Invalid token\"}");
    a2.send(chat(FORGED_TOKEN, "forged"));
    a2.expect("{\"type\":\"chat\",\"status\":\"error_It\",\"message\":\"Invalid token\"}");

    // chats and heartbeats over TCP, chats over HTTP with both header forms and a forged token
    a1.send(chat(tokens.get(0), "hello from alice"));
    a1.readSkippingPings();
    a1.readSkippingPings();
    a1.send(new JsonObject().put("type", "heartbeat").put("token", tokens.get(0)));
    assertEquals("{\"type\":\"heartbeat\",\"status\":\"success\"}", a1.readSkippingPings().encode());
    assertEquals(200, http.post("/api/chat", "{\"message\":\"plain header\"}", "Authorization", bobHttp).status());
    assertEquals(200, http.post("/api/chat", "{\"message\":\"bearer header\"}", "Authorization", "Bearer " + bobHttp).status());
    assertEquals(401, http.post("/api/chat", "{\"message\":\"forged\"}", "Authorization", FORGED_TOKEN).status());
    assertEquals(400, http.post("/api/chat", "not json", "Authorization", bobHttp).status());

    // alice leaves and comes back with her token (resume); bob takes a socket session with his password
    a1.close();
    LineClient a3 = connect();
    JsonObject resumed = null;
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (System.nanoTime() < deadline) {
      a3.send(new JsonObject().put("type", "login").put("token", tokens.get(0)));
      resumed = a3.readSkippingPings();
      if (!"error_-1".equals(resumed.getString("status"))) {
        break;
      }
    }
    assertEquals("success", resumed.getString("status"), resumed.encode());
    LineClient b1 = connect();
    tokens.add(b1.login("bob", PW_BOB));
    a3.send(chat(tokens.get(0), "back again"));
    assertEquals(409, http.post("/api/login", login("alice", PW_ALICE).encode()).status());

    // the database breaks: a registration and a login fail on it
    SqliteFile.exec(server.db(), "ALTER TABLE users RENAME TO users_moved");
    LineClient c1 = connect();
    c1.send(new JsonObject().put("type", "register").put("username", "carol").put("password", PW_CAROL));
    c1.expect("{\"type\":\"register_-1\",\"error\":true,\"message\":\"Database error, please try again\"}");
    assertEquals(401, http.post("/api/login", login("bob", PW_BOB).encode()).status());
    assertEquals(500, http.post("/api/register", new JsonObject().put("username", "dave").put("password", PW_CAROL).encode())
        .status());

    for (AutoCloseable c : closeables) {
      c.close();
    }
    closeables.clear();
    server.close();
    server = null;

    List<ILoggingEvent> events = events();
    List<String> secrets = new ArrayList<>(List.of(PW_ALICE, PW_BOB, PW_WRONG, PW_CAROL, PW_HTTP_WRONG, FORGED_TOKEN));
    secrets.addAll(tokens);
    secrets.add(resumed.getString("token"));
    for (ILoggingEvent e : events) {
      String text = fullText(e);
      for (String secret : secrets) {
        if (text.contains(secret)) {
          fail("a secret reached the log: " + e.getLevel() + " " + e.getLoggerName() + " - " + text);
        }
      }
    }

    // and the log is useful
    List<String> lines = events.stream().map(ILoggingEvent::getFormattedMessage).toList();
    for (String expected : List.of("Registered user alice", "Registered user bob", "User alice logged in",
        "User bob logged in over HTTP", "User bob logged in")) {
      assertTrue(lines.contains(expected), () -> "no line '" + expected + "' in\n" + String.join("\n", lines));
    }
    for (String expected : List.of("Registration failed on the database: ", "Login failed unexpectedly: ")) {
      assertTrue(lines.stream().anyMatch(l -> l.startsWith(expected) && l.contains("users")),
          () -> "no line '" + expected + "...' naming the failure in\n" + String.join("\n", lines));
    }
  }

  // ---- as a process ----

  private static Map<String, String> testEnv() {
    Map<String, String> env = new HashMap<>();
    env.put("CHAT_HTTP_PORT", "0");
    env.put("CHAT_TCP_PORT", "0");
    env.put("CHAT_AUTH_HASHCOST", "low");
    env.put("CHAT_HOST", "127.0.0.1");
    return env;
  }

  private ServerProcess start(Map<String, String> env) {
    ServerProcess p = ServerProcess.start(dir, root, env);
    closeables.add(p);
    return p;
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static JsonObject parseJsonLine(String line, ServerProcess p) {
    try {
      return new JsonObject(line);
    } catch (DecodeException e) {
      throw new AssertionError("not a JSON object: '" + line + "'\n" + p.transcript());
    }
  }

  /** SIGTERM and a clean exit, so the shutdown lines are written too. */
  private static void stopCleanly(ServerProcess p) {
    p.terminate();
    assertEquals(0, p.awaitExit(Duration.ofSeconds(30)), p.transcript());
  }

  @Test
  @DisplayName("log.format=json: every line the process writes is a JSON object with level, loggerName and formattedMessage")
  void jsonFormat() {
    Map<String, String> env = testEnv();
    env.put("CHAT_LOG_FORMAT", "json");
    ServerProcess p = start(env);
    ServerProcess.Ports ports = p.awaitListening(STARTUP);
    try (LineClient c = new LineClient(ports.tcp())) {
      c.registerAndLogin("jason", "pw-jason");
    }
    stopCleanly(p);

    List<String> out = p.stdout();
    List<JsonObject> lines = new ArrayList<>();
    for (String line : out) {
      JsonObject o = parseJsonLine(line, p);
      for (String key : List.of("level", "loggerName", "formattedMessage")) {
        assertTrue(o.getValue(key) instanceof String, () -> "no string '" + key + "' in " + line);
      }
      lines.add(o);
    }
    JsonObject startup = lines.stream()
        .filter(o -> o.getString("formattedMessage").startsWith("Chat server listening: HTTP port " + ports.http()
            + ", TCP port " + ports.tcp() + " ("))
        .findFirst().orElseThrow(() -> new AssertionError("no startup line\n" + p.transcript()));
    assertEquals("INFO", startup.getString("level"));
    assertEquals("chat.Main", startup.getString("loggerName"));
    assertTrue(lines.stream().anyMatch(o -> o.getString("formattedMessage").equals("Registered user jason")), p.transcript());
    assertTrue(lines.stream().anyMatch(o -> o.getString("formattedMessage").equals("Stopped")), p.transcript());
    assertTrue(p.stderr().isEmpty(), p.transcript());
  }

  @Test
  @DisplayName("log.level=WARN hides the INFO lines and keeps the warnings")
  void warnLevelHidesInfo() throws Exception {
    // the startup line is INFO, so it cannot tell the ports: pick free ones
    int httpPort = freePort();
    int tcpPort = freePort();
    Map<String, String> env = testEnv();
    env.put("CHAT_LOG_FORMAT", "json");
    env.put("CHAT_LOG_LEVEL", "WARN");
    env.put("CHAT_HTTP_PORT", Integer.toString(httpPort));
    env.put("CHAT_TCP_PORT", Integer.toString(tcpPort));
    ServerProcess p = start(env);
    Http http = new Http(httpPort);
    long deadline = System.nanoTime() + STARTUP.toNanos();
    int status = 0;
    while (status != 200) {
      assertTrue(p.process().isAlive(), p::transcript);
      assertTrue(System.nanoTime() < deadline, () -> "not ready within " + STARTUP + "\n" + p.transcript());
      try {
        status = http.get("/health/ready").status();
      } catch (RuntimeException notYet) {
        Thread.sleep(50);
      }
    }
    try (LineClient c = new LineClient(tcpPort)) {
      c.registerAndLogin("quiet", "pw-quiet");
    }
    stopCleanly(p);

    List<JsonObject> lines = p.stdout().stream().map(l -> parseJsonLine(l, p)).toList();
    for (JsonObject o : lines) {
      assertTrue(List.of("WARN", "ERROR").contains(o.getString("level")), () -> "below WARN: " + o.encode());
    }
    assertTrue(lines.stream().anyMatch(o -> o.getString("formattedMessage").startsWith("auth.hashCost is 'low'")),
        () -> "the hashCost warning is missing\n" + p.transcript());
  }

  @Test
  @DisplayName("an unknown log.format stops startup with exit 2 and one error line naming log.format")
  void invalidLogFormat() {
    Map<String, String> env = testEnv();
    env.put("CHAT_LOG_FORMAT", "xml");
    ServerProcess p = start(env);
    assertEquals(2, p.awaitExit(Duration.ofSeconds(30)), p.transcript());
    List<String> err = p.stderr().stream().filter(l -> !l.isBlank()).toList();
    assertEquals(1, err.size(), p::transcript);
    assertTrue(err.get(0).contains("log.format") && err.get(0).contains("xml"), err.get(0));
    assertTrue(p.stdout().stream().noneMatch(l -> ServerProcess.LISTENING.matcher(l).find()), p.transcript());
    assertFalse(Files.exists(dir.resolve("usr.db")), "no database for a bad configuration");
  }

  @Test
  @DisplayName("an unknown log.level stops startup with exit 2 and one error line naming log.level")
  void invalidLogLevel() {
    Map<String, String> env = testEnv();
    env.put("CHAT_LOG_LEVEL", "LOUD");
    ServerProcess p = start(env);
    assertEquals(2, p.awaitExit(Duration.ofSeconds(30)), p.transcript());
    List<String> err = p.stderr().stream().filter(l -> !l.isBlank()).toList();
    assertEquals(1, err.size(), p::transcript);
    assertTrue(err.get(0).contains("log.level") && err.get(0).contains("LOUD"), err.get(0));
  }

  @Test
  @DisplayName("the startup line names the version, the host, the database, 'cluster off' and 'metrics on' (or off)")
  void startupLineNamesTheSettings() {
    ServerProcess on = start(testEnv());
    String line = on.awaitListening(STARTUP).line();
    assertTrue(line.contains("(version " + Main.version() + ", host 127.0.0.1, database jdbc:sqlite:usr.db, cluster off, "),
        line);
    assertTrue(line.matches(".*, \\d+ event loops, transport (epoll|nio), metrics on, started in \\d+ ms\\)$"), line);
    stopCleanly(on);

    Map<String, String> env = testEnv();
    env.put("CHAT_METRICS_ENABLED", "false");
    ServerProcess off = start(env);
    String offLine = off.awaitListening(STARTUP).line();
    assertTrue(offLine.contains(", metrics off, started in "), offLine);
    stopCleanly(off);
  }

  @Test
  @DisplayName("a password in db.url is masked in the startup line and appears nowhere in the output")
  void databasePasswordIsMasked() {
    Map<String, String> env = testEnv();
    env.put("CHAT_DB_URL", "jdbc:sqlite:usr.db?password=hunter2");
    ServerProcess p = start(env);
    ServerProcess.Ports ports = p.awaitListening(STARTUP);
    assertTrue(ports.line().contains("database jdbc:sqlite:usr.db?password=******,"), ports.line());
    try (LineClient c = new LineClient(ports.tcp())) {
      c.registerAndLogin("masked", "pw-masked");
    }
    stopCleanly(p);
    assertTrue(Files.exists(dir.resolve("usr.db")), "sqlite-jdbc takes the query part as settings, not as the file name");
    String all = p.transcript();
    assertFalse(all.contains("hunter2"), all);
  }

  @Test
  @DisplayName("a database URL that fails at startup is not logged with its password either")
  void databasePasswordIsMaskedWhenStartupFails() {
    Map<String, String> env = testEnv();
    env.put("CHAT_DB_URL", "jdbc:sqlite:no/such/folder/usr.db?password=hunter2");
    ServerProcess p = start(env);
    assertEquals(1, p.awaitExit(Duration.ofSeconds(60)), p.transcript());
    assertTrue(p.stdout().stream().anyMatch(l -> l.contains("Startup failed")), p.transcript());
    assertFalse(p.transcript().contains("hunter2"), p.transcript());
  }

  @Test
  @DisplayName("ChatConfig.safeDbUrl masks password=... (any case, up to & or ;) and user:pass@, and leaves the rest")
  void safeDbUrlMasks() {
    // URLs the server runs on: through the configuration
    Map<String, String> cases = Map.of(
        "jdbc:sqlite:usr.db?password=hunter2", "jdbc:sqlite:usr.db?password=******",
        "jdbc:postgresql://db:5432/chat?user=chat&password=hunter2&ssl=true",
        "jdbc:postgresql://db:5432/chat?user=chat&password=******&ssl=true",
        "jdbc:postgresql://db:5432/chat?user=chat&PASSWORD=hunter2", "jdbc:postgresql://db:5432/chat?user=chat&PASSWORD=******",
        "jdbc:postgresql://db:5432/chat?sslmode=verify-full&sslpassword=hunter2&password=hunter2",
        "jdbc:postgresql://db:5432/chat?sslmode=verify-full&sslpassword=******&password=******",
        "jdbc:postgresql://db1:5432,db2:5432/chat?password=hunter2", "jdbc:postgresql://db1:5432,db2:5432/chat?password=******",
        "jdbc:sqlite:usr.db", "jdbc:sqlite:usr.db");
    cases.forEach((url, masked) -> {
      ChatConfig config = ChatConfig.withOverrides(new JsonObject().put("db.url", url));
      assertEquals(masked, config.safeDbUrl(), url);
    });
    // the masking itself, on other databases' URL forms (the configuration refuses those databases)
    assertEquals("jdbc:sqlserver://db:1433;user=chat;Password=******;encrypt=true",
        ChatConfig.maskDbUrl("jdbc:sqlserver://db:1433;user=chat;Password=hunter2;encrypt=true"));
    assertEquals("jdbc:mysql://chat:******@db:3306/chat", ChatConfig.maskDbUrl("jdbc:mysql://chat:hunter2@db:3306/chat"));
    ChatConfig withPassword = ChatConfig.withOverrides(new JsonObject().put("db.password", "hunter2"));
    assertFalse(withPassword.describe().toString().contains("hunter2"), withPassword.describe().toString());
  }
}
