package chat;

import chat.protocol.Replies;
import chat.protocol.Reply;
import chat.support.LineClient;
import chat.support.ProtocolCatalog;
import chat.support.RawHttp;
import chat.support.TestServer;
import chat.tcp.JsonFramer;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Hostile input, generated: a property test with a fixed seed over real sockets. Every reply must
 * be one that docs/PROTOCOL.md documents (the shapes are read from the page itself, {@link
 * ProtocolCatalog}), nothing on the wire may look like a Java fault, and after each input the
 * connection is still usable (a heartbeat gets its reply) unless the input was a frame over the
 * size limit, which must get "Message too large" and a close. Afterwards the server still serves
 * a fresh client.
 *
 * <p>For TCP the test knows how many replies to expect: a reference model of the framing rule of
 * §4.1 (written here from the page, sharing nothing with {@link JsonFramer}) predicts the frames,
 * garbage runs and overflow of each input, and the test then closes whatever the input left open
 * (string, escape, braces, garbage line) so the connection is back between messages.
 *
 * <p>CI runs the default seed and size in well under a minute. A longer run, on demand:
 * {@code mvn -q test -Dtest=FuzzTest -Dfuzz.iterations=20000 -Dfuzz.seed=12345}. A failure names the
 * seed and the input (hex), so it can be replayed.
 */
@ExtendWith(VertxExtension.class)
class FuzzTest {

  static final long SEED = Long.getLong("fuzz.seed", 0x5EED_C0DEL);
  static final int ITERATIONS = Integer.getInteger("fuzz.iterations", 3000);
  static final int MAX_FRAME = 65536;
  static final String PASSWORD = "pw-fuzz";

  static final ProtocolCatalog DOC = ProtocolCatalog.load();

  /** What must never reach a client: exception text, class or package names, stack frames, SQL. */
  static final Pattern FAULT_TEXT = Pattern.compile(
      "(?i)exception|throwable|java\\.|javax\\.|jdk\\.|sun\\.|io\\.vertx|io\\.netty|com\\.fasterxml|org\\.sqlite|org\\.bouncycastle"
          + "|chat\\.(tcp|http|auth|store|protocol|config|reaper|admin|metrics)|\\bat [a-z]+\\.|stack ?trace|sqlite_|"
          + "internal error|select |insert into");

  @TempDir
  Path dir;
  private TestServer server;
  private final List<AutoCloseable> closeables = new ArrayList<>();
  private final List<String> violations = new CopyOnWriteArrayList<>();

  @AfterEach
  void stop() throws Exception {
    for (AutoCloseable c : closeables) {
      c.close();
    }
    if (server != null) {
      server.close();
    }
  }

  private void startServer(Vertx vertx) {
    server = TestServer.start(vertx, dir, new JsonObject().put("limits.enabled", false)
        .put("tcp.maxFrameBytes", MAX_FRAME));
  }

  private static String seedNote() {
    return " [fuzz.seed=" + SEED + ", fuzz.iterations=" + ITERATIONS + "]";
  }

  // =====================================================================================
  // the documented replies, read from the page
  // =====================================================================================

  @Test
  @DisplayName("the reply shapes read from docs/PROTOCOL.md cover every fixed reply of the code, and only documented ones")
  void catalogMatchesTheCode() throws Exception {
    int checked = 0;
    for (Field f : Replies.class.getFields()) {
      if (!Modifier.isStatic(f.getModifiers()) || f.getType() != Reply.class) {
        continue;
      }
      Reply r = (Reply) f.get(null);
      String name = f.getName();
      boolean httpOnly = name.startsWith("HTTP_") || List.of("REQUEST_TOO_LARGE", "NOT_FOUND", "METHOD_NOT_ALLOWED", "BAD_REQUEST",
          "INTERNAL_ERROR").contains(name);
      boolean tcpOnly = name.startsWith("TCP_") || List.of("MESSAGE_TOO_LARGE", "UNKNOWN_TYPE", "IDLE_TIMEOUT", "KICKED", "LOGGED_IN_ELSEWHERE", "SHUTTING_DOWN",
          "PING", "HEARTBEAT_OK", "HEARTBEAT_ERROR").contains(name);
      if (!httpOnly) {
        assertNotNull(DOC.tcpShape(r.json), name + " = " + r.json + " is not documented in PROTOCOL.md §4");
      }
      if (!tcpOnly) {
        assertNotNull(DOC.httpShape(r.status, r.json), name + " = " + r.status + " " + r.json
            + " is not documented in PROTOCOL.md §3");
      }
      checked++;
    }
    assertTrue(checked > 25, "only " + checked + " replies found");
    assertNotNull(DOC.tcpShape(Replies.tcpLoggedIn("0123456789abcdef0123456789abcdef", "a#b", "/avatar/a%23b/x.png")
        .toString(StandardCharsets.UTF_8).trim()));
    String broadcast = Replies.broadcast("al", "he said \"hi\" \\ \u0000 \u00e9", "/avatar/al/default_avatar.png", 1L)
        .toString(StandardCharsets.UTF_8).trim();
    assertNotNull(DOC.tcpShape(broadcast), broadcast);
    // and the catalogue is not a catch-all
    assertEquals(null, DOC.tcpShape("{\"type\":\"error\",\"status\":\"error\",\"message\":\"Internal error\"}"));
    assertEquals(null, DOC.tcpShape("{\"type\":\"chat\",\"status\":\"success\",\"x\":1}"));
    assertEquals(null, DOC.httpShape(200, "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Invalid JSON\"}"));
  }

  // =====================================================================================
  // TCP
  // =====================================================================================

  /** One hostile input with what its replies must not be (beyond being documented). */
  record Case(String label, byte[] payload, Predicate<String> forbidden) {
    Case(String label, byte[] payload) {
      this(label, payload, line -> false);
    }

    String describe() {
      String hex = HexFormat.of().formatHex(payload, 0, Math.min(payload.length, 400));
      String text = new String(payload, 0, Math.min(payload.length, 300), StandardCharsets.UTF_8);
      return label + " (" + payload.length + " bytes) text=" + text.replaceAll("\\p{Cntrl}", "?") + " hex=" + hex
          + (payload.length > 400 ? "..." : "");
    }
  }

  static boolean isSuccess(String line) {
    return line.startsWith("{\"type\":\"register_1\"") || line.startsWith("{\"type\":\"login\",\"status\":\"success\"")
        || line.equals("{\"type\":\"chat\",\"status\":\"success\"}") || line.equals("{\"type\":\"heartbeat\",\"status\":\"success\"}");
  }

