package chat;

import chat.support.Http;
import chat.support.LineClient;
import chat.support.ServerProcess;
import chat.support.SqliteFile;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The server as its own JVM, as it is deployed: {@code chat.Main} in the data folder. */
class ProcessTest {

  private static final Duration STARTUP = Duration.ofSeconds(60);
  private static final String CREATED = "{\"type\":\"register_1\",\"error\":false,\"message\":\"User registered successfully\"}";

  /** Holds the data folder and, beside it, the server's output files. */
  @TempDir
  Path root;
  /** The data folder: the server's working directory. */
  Path dir;
  private final List<ServerProcess> processes = new ArrayList<>();

  @BeforeEach
  void dataFolder() throws IOException {
    dir = Files.createDirectory(root.resolve("data"));
  }

  @AfterEach
  void destroyAll() {
    for (ServerProcess p : processes) {
      p.close();
    }
  }

  private static Map<String, String> testEnv() {
    Map<String, String> env = new HashMap<>();
    env.put("CHAT_HTTP_PORT", "0");
    env.put("CHAT_TCP_PORT", "0");
    env.put("CHAT_AUTH_HASHCOST", "low");
    env.put("CHAT_HOST", "127.0.0.1");
    return env;
  }

  private ServerProcess start(Map<String, String> env, String... args) {
    ServerProcess p = ServerProcess.start(dir, root, env, args);
    processes.add(p);
    return p;
  }

  private static JsonObject register(LineClient c, String user, String password) {
    c.send(new JsonObject().put("type", "register").put("username", user).put("password", password));
    return c.read();
  }

