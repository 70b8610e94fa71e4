package chat;

import chat.support.LineClient;
import chat.support.SelfSignedCert;
import chat.support.TestServer;
import chat.support.TlsLineClient;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.IntSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * tcp.maxConnections and http.maxConnections: the connection past the cap is refused cleanly
 * (the exact reply, then the close), a place freed is taken again, plain and TLS connections
 * share their kind's cap, and the counts neither leak nor go negative.
 */
@ExtendWith(VertxExtension.class)
class ConnectionLimitTest {

  private static final String TOO_MANY = "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Too many connections\"}";
  private static final String HEARTBEAT_ERROR = "{\"type\":\"heartbeat\",\"status\":\"error\"}";
  private static final String HEARTBEAT = "{\"type\":\"heartbeat\",\"token\":\"nope\"}\n";

  @TempDir
  Path dir;
  private final List<AutoCloseable> open = new ArrayList<>();
  private TestServer server;

  @AfterEach
  void tearDown() throws Exception {
    for (AutoCloseable c : open) {
      c.close();
    }
    if (server != null) {
      server.close();
    }
  }

  private TestServer start(Vertx vertx, JsonObject overrides) {
    server = TestServer.start(vertx, dir, overrides);
    return server;
  }

  private <T extends AutoCloseable> T keep(T c) {
    open.add(c);
    return c;
  }

  /** A TCP connection that the server admitted: it answers a heartbeat. */
  private LineClient admittedTcp() {
    LineClient c = keep(server.connect());
    c.send(HEARTBEAT).expect(HEARTBEAT_ERROR);
    return c;
  }

  @Test
  @DisplayName("tcp.maxConnections=3: the 4th connection gets the exact Too many connections line and is closed; after one closes a new one is accepted")
  void tcpCap(Vertx vertx) throws Exception {
    start(vertx, new JsonObject().put("tcp.maxConnections", 3));
    LineClient first = admittedTcp();
    admittedTcp();
    admittedTcp();
    assertEquals(3, server.server.openTcpConnections());

    try (LineClient fourth = server.connect()) {
      fourth.expect(TOO_MANY);
      fourth.expectClosed();
    }
    assertEquals(1.0, metric("chat_connections_refused_total", "listener=\"tcp\""));
    assertEquals(3, server.server.openTcpConnections(), "a refused connection takes no place");

    first.close();
    // the server sees the close a moment later: retry, bounded
    long deadline = System.currentTimeMillis() + 5000;
    while (true) {
      try (LineClient next = server.connect()) {
        String line = next.send(HEARTBEAT).readLine();
        if (line.equals(HEARTBEAT_ERROR)) {
          break;
        }
        assertEquals(TOO_MANY, line);
      }
      if (System.currentTimeMillis() > deadline) {
        fail("no connection accepted within 5 s after one closed");
      }
      Thread.sleep(20);
    }
  }

  @Test
  @DisplayName("http.maxConnections=2: a 3rd connection's request gets 503 Too many connections with Connection: close, then the close; after one closes requests succeed again")
  void httpCap(Vertx vertx) throws Exception {
    start(vertx, new JsonObject().put("http.maxConnections", 2));
    Socket a = keep(rawSocket(server.httpPort()));
    Socket b = keep(rawSocket(server.httpPort()));
    assertEquals(200, exchange(a, get("/health/live", true)).status);
    assertEquals(200, exchange(b, get("/health/live", true)).status);
    assertEquals(2, server.server.openHttpConnections());

    try (Socket c = rawSocket(server.httpPort())) {
      String body = "{\"username\":\"x\",\"password\":\"y\"}";
      Response r = exchange(c, "POST /api/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
          + "Content-Length: " + body.length() + "\r\n\r\n" + body);
      assertEquals("HTTP/1.1 503 Service Unavailable", r.statusLine);
      assertTrue(r.headers.contains("connection: close"), r.headers);
      assertTrue(r.headers.contains("content-type: application/json; charset=utf-8"), r.headers);
      assertEquals(TOO_MANY, r.body);
      assertClosedWithin(c, 5000);
    }
    // a refused connection that never sends a request is closed too, after a grace period
    try (Socket idle = rawSocket(server.httpPort())) {
      assertClosedWithin(idle, 10_000);
    }
    assertEquals(2.0, metric("chat_connections_refused_total", "listener=\"http\""));
    assertEquals(2, server.server.openHttpConnections());

    a.close();
    long deadline = System.currentTimeMillis() + 5000;
    while (true) {
      try (Socket next = rawSocket(server.httpPort())) {
        Response r = exchange(next, get("/health/live", false));
        if (r.status == 200) {
          break;
        }
        assertEquals(503, r.status);
      }
      if (System.currentTimeMillis() > deadline) {
        fail("no HTTP connection accepted within 5 s after one closed");
      }
      Thread.sleep(20);
    }
  }

