package chat;

import chat.support.Http;
import chat.support.Https;
import chat.support.LineClient;
import chat.support.RawClientHello;
import chat.support.SelfSignedCert;
import chat.support.ServerProcess;
import chat.support.TestServer;
import chat.support.TlsLineClient;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import javax.net.ssl.SSLSocket;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * TLS on both listeners, with a self-signed certificate the test makes itself: the TCP protocol
 * over TLS is byte for byte the plain one and shares the room with plain clients; HTTPS; TLS-only
 * mode; what a plain-text or TLS 1.1 client gets; bad PEM files stop startup.
 */
@ExtendWith(VertxExtension.class)
class TlsTest {

  private static final String CREATED = "{\"type\":\"register_1\",\"error\":false,\"message\":\"User registered successfully\"}";
  private static final String CHAT_OK = "{\"type\":\"chat\",\"status\":\"success\"}";
  private static final Duration STARTUP = Duration.ofSeconds(60);

  @TempDir
  Path dir;
  Vertx vertx;
  SelfSignedCert cert;
  private final List<TestServer> servers = new ArrayList<>();
  private final List<ServerProcess> processes = new ArrayList<>();

  @BeforeEach
  void setUp(Vertx vertx) {
    this.vertx = vertx;
    cert = SelfSignedCert.create(dir, "server");
  }

  @AfterEach
  void tearDown() {
    servers.forEach(TestServer::close);
    processes.forEach(ServerProcess::close);
  }

  private JsonObject tlsOn() {
    return new JsonObject()
        .put("tls.enabled", true)
        .put("tls.certFile", cert.certFile().toString())
        .put("tls.keyFile", cert.keyFile().toString())
        .put("tls.httpPort", 0)
        .put("tls.tcpPort", 0);
  }

  private TestServer start(JsonObject overrides) {
    TestServer s = TestServer.start(vertx, Files.exists(dir.resolve("data")) ? dir.resolve("data") : mkdir("data"),
        overrides);
    servers.add(s);
    return s;
  }