  private static void assertRefused(int port) {
    assertThrows(ConnectException.class, () -> {
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", port), 2000);
      }
    }, "port " + port + " still accepts connections");
  }

  /** Exit code 2 and exactly one non-blank stderr line, which must contain every fragment; no server started. */
  private void assertConfigError(ServerProcess p, String... fragments) {
    int code = p.awaitExit(Duration.ofSeconds(30));
    List<String> err = p.stderr().stream().filter(l -> !l.isBlank()).toList();
    assertEquals(2, code, p.transcript());
    assertEquals(1, err.size(), () -> "expected one error line\n" + p.transcript());
    for (String f : fragments) {
      assertTrue(err.get(0).contains(f), () -> "error line does not name '" + f + "': " + err.get(0));
    }
    assertTrue(p.stdout().stream().noneMatch(l -> ServerProcess.LISTENING.matcher(l).find()), p.transcript());
    assertFalse(Files.exists(dir.resolve("usr.db")), "no database is created for a bad configuration");
  }

  @Test
  @DisplayName("the startup line names the really bound HTTP and TCP ports, and both answer")
  void startupLineNamesRealPorts() throws Exception {
    ServerProcess p = start(testEnv());
    ServerProcess.Ports ports = p.awaitListening(STARTUP);
    Matcher took = Pattern.compile("started in (\\d+) ms").matcher(ports.line());
    System.out.println("[figures] process start to listening line: " + ports.millisToLine() + " ms; server reports "
        + (took.find() ? took.group(1) + " ms" : "?") + " | " + ports.line());
    assertTrue(ports.http() > 0 && ports.tcp() > 0, ports.line());
    assertNotEquals(ports.http(), ports.tcp());
    assertNotEquals(5001, ports.http(), "the default port, not the configured 0");
    assertNotEquals(8889, ports.tcp(), "the default port, not the configured 0");

    try (LineClient c = new LineClient(ports.tcp())) {
      String token = c.registerAndLogin("procuser", "proc-pw");
      assertTrue(token.matches("[0-9a-f]{32}"));
    }
    Http http = new Http(ports.http());
    String token = http.login("procuser", "proc-pw");
    Http.Response chat = http.post("/api/chat", "{\"message\":\"hi from http\"}", "Authorization", token);
    assertEquals(200, chat.status(), chat.body());
    assertEquals("{\"type\":\"chat\",\"status\":\"success\"}", chat.body());

    // the ports were this process's: after it dies nothing listens there
    p.kill();
    assertRefused(ports.tcp());
    assertRefused(ports.http());
  }

  @Test
  @DisplayName("a running server keeps no vertx-cache folder in the temporary directory: a kill -9 leaves none behind")
  void noVertxCacheFolder() throws Exception {
    ServerProcess p = start(testEnv());
    ServerProcess.Ports ports = p.awaitListening(STARTUP);
    // Vert.x made its cache folder at startup; a registration (the user's avatar folder, made through
    // Vert.x's file system under the relative avatar/) and an avatar request use the file system too
    try (LineClient c = new LineClient(ports.tcp())) {
      c.registerAndLogin("cacheuser", "cache-pw");
    }
    assertEquals(200, new Http(ports.http()).get("/avatar/cacheuser/default_avatar.png").status());

    p.kill();
    try (var entries = Files.list(p.tempDir())) {
      List<String> caches = entries.map(e -> e.getFileName().toString()).filter(n -> n.startsWith("vertx-cache")).toList();
      assertEquals(List.of(), caches, "Vert.x cache folders in " + p.tempDir());
    }
  }

  @Test
  @DisplayName("the working directory is the data folder: usr.db and avatar/ with the default avatar appear there")
  void dataFolderIsWorkingDirectory() throws Exception {
    ServerProcess p = start(testEnv());
    ServerProcess.Ports ports = p.awaitListening(STARTUP);

    assertTrue(Files.isRegularFile(dir.resolve("usr.db")), "usr.db in the working directory");
    Path defaultAvatar = dir.resolve("avatar/default/default_avatar.png");
    assertTrue(Files.isRegularFile(defaultAvatar), "avatar/default/default_avatar.png in the working directory");
    byte[] shipped;
    try (InputStream in = getClass().getClassLoader().getResourceAsStream("avatar/default_avatar.png")) {
      shipped = in.readAllBytes();
    }
    assertArrayEquals(shipped, Files.readAllBytes(defaultAvatar));

    try (LineClient c = new LineClient(ports.tcp())) {
      assertEquals(CREATED, register(c, "carol", "carol-pw").encode());
    }
    assertTrue(Files.isDirectory(dir.resolve("avatar/carol")), "the user's avatar folder is under the working directory");
    assertEquals(1, SqliteFile.query(dir.resolve("usr.db"), "SELECT name FROM users WHERE name = 'carol'").size());
    Http.Response avatar = new Http(ports.http()).get("/avatar/carol/not-uploaded.png");
    assertEquals(200, avatar.status());
    assertArrayEquals(shipped, avatar.raw().body(), "the default avatar is served from the working directory");
  }

  @Test
  @DisplayName("kill -9 right after register_1 loses nothing: the users are in usr.db and log in after a restart")
  void killNineAfterRegisterLosesNothing() throws Exception {
    ServerProcess p = start(testEnv());
    ServerProcess.Ports ports = p.awaitListening(STARTUP);
    Http.Response viaHttp = new Http(ports.http()).post("/api/register",
        new JsonObject().put("username", "durable0").put("password", "durable-pw-0").encode());
    assertEquals(200, viaHttp.status(), viaHttp.body());
    try (LineClient c = new LineClient(ports.tcp())) {
      for (int i = 1; i <= 4; i++) {
        assertEquals(CREATED, register(c, "durable" + i, "durable-pw-" + i).encode());
      }
      c.send(new JsonObject().put("type", "register").put("username", "durable5").put("password", "durable-pw-5"));
      String reply = c.readLine();
      p.process().destroyForcibly(); // SIGKILL, the moment the reply is in
      assertEquals(CREATED, reply);
    }
    p.awaitExit(Duration.ofSeconds(30));
    assertNotEquals(0, p.process().exitValue(), "killed, not stopped");

    Path db = dir.resolve("usr.db");
    for (int i = 0; i <= 5; i++) {
      List<Map<String, Object>> rows = SqliteFile.query(db, "SELECT passwd FROM users WHERE name = ?", "durable" + i);
      assertEquals(1, rows.size(), "durable" + i + " lost by kill -9");
      assertTrue(((String) rows.get(0).get("passwd")).startsWith("$argon2id$"));
    }

    ServerProcess again = start(testEnv());
    ServerProcess.Ports ports2 = again.awaitListening(STARTUP);
    try (LineClient c = new LineClient(ports2.tcp())) {
      c.login("durable5", "durable-pw-5");
    }
    Http http = new Http(ports2.http());
    for (int i = 0; i <= 4; i++) {
      http.login("durable" + i, "durable-pw-" + i);
    }
  }

  @Test
  @DisplayName("SIGTERM stops the server with exit code 0 within 10 s, closing client connections")
  void sigtermStopsCleanly() throws Exception {
    ServerProcess p = start(testEnv());
    ServerProcess.Ports ports = p.awaitListening(STARTUP);
    try (LineClient c = new LineClient(ports.tcp())) {
      c.registerAndLogin("leaver", "leaver-pw");
      long t0 = System.nanoTime();
      p.terminate();
      int code = p.awaitExit(Duration.ofSeconds(10));
      System.out.println("[figures] SIGTERM to exit: " + (System.nanoTime() - t0) / 1_000_000 + " ms");
      assertEquals(0, code, p.transcript());
      c.expectClosed();
    }
    assertRefused(ports.tcp());
    assertTrue(p.stdout().stream().anyMatch(l -> l.contains("Shutting down")), p.transcript());
    assertTrue(p.stdout().stream().anyMatch(l -> l.contains("Stopped")), p.transcript());
  }

  @Test
  @DisplayName("SIGTERM sent the moment the listening line appears still gives exit code 0")
  void sigtermRightAfterListeningLine() {
    ServerProcess p = start(testEnv());
    p.awaitListening(STARTUP);
    p.terminate();
    int code = p.awaitExit(Duration.ofSeconds(10));
    assertEquals(0, code, p.transcript());
  }

  @Test
  @DisplayName("a non-numeric CHAT_TCP_PORT exits with code 2 and one error line naming the variable and key")
  void badEnvValue() {
    Map<String, String> env = testEnv();
    env.put("CHAT_TCP_PORT", "abc");
    assertConfigError(start(env), "CHAT_TCP_PORT", "tcp.port");
  }

  @Test
  @DisplayName("an out-of-range port in the environment exits with code 2 naming the key")
  void outOfRangeEnvValue() {
    Map<String, String> env = testEnv();
    env.put("CHAT_HTTP_PORT", "70000");
    assertConfigError(start(env), "http.port");
  }

  @Test
  @DisplayName("a --conf file with an unknown key exits with code 2 and one error line naming the key")
  void unknownKeyInConfFile() throws Exception {
    Path conf = Files.writeString(dir.resolve("bad.json"), "{\"tcp\": {\"prot\": 9000}}");
    assertConfigError(start(testEnv(), "--conf", conf.toString()), "tcp.prot");
  }

  @Test
  @DisplayName("a missing --conf file exits with code 2 and one error line naming the file")
  void missingConfFile() {
    assertConfigError(start(testEnv(), "--conf", dir.resolve("nowhere.json").toString()), "nowhere.json");
  }

  @Test
  @DisplayName("a malformed --conf file exits with code 2 and one error line naming the file")
  void malformedConfFile() throws Exception {
    Path conf = Files.writeString(dir.resolve("broken.json"), "{\"tcp\": {\"port\": 0,,}");
    assertConfigError(start(testEnv(), "--conf=" + conf), "broken.json");
  }

  @Test
  @DisplayName("an unknown command-line argument exits with code 2 and one usage line")
  void unknownArgument() {
    assertConfigError(start(testEnv(), "--confg", "x.json"), "--confg");
  }

  @Test
  @DisplayName("a usr.db that is not a SQLite database makes startup fail with exit code 1, without listening")
  void corruptDatabaseFailsStartup() throws Exception {
    Files.writeString(dir.resolve("usr.db"), "this is not a database, just text that is long enough to look like a header ".repeat(20));
    ServerProcess p = start(testEnv());
    int code = p.awaitExit(Duration.ofSeconds(60));
    assertEquals(1, code, p.transcript());
    assertTrue(p.stdout().stream().noneMatch(l -> ServerProcess.LISTENING.matcher(l).find()), p.transcript());
    assertTrue(p.transcript().contains("Startup failed"), p.transcript());
  }

  @Test
  @DisplayName("--conf FILE values are used and environment variables override them")
  void confFileThenEnv() throws Exception {
    Path conf = Files.writeString(dir.resolve("server.json"), """
        {"host": "127.0.0.1",
         "http": {"port": 1},
         "tcp": {"port": 0},
         "db": {"url": "jdbc:sqlite:fromfile.db"},
         "avatar": {"dir": "file-avatars"},
         "auth": {"hashCost": "low"}}""");
    Map<String, String> env = new HashMap<>();
    env.put("CHAT_HTTP_PORT", "0");               // beats the file's 1
    env.put("CHAT_AVATAR_DIR", "env-avatars");    // beats the file's file-avatars
    ServerProcess p = start(env, "--conf", conf.toString());
    ServerProcess.Ports ports = p.awaitListening(STARTUP);

    // file over defaults: tcp.port 0 instead of 8889, db.url, hashCost
    assertNotEquals(8889, ports.tcp());
    assertTrue(ports.line().contains("jdbc:sqlite:fromfile.db"), ports.line());
    assertTrue(Files.isRegularFile(dir.resolve("fromfile.db")));
    assertFalse(Files.exists(dir.resolve("usr.db")), "the default db.url was not used");
    // env over file
    assertNotEquals(1, ports.http());
    assertTrue(Files.isRegularFile(dir.resolve("env-avatars/default/default_avatar.png")));
    assertFalse(Files.exists(dir.resolve("file-avatars")), "the file's avatar.dir was overridden");

    try (LineClient c = new LineClient(ports.tcp())) {
      assertEquals(CREATED, register(c, "layered", "layered-pw").encode());
    }
    String hash = (String) SqliteFile.query(dir.resolve("fromfile.db"),
        "SELECT passwd FROM users WHERE name = 'layered'").get(0).get("passwd");
    assertTrue(hash.startsWith("$argon2id$v=19$m=256,t=1,p=1$"), "auth.hashCost=low from the file: " + hash);
    assertTrue(Files.isDirectory(dir.resolve("env-avatars/layered")));
    new Http(ports.http()).login("layered", "layered-pw");
  }

  @Test
  @DisplayName("without CHAT_AUTH_HASHCOST the production Argon2id cost is used")
  void productionHashCostByDefault() throws Exception {
    Map<String, String> env = testEnv();
    env.remove("CHAT_AUTH_HASHCOST");
    ServerProcess p = start(env);
    ServerProcess.Ports ports = p.awaitListening(STARTUP);
    try (LineClient c = new LineClient(ports.tcp())) {
      assertEquals(CREATED, register(c, "strong", "strong-pw").encode());
    }
    String hash = (String) SqliteFile.query(dir.resolve("usr.db"),
        "SELECT passwd FROM users WHERE name = 'strong'").get(0).get("passwd");
    assertTrue(hash.startsWith("$argon2id$v=19$m=19456,t=2,p=1$"), hash);
  }
}