  @Test
  @DisplayName("plain and TLS TCP connections share tcp.maxConnections; the refusal reads the same over TLS; HTTPS shares http.maxConnections")
  void tlsSharesTheCap(Vertx vertx) throws Exception {
    SelfSignedCert cert = SelfSignedCert.create(dir, "cap");
    start(vertx, new JsonObject().put("tcp.maxConnections", 2).put("http.maxConnections", 1)
        .put("tls.enabled", true).put("tls.certFile", cert.certFile().toString())
        .put("tls.keyFile", cert.keyFile().toString()).put("tls.tcpPort", 0).put("tls.httpPort", 0));
    admittedTcp();
    LineClient tls = keep(TlsLineClient.connect(server.server.tlsTcpPort(), cert.trustingContext()));
    tls.send(HEARTBEAT).expect(HEARTBEAT_ERROR);

    try (LineClient refused = TlsLineClient.connect(server.server.tlsTcpPort(), cert.trustingContext())) {
      refused.expect(TOO_MANY);
      refused.expectClosed();
    }
    try (LineClient refused = server.connect()) {
      refused.expect(TOO_MANY);
      refused.expectClosed();
    }
    assertEquals(2.0, metric("chat_connections_refused_total", "listener=\"tcp\""));

    Socket plainHttp = keep(rawSocket(server.httpPort()));
    assertEquals(200, exchange(plainHttp, get("/health/live", true)).status);
    var https = new chat.support.Https(server.server.tlsHttpPort(), cert.trustingContext());
    var r = https.get("/health/live");
    assertEquals(503, r.status());
    assertEquals(TOO_MANY, r.body());
  }

  @Test
  @DisplayName("200 connect/close cycles, refused ones included: the open counts never go negative or past the cap, and return to 0 (chat_connections and chat_http_connections too)")
  void noLeakOver200Cycles(Vertx vertx) throws Exception {
    start(vertx, new JsonObject().put("tcp.maxConnections", 3).put("http.maxConnections", 3));
    int tcpPort = server.tcpPort();
    int httpPort = server.httpPort();
    int[] seenTcp = {0, 0};  // min, max
    int[] seenHttp = {0, 0};
    for (int cycle = 0; cycle < 200; cycle++) {
      List<Socket> sockets = new ArrayList<>();
      for (int i = 0; i < 5; i++) {
        sockets.add(rawSocket(tcpPort));
      }
      for (int i = 0; i < 4; i++) {
        sockets.add(rawSocket(httpPort));
      }
      switch (cycle % 4) {
        case 0 -> { // a round trip on every socket, then a normal close
          for (int i = 0; i < 5; i++) {
            write(sockets.get(i), HEARTBEAT);
            readSome(sockets.get(i));
          }
          for (int i = 5; i < 9; i++) {
            write(sockets.get(i), get("/health/live", false));
            readSome(sockets.get(i));
          }
        }
        case 1 -> { // the client half-closes first
          for (Socket s : sockets) {
            s.shutdownOutput();
          }
        }
        case 2 -> { // abortive close (RST)
          for (Socket s : sockets) {
            s.setSoLinger(true, 0);
          }
        }
        default -> { // close at once
        }
      }
      for (Socket s : sockets) {
        s.close();
      }
      sample(seenTcp, server.server::openTcpConnections);
      sample(seenHttp, server.server::openHttpConnections);
    }
    long deadline = System.currentTimeMillis() + 10_000;
    while ((server.server.openTcpConnections() != 0 || server.server.openHttpConnections() != 0)
        && System.currentTimeMillis() < deadline) {
      sample(seenTcp, server.server::openTcpConnections);
      sample(seenHttp, server.server::openHttpConnections);
      Thread.sleep(20);
    }
    System.out.println("[figures] open TCP seen " + seenTcp[0] + ".." + seenTcp[1] + ", HTTP " + seenHttp[0] + ".."
        + seenHttp[1] + "; refused tcp " + metric("chat_connections_refused_total", "listener=\"tcp\"")
        + ", http " + metric("chat_connections_refused_total", "listener=\"http\""));
    assertEquals(0, server.server.openTcpConnections(), "TCP places all given back");
    assertEquals(0, server.server.openHttpConnections(), "HTTP places all given back");
    assertTrue(seenTcp[0] >= 0 && seenTcp[1] <= 3, "TCP count stayed within 0..3");
    assertTrue(seenHttp[0] >= 0 && seenHttp[1] <= 3, "HTTP count stayed within 0..3");
    assertEquals(0.0, metric("chat_connections", null));
    assertEquals(0.0, metric("chat_http_connections", null));

    // and the caps still admit up to 3 each
    for (int i = 0; i < 3; i++) {
      admittedTcp();
    }
    for (int i = 0; i < 3; i++) {
      assertEquals(200, exchange(keep(rawSocket(httpPort)), get("/health/live", true)).status);
    }
  }