  @Test
  @DisplayName("TCP: random bytes, invalid UTF-8, mutated messages, every field with every wrong type, deep nesting, duplicate keys, BOM, NUL, lone surrogates: documented replies only, the connection stays usable")
  void tcpFuzz(Vertx vertx) throws Exception {
    startServer(vertx);
    server.http().register("fuzzer", PASSWORD);
    server.http().register("fuzzer2", PASSWORD);
    // fuzzer holds a session on its own connection, drained in the background: its token makes
    // mutated chats and heartbeats reach the deep paths, and their broadcasts must be documented too
    Socket holderSocket = new Socket();
    closeables.add(holderSocket);
    holderSocket.connect(new InetSocketAddress("127.0.0.1", server.tcpPort()), 5000);
    FuzzConn holder = new FuzzConn(holderSocket);
    holder.send(("{\"type\":\"login\",\"username\":\"fuzzer\",\"password\":\"" + PASSWORD + "\"}").getBytes(StandardCharsets.UTF_8));
    String login = holder.readLine(5000);
    assertTrue(login != null && login.startsWith("{\"type\":\"login\",\"status\":\"success\""), login);
    String token = new JsonObject(login).getString("token");
    Thread drain = new Thread(() -> {
      try {
        String line;
        while ((line = holder.readLine(0)) != null) {
          checkTcpLine(line, "holder connection");
        }
      } catch (IOException e) {
        // closed at the end
      }
    }, "holder-drain");
    drain.setDaemon(true);
    drain.start();

    Random random = new Random(SEED);
    Generator gen = new Generator(random, token);
    List<Case> cases = new ArrayList<>();
    cases.addAll(gen.fixedTcpCases());
    cases.addAll(gen.typedMatrix(true));
    for (int i = 0; i < ITERATIONS; i++) {
      cases.add(gen.randomTcpCase(i));
    }

    FuzzConn conn = null;
    int replies = 0;
    int closes = 0;
    long t0 = System.nanoTime();
    for (int i = 0; i < cases.size(); i++) {
      Case c = cases.get(i);
      String where = "case " + i + " " + c.describe() + seedNote();
      if (conn == null) {
        Socket s = new Socket();
        s.connect(new InetSocketAddress("127.0.0.1", server.tcpPort()), 5000);
        s.setTcpNoDelay(true);
        conn = new FuzzConn(s);
      }
      FramingModel model = new FramingModel(MAX_FRAME);
      model.feed(c.payload);
      ByteArrayOutputStream wire = new ByteArrayOutputStream();
      wire.write(c.payload);
      if (!model.stopped) {
        byte[] closer = model.closer();
        model.feed(closer);
        wire.write(closer);
      }
      boolean overflow = model.stopped;
      byte[] probe = ("{\"type\":\"heartbeat\",\"token\":\"" + token + "\"}\n").getBytes(StandardCharsets.UTF_8);
      if (!overflow) {
        wire.write(probe);
      }
      try {
        conn.send(wire.toByteArray());
      } catch (IOException e) {
        if (!overflow) {
          fail("could not send (" + e + ") " + where);
        }
      }
      for (Object event : model.events) {
        String line = conn.nextReply(where, extra -> checkTcpLine(extra, where));
        if (line == null) {
          fail("connection closed instead of a reply to " + describeEvent(event) + ": " + where + violationsNote());
        }
        replies++;
        checkTcpLine(line, where);
        if (event == FramingModel.GARBAGE) {
          assertEquals(Replies.INVALID_JSON.json, line, "bytes outside an object: " + where);
        } else if (event == FramingModel.TOO_LARGE) {
          assertEquals(Replies.MESSAGE_TOO_LARGE.json, line, "frame over the limit: " + where);
        } else {
          assertTrue(!c.forbidden.test(line), "reply not allowed for this input: " + line + " to " + where);
        }
      }
      if (overflow) {
        assertTrue(conn.awaitClosed(5000), "not closed after Message too large: " + where);
        conn.close();
        conn = null;
        closes++;
        continue;
      }
      String reply = conn.nextReply(where, extra -> checkTcpLine(extra, where));
      assertTrue(Replies.HEARTBEAT_OK.json.equals(reply) || Replies.HEARTBEAT_ERROR.json.equals(reply),
          "the connection is not usable after the input: heartbeat got " + reply + " after " + where + violationsNote());
    }
    long millis = (System.nanoTime() - t0) / 1_000_000;
    if (conn != null) {
      conn.send(new byte[0]);
      conn.close();
    }
    System.out.println("[figures] TCP fuzz: " + cases.size() + " inputs, " + replies + " replies checked, " + closes
        + " overflow closes, " + millis + " ms" + seedNote());
    assertTrue(violations.isEmpty(), String.join("\n", violations));
    assertServerHealthy();
  }

  private static String describeEvent(Object event) {
    return event instanceof byte[] b ? "a frame of " + b.length + " bytes" : String.valueOf(event);
  }

  private String violationsNote() {
    return violations.isEmpty() ? "" : "\nalso: " + String.join("\n", violations);
  }

  /** Documented shape and no fault text; broadcasts are checked without their user-chosen message. */
  private void checkTcpLine(String line, String where) {
    if (DOC.tcpShape(line) == null) {
      violations.add("undocumented reply " + line + " to " + where);
      return;
    }
    String visible = line;
    if (line.startsWith("{\"type\":\"chat\",\"user\":")) {
      JsonObject b = new JsonObject(line);
      b.remove("message");
      visible = b.encode();
    }
    if (FAULT_TEXT.matcher(visible).find()) {
      violations.add("fault text in " + line + " to " + where);
    }
  }

  /** Raw socket, newline-delimited lines in; nothing shared with the server's codec. */
  static final class FuzzConn implements AutoCloseable {
    private final Socket socket;
    private final InputStream in;
    private final OutputStream out;

    FuzzConn(Socket socket) throws IOException {
      this.socket = socket;
      this.in = new BufferedInputStream(socket.getInputStream(), 65536);
      this.out = socket.getOutputStream();
    }

    void send(byte[] bytes) throws IOException {
      out.write(bytes);
      out.flush();
    }

    /** The next line, null at the end of the stream; timeout 0 waits for ever. */
    String readLine(int timeoutMillis) throws IOException {
      socket.setSoTimeout(timeoutMillis);
      ByteArrayOutputStream line = new ByteArrayOutputStream();
      int b;
      try {
        while ((b = in.read()) != -1) {
          if (b == '\n') {
            return line.toString(StandardCharsets.UTF_8);
          }
          line.write(b);
        }
      } catch (SocketTimeoutException e) {
        throw e;
      } catch (IOException e) {
        return null; // reset
      }
      return null;
    }

    /** The next line that answers a request (pings and broadcasts are extra messages, checked by the caller too). */
    String nextReply(String where, java.util.function.Consumer<String> extra) throws IOException {
      while (true) {
        String line;
        try {
          line = readLine(10_000);
        } catch (SocketTimeoutException e) {
          throw new AssertionError("no reply within 10 s to " + where);
        }
        if (line == null || !(line.equals("{\"type\":\"ping\"}") || line.startsWith("{\"type\":\"chat\",\"user\":"))) {
          return line;
        }
        extra.accept(line);
      }
    }

    boolean awaitClosed(int millis) throws IOException {
      socket.setSoTimeout(millis);
      try {
        byte[] buf = new byte[8192];
        while (in.read(buf) != -1) {
          // drain
        }
        return true;
      } catch (SocketTimeoutException e) {
        return false;
      } catch (IOException e) {
        return true;
      }
    }

    @Override
    public void close() throws IOException {
      socket.close();
    }
  }

  /**
   * The framing rule of PROTOCOL.md §4.1 as a reference model: objects from {@code {} to the
   * matching {@code }} (braces in strings not counted), whitespace between them skipped, any other
   * byte outside an object one garbage event and the rest of its line dropped, a frame longer than
   * the limit an overflow after which nothing counts.
   */
  static final class FramingModel {
    static final Object GARBAGE = "garbage";
    static final Object TOO_LARGE = "tooLarge";