  private Path mkdir(String name) {
    try {
      return Files.createDirectories(dir.resolve(name));
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String loginLine(String user) {
    return "\\{\"type\":\"login\",\"status\":\"success\",\"message\":\"Login successful\",\"token\":\"[0-9a-f]{32}\","
        + "\"username\":\"" + user + "\",\"avatar\":\"/avatar/" + user + "/default_avatar.png\"}";
  }

  private static String broadcastLine(String user, String message) {
    return "\\{\"type\":\"chat\",\"user\":\"" + user + "\",\"message\":\"" + message + "\",\"avatar\":\"/avatar/" + user
        + "/default_avatar.png\",\"ts\":\\d+}";
  }

  private static String chat(String token, String message) {
    return new JsonObject().put("type", "chat").put("token", token).put("message", message).encode() + "\n";
  }

  @Test
  @DisplayName("a TLS TCP client registers, logs in and chats with the exact plain-text lines; a plain client in the same room sees it, and the other way round")
  void tlsAndPlainClientsShareOneRoom() {
    TestServer s = start(tlsOn());
    ChatServer server = s.server;
    assertTrue(server.tlsTcpPort() > 0 && server.tlsHttpPort() > 0, "TLS ports bound");
    assertTrue(server.tcpPort() > 0 && server.httpPort() > 0, "plain ports bound too");
    assertEquals(4, List.of(server.tcpPort(), server.httpPort(), server.tlsTcpPort(), server.tlsHttpPort())
        .stream().distinct().count(), "four different ports");

    try (LineClient tls = TlsLineClient.connect(server.tlsTcpPort(), cert.trustingContext());
         LineClient plain = s.connect()) {
      assertTrue(List.of("TLSv1.3", "TLSv1.2").contains(TlsLineClient.protocol(tls)), TlsLineClient.protocol(tls));
      tls.send("{\"type\":\"register\",\"username\":\"tina\",\"password\":\"tls-pw\"}\n").expect(CREATED);
      tls.send("{\"type\":\"login\",\"username\":\"tina\",\"password\":\"tls-pw\"}\n");
      String login = tls.readLine();
      assertTrue(login.matches(loginLine("tina")), login);
      String tinaToken = new JsonObject(login).getString("token");
      String paulToken = plain.registerAndLogin("paul", "plain-pw");

      tls.send(chat(tinaToken, "hello over tls"));
      List<String> tinaGot = List.of(tls.readLine(), tls.readLine());
      assertTrue(tinaGot.contains(CHAT_OK), tinaGot.toString());
      assertTrue(tinaGot.stream().anyMatch(l -> l.matches(broadcastLine("tina", "hello over tls"))), tinaGot.toString());
      String atPaul = plain.readLine();
      assertTrue(atPaul.matches(broadcastLine("tina", "hello over tls")), atPaul);

      plain.send(chat(paulToken, "hello in plain text"));
      List<String> paulGot = List.of(plain.readLine(), plain.readLine());
      assertTrue(paulGot.contains(CHAT_OK), paulGot.toString());
      String atTina = tls.readLine();
      assertTrue(atTina.matches(broadcastLine("paul", "hello in plain text")), atTina);

      // the bytes are the plain protocol's: the same error lines too
      tls.send("[1,2]\n").expect("{\"type\":\"error\",\"status\":\"error\",\"message\":\"Invalid JSON\"}");
      tls.send("{\"type\":\"heartbeat\",\"token\":\"" + tinaToken + "\"}").expect("{\"type\":\"heartbeat\",\"status\":\"success\"}");
    }
  }

  @Test
  @DisplayName("HTTPS register, login and chat with the JDK HttpClient trusting the test certificate; the chat reaches a TLS socket session")
  void httpsRegisterLoginChat() {
    TestServer s = start(tlsOn());
    Https https = new Https(s.server.tlsHttpPort(), cert.trustingContext());
    Http.Response reg = https.post("/api/register", "{\"username\":\"hanna\",\"password\":\"https-pw\"}");
    assertEquals(200, reg.status(), reg.body());
    assertEquals(CREATED, reg.body());
    assertTrue(List.of("TLSv1.3", "TLSv1.2").contains(reg.raw().sslSession().orElseThrow().getProtocol()));

    Http.Response login = https.post("/api/login", "{\"username\":\"hanna\",\"password\":\"https-pw\"}");
    assertEquals(200, login.status(), login.body());
    assertTrue(login.body().matches("\\{\"type\":\"login_1\",\"status\":\"success\",\"token\":\"[0-9a-f]{32}\","
        + "\"avatar\":\"/avatar/hanna/default_avatar.png\"}"), login.body());
    String token = login.json().getString("token");

    try (LineClient listener = TlsLineClient.connect(s.server.tlsTcpPort(), cert.trustingContext())) {
      listener.registerAndLogin("lena", "lena-pw");
      Http.Response chat = https.post("/api/chat", "{\"message\":\"over https\"}", "Authorization", token);
      assertEquals(200, chat.status(), chat.body());
      assertEquals(CHAT_OK, chat.body());
      String got = listener.readLine();
      assertTrue(got.matches(broadcastLine("hanna", "over https")), got);
    }
    // the plain HTTP listener serves the same users
    assertEquals(200, s.http().post("/api/login", "{\"username\":\"hanna\",\"password\":\"https-pw\"}").status());
    assertEquals(200, https.get("/health/ready").status());
  }

  @Test
  @DisplayName("over TLS, a client that closes its sending side after its messages still gets every reply, then the close")
  void tlsHalfClose() throws Exception {
    TestServer s = start(tlsOn());
    try (LineClient c = TlsLineClient.connect(s.server.tlsTcpPort(), cert.trustingContext(), new String[] {"TLSv1.3"})) {
      c.send("{\"type\":\"register\",\"username\":\"halfy\",\"password\":\"pw\"}\n"
          + "{\"type\":\"login\",\"username\":\"halfy\",\"password\":\"pw\"}\n"
          + "{\"type\":\"heartbeat\",\"token\":\"nope\"}\n");
      c.socket().shutdownOutput();
      c.expect(CREATED);
      String login = c.readLine();
      assertTrue(login.matches(loginLine("halfy")), login);
      c.expect("{\"type\":\"heartbeat\",\"status\":\"error\"}");
      c.expectClosed();
    }
  }

  @Test
  @DisplayName("over TLS 1.3, a close_notify with the TCP connection left open also ends the input: the reply, then the close")
  void tlsCloseNotifyWithoutFin() throws Exception {
    TestServer s = start(tlsOn());
    try (Socket plain = new Socket()) {
      plain.connect(new InetSocketAddress("127.0.0.1", s.server.tlsTcpPort()), 5000);
      plain.setSoTimeout(5000);
      // layered without autoClose: shutdownOutput sends close_notify and leaves the TCP side open
      SSLSocket tls = (SSLSocket) cert.trustingContext().getSocketFactory()
          .createSocket(plain, "localhost", s.server.tlsTcpPort(), false);
      tls.setEnabledProtocols(new String[] {"TLSv1.3"});
      tls.startHandshake();
      tls.getOutputStream().write("{\"type\":\"register\",\"username\":\"notify\",\"password\":\"pw\"}"
          .getBytes(StandardCharsets.UTF_8));
      tls.shutdownOutput();
      assertFalse(plain.isOutputShutdown(), "no FIN sent");
      BufferedReader in = new BufferedReader(new InputStreamReader(tls.getInputStream(), StandardCharsets.UTF_8));
      assertEquals(CREATED, in.readLine());
      assertNull(in.readLine(), "the server closes after the reply");
    }
  }

  @Test
  @DisplayName("a plain-text client on the TLS ports gets no JSON and no HTTP reply, and the server stays healthy")
  void plainTextClientOnTlsPorts() throws Exception {
    TestServer s = start(tlsOn());
    String tcpGot = rawExchange(s.server.tlsTcpPort(), "{\"type\":\"register\",\"username\":\"sneaky\",\"password\":\"pw\"}\n");
    assertFalse(tcpGot.contains("\"type\""), "a JSON reply over plain text: " + tcpGot);
    String httpGot = rawExchange(s.server.tlsHttpPort(), "GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assertFalse(httpGot.contains("HTTP/1.1"), "an HTTP reply over plain text: " + httpGot);

    try (LineClient c = TlsLineClient.connect(s.server.tlsTcpPort(), cert.trustingContext())) {
      c.registerAndLogin("honest", "honest-pw");
    }
    try (LineClient c = s.connect()) {
      c.login("honest", "honest-pw");
    }
    assertEquals(200, new Https(s.server.tlsHttpPort(), cert.trustingContext()).get("/health/ready").status());
    assertEquals(0, countOpenTcpLater(s), "no connection left counted");
  }

  /** Waits (bounded) for the open TCP connections to drop to 0 and returns what is left. */
  private static int countOpenTcpLater(TestServer s) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 5000;
    while (s.server.openTcpConnections() != 0 && System.currentTimeMillis() < deadline) {
      Thread.sleep(20);
    }
    return s.server.openTcpConnections();
  }

  /** Sends plain bytes and collects whatever comes back until the server closes (fails if it never does). */
  private static String rawExchange(int port, String text) throws IOException {
    try (Socket raw = new Socket()) {
      raw.connect(new InetSocketAddress("127.0.0.1", port), 5000);
      raw.setSoTimeout(5000);
      raw.getOutputStream().write(text.getBytes(StandardCharsets.UTF_8));
      raw.getOutputStream().flush();
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      InputStream in = raw.getInputStream();
      try {
        int b;
        while ((b = in.read()) != -1) {
          got.write(b);
        }
      } catch (SocketTimeoutException e) {
        fail("the TLS port neither answered nor closed a plain-text client within 5 s");
      } catch (IOException reset) {
        // a reset is a close too
      }
      return got.toString(StandardCharsets.ISO_8859_1);
    }
  }

  @Test
  @DisplayName("TLS 1.2 and 1.3 are accepted; a TLS 1.1 ClientHello gets no ServerHello (checked with raw records, whatever the JDK allows)")
  void onlyTls12AndUp() throws Exception {
    TestServer s = start(tlsOn());
    int port = s.server.tlsTcpPort();
    for (String version : List.of("TLSv1.2", "TLSv1.3")) {
      try (LineClient c = TlsLineClient.connect(port, cert.trustingContext(), new String[] {version})) {
        assertEquals(version, TlsLineClient.protocol(c));
      }
    }
    // the same raw hello, once as TLS 1.2 (a control: the server answers it) and once as TLS 1.1
    byte[] answer12 = firstRecord(port, RawClientHello.bytes(0x0303));
    assertEquals(0x16, answer12[0] & 0xff, "a TLS 1.2 hello gets a handshake record");
    assertEquals(0x02, answer12[5] & 0xff, "... that is a ServerHello");
    byte[] answer11 = firstRecord(port, RawClientHello.bytes(0x0302));
    assertTrue(answer11.length == 0 || (answer11[0] & 0xff) == 0x15,
        "a TLS 1.1 hello gets an alert or a close, not a handshake: first byte " + (answer11.length == 0 ? "none" : answer11[0]));

    // a JDK client limited to TLS 1.1 gets no session either (this JDK may already refuse on its own side)
    assertThrows(Exception.class, () -> TlsLineClient.connect(port, cert.trustingContext(), new String[] {"TLSv1.1"}).close());
    try (LineClient c = TlsLineClient.connect(port, cert.trustingContext())) {
      c.registerAndLogin("still", "fine-pw");
    }
  }

  /** Sends {@code hello} on a raw socket; returns the first 11 bytes the server sends back (fewer if it closes). */
  private static byte[] firstRecord(int port, byte[] hello) throws IOException {
    try (Socket raw = new Socket()) {
      raw.connect(new InetSocketAddress("127.0.0.1", port), 5000);
      raw.setSoTimeout(5000);
      raw.getOutputStream().write(hello);
      raw.getOutputStream().flush();
      InputStream in = raw.getInputStream();
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      try {
        int b;
        while (got.size() < 11 && (b = in.read()) != -1) {
          got.write(b);
        }
      } catch (IOException resetOrTimeout) {
        // what arrived is the answer
      }
      return got.toByteArray();
    }
  }

  @Test
  @DisplayName("tls.only: no plain listeners (ports reported as -1), the TLS ones work")
  void tlsOnlyInProcess() {
    TestServer s = start(tlsOn().put("tls.only", true));
    assertEquals(-1, s.server.tcpPort());
    assertEquals(-1, s.server.httpPort());
    assertTrue(s.server.tlsTcpPort() > 0 && s.server.tlsHttpPort() > 0);
    try (LineClient c = TlsLineClient.connect(s.server.tlsTcpPort(), cert.trustingContext())) {
      c.registerAndLogin("only", "only-pw");
    }
    assertEquals(200, new Https(s.server.tlsHttpPort(), cert.trustingContext()).get("/health/ready").status());
  }

  // ---- as its own JVM ----

  private Map<String, String> processEnv() {
    Map<String, String> env = new HashMap<>();
    env.put("CHAT_HOST", "127.0.0.1");
    env.put("CHAT_AUTH_HASHCOST", "low");
    env.put("CHAT_HTTP_PORT", "0");
    env.put("CHAT_TCP_PORT", "0");
    env.put("CHAT_TLS_ENABLED", "true");
    env.put("CHAT_TLS_CERTFILE", cert.certFile().toString());
    env.put("CHAT_TLS_KEYFILE", cert.keyFile().toString());
    env.put("CHAT_TLS_HTTPPORT", "0");
    env.put("CHAT_TLS_TCPPORT", "0");
    return env;
  }

  private ServerProcess startProcess(Map<String, String> env, String... args) {
    ServerProcess p = ServerProcess.start(mkdir("proc"), dir, env, args);
    processes.add(p);
    return p;
  }

  private static final Pattern TLS_PORTS = Pattern.compile("TLS HTTP port (\\d+), TLS TCP port (\\d+)");

  @Test
  @DisplayName("the startup line keeps 'HTTP port X, TCP port Y' first and adds the TLS ports after it")
  void startupLineWithTls() {
    ServerProcess p = startProcess(processEnv());
    ServerProcess.Ports ports = p.awaitListening(STARTUP);
    Matcher m = Pattern.compile("listening: HTTP port \\d+, TCP port \\d+, TLS HTTP port (\\d+), TLS TCP port (\\d+) \\(")
        .matcher(ports.line());
    assertTrue(m.find(), ports.line());
    int tlsTcp = Integer.parseInt(m.group(2));
    try (LineClient c = TlsLineClient.connect(tlsTcp, cert.trustingContext());
         LineClient plain = new LineClient(ports.tcp())) {
      c.registerAndLogin("proctls", "proc-pw");
      plain.registerAndLogin("procplain", "proc-pw");
    }
    assertEquals(200, new Https(Integer.parseInt(m.group(1)), cert.trustingContext()).get("/health/ready").status());
  }

  @Test
  @DisplayName("tls.only as its own JVM: fixed plain ports refuse connections, the TLS ports answer, healthcheck uses HTTPS")
  void tlsOnlyProcess() throws Exception {
    int[] free = freePorts(4);
    Map<String, String> env = processEnv();
    env.put("CHAT_TLS_ONLY", "true");
    env.put("CHAT_HTTP_PORT", String.valueOf(free[0]));
    env.put("CHAT_TCP_PORT", String.valueOf(free[1]));
    env.put("CHAT_TLS_HTTPPORT", String.valueOf(free[2]));
    env.put("CHAT_TLS_TCPPORT", String.valueOf(free[3]));
    ServerProcess p = startProcess(env);
    String line = awaitLine(p, Pattern.compile("Chat server listening: TLS HTTP port (\\d+), TLS TCP port (\\d+), "
        + "no plain-text listeners \\("));
    assertFalse(ServerProcess.LISTENING.matcher(line).find(), "nothing reads a TLS port as a plain one: " + line);
    Matcher m = TLS_PORTS.matcher(line);
    assertTrue(m.find());
    assertEquals(free[2], Integer.parseInt(m.group(1)));
    assertEquals(free[3], Integer.parseInt(m.group(2)));

    assertRefused(free[0]);
    assertRefused(free[1]);
    try (LineClient c = TlsLineClient.connect(free[3], cert.trustingContext())) {
      c.registerAndLogin("onlyproc", "only-pw");
    }
    assertEquals(200, new Https(free[2], cert.trustingContext()).get("/health/ready").status());

    ServerProcess probe = startProcess(env, "healthcheck");
    assertEquals(0, probe.awaitExit(Duration.ofSeconds(30)), probe.transcript());
  }

  private static int[] freePorts(int n) throws IOException {
    List<ServerSocket> held = new ArrayList<>();
    try {
      int[] ports = new int[n];
      for (int i = 0; i < n; i++) {
        ServerSocket ss = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"));
        held.add(ss);
        ports[i] = ss.getLocalPort();
      }
      return ports;
    } finally {
      for (ServerSocket ss : held) {
        ss.close();
      }
    }
  }

  private static String awaitLine(ServerProcess p, Pattern pattern) throws InterruptedException {
    long deadline = System.nanoTime() + STARTUP.toNanos();
    while (System.nanoTime() < deadline) {
      boolean exited = !p.process().isAlive();
      for (String l : p.stdout()) {
        if (pattern.matcher(l).find()) {
          return l;
        }
      }
      if (exited) {
        fail("server exited before its startup line\n" + p.transcript());
      }
      Thread.sleep(20);
    }
    return fail("no startup line matching " + pattern + "\n" + p.transcript());
  }

  private static void assertRefused(int port) {
    assertThrows(ConnectException.class, () -> {
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", port), 2000);
      }
    }, "port " + port + " accepts connections");
  }

  /** Exit code 2, one stderr line containing every fragment, no listening line, no database. */
  private void assertStartupRefused(ServerProcess p, String... fragments) {
    int code = p.awaitExit(Duration.ofSeconds(30));
    List<String> err = p.stderr().stream().filter(l -> !l.isBlank()).toList();
    assertEquals(2, code, p.transcript());
    assertEquals(1, err.size(), () -> "expected one error line\n" + p.transcript());
    for (String f : fragments) {
      assertTrue(err.get(0).contains(f), () -> "error line does not name '" + f + "': " + err.get(0));
    }
    assertTrue(p.stdout().stream().noneMatch(l -> l.contains("listening")), p.transcript());
    assertFalse(Files.exists(dir.resolve("proc/usr.db")), "no database is created");
  }

  @Test
  @DisplayName("a missing certificate file stops startup: exit 2, one line naming tls.certFile and the file")
  void missingCertFile() {
    Map<String, String> env = processEnv();
    env.put("CHAT_TLS_CERTFILE", dir.resolve("no-such-cert.pem").toString());
    assertStartupRefused(startProcess(env), "tls.certFile", "no-such-cert.pem", "no such file");
  }

  @Test
  @DisplayName("a key file that holds no PEM key stops startup: exit 2, one line naming tls.keyFile and the file")
  void garbageKeyFile() throws IOException {
    Path garbage = Files.writeString(dir.resolve("garbage-key.pem"), "this is not a key\n");
    Map<String, String> env = processEnv();
    env.put("CHAT_TLS_KEYFILE", garbage.toString());
    assertStartupRefused(startProcess(env), "tls.keyFile", "garbage-key.pem");
  }

  @Test
  @DisplayName("a certificate file that holds no certificate, or a key of another certificate, fails in-process with the file named")
  void badPemInProcess() throws IOException {
    Path notCert = Files.writeString(dir.resolve("not-a-cert.pem"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> start(tlsOn().put("tls.certFile", notCert.toString())));
    assertTrue(e.getCause().getMessage().contains("tls.certFile") && e.getCause().getMessage().contains("not-a-cert.pem"),
        e.getCause().getMessage());

    SelfSignedCert other = SelfSignedCert.create(dir, "other");
    e = assertThrows(IllegalStateException.class, () -> start(tlsOn().put("tls.keyFile", other.keyFile().toString())));
    assertTrue(e.getCause().getMessage().contains("does not belong"), e.getCause().getMessage());
    assertTrue(e.getCause().getMessage().contains("other-key.pem"), e.getCause().getMessage());

    e = assertThrows(IllegalStateException.class, () -> start(tlsOn().put("tls.certFile", dir.toString())));
    assertTrue(e.getCause().getMessage().contains("is a directory"), e.getCause().getMessage());
    assertNotEquals(null, start(tlsOn()).server, "the right pair still starts");
  }
}