  private static void sample(int[] seen, IntSupplier count) {
    int n = count.getAsInt();
    seen[0] = Math.min(seen[0], n);
    seen[1] = Math.max(seen[1], n);
  }

  // ---- metrics ----

  /** The value of one sample of the server's /metrics text, or NaN when absent. */
  private double metric(String name, String label) {
    Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + "(\\{[^}]*})? (\\S+)$").matcher(server.server.metrics().scrape());
    while (m.find()) {
      if (label == null || (m.group(1) != null && m.group(1).contains(label))) {
        return Double.parseDouble(m.group(2));
      }
    }
    return Double.NaN;
  }

  // ---- raw sockets and HTTP/1.1 by hand ----

  private static Socket rawSocket(int port) {
    try {
      Socket s = new Socket();
      s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
      s.setSoTimeout(5000);
      return s;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static String get(String path, boolean keepAlive) {
    return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n" + (keepAlive ? "" : "Connection: close\r\n") + "\r\n";
  }

  private static void write(Socket s, String text) throws IOException {
    s.getOutputStream().write(text.getBytes(StandardCharsets.UTF_8));
    s.getOutputStream().flush();
  }

  /** Reads whatever arrives first (or nothing, on a close or reset). */
  private static void readSome(Socket s) {
    try {
      s.getInputStream().read(new byte[4096]);
    } catch (IOException ignored) {
      // closed or reset: fine here
    }
  }

  record Response(String statusLine, int status, String headers, String body) {
  }

  /** Sends one request and reads one response (headers, then Content-Length bytes of body). */
  private static Response exchange(Socket s, String request) throws IOException {
    write(s, request);
    InputStream in = s.getInputStream();
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    while (!head.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) {
      int b = in.read();
      if (b == -1) {
        throw new AssertionError("closed before a response: '" + head + "'");
      }
      head.write(b);
    }
    String[] lines = head.toString(StandardCharsets.ISO_8859_1).split("\r\n");
    String headers = String.join("\n", List.of(lines).subList(1, lines.length)).toLowerCase(Locale.ROOT);
    Matcher len = Pattern.compile("content-length: (\\d+)").matcher(headers);
    byte[] body = len.find() ? in.readNBytes(Integer.parseInt(len.group(1))) : new byte[0];
    return new Response(lines[0], Integer.parseInt(lines[0].split(" ")[1]), headers,
        new String(body, StandardCharsets.UTF_8));
  }

  private static void assertClosedWithin(Socket s, int millis) throws IOException {
    s.setSoTimeout(millis);
    try {
      InputStream in = s.getInputStream();
      while (in.read() != -1) {
        // drain
      }
    } catch (SocketTimeoutException e) {
      fail("the server did not close the connection within " + millis + " ms");
    } catch (IOException reset) {
      // a reset is a close too
    }
  }
}