    final int max;
    final List<Object> events = new ArrayList<>();
    int depth;
    boolean inString;
    boolean escaped;
    boolean skipping;
    boolean stopped;
    ByteArrayOutputStream current;

    FramingModel(int max) {
      this.max = max;
    }

    void feed(byte[] bytes) {
      for (byte b : bytes) {
        if (stopped) {
          return;
        }
        if (depth == 0) {
          if (skipping) {
            skipping = b != '\n';
          } else if (b == '{') {
            depth = 1;
            current = new ByteArrayOutputStream();
            current.write(b);
          } else if (b != ' ' && b != '\n' && b != '\r' && b != '\t') {
            events.add(GARBAGE);
            skipping = true;
          }
          continue;
        }
        current.write(b);
        if (current.size() > max) {
          events.add(TOO_LARGE);
          stopped = true;
          current = null;
          return;
        }
        if (inString) {
          if (escaped) {
            escaped = false;
          } else if (b == '\\') {
            escaped = true;
          } else if (b == '"') {
            inString = false;
          }
        } else if (b == '"') {
          inString = true;
        } else if (b == '{') {
          depth++;
        } else if (b == '}' && --depth == 0) {
          events.add(current.toByteArray());
          current = null;
        }
      }
    }

    /** Bytes that bring the stream back between messages: end an escape, the string, every object, the garbage line. */
    byte[] closer() {
      StringBuilder s = new StringBuilder();
      if (depth > 0) {
        if (escaped) {
          s.append('x');
        }
        if (inString) {
          s.append('"');
        }
        s.append("}".repeat(depth));
      }
      s.append('\n');
      return s.toString().getBytes(StandardCharsets.US_ASCII);
    }
  }

  // =====================================================================================
  // HTTP
  // =====================================================================================

  private static final List<String> CONTENT_TYPES = List.of("", "application/json", "application/json; charset=utf-8",
      "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=XyZ", "multipart/form-data",
      "application/json; charset=utf-16", "image/png", "*/*", "application/json; charset=\"\u00e9\"", ";;;");

