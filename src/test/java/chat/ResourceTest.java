package chat;

import chat.protocol.Replies;
import chat.support.LineClient;
import chat.support.ProcStats;
import chat.support.RawHttp;
import chat.support.ServerProcess;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
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
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Bounded resources under abuse, measured on the server as its own JVM ({@link ServerProcess}):
 * its resident memory ({@code VmRSS}) and open file descriptors come from /proc/<pid>, and its
 * session and connection gauges from {@code GET /metrics}. Abuse limits are off
 * ({@code CHAT_LIMITS_ENABLED=false}): this is about memory and descriptors, not rates.
 *
 * <p>Every figure is printed as a {@code [figures]} line in the test output
 * (target/surefire-reports/chat.ResourceTest-output.txt).
 */
class ResourceTest {

  private static final Duration STARTUP = Duration.ofSeconds(60);
  private static final String PW = "pw-resource";

  /**
   * How far the server's RSS may rise above its warmed-up baseline. The server's heap is committed
   * and touched at startup ({@code -Xms256m -XX:+AlwaysPreTouch}, see {@link #start}), so RSS moves
   * only with memory outside the heap: Netty's direct buffers, thread stacks, JIT code. Measured on
   * the 2-core development machine: +1 MiB after the 20,000-chat flood, +5 MiB after the 5,000
   * connect/close cycles, +5 MiB while 8 x 48 MB HTTP bodies were refused (without the pre-touch,
   * the serial collector touching more of its heap made RSS rise 14-43 MiB, which said nothing
   * about leaks). 32 MiB leaves that spread six times over; 384 MB of buffered bodies, or the
   * unread output of a non-reader kept without a bound across the cycles, would not fit.
   */
  private static final long RSS_BOUND_KIB = 32 * 1024;
  /**
   * How far the live heap after a full GC may rise above its baseline. Measured: -5 to +8 MiB. What
   * stays is the 1,000 login tokens of the cycles (about 250 KB; they live for
   * auth.tokenTtlSeconds) and caches that come and go (class histograms taken between rounds of
   * cycles showed up to 9 MB of int[] one time, gone the next). A connection whose TcpConnection,
   * NetSocket and Netty channel stayed behind costs several KB: 5,000 of them would not fit. The
   * gauges and the descriptor count catch such a leak more directly.
   */
  private static final long HEAP_BOUND_KIB = 16 * 1024;
  /** Descriptors the JVM may open or close on its own between two counts (jar files, GC, epoll). */
  private static final int FD_SLACK = 8;

  @TempDir
  Path root;
  Path dir;
  private final List<ServerProcess> processes = new ArrayList<>();
  private final List<AutoCloseable> closeables = new ArrayList<>();

  @BeforeEach
  void dataFolder() throws IOException {
    dir = Files.createDirectory(root.resolve("data"));
  }

  @AfterEach
  void stopAll() throws Exception {
    for (AutoCloseable c : closeables) {
      try {
        c.close();
      } catch (Exception ignored) {
        // closed
      }
    }
    for (ServerProcess p : processes) {
      p.close();
    }
  }

  private ServerProcess start(Map<String, String> extra) {
    Map<String, String> env = new HashMap<>();
    env.put("CHAT_HTTP_PORT", "0");
    env.put("CHAT_TCP_PORT", "0");
    env.put("CHAT_HOST", "127.0.0.1");
    env.put("CHAT_AUTH_HASHCOST", "low");
    env.put("CHAT_LIMITS_ENABLED", "false");
    // the whole heap committed and touched at startup: RSS then moves only with memory outside the
    // heap (direct buffers, threads, code), and a heap leak shows in the live heap after a GC
    env.put("JAVA_TOOL_OPTIONS", "-Xms256m -XX:+AlwaysPreTouch");
    env.putAll(extra);
    ServerProcess p = ServerProcess.start(dir, root, env);
    processes.add(p);
    return p;
  }

  // ---- helpers ----

  private static Socket connect(int port) throws IOException {
    Socket s = new Socket();
    s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
    s.setTcpNoDelay(true);
    s.setSoTimeout(10_000);
    return s;
  }