  @Test
  @DisplayName("HTTP: the same hostile bodies, content types and Authorization headers on the three POST routes get only documented statuses and bodies, never 500")
  void httpFuzz(Vertx vertx) throws Exception {
    startServer(vertx);
    server.http().register("fuzzer", PASSWORD);
    server.http().register("fuzzer2", PASSWORD);
    String token = server.http().login("fuzzer", PASSWORD);
    Random random = new Random(SEED + 1);
    Generator gen = new Generator(random, token);
    List<Case> bodies = new ArrayList<>();
    bodies.addAll(gen.fixedHttpBodies());
    bodies.addAll(gen.typedMatrix(false));
    for (int i = 0; i < ITERATIONS / 2; i++) {
      bodies.add(gen.randomHttpBody(i));
    }
    List<String> authorizations = List.of("", token, "Bearer " + token, "bearer  " + token + " ", "Bearer", "Bearer ",
        token.toUpperCase(), token.substring(0, 16), token + "00", "\u00e9\u00e9", "x".repeat(6000), "Basic Zm9vOmJhcg==",
        token.substring(0, 31) + (token.charAt(31) == '0' ? '1' : '0'));
    List<String> routes = List.of("/api/register", "/api/login", "/api/chat");
    RawHttp raw = new RawHttp(server.httpPort());
    closeables.add(raw);
    int count = 0;
    long t0 = System.nanoTime();
    for (int i = 0; i < bodies.size(); i++) {
      Case c = bodies.get(i);
      String route = routes.get(random.nextInt(routes.size()));
      List<String> headers = new ArrayList<>();
      String ct = CONTENT_TYPES.get(random.nextInt(CONTENT_TYPES.size()));
      if (!ct.isEmpty()) {
        headers.add("Content-Type");
        headers.add(ct);
      }
      if (route.equals("/api/chat") || random.nextInt(4) == 0) {
        String auth = authorizations.get(random.nextInt(authorizations.size()));
        if (!auth.isEmpty()) {
          headers.add("Authorization");
          headers.add(auth);
        }
      }
      String where = "POST " + route + " " + headers + " body " + c.describe() + seedNote();
      RawHttp.Response r;
      try {
        r = raw.request("POST", route.getBytes(StandardCharsets.US_ASCII), c.payload, headers.toArray(String[]::new));
      } catch (IOException e) {
        throw new AssertionError("no HTTP response (" + e + ") to " + where, e);
      }
      checkHttpJson(r, where);
      count++;
    }
    // methods and paths around the routes
    List<String> methods = List.of("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "FOO", "TRACE", "POST");
    List<String> paths = List.of("/api/register", "/api/login", "/api/chat", "/api/", "/api", "/api/nope", "/",
        "/api/register/", "/api//login", "/API/LOGIN", "/api/login?x=1", "/api/chat#frag", "/api/%2e%2e/login",
        "/api/login/../register", "/nope", "/avatar", "/avatar/x");
    for (String m : methods) {
      for (String p : paths) {
        String where = m + " " + p + seedNote();
        RawHttp.Response r = raw.request(m, p.getBytes(StandardCharsets.US_ASCII),
            m.equals("GET") || m.equals("HEAD") ? null : "{}".getBytes(StandardCharsets.US_ASCII));
        if (p.startsWith("/avatar/") && r.status() == 200) {
          continue; // an avatar route; fuzzed below
        }
        if (m.equals("HEAD")) {
          assertTrue(r.status() == 404 || r.status() == 405, r.status() + " to " + where);
        } else {
          checkHttpJson(r, where);
        }
        count++;
      }
    }
    System.out.println("[figures] HTTP fuzz: " + count + " requests, " + (System.nanoTime() - t0) / 1_000_000 + " ms" + seedNote());
    assertServerHealthy();
  }

  @Test
  @DisplayName("HTTP below the API: mutated request lines and headers get a documented JSON error (400/414/431 Bad request), never an empty reply or a hang")
  void httpMalformedRequests(Vertx vertx) throws Exception {
    startServer(vertx);
    server.http().register("fuzzer", PASSWORD);
    String token = server.http().login("fuzzer", PASSWORD);
    Random random = new Random(SEED + 4);
    Generator gen = new Generator(random, token);
    List<byte[]> heads = new ArrayList<>(List.of(
        ascii("GET /avatar/a b/c.png HTTP/1.1\r\nHost: x\r\n"),
        ascii("GET /avatar/a/" + "a".repeat(5000) + ".png HTTP/1.1\r\nHost: x\r\n"),
        ascii("GET /avatar/a/b.png HTTP/1.1\r\nHost: x\r\nX-Big: " + "a".repeat(9000) + "\r\n"),
        ascii("GET /avatar/a/b.png HTTP/1.1\r\nHost: x\r\n" + "X-Many: 1\r\n".repeat(1000)),
        ascii("HELLO\r\n"),
        ascii("GET /nope HTTP/1.1\r\n"),
        ascii("POST /api/login HTTP/1.1\r\n"),
        ascii("GET /avatar/a/b.png HTTP/1.1\r\nHost: x\r\nBad Header\r\n"),
        ascii("GET /avatar/a/b.png HTTP/1.1\r\nHost: x\r\n: empty-name\r\n"),
        ascii("GET /avatar/a/b.png HTTP/1.1\r\nHost: x\r\n folded: header\r\n"),
        ascii("GET\t/avatar/a/b.png\tHTTP/1.1\r\nHost: x\r\n"),
        ascii("GET /avatar/a/b.png HTTP/1.1\nHost: x\n"),
        ascii("POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n"),
        ascii("POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n"),
        ascii("POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n"),
        ascii("GET http://evil.example/avatar/../usr.db HTTP/1.1\r\nHost: x\r\n"),
        ascii("GET * HTTP/1.1\r\nHost: x\r\n"),
        ascii("GET avatar/a/b.png HTTP/1.1\r\nHost: x\r\n"),
        ascii("CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n"),
        bytesOf("GET /avatar/a\u0000b/c.png HTTP/1.1\r\nHost: x\r\n"),
        bytesOf("GET /avatar/\u00e9/\u4e2d.png HTTP/1.1\r\nHost: \u00e9\r\n")));
    for (int i = 0; i < ITERATIONS / 4; i++) {
      String base = random.nextBoolean() ? "POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + token
          + "\r\nContent-Type: application/json\r\n" : "GET /avatar/fuzzer/default_avatar.png HTTP/1.1\r\nHost: 127.0.0.1\r\n";
      // no CR or LF from the mutations: a line break could turn a header into a Content-Length the body does not match
      byte[] mutated = gen.mutate(ascii(base.substring(0, base.length() - 2)));
      for (int k = 0; k < mutated.length; k++) {
        if (mutated[k] == '\n' || mutated[k] == '\r') {
          mutated[k] = ' ';
        }
      }
      heads.add(Generator.bytes(mutated, "\r\n"));
    }
    int count = 0;
    for (byte[] head : heads) {
      byte[] body = "{\"username\":\"fuzzer\",\"password\":\"x\"}".getBytes(StandardCharsets.UTF_8);
      boolean withBody = !new String(head, StandardCharsets.ISO_8859_1).contains("Content-Length");
      byte[] request = withBody
          ? Generator.bytes(head, "Content-Length: " + body.length + "\r\n\r\n", body)
          : Generator.bytes(head, "\r\n{}");
      String where = "raw request " + new String(head, 0, Math.min(head.length, 200), StandardCharsets.ISO_8859_1)
          .replaceAll("\\p{Cntrl}", "?") + seedNote();
      try (RawHttp raw = new RawHttp(server.httpPort())) {
        RawHttp.Response r;
        try {
          r = raw.exchange(request, false);
        } catch (IOException e) {
          throw new AssertionError("no response (" + e + ") to " + where, e);
        }
        if (r.status() == 200 && r.header("Content-Type").startsWith("image/")) {
          count++;
          continue; // the avatar, when the mutation left the request valid
        }
        if (r.status() == 501 && r.body().length == 0) {
          // Vert.x's own answer to a version other than HTTP/1.0 and 1.1 (documented)
          String line = new String(head, StandardCharsets.ISO_8859_1).split("\r\n")[0];
          assertTrue(!line.endsWith("HTTP/1.1") && !line.endsWith("HTTP/1.0"), "501 to " + where);
          count++;
          continue;
        }
        checkHttpJson(r, where);
        count++;
      }
    }
    System.out.println("[figures] malformed HTTP: " + count + " requests" + seedNote());
    assertServerHealthy();
  }

  private static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.ISO_8859_1);
  }

  private static byte[] bytesOf(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private void checkHttpJson(RawHttp.Response r, String where) {
    assertTrue(r.status() != 500, "500 " + r.text() + " to " + where);
    String body = r.text();
    assertNotNull(DOC.httpShape(r.status(), body), "undocumented HTTP reply " + r.status() + " " + body + " to " + where);
    assertTrue(!FAULT_TEXT.matcher(body).find(), "fault text in " + body + " to " + where);
    String ct = r.header("Content-Type");
    assertEquals("application/json; charset=utf-8", ct, "content type of " + r.status() + " " + body + " to " + where);
  }

  // =====================================================================================
  // the avatar route
  // =====================================================================================

  private static final List<String> TRAVERSAL_PARTS = List.of("..", ".", "%2e%2e", "%2E%2e", "%2e.", ".%2e", "%252e%252e",
      "..%2f", "%2f", "%2F", "%5c", "%5C", "..%5c", "..\\", "%00", "%c0%ae%c0%ae", "%c0%af", "%e0%80%ae", "%uff0e%uff0e",
      "%ef%bc%8e%ef%bc%8e", "..;", ";", "usr.db", "usr.db%00.png", "secret.png", "alice", "default", "default_avatar.png",
      "pic.png", "evil", "link.png", "dirlink", "avatar", "%2e", "...", "....", "%25", "%", "%zz", "~", "%7e", "//", "",
      "x.png", "%u002e%u002e", "\u2025", "%e2%80%a5", "%C0%2E", "%2e%2e%2fusr.db", "..%252f", ".%00.", "%09", "%0a", "%0d",
      "%20", "+", "%2b", "?", "#", "%3f", "%23", "\u00e9", "%ff", "%fe%ff", "AUX", "CON", "nul");

  @Test
  @DisplayName("avatar route: traversal in random encodings, symlinks out of the folder, never anything outside it; 200 only with an image from inside")
  void avatarFuzz(Vertx vertx) throws Exception {
    startServer(vertx);
    server.http().register("alice", PASSWORD);
    Path avatars = dir.resolve("avatar");
    byte[] pic = "\u0089PNG-alice-inside".getBytes(StandardCharsets.UTF_8);
    Files.write(avatars.resolve("alice").resolve("pic.png"), pic);
    byte[] defaultAvatar = Files.readAllBytes(avatars.resolve("default").resolve("default_avatar.png"));
    Files.writeString(dir.resolve("secret.png"), "SECRET-OUTSIDE-THE-AVATAR-FOLDER");
    // links that lead out of the folder: a user folder, a file, a folder inside a user folder
    Files.createSymbolicLink(avatars.resolve("evil"), dir);
    Files.createSymbolicLink(avatars.resolve("alice").resolve("link.png"), Path.of("../../secret.png"));
    Files.createSymbolicLink(avatars.resolve("alice").resolve("dirlink"), Path.of("../.."));
    byte[] db = Files.readAllBytes(server.db());

    Random random = new Random(SEED + 2);
    RawHttp raw = new RawHttp(server.httpPort());
    closeables.add(raw);
    List<String> targets = new ArrayList<>(List.of("/avatar/evil/usr.db", "/avatar/evil/secret.png",
        "/avatar/alice/link.png", "/avatar/alice/dirlink/secret.png", "/avatar/alice/dirlink%2fsecret.png",
        "/avatar/evil/avatar/alice/pic.png"));
    for (int i = 0; i < ITERATIONS / 2; i++) {
      StringBuilder t = new StringBuilder(random.nextInt(10) == 0 ? "/avatar" : "/avatar/");
      int parts = 1 + random.nextInt(4);
      for (int p = 0; p < parts; p++) {
        int pieces = 1 + random.nextInt(3);
        for (int k = 0; k < pieces; k++) {
          t.append(TRAVERSAL_PARTS.get(random.nextInt(TRAVERSAL_PARTS.size())));
        }
        if (p < parts - 1) {
          t.append(random.nextInt(6) == 0 ? "%2f" : "/");
        }
      }
      targets.add(t.toString());
    }
    int served = 0;
    for (String target : targets) {
      String where = "GET " + target + seedNote();
      RawHttp.Response r = raw.request("GET", target.getBytes(StandardCharsets.UTF_8), null);
      byte[] body = r.body();
      String text = r.text();
      assertTrue(!text.contains("SECRET-OUTSIDE") && !text.contains("SQLite format"), "outside the folder: " + where);
      assertTrue(body.length < 64 || !Arrays.equals(Arrays.copyOf(db, 64), Arrays.copyOf(body, 64)), "usr.db: " + where);
      if (r.status() == 200) {
        assertTrue(Arrays.equals(pic, body) || Arrays.equals(defaultAvatar, body), "200 with bytes not from the avatar folder: " + where);
        assertTrue(r.header("Content-Type").startsWith("image/"), r.header("Content-Type") + " for " + where);
        served++;
      } else {
        checkHttpJson(r, where);
        assertTrue(r.status() == 404 || r.status() == 400, r.status() + " to " + where);
      }
    }
    System.out.println("[figures] avatar fuzz: " + targets.size() + " paths, " + served + " served an avatar" + seedNote());
    assertServerHealthy();
  }

  // =====================================================================================
  // the framer alone
  // =====================================================================================

  /** Records the framer's events, copying frames at once (they may be slices of the input). */
  static final class Recorder implements JsonFramer.Sink {
    final List<String> events = new ArrayList<>();

    @Override
    public void onFrame(Buffer frame) {
      events.add("frame:" + HexFormat.of().formatHex(frame.getBytes()));
    }

    @Override
    public void onGarbage() {
      events.add("garbage");
    }

    @Override
    public void onTooLarge() {
      events.add("tooLarge");
    }
  }

  static List<String> modelEvents(FramingModel m) {
    List<String> out = new ArrayList<>();
    for (Object e : m.events) {
      out.add(e instanceof byte[] b ? "frame:" + HexFormat.of().formatHex(b) : (String) e);
    }
    return out;
  }

  @Test
  @DisplayName("framer: random chunkings of random streams give exactly the frames of the whole stream, and those of the reference model")
  void framerChunkingProperty() {
    Random random = new Random(SEED + 3);
    Generator gen = new Generator(random, "0".repeat(32));
    int streams = Math.max(300, ITERATIONS / 2);
    for (int s = 0; s < streams; s++) {
      byte[] stream = gen.randomStream(s % 5 == 0);
      int max = random.nextBoolean() ? 64 + random.nextInt(2048) : MAX_FRAME;
      Recorder whole = new Recorder();
      new JsonFramer(max, whole).handle(Buffer.buffer(stream));
      FramingModel model = new FramingModel(max);
      model.feed(stream);
      String where = "stream " + s + " (max " + max + ", " + stream.length + " bytes) " + seedNote();
      assertEquals(modelEvents(model), whole.events, "whole stream vs reference model: " + where);
      for (int k = 0; k < 4; k++) {
        Recorder chunked = new Recorder();
        JsonFramer f = new JsonFramer(max, chunked);
        int at = 0;
        int mode = random.nextInt(3);
        while (at < stream.length) {
          int n = switch (mode) {
            case 0 -> 1;
            case 1 -> 1 + random.nextInt(8);
            default -> 1 + random.nextInt(Math.max(1, stream.length / 3));
          };
          n = Math.min(n, stream.length - at);
          f.handle(Buffer.buffer(Arrays.copyOfRange(stream, at, at + n)));
          at += n;
        }
        assertEquals(whole.events, chunked.events, "chunking mode " + mode + " of " + where);
      }
    }
  }

  // =====================================================================================
  // health afterwards
  // =====================================================================================

  private void assertServerHealthy() {
    String name = "after" + Long.toHexString(System.nanoTime() & 0xffffff);
    try (LineClient a = server.connect(); LineClient b = server.connect()) {
      String token = a.registerAndLogin(name, "pw-after");
      b.registerAndLogin(name + "b", "pw-after");
      a.send(new JsonObject().put("type", "chat").put("token", token).put("message", "still alive"));
      List<String> got = new ArrayList<>();
      got.add(a.readLine());
      got.add(a.readLine());
      assertTrue(got.contains(Replies.CHAT_SENT.json), got.toString());
      JsonObject atB = new JsonObject(b.readLine());
      assertEquals("still alive", atB.getString("message"));
      a.send(new JsonObject().put("type", "heartbeat").put("token", token));
      a.expect(Replies.HEARTBEAT_OK.json);
    }
    server.http().register(name + "h", "pw-after");
    server.http().login(name + "h", "pw-after");
  }

  // =====================================================================================
  // inputs
  // =====================================================================================

  static final class Generator {
    private final Random random;
    private final String token;
    private int names;

    Generator(Random random, String token) {
      this.random = random;
      this.token = token;
    }

    /** Wrong values for any field, as JSON text. */
    List<String> wrongValues() {
      return List.of("0", "-1", "1.5", "-0", "-0.0", "1e999", "-1e999", "1E400", "1e-999",
          "123456789012345678901234567890123456789012345678901234567890", "-9223372036854775809", "true", "false", "null",
          "[]", "[1,\"a\",null,{}]", "{}", "{\"a\":{\"b\":[1]}}", "\"\"", "\" \"", "\"a\\u0000b\"", "\"\\u0000\"",
          "\"\\ud800\"", "\"\\udc00x\"", "\"\\ud800\\ud800\"", "\"\\udbff\\udfff\"", "\"line\\nbreak\"",
          "\"" + "x".repeat(60_000) + "\"", "\"" + "\u00e9".repeat(20_000) + "\"", "\"" + "\\u0041".repeat(10_000) + "\"",
          "\"\\\\..\\\\..\\\\usr.db\"", "\"../../usr.db\"", "\"%2e%2e\"", "\"" + "\\\"".repeat(5000) + "\"",
          "\"{}\"", "\"\\/\"", "\"\ud83d\ude00\"");
    }

    /** Every field of every message type set to every wrong value (and left out). */
    List<Case> typedMatrix(boolean tcp) {
      List<Case> out = new ArrayList<>();
      String[][] messages = {
          {"register", "username", "\"fuzzer\"", "password", "\"" + PASSWORD + "\"", "avatar", "\"me.png\""},
          {"login", "username", "\"fuzzer2\"", "password", "\"wrong-" + PASSWORD + "\""},
          {"login", "username", "\"fuzzer\"", "token", "\"" + token + "\""},
          {"chat", "token", "\"" + token + "\"", "message", "\"hello\""},
          {"heartbeat", "token", "\"" + token + "\""},
      };
      for (String[] m : messages) {
        List<String> fields = new ArrayList<>();
        if (tcp) {
          fields.add("type");
        }
        for (int i = 1; i < m.length; i += 2) {
          fields.add(m[i]);
        }
        fields.add("extra");
        for (String field : fields) {
          List<String> values = new ArrayList<>(wrongValues());
          values.add(null); // left out
          for (String value : values) {
            StringBuilder json = new StringBuilder("{");
            boolean first = true;
            if (tcp) {
              if (!field.equals("type")) {
                json.append("\"type\":\"").append(m[0]).append('"');
                first = false;
              } else if (value != null) {
                json.append("\"type\":").append(value);
                first = false;
              }
            }
            for (int i = 1; i < m.length; i += 2) {
              String v = m[i].equals(field) ? value : m[i + 1];
              if (v == null) {
                continue;
              }
              json.append(first ? "" : ",").append('"').append(m[i]).append("\":").append(v);
              first = false;
            }
            if (field.equals("extra") && value != null) {
              json.append(first ? "" : ",").append("\"extra\":").append(value);
            }
            json.append('}');
            boolean messageString = field.equals("message") && value != null && value.startsWith("\"");
            boolean stringValue = value != null && value.startsWith("\"");
            // a string username may be a valid new name: registering it is fine
            boolean harmless = !tcp || field.equals("extra") || field.equals("avatar") || messageString
                || (m[0].equals("register") && field.equals("username") && stringValue);
            Predicate<String> forbidden = harmless ? line -> false : FuzzTest::isSuccess;
            out.add(new Case((tcp ? "" : "http ") + m[0] + "." + field + "=" + abbreviate(value),
                json.toString().getBytes(StandardCharsets.UTF_8), forbidden));
          }
        }
      }
      return out;
    }

    private static String abbreviate(String v) {
      return v == null ? "(absent)" : v.length() > 40 ? v.substring(0, 40) + "...(" + v.length() + ")" : v;
    }

    /** Inputs with a known answer or a known hazard, for TCP. */
    List<Case> fixedTcpCases() {
      List<Case> out = new ArrayList<>();
      String hb = "{\"type\":\"heartbeat\",\"token\":\"" + token + "\"}";
      // duplicate keys: the last one wins (documented)
      out.add(expect("duplicate type, last wins", "{\"type\":\"chat\",\"type\":\"login\"}", Replies.TCP_BAD_CREDENTIALS.json));
      out.add(expect("duplicate type, last wins (chat)", "{\"type\":\"login\",\"type\":\"chat\",\"token\":\"" + token
          + "\",\"message\":\"dup\"}", Replies.CHAT_SENT.json));
      out.add(expect("duplicate token, last wins", "{\"type\":\"heartbeat\",\"token\":\"bad\",\"token\":\"" + token + "\"}",
          Replies.HEARTBEAT_OK.json));
      out.add(expect("duplicate token, last wins (bad)", "{\"type\":\"heartbeat\",\"token\":\"" + token + "\",\"token\":1}",
          Replies.HEARTBEAT_ERROR.json));
      // BOM and NUL before a message: garbage, the line is dropped
      out.add(expect("BOM before an object", bytes(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF}, hb + "\n"), Replies.INVALID_JSON.json));
      out.add(expect("BOM inside an object", bytes("{".getBytes(StandardCharsets.UTF_8),
          new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF}, hb.substring(1)), Replies.INVALID_JSON.json));
      out.add(expect("NUL before an object", bytes(new byte[] {0}, hb + "\n"), Replies.INVALID_JSON.json));
      out.add(expect("raw NUL inside a string", bytes(("{\"type\":\"chat\",\"token\":\"" + token + "\",\"message\":\"a")
          .getBytes(StandardCharsets.UTF_8), new byte[] {0}, "b\"}".getBytes(StandardCharsets.UTF_8)), Replies.INVALID_JSON.json));
      out.add(expect("raw newline inside a string", "{\"type\":\"chat\",\"token\":\"" + token + "\",\"message\":\"a\nb\"}",
          Replies.INVALID_JSON.json));
      out.add(expect("UTF-16 looking frame", bytes(new byte[] {'{', 0, 0, 0, '}'}), Replies.INVALID_JSON.json));
      out.add(expect("UTF-32 looking frame", bytes(new byte[] {'{', 0, 0, 0, '"', 0, 0, 0, '}', 0, 0, 0}), Replies.INVALID_JSON.json));
      // escaped NUL and lone surrogates are valid JSON strings
      out.add(expect("escaped NUL in a chat", "{\"type\":\"chat\",\"token\":\"" + token + "\",\"message\":\"a\\u0000b\"}",
          Replies.CHAT_SENT.json));
      out.add(expect("lone surrogate in a chat", "{\"type\":\"chat\",\"token\":\"" + token + "\",\"message\":\"\\ud800\"}",
          Replies.CHAT_SENT.json));
      out.add(expect("NUL in a username", "{\"type\":\"register\",\"username\":\"ab\\u0000c\",\"password\":\"x\"}",
          Replies.TCP_BAD_USERNAME.json));
      out.add(expect("lone surrogate in a password", "{\"type\":\"register\",\"username\":\"surrogate1\",\"password\":\"\\ud800\"}",
          Replies.BAD_PASSWORD.json));
      out.add(expect("lone surrogate in an avatar", "{\"type\":\"register\",\"username\":\"surrogate2\",\"password\":\"x\","
          + "\"avatar\":\"\\udc00.png\"}", Replies.TCP_BAD_AVATAR.json));
      // numbers
      for (String n : List.of("1e999", "-0", "-0.0", "1E400", "123456789012345678901234567890", "0.1e-99999", "-1e999")) {
        out.add(expect("number " + n + " in an extra field", "{\"type\":\"heartbeat\",\"token\":\"" + token + "\",\"n\":" + n + "}",
            Replies.HEARTBEAT_OK.json));
        out.add(expect("number " + n + " as the token", "{\"type\":\"chat\",\"token\":" + n + ",\"message\":\"m\"}",
            n.equals("null") ? Replies.TCP_CHAT_MISSING_TOKEN.json : Replies.TCP_CHAT_INVALID_TOKEN.json));
      }
      out.add(expect("invalid number", "{\"type\":\"heartbeat\",\"token\":\"" + token + "\",\"n\":01}", Replies.INVALID_JSON.json));
      out.add(expect("NaN", "{\"type\":\"heartbeat\",\"token\":\"" + token + "\",\"n\":NaN}", Replies.INVALID_JSON.json));
      // comments are skipped (Vert.x's parser allows them; documented)
      out.add(expect("block comment", "{\"type\":\"heartbeat\",/*x*/\"token\":\"" + token + "\"}", Replies.HEARTBEAT_OK.json));
      out.add(expect("line comment", "{\"type\":\"heartbeat\", // x\n\"token\":\"" + token + "\"}", Replies.HEARTBEAT_OK.json));
      out.add(expect("single quotes", "{'type':'heartbeat'}", Replies.INVALID_JSON.json));
      out.add(expect("trailing comma", "{\"type\":\"heartbeat\",}", Replies.INVALID_JSON.json));
      // 10,000-deep nesting, inside an object (one frame, under the size limit) and outside one
      out.add(expect("10,000-deep arrays", "{\"a\":" + "[".repeat(10_000) + "]".repeat(10_000) + "}", Replies.INVALID_JSON.json));
      out.add(expect("10,000-deep objects", "{\"a\":".repeat(10_000) + "1" + "}".repeat(10_000), Replies.INVALID_JSON.json));
      out.add(expect("10,000-deep objects, type outside", "{\"type\":\"heartbeat\",\"token\":\"" + token + "\",\"x\":"
          + "{\"a\":".repeat(10_000) + "1" + "}".repeat(10_001), Replies.INVALID_JSON.json));
      out.add(expect("nesting just allowed", "{\"type\":\"heartbeat\",\"token\":\"" + token + "\",\"x\":"
          + "[".repeat(500) + "]".repeat(500) + "}", Replies.HEARTBEAT_OK.json));
      out.add(new Case("10,000-deep arrays outside an object", ("[".repeat(10_000) + "\n").getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("15,000-deep objects: over the size limit", "{\"a\":".repeat(15_000).getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("an unterminated string over the size limit", ("{\"a\":\"" + "x".repeat(MAX_FRAME)).getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("exactly at the size limit", frameOfSize(MAX_FRAME)));
      out.add(new Case("one past the size limit", frameOfSize(MAX_FRAME + 1)));
      out.add(new Case("a brace in a string at the limit", ("{\"a\":\"" + "}".repeat(MAX_FRAME)).getBytes(StandardCharsets.UTF_8)));
      // coalesced and interleaved
      out.add(new Case("many messages in one write", (hb + "garbage\n" + hb + "{}" + "[1]\n" + hb + "{\"type\":1}" + hb)
          .getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("CR only line ends", ("x\r" + hb + "\r\n").getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("empty object", "{}".getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("many empty objects", "{}".repeat(2000).getBytes(StandardCharsets.UTF_8)));
      return out;
    }

    private Case expect(String label, String json, String reply) {
      return expect(label, json.getBytes(StandardCharsets.UTF_8), reply);
    }

    private Case expect(String label, byte[] payload, String reply) {
      return new Case(label + " -> " + reply, payload, line -> !line.equals(reply));
    }

    private static byte[] bytes(Object... parts) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      for (Object p : parts) {
        byte[] b = p instanceof String s ? s.getBytes(StandardCharsets.UTF_8) : (byte[]) p;
        out.write(b, 0, b.length);
      }
      return out.toByteArray();
    }

    private static byte[] frameOfSize(int size) {
      String head = "{\"type\":\"x\",\"p\":\"";
      return (head + "y".repeat(size - head.length() - 2) + "\"}").getBytes(StandardCharsets.UTF_8);
    }

    /** Bodies with a known hazard, for HTTP. */
    List<Case> fixedHttpBodies() {
      List<Case> out = new ArrayList<>();
      out.add(new Case("empty", new byte[0]));
      out.add(new Case("BOM", bytes(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF}, "{\"message\":\"x\"}")));
      out.add(new Case("NUL", bytes(new byte[] {0})));
      out.add(new Case("10,000-deep arrays", ("{\"message\":" + "[".repeat(10_000) + "]".repeat(10_000) + "}").getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("10,000-deep objects", ("{\"a\":".repeat(10_000) + "1" + "}".repeat(10_000)).getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("top-level deep arrays", "[".repeat(10_000).getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("over the body limit", ("{\"message\":\"" + "x".repeat(70_000) + "\"}").getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("two objects", "{\"message\":\"a\"}{\"message\":\"b\"}".getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("object then garbage", "{\"message\":\"a\"} xyz".getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("duplicate keys", "{\"username\":1,\"username\":\"fuzzer\",\"password\":\"x\",\"password\":null}"
          .getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("utf-16", "{\"message\":\"x\"}".getBytes(StandardCharsets.UTF_16)));
      out.add(new Case("utf-32 looking", new byte[] {'{', 0, 0, 0, '}', 0, 0, 0}));
      out.add(new Case("form body", "username=fuzzer&password=x".getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("multipart body", ("--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nfuzzer\r\n--XyZ\r\n"
          + "Content-Disposition: form-data; name=\"f\"; filename=\"../../x.png\"\r\n\r\nDATA\r\n--XyZ--\r\n").getBytes(StandardCharsets.UTF_8)));
      out.add(new Case("broken multipart", "--XyZ\r\nContent-Disposition: form-data\r\n\r\n".getBytes(StandardCharsets.UTF_8)));
      return out;
    }

    // ---- random ----

    private String validMessage() {
      return switch (random.nextInt(7)) {
        case 0 -> "{\"type\":\"register\",\"username\":\"fuzzer\",\"password\":\"" + PASSWORD + "\",\"avatar\":\"me.png\"}";
        case 1 -> "{\"type\":\"register\",\"username\":\"fz" + (names++) + "x" + random.nextInt(1000) + "\",\"password\":\"p\"}";
        case 2 -> "{\"type\":\"login\",\"username\":\"fuzzer2\",\"password\":\"" + PASSWORD + "\"}";
        case 3 -> "{\"type\":\"login\",\"token\":\"" + token + "\"}";
        case 4 -> "{\"type\":\"chat\",\"token\":\"" + token + "\",\"message\":\"hello \\\"{}\\\" \u00e9\u4e2d\ud83d\ude00\"}";
        case 5 -> "{\"type\":\"heartbeat\",\"token\":\"" + token + "\"}";
        default -> "{\"type\":\"chat\",\"token\":\"" + token + "\",\"message\":{\"nested\":[1,{\"b\":\"}\"}]}}";
      };
    }

    private String validBody() {
      return switch (random.nextInt(4)) {
        case 0 -> "{\"username\":\"fuzzer\",\"password\":\"" + PASSWORD + "\",\"avatar\":\"me.png\"}";
        case 1 -> "{\"username\":\"fuzzer2\",\"password\":\"" + PASSWORD + "\"}";
        case 2 -> "{\"message\":\"hello \u00e9\"}";
        default -> "{\"username\":\"hz" + (names++) + "x" + random.nextInt(1000) + "\",\"password\":\"p\"}";
      };
    }

    private static final byte[] JSONISH = "{}[]\":,\\ 0123456789.eE+-tfnul\n\r\tx/u\u00e9".getBytes(StandardCharsets.UTF_8);
    private static final String[] SNIPPETS = {"null", "1e999", "{}", "[]", "\"\\ud800\"", "\"x\":1,", "\"type\":\"chat\",",
        "\\", "\"", "{{{{", "}}}}", "\\u00", "\\ud83d", "-0", "true", "[[[[", ",,", "\"\\u0000\""};
    private static final byte[][] BAD_UTF8 = {{(byte) 0xC0, (byte) 0xAF}, {(byte) 0xED, (byte) 0xA0, (byte) 0x80},
        {(byte) 0xF8, (byte) 0x88, (byte) 0x80, (byte) 0x80, (byte) 0x80}, {(byte) 0xFF}, {(byte) 0x80},
        {(byte) 0xE2, (byte) 0x82}, {(byte) 0xF4, (byte) 0x90, (byte) 0x80, (byte) 0x80}, {(byte) 0xC3},
        {(byte) 0xFE, (byte) 0xFF}, {(byte) 0xC1, (byte) 0x81}, {(byte) 0xE0, (byte) 0x80, (byte) 0xAF}};

    byte[] mutate(byte[] base) {
      ByteArrayOutputStream b = new ByteArrayOutputStream();
      byte[] cur = base;
      int ops = 1 + random.nextInt(4);
      for (int op = 0; op < ops; op++) {
        int at = cur.length == 0 ? 0 : random.nextInt(cur.length + 1);
        b.reset();
        switch (random.nextInt(7)) {
          case 0 -> { // delete a span
            int n = Math.min(1 + random.nextInt(4), cur.length - at);
            b.write(cur, 0, at);
            b.write(cur, at + Math.max(0, n), cur.length - at - Math.max(0, n));
          }
          case 1 -> { // insert a JSON-ish byte
            b.write(cur, 0, at);
            b.write(JSONISH[random.nextInt(JSONISH.length)]);
            b.write(cur, at, cur.length - at);
          }
          case 2 -> { // replace with any byte
            b.write(cur, 0, cur.length);
            if (cur.length > 0) {
              byte[] x = b.toByteArray();
              x[random.nextInt(x.length)] = (byte) random.nextInt(256);
              b.reset();
              b.write(x, 0, x.length);
            }
          }
          case 3 -> { // duplicate a span
            int from = cur.length == 0 ? 0 : random.nextInt(cur.length);
            int n = Math.min(1 + random.nextInt(20), cur.length - from);
            b.write(cur, 0, at);
            b.write(cur, from, n);
            b.write(cur, at, cur.length - at);
          }
          case 4 -> { // insert a snippet
            byte[] s = SNIPPETS[random.nextInt(SNIPPETS.length)].getBytes(StandardCharsets.UTF_8);
            b.write(cur, 0, at);
            b.write(s, 0, s.length);
            b.write(cur, at, cur.length - at);
          }
          case 5 -> { // invalid UTF-8
            byte[] s = BAD_UTF8[random.nextInt(BAD_UTF8.length)];
            b.write(cur, 0, at);
            b.write(s, 0, s.length);
            b.write(cur, at, cur.length - at);
          }
          default -> { // flip a bit
            b.write(cur, 0, cur.length);
            if (cur.length > 0) {
              byte[] x = b.toByteArray();
              x[random.nextInt(x.length)] ^= (byte) (1 << random.nextInt(8));
              b.reset();
              b.write(x, 0, x.length);
            }
          }
        }
        cur = b.toByteArray();
      }
      return cur;
    }

    private byte[] randomBytes(int max) {
      byte[] b = new byte[random.nextInt(max + 1)];
      random.nextBytes(b);
      return b;
    }

    private byte[] invalidUtf8Message() {
      ByteArrayOutputStream b = new ByteArrayOutputStream();
      byte[] head = ("{\"type\":\"chat\",\"token\":\"" + token + "\",\"message\":\"").getBytes(StandardCharsets.UTF_8);
      b.write(head, 0, head.length);
      int n = 1 + random.nextInt(4);
      for (int i = 0; i < n; i++) {
        byte[] s = BAD_UTF8[random.nextInt(BAD_UTF8.length)];
        b.write(s, 0, s.length);
        b.write('a');
      }
      b.write('"');
      b.write('}');
      return b.toByteArray();
    }

    Case randomTcpCase(int i) {
      int kind = random.nextInt(10);
      return switch (kind) {
        case 0 -> new Case("random bytes", randomBytes(random.nextInt(10) == 0 ? 3000 : 200));
        case 1 -> new Case("invalid UTF-8 in a string", invalidUtf8Message(), line -> !line.equals(Replies.INVALID_JSON.json));
        case 2 -> new Case("random bytes inside an object", bytes("{\"type\":\"chat\",\"message\":\"", randomBytes(100)));
        case 3 -> {
          // several messages, some mutated, with separators, in one write
          ByteArrayOutputStream b = new ByteArrayOutputStream();
          int n = 1 + random.nextInt(4);
          for (int k = 0; k < n; k++) {
            byte[] m = validMessage().getBytes(StandardCharsets.UTF_8);
            byte[] part = random.nextBoolean() ? m : mutate(m);
            b.write(part, 0, part.length);
            String sep = List.of("", " ", "\n", "\r\n", "\t", "junk\n").get(random.nextInt(6));
            b.write(sep.getBytes(StandardCharsets.UTF_8), 0, sep.length());
          }
          yield new Case("coalesced messages", b.toByteArray());
        }
        default -> new Case("mutated message", mutate(validMessage().getBytes(StandardCharsets.UTF_8)));
      };
    }

    Case randomHttpBody(int i) {
      return switch (random.nextInt(6)) {
        case 0 -> new Case("random bytes", randomBytes(300));
        case 1 -> new Case("mutated message", mutate(validMessage().getBytes(StandardCharsets.UTF_8)));
        default -> new Case("mutated body", mutate(validBody().getBytes(StandardCharsets.UTF_8)));
      };
    }

    /** A stream for the framer alone: objects with nesting, strings with braces and escapes, multi-byte text, whitespace, sometimes garbage. */
    byte[] randomStream(boolean withGarbage) {
      ByteArrayOutputStream b = new ByteArrayOutputStream();
      int n = 1 + random.nextInt(12);
      for (int k = 0; k < n; k++) {
        byte[] obj = randomObject(0).getBytes(StandardCharsets.UTF_8);
        if (withGarbage && random.nextInt(4) == 0) {
          obj = mutate(obj);
        }
        b.write(obj, 0, obj.length);
        String sep = List.of("", " ", "\n", "\r\n", "\t\t", "  \n ").get(random.nextInt(6));
        b.write(sep.getBytes(StandardCharsets.UTF_8), 0, sep.length());
        if (withGarbage && random.nextInt(5) == 0) {
          byte[] g = ("garbage" + random.nextInt(100) + (random.nextBoolean() ? " {\"x\":1}" : "") + "\n").getBytes(StandardCharsets.UTF_8);
          b.write(g, 0, g.length);
        }
      }
      return b.toByteArray();
    }

    private String randomObject(int depth) {
      StringBuilder s = new StringBuilder("{");
      int keys = random.nextInt(depth > 3 ? 2 : 5);
      for (int k = 0; k < keys; k++) {
        s.append(k == 0 ? "" : ",").append('"').append(randomString()).append("\":");
        s.append(switch (random.nextInt(depth > 3 ? 3 : 6)) {
          case 0 -> '"' + randomString() + '"';
          case 1 -> String.valueOf(random.nextInt());
          case 2 -> "null";
          case 3 -> randomObject(depth + 1);
          case 4 -> "[" + randomObject(depth + 1) + ",\"]}\"," + random.nextDouble() + "]";
          default -> "{\"s\":\"" + randomString() + "\"}";
        });
      }
      return s.append('}').toString();
    }

    private static final String[] STRING_PARTS = {"a", "{", "}", "\\\"", "\\\\", "\\n", "\\u007b", "\u00e9", "\u4e2d",
        "\ud83d\ude00", " ", "[", "]", ":", ","};

    private String randomString() {
      StringBuilder s = new StringBuilder();
      int n = random.nextInt(12);
      for (int k = 0; k < n; k++) {
        s.append(STRING_PARTS[random.nextInt(STRING_PARTS.length)]);
      }
      return s.toString();
    }
  }
}