  private static String chatJson(String token, String message) {
    return new JsonObject().put("type", "chat").put("token", token).put("message", message).encode();
  }

  /** One line, byte by byte from a raw stream (nothing past it is consumed); null at the end. */
  private static String rawLine(InputStream in) throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    int b;
    while ((b = in.read()) != -1) {
      if (b == '\n') {
        return line.toString(StandardCharsets.UTF_8);
      }
      line.write(b);
    }
    return null;
  }

  /** Logs in on a raw socket and returns the token. */
  private static String login(Socket s, InputStream in, String user) throws IOException {
    s.getOutputStream().write(("{\"type\":\"login\",\"username\":\"" + user + "\",\"password\":\"" + PW + "\"}")
        .getBytes(StandardCharsets.UTF_8));
    String line = rawLine(in);
    assertTrue(line != null && line.startsWith("{\"type\":\"login\",\"status\":\"success\""), user + ": " + line);
    return new JsonObject(line).getString("token");
  }

  private static void register(int tcpPort, String... users) {
    try (LineClient c = new LineClient(tcpPort)) {
      for (String u : users) {
        c.send(new JsonObject().put("type", "register").put("username", u).put("password", PW));
        c.expect(Replies.REGISTERED.json);
      }
    }
  }

  private static final Pattern GAUGE = Pattern.compile("(?m)^(chat_sessions|chat_connections)(?:\\{[^}]*\\})? (\\S+)$");

  /** chat_sessions and chat_connections from GET /metrics, on a connection of its own that is closed after. */
  private static Map<String, Double> gauges(int httpPort) throws IOException {
    try (RawHttp raw = new RawHttp(httpPort)) {
      RawHttp.Response r = raw.get("/metrics");
      assertEquals(200, r.status(), r.text());
      Map<String, Double> out = new HashMap<>();
      Matcher m = GAUGE.matcher(r.text());
      while (m.find()) {
        out.merge(m.group(1), Double.parseDouble(m.group(2)), Double::sum);
      }
      assertEquals(2, out.size(), "gauges missing from /metrics");
      return out;
    }
  }

  private static final Pattern HEAP_USED = Pattern.compile("(?m)^jvm_memory_used_bytes\\{area=\"heap\",[^}]*\\} (\\S+)$");

  /** The server's live heap in KiB: a full GC ({@code jcmd <pid> GC.run}), then the heap gauges of /metrics. */
  private static long liveHeapKiB(long pid, int httpPort) throws Exception {
    Process jcmd = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(),
        Long.toString(pid), "GC.run").redirectErrorStream(true).start();
    String out = new String(jcmd.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(jcmd.waitFor(60, TimeUnit.SECONDS) && jcmd.exitValue() == 0, "jcmd GC.run: " + out);
    try (RawHttp raw = new RawHttp(httpPort)) {
      Matcher m = HEAP_USED.matcher(raw.get("/metrics").text());
      double bytes = 0;
      while (m.find()) {
        bytes += Double.parseDouble(m.group(1));
      }
      assertTrue(bytes > 0, "no heap gauges in /metrics");
      return (long) (bytes / 1024);
    }
  }

  private static Thread daemon(String name, Runnable r) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    t.start();
    return t;
  }

  /** Samples the RSS every 50 ms until stopped; keeps the highest. */
  private static final class RssSampler implements AutoCloseable {
    final AtomicLong peak = new AtomicLong();
    private volatile boolean running = true;
    private final Thread thread;

    RssSampler(long pid) {
      thread = daemon("rss-sampler", () -> {
        while (running) {
          try {
            peak.accumulateAndGet(ProcStats.rssKiB(pid), Math::max);
            Thread.sleep(50);
          } catch (Exception e) {
            return;
          }
        }
      });
    }

    @Override
    public void close() throws InterruptedException {
      running = false;
      thread.join(1000);
    }
  }

  /**
   * A pipelined chat flood: the sender keeps at most {@code window} chats unanswered, a reader
   * thread counts its success replies. Returns once every reply is in.
   */
  private static void flood(Socket sender, InputStream in, String token, int n, int window, String padding) throws Exception {
    Semaphore inFlight = new Semaphore(window);
    AtomicInteger acks = new AtomicInteger();
    CompletableFuture<Void> reader = CompletableFuture.runAsync(() -> {
      try {
        String line;
        while (acks.get() < n && (line = rawLine(in)) != null) {
          if (line.equals(Replies.CHAT_SENT.json)) {
            acks.incrementAndGet();
            inFlight.release();
          } else if (!line.startsWith("{\"type\":\"chat\",\"user\":")) {
            throw new AssertionError("sender got " + line);
          }
        }
      } catch (IOException e) {
        throw new AssertionError("sender connection failed after " + acks.get() + " replies", e);
      }
    }, r -> daemon("sender-reader", r));
    OutputStream out = new BufferedOutputStream(sender.getOutputStream(), 1 << 16);
    for (int i = 0; i < n; i++) {
      if (!inFlight.tryAcquire()) {
        out.flush();
        if (!inFlight.tryAcquire(60, TimeUnit.SECONDS)) {
          fail("no reply to chat " + (i - window) + " within 60 s");
        }
      }
      out.write(chatJson(token, i + ":" + padding).getBytes(StandardCharsets.UTF_8));
    }
    out.flush();
    reader.get(120, TimeUnit.SECONDS);
    assertEquals(n, acks.get());
  }

  /** Reads broadcasts of {@code author} and checks that message i is the i-th; completes after n. */
  private static CompletableFuture<Integer> receiveInOrder(Socket s, InputStream in, String author, int n, String padding) {
    String prefix = "{\"type\":\"chat\",\"user\":\"" + author + "\",\"message\":\"";
    return CompletableFuture.supplyAsync(() -> {
      int expected = 0;
      try {
        s.setSoTimeout(60_000);
        String line;
        while (expected < n && (line = rawLine(in)) != null) {
          if (!line.startsWith(prefix)) {
            continue;
          }
          String message = new JsonObject(line).getString("message");
          String want = expected + ":" + padding;
          if (!message.equals(want)) {
            throw new AssertionError("receiver: expected chat " + expected + ", got " + message.substring(0, Math.min(20, message.length())));
          }
          expected++;
        }
      } catch (IOException e) {
        throw new AssertionError("receiver connection failed after " + expected + " chats", e);
      }
      return expected;
    }, r -> daemon("receiver", r));
  }

  // =====================================================================================

  @Test
  @DisplayName("20,000 x 1 KB chats with one non-reading session: the receiver gets all in order, the non-reader is cut off, RSS bounded; then 5,000 connect/close cycles leave no descriptor, session or memory behind")
  void floodThenConnectCloseCycles() throws Exception {
    ServerProcess p = start(Map.of());
    ServerProcess.Ports ports = p.awaitListening(STARTUP);
    long pid = p.process().pid();
    int threads = 4;
    List<String> users = new ArrayList<>(List.of("sender", "receiver", "stuck"));
    for (int t = 0; t < threads; t++) {
      users.add("cycle" + t);
    }
    register(ports.tcp(), users.toArray(String[]::new));
    Thread.sleep(500);
    int fdBaseline = ProcStats.openFds(pid);

    Socket sender = connect(ports.tcp());
    Socket receiver = connect(ports.tcp());
    closeables.add(sender);
    closeables.add(receiver);
    // one buffered stream per socket for the whole test: a second one could miss what the first read ahead
    InputStream senderIn = new BufferedInputStream(sender.getInputStream(), 1 << 16);
    InputStream receiverIn = new BufferedInputStream(receiver.getInputStream(), 1 << 16);
    String senderToken = login(sender, senderIn, "sender");
    login(receiver, receiverIn, "receiver");
    String padding = "x".repeat(1000);

    // warm-up with everyone reading: JIT, heap and buffer pools reach their working size
    CompletableFuture<Integer> warm = receiveInOrder(receiver, receiverIn, "sender", 2000, padding);
    flood(sender, senderIn, senderToken, 2000, 256, padding);
    assertEquals(2000, warm.get(60, TimeUnit.SECONDS));
    long heapBaseline = liveHeapKiB(pid, ports.http());
    Thread.sleep(1000);
    long rssBaseline = ProcStats.rssKiB(pid);

    // the non-reader: a small receive window, logged in, then never reads again
    Socket stuck = new Socket();
    closeables.add(stuck);
    stuck.setReceiveBufferSize(4096);
    stuck.connect(new InetSocketAddress("127.0.0.1", ports.tcp()), 5000);
    login(stuck, stuck.getInputStream(), "stuck");
    assertEquals(3.0, gauges(ports.http()).get("chat_sessions"));

    int n = 20_000;
    CompletableFuture<Integer> received = receiveInOrder(receiver, receiverIn, "sender", n, padding);
    long t0 = System.nanoTime();
    try (RssSampler sampler = new RssSampler(pid)) {
      flood(sender, senderIn, senderToken, n, 256, padding);
      assertEquals(n, received.get(120, TimeUnit.SECONDS), "chats the normal receiver got, in order");
      long floodMillis = (System.nanoTime() - t0) / 1_000_000;
      Map<String, Double> g = gauges(ports.http());
      assertEquals(2.0, g.get("chat_sessions"), "the non-reader still holds its session: " + g);
      Thread.sleep(2000);
      long rssAfter = ProcStats.rssKiB(pid);
      long heapAfter = liveHeapKiB(pid, ports.http());
      System.out.println("[figures] flood: " + n + " x ~1 KB chats in " + floodMillis + " ms ("
          + n * 1000L / Math.max(1, floodMillis) + "/s) to 3 sessions, one not reading; RSS baseline "
          + rssBaseline / 1024 + " MiB, peak " + sampler.peak.get() / 1024 + " MiB, after 2 s " + rssAfter / 1024
          + " MiB (+" + (rssAfter - rssBaseline) / 1024 + " MiB; bound +" + RSS_BOUND_KIB / 1024 + "); live heap after GC "
          + heapBaseline / 1024 + " -> " + heapAfter / 1024 + " MiB (bound +" + HEAP_BOUND_KIB / 1024 + ")");
      assertTrue(rssAfter - rssBaseline <= RSS_BOUND_KIB, "RSS grew by " + (rssAfter - rssBaseline) / 1024 + " MiB");
      assertTrue(heapAfter - heapBaseline <= HEAP_BOUND_KIB, "live heap grew by " + (heapAfter - heapBaseline) / 1024 + " MiB");
    }
    // the non-reader's connection was closed: what was in flight drains, then the stream ends
    stuck.setSoTimeout(10_000);
    long drained = 0;
    try {
      byte[] buf = new byte[1 << 16];
      int k;
      while ((k = stuck.getInputStream().read(buf)) != -1) {
        drained += k;
      }
    } catch (SocketTimeoutException e) {
      fail("the non-reading connection is still open after the flood (" + drained + " bytes read)");
    } catch (IOException reset) {
      // a reset is a close too
    }
    System.out.println("[figures] the non-reader was cut off after about " + drained / 1024 + " KiB reached it (of "
        + n + " KiB sent to the others)");
    assertTrue(drained < n * 1000L / 2, "the non-reader was sent " + drained + " bytes: its output was not bounded");
    try (Socket again = connect(ports.tcp())) {
      login(again, again.getInputStream(), "stuck");
    }
    sender.close();
    receiver.close();

    // ---- 5,000 rapid connect/close cycles ----
    int cycles = 5000;
    AtomicInteger logins = new AtomicInteger();
    AtomicInteger refused = new AtomicInteger();
    ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    long c0 = System.nanoTime();
    try (RssSampler sampler = new RssSampler(pid)) {
      List<Future<?>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int thread = t;
        done.add(pool.submit(() -> {
          for (int i = thread; i < cycles; i += threads) {
            try (Socket s = new Socket()) {
              s.connect(new InetSocketAddress("127.0.0.1", ports.tcp()), 5000);
              s.setSoTimeout(10_000);
              OutputStream out = s.getOutputStream();
              switch (i % 5) {
                case 0 -> {
                  // connect and close at once
                }
                case 1 -> out.write("{\"type\":\"chat\",\"token\":\"abc".getBytes(StandardCharsets.UTF_8)); // half a frame
                case 2 -> {
                  out.write(("{\"type\":\"login\",\"username\":\"cycle" + thread + "\",\"password\":\"" + PW + "\"}")
                      .getBytes(StandardCharsets.UTF_8));
                  String line = rawLine(s.getInputStream());
                  if (line != null && line.startsWith("{\"type\":\"login\",\"status\":\"success\"")) {
                    logins.incrementAndGet();
                  } else if (Replies.TCP_ALREADY_LOGGED_IN.json.equals(line) || "{\"type\":\"ping\"}".equals(line)) {
                    refused.incrementAndGet(); // the previous cycle's close not yet seen by the server
                  } else {
                    failures.add("login: " + line);
                  }
                }
                case 3 -> {
                  // a reset instead of a FIN, after a complete message
                  out.write("{\"type\":\"heartbeat\"}".getBytes(StandardCharsets.UTF_8));
                  rawLine(s.getInputStream());
                  s.setSoLinger(true, 0);
                }
                default -> {
                  // half a frame, then a reset
                  out.write("{\"type\":\"register\",\"user".getBytes(StandardCharsets.UTF_8));
                  s.setSoLinger(true, 0);
                }
              }
            } catch (IOException e) {
              failures.add("cycle " + i + ": " + e);
            }
          }
        }));
      }
      for (Future<?> f : done) {
        f.get(180, TimeUnit.SECONDS);
      }
      long cycleMillis = (System.nanoTime() - c0) / 1_000_000;
      assertTrue(failures.isEmpty(), failures.size() + " cycles failed, e.g. " + failures.peek());
      assertTrue(logins.get() > 0, "no cycle logged in");

      // everything is released: gauges at 0, descriptors back to the baseline
      Map<String, Double> g = null;
      int fds = -1;
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
      while (System.nanoTime() < deadline) {
        g = gauges(ports.http());
        fds = ProcStats.openFds(pid);
        if (g.get("chat_sessions") == 0.0 && g.get("chat_connections") == 0.0 && fds <= fdBaseline + FD_SLACK) {
          break;
        }
        Thread.sleep(200);
      }
      Thread.sleep(1000);
      long rssAfter = ProcStats.rssKiB(pid);
      long heapAfter = liveHeapKiB(pid, ports.http());
      System.out.println("[figures] " + cycles + " connect/close cycles (" + threads + " threads) in " + cycleMillis
          + " ms, " + logins.get() + " logins (" + refused.get() + " refused while the previous close was in flight); "
          + "fds baseline " + fdBaseline + ", after " + fds + "; gauges " + g + "; RSS peak " + sampler.peak.get() / 1024
          + " MiB, after " + rssAfter / 1024 + " MiB (baseline " + rssBaseline / 1024 + " MiB); live heap after GC "
          + heapAfter / 1024 + " MiB (baseline " + heapBaseline / 1024 + " MiB)");
      assertEquals(0.0, g.get("chat_sessions"), "sessions left after the cycles");
      assertEquals(0.0, g.get("chat_connections"), "connections left after the cycles");
      assertTrue(fds <= fdBaseline + FD_SLACK, "descriptors: " + fds + " after the cycles, " + fdBaseline + " before");
      assertTrue(rssAfter - rssBaseline <= RSS_BOUND_KIB, "RSS grew by " + (rssAfter - rssBaseline) / 1024 + " MiB");
      assertTrue(heapAfter - heapBaseline <= HEAP_BOUND_KIB, "live heap grew by " + (heapAfter - heapBaseline) / 1024 + " MiB");
    } finally {
      pool.shutdownNow();
    }
    // and it still serves
    try (LineClient c = new LineClient(ports.tcp())) {
      c.login("cycle0", PW);
    }
  }

  @Test
  @DisplayName("oversized input is refused without being buffered: HTTP bodies get 413 (1 GB announced, 8 x 48 MB streamed), TCP frames Message too large and a close (8 x 48 MB)")
  void oversizedInput() throws Exception {
    ServerProcess p = start(Map.of());
    ServerProcess.Ports ports = p.awaitListening(STARTUP);
    long pid = p.process().pid();
    Thread.sleep(500);
    long rssBaseline = ProcStats.rssKiB(pid);

    // announced: the answer comes before the body
    try (Socket s = connect(ports.http())) {
      s.getOutputStream().write(("POST /api/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          + "Content-Length: 1000000000\r\n\r\n{\"username\":\"").getBytes(StandardCharsets.ISO_8859_1));
      String status = rawLine(s.getInputStream());
      assertTrue(status != null && status.startsWith("HTTP/1.1 413 "), status);
      String line;
      while ((line = rawLine(s.getInputStream())) != null && !line.trim().isEmpty()) {
        // headers
      }
      byte[] body = new byte[Replies.REQUEST_TOO_LARGE.json.length()];
      int got = s.getInputStream().readNBytes(body, 0, body.length);
      assertEquals(Replies.REQUEST_TOO_LARGE.json, new String(body, 0, got, StandardCharsets.UTF_8));
    }

    // streamed without a length, 8 at once: buffered, they would need 384 MB (the heap is 256 MB)
    int streams = 8;
    long perStream = 48L << 20;
    ExecutorService pool = Executors.newFixedThreadPool(streams * 2);
    try (RssSampler sampler = new RssSampler(pid)) {
      List<Future<String>> answers = new ArrayList<>();
      for (int i = 0; i < streams; i++) {
        answers.add(pool.submit(() -> {
          try (Socket s = connect(ports.http())) {
            s.setSoTimeout(60_000);
            OutputStream out = s.getOutputStream();
            out.write(("POST /api/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
                .getBytes(StandardCharsets.ISO_8859_1));
            Future<?> writer = pool.submit(() -> {
              byte[] chunk = ("10000\r\n" + "a".repeat(0x10000) + "\r\n").getBytes(StandardCharsets.ISO_8859_1);
              try {
                for (long sent = 0; sent < perStream; sent += 0x10000) {
                  out.write(chunk);
                }
                out.write("0\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
              } catch (IOException closed) {
                // the server may stop reading once it has answered
              }
            });
            String status = rawLine(s.getInputStream());
            writer.cancel(true);
            return status;
          }
        }));
      }
      for (Future<String> a : answers) {
        String status = a.get(120, TimeUnit.SECONDS);
        assertTrue(status != null && status.startsWith("HTTP/1.1 413 "), status);
      }
      Thread.sleep(1000);
      long rssAfter = ProcStats.rssKiB(pid);
      System.out.println("[figures] oversized HTTP bodies: RSS baseline " + rssBaseline / 1024 + " MiB, peak "
          + sampler.peak.get() / 1024 + " MiB, after " + rssAfter / 1024 + " MiB, while " + streams + " x "
          + (perStream >> 20) + " MB were offered");
      assertTrue(sampler.peak.get() - rssBaseline <= RSS_BOUND_KIB, "RSS peaked " + (sampler.peak.get() - rssBaseline) / 1024
          + " MiB above the baseline");
    } finally {
      pool.shutdownNow();
    }

    // TCP: frames that never end, 8 at once
    ExecutorService tcpPool = Executors.newFixedThreadPool(streams * 2);
    long rssBeforeTcp = ProcStats.rssKiB(pid);
    try (RssSampler sampler = new RssSampler(pid)) {
      List<Future<String>> answers = new ArrayList<>();
      for (int i = 0; i < streams; i++) {
        answers.add(tcpPool.submit(() -> {
          try (Socket s = connect(ports.tcp())) {
            s.setSoTimeout(60_000);
            OutputStream out = s.getOutputStream();
            Future<?> writer = tcpPool.submit(() -> {
              byte[] chunk = "a".repeat(0x10000).getBytes(StandardCharsets.ISO_8859_1);
              try {
                out.write("{\"type\":\"chat\",\"message\":\"".getBytes(StandardCharsets.ISO_8859_1));
                for (long sent = 0; sent < perStream; sent += chunk.length) {
                  out.write(chunk);
                }
              } catch (IOException closed) {
                // the server closed the connection, as it should
              }
            });
            InputStream in = s.getInputStream();
            String line = rawLine(in);
            String end;
            try {
              end = rawLine(in) == null ? "closed" : "more data";
            } catch (IOException reset) {
              end = "closed";
            }
            writer.cancel(true);
            return line + " " + end;
          }
        }));
      }
      for (Future<String> a : answers) {
        assertEquals(Replies.MESSAGE_TOO_LARGE.json + " closed", a.get(120, TimeUnit.SECONDS));
      }
      Thread.sleep(1000);
      long rssAfter = ProcStats.rssKiB(pid);
      System.out.println("[figures] oversized TCP frames: RSS before " + rssBeforeTcp / 1024 + " MiB, peak "
          + sampler.peak.get() / 1024 + " MiB, after " + rssAfter / 1024 + " MiB, while " + streams + " x "
          + (perStream >> 20) + " MB never-ending frames were offered");
      assertTrue(sampler.peak.get() - rssBaseline <= RSS_BOUND_KIB, "RSS peaked " + (sampler.peak.get() - rssBaseline) / 1024
          + " MiB above the baseline");
    } finally {
      tcpPool.shutdownNow();
    }
    assertTrue(p.process().isAlive(), p.transcript());
    try (LineClient c = new LineClient(ports.tcp())) {
      c.send(new JsonObject().put("type", "register").put("username", "after413").put("password", PW));
      c.expect(Replies.REGISTERED.json);
    }
  }

  @Test
  @DisplayName("slowloris: 50 connections trickling a never-finished frame, and idle HTTP connections, are closed by the idle rule within seconds, while a normal client's chat round trip stays under 500 ms")
  void slowloris() throws Exception {
    ServerProcess p = start(Map.of("CHAT_REAPER_IDLESECONDS", "2", "CHAT_REAPER_INTERVALSECONDS", "1"));
    ServerProcess.Ports ports = p.awaitListening(STARTUP);
    long pid = p.process().pid();
    int slow = 50;
    List<String> names = new ArrayList<>(List.of("normal"));
    for (int i = 0; i < slow / 2; i++) {
      names.add("slow" + i);
    }
    register(ports.tcp(), names.toArray(String[]::new));
    Thread.sleep(300);
    int fdBaseline = ProcStats.openFds(pid);

    // half never log in, half log in first; all then trickle one byte per 200 ms of a frame that never ends
    List<Socket> sockets = new ArrayList<>();
    long[] connectedAt = new long[slow];
    long[] closedAt = new long[slow];
    String[] lastLine = new String[slow];
    List<Thread> readers = new ArrayList<>();
    for (int i = 0; i < slow; i++) {
      Socket s = connect(ports.tcp());
      closeables.add(s);
      sockets.add(s);
      connectedAt[i] = System.nanoTime();
      if (i % 2 == 1) {
        login(s, s.getInputStream(), "slow" + (i / 2));
        connectedAt[i] = System.nanoTime();
      }
      int k = i;
      readers.add(daemon("slow-reader-" + i, () -> {
        try {
          s.setSoTimeout(30_000);
          String line;
          while ((line = rawLine(s.getInputStream())) != null) {
            lastLine[k] = line;
          }
        } catch (IOException e) {
          // a reset is a close
        }
        closedAt[k] = System.nanoTime();
      }));
    }
    // HTTP: half a request line, and a complete keep-alive request followed by silence
    int httpIdle = 10;
    long[] httpClosedAt = new long[httpIdle];
    long httpStart = System.nanoTime();
    for (int i = 0; i < httpIdle; i++) {
      Socket h = connect(ports.http());
      closeables.add(h);
      h.getOutputStream().write((i % 2 == 0 ? "GET /avatar/x" : "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      int k = i;
      readers.add(daemon("http-idle-" + i, () -> {
        try {
          h.setSoTimeout(30_000);
          while (h.getInputStream().read() != -1) {
            // the 404 of the complete request
          }
        } catch (IOException e) {
          // a reset is a close
        }
        httpClosedAt[k] = System.nanoTime();
      }));
    }
    byte[] trickle = "{\"type\":\"chat\",\"message\":\"".getBytes(StandardCharsets.UTF_8);
    Thread trickler = daemon("trickler", () -> {
      for (int b = 0; b < 200; b++) {
        for (Socket s : sockets) {
          try {
            s.getOutputStream().write(b < trickle.length ? trickle[b] : 'a');
          } catch (IOException closed) {
            // this one is done
          }
        }
        try {
          Thread.sleep(200);
        } catch (InterruptedException e) {
          return;
        }
      }
    });

    // meanwhile a normal client chats every 100 ms and times each round trip
    List<Long> roundTrips = new ArrayList<>();
    try (Socket normal = connect(ports.tcp())) {
      InputStream in = new BufferedInputStream(normal.getInputStream());
      String token = login(normal, in, "normal");
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(7);
      int i = 0;
      while (System.nanoTime() < until) {
        long t = System.nanoTime();
        normal.getOutputStream().write(chatJson(token, "rt " + i++).getBytes(StandardCharsets.UTF_8));
        // the success reply and our own broadcast, in either order
        boolean replied = false;
        boolean echoed = false;
        while (!(replied && echoed)) {
          String line = rawLine(in);
          assertTrue(line != null, "the normal client was disconnected");
          replied |= line.equals(Replies.CHAT_SENT.json);
          echoed |= line.startsWith("{\"type\":\"chat\",\"user\":\"normal\"");
        }
        roundTrips.add((System.nanoTime() - t) / 1_000_000);
        Thread.sleep(100);
      }
      for (Thread r : readers) {
        r.join(10_000);
      }
      trickler.interrupt();
      long worstClose = 0;
      for (int k = 0; k < slow; k++) {
        assertTrue(closedAt[k] != 0, "slow connection " + k + " still open");
        assertEquals(Replies.IDLE_TIMEOUT.json, lastLine[k], "slow connection " + k + "'s last line");
        worstClose = Math.max(worstClose, (closedAt[k] - connectedAt[k]) / 1_000_000);
      }
      long worstHttp = 0;
      for (int k = 0; k < httpIdle; k++) {
        assertTrue(httpClosedAt[k] != 0, "idle HTTP connection " + k + " still open");
        worstHttp = Math.max(worstHttp, (httpClosedAt[k] - httpStart) / 1_000_000);
      }
      System.out.println("[figures] " + httpIdle + " idle HTTP connections (half a request line, or silent after a"
          + " request) closed, the last after " + worstHttp + " ms");
      assertTrue(worstHttp <= 5000, "an idle HTTP connection lived " + worstHttp + " ms");
      long worstRoundTrip = roundTrips.stream().mapToLong(Long::longValue).max().orElseThrow();
      double meanRoundTrip = roundTrips.stream().mapToLong(Long::longValue).average().orElseThrow();
      Map<String, Double> g = gauges(ports.http());
      System.out.println("[figures] slowloris: " + slow + " trickling connections (idle 2 s, sweep 1 s) all closed with"
          + " Idle timeout, the last " + worstClose + " ms after its last complete message; normal client: "
          + roundTrips.size() + " chat round trips meanwhile, mean " + String.format("%.1f", meanRoundTrip)
          + " ms, worst " + worstRoundTrip + " ms; gauges after: " + g);
      assertTrue(worstClose <= 5000, "a slow connection lived " + worstClose + " ms");
      assertTrue(worstRoundTrip < 500, "a chat round trip took " + worstRoundTrip + " ms");
      assertEquals(1.0, g.get("chat_connections"), "only the normal client is left");
      assertEquals(1.0, g.get("chat_sessions"), "only the normal client's session is left");
    }
    for (Socket s : sockets) {
      s.close();
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    int fds = ProcStats.openFds(pid);
    while (fds > fdBaseline + FD_SLACK && System.nanoTime() < deadline) {
      Thread.sleep(200);
      fds = ProcStats.openFds(pid);
    }
    assertTrue(fds <= fdBaseline + FD_SLACK, "descriptors: " + fds + " after, " + fdBaseline + " before");
  }
}
