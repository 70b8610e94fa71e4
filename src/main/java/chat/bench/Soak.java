package chat.bench;

import chat.Main;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.NetSocket;
import io.vertx.core.parsetools.RecordParser;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Soak run: hours of mixed load against a running server, with hostile clients alongside the
 * normal ones, printing what matters as it goes and ending with a verdict.
 *
 * <pre>
 * java -cp target/chat-server.jar chat.bench.Soak --tcp-port 8889 --http-port 5001 \
 *     --server-pid PID --duration 30m [--clients 200] [--rate 100] [--hostile 8] [--every 30s]
 * </pre>
 *
 * Normal clients log in, heartbeat, chat at {@code --rate} messages/s in total, read every
 * broadcast and check that each author's messages arrive complete and in order. Hostile clients
 * loop over: garbage bytes, oversized frames, slowloris trickles, brute-force logins, connect/close
 * churn, receivers that never read, HTTP garbage and path traversal. The verdict fails on a lost
 * or reordered message, a normal client disconnected, the server not ready at the end, or RSS /
 * open files that kept growing. Run the server with {@code CHAT_AUTH_HASHCOST=low} unless the
 * soak is also about hashing. Exit status: 0 PASS, 1 FAIL, 2 bad arguments.
 */
public final class Soak {

  private final String host;
  private final int tcpPort;
  private final int httpPort;
  private final long serverPid;
  private final long durationMillis;
  private final int clients;
  private final int rate;
  private final int hostile;
  private final long everyMillis;
  private final String prefix = "soak" + Long.toString(System.currentTimeMillis() % 1_000_000, 36) + "_";

  private final AtomicLong sent = new AtomicLong();
  private final AtomicLong received = new AtomicLong();
  private final AtomicLong lost = new AtomicLong();
  private final AtomicLong reordered = new AtomicLong();
  private final AtomicLong normalDisconnects = new AtomicLong();
  private final AtomicLong unexpectedReplies = new AtomicLong();
  private final AtomicLong hostileRounds = new AtomicLong();
  private final AtomicLong hostileOddities = new AtomicLong();
  private final Map<String, String> lastOddity = new ConcurrentHashMap<>();
  private volatile boolean running = true;

  private Soak(Map<String, String> a) {
    host = a.getOrDefault("host", "127.0.0.1");
    tcpPort = Integer.parseInt(a.getOrDefault("tcp-port", "8889"));
    httpPort = Integer.parseInt(a.getOrDefault("http-port", "5001"));
    serverPid = Long.parseLong(a.getOrDefault("server-pid", "0"));
    durationMillis = parseDuration(a.getOrDefault("duration", "30m"));
    clients = Integer.parseInt(a.getOrDefault("clients", "200"));
    rate = Integer.parseInt(a.getOrDefault("rate", "100"));
    hostile = Integer.parseInt(a.getOrDefault("hostile", "8"));
    everyMillis = parseDuration(a.getOrDefault("every", "30s"));
  }

  public static void main(String[] args) throws Exception {
    Map<String, String> a = new HashMap<>();
    for (int i = 0; i < args.length; i++) {
      if (!args[i].startsWith("--") || i + 1 >= args.length) {
        System.err.println("usage: chat.bench.Soak --tcp-port P --http-port P --server-pid PID --duration 30m "
            + "[--clients 200] [--rate 100] [--hostile 8] [--every 30s] [--host 127.0.0.1]");
        System.exit(2);
      }
      a.put(args[i].substring(2), args[++i]);
    }
    System.exit(new Soak(a).run() ? 0 : 1);
  }

  static long parseDuration(String s) {
    long n = Long.parseLong(s.replaceAll("[^0-9]", ""));
    return s.endsWith("ms") ? n : s.endsWith("h") ? n * 3_600_000 : s.endsWith("m") ? n * 60_000 : n * 1000;
  }

  // ---- normal clients ----

  /** One logged-in client: sends numbered chats, checks every author's numbers arrive in order. */
  private final class Member {
    final int index;
    final String name;
    NetSocket socket;
    String token;
    long nextSeq;
    final Map<String, Long> lastSeen = new HashMap<>();

    Member(int index) {
      this.index = index;
      this.name = prefix + index;
    }

    void onLine(Buffer line) {
      JsonObject m;
      try {
        m = new JsonObject(line);
      } catch (RuntimeException e) {
        unexpectedReplies.incrementAndGet();
        return;
      }
      String type = m.getString("type");
      if ("chat".equals(type) && m.containsKey("user")) {
        String text = m.getString("message", "");
        if (!text.startsWith("soak ")) {
          return; // someone else's chat (a hostile client's, or another tool's)
        }
        received.incrementAndGet();
        String[] parts = text.split(" ");
        long seq = Long.parseLong(parts[1]);
        Long last = lastSeen.put(m.getString("user"), seq);
        if (last != null && seq != last + 1) {
          if (seq <= last) {
            reordered.incrementAndGet();
          } else {
            lost.addAndGet(seq - last - 1);
          }
        }
      } else if ("login".equals(type) && "success".equals(m.getString("status"))) {
        token = m.getString("token");
      } else if (!("chat".equals(type) && "success".equals(m.getString("status")))
          && !("heartbeat".equals(type) && "success".equals(m.getString("status")))
          && !type.startsWith("register") && !"ping".equals(type)) {
        unexpectedReplies.incrementAndGet();
        lastOddity.put("member", line.toString());
      }
    }

    void send(JsonObject m) {
      socket.write(m.encode() + "\n");
    }

    void chat() {
      if (token != null) {
        send(new JsonObject().put("type", "chat").put("token", token).put("message", "soak " + nextSeq++ + " " + index));
        sent.incrementAndGet();
      }
    }
  }

  private boolean run() throws Exception {
    Vertx vertx = Vertx.vertx(Main.vertxOptions().setEventLoopPoolSize(1).setPreferNativeTransport(true));
    NetClient net = vertx.createNetClient(new NetClientOptions().setTcpNoDelay(true));
    Member[] members = new Member[clients];
    CountDownLatch ready = new CountDownLatch(clients);
    for (int i = 0; i < clients; i++) {
      Member m = members[i] = new Member(i);
      net.connect(tcpPort, host).onSuccess(socket -> {
        m.socket = socket;
        socket.handler(RecordParser.newDelimited("\n", m::onLine));
        socket.closeHandler(v -> {
          if (running) {
            normalDisconnects.incrementAndGet();
          }
        });
        m.send(new JsonObject().put("type", "register").put("username", m.name).put("password", "pw-" + m.name));
        m.send(new JsonObject().put("type", "login").put("username", m.name).put("password", "pw-" + m.name));
        vertx.setPeriodic(100, id -> {
          if (m.token != null) {
            vertx.cancelTimer(id);
            ready.countDown();
          }
        });
      }).onFailure(err -> System.err.println("connect failed: " + err));
    }
    if (!ready.await(120, TimeUnit.SECONDS)) {
      System.out.println("VERDICT FAIL: only " + (clients - ready.getCount()) + " of " + clients + " clients logged in");
      return false;
    }
    // chats at the total rate, round robin; heartbeats every 60 s
    long periodMicros = Math.max(1, 1_000_000L / Math.max(1, rate));
    int[] next = {0};
    vertx.setPeriodic(Math.max(1, periodMicros / 1000), id -> {
      if (running) {
        int burst = (int) Math.max(1, rate / 1000);
        for (int k = 0; k < burst; k++) {
          members[next[0]++ % clients].chat();
        }
      }
    });
    vertx.setPeriodic(60_000, id -> {
      for (Member m : members) {
        m.send(new JsonObject().put("type", "heartbeat").put("token", m.token));
      }
    });

    Thread[] attackers = new Thread[hostile];
    for (int i = 0; i < hostile; i++) {
      int kind = i;
      attackers[i] = new Thread(() -> attack(kind), "hostile-" + i);
      attackers[i].setDaemon(true);
      attackers[i].start();
    }

    long start = System.currentTimeMillis();
    long[] first = null;
    long[] peak = {0, 0};
    System.out.printf("%8s %7s %7s %10s %10s %6s %6s %6s %8s %9s %8s %6s%n", "time", "conns", "sessions", "sent", "received",
        "lost", "order", "disc", "hostile", "RSS(MiB)", "fds", "ready");
    while (System.currentTimeMillis() - start < durationMillis) {
      Thread.sleep(Math.min(everyMillis, durationMillis - (System.currentTimeMillis() - start) + 1));
      long[] now = report(start);
      if (first == null) {
        first = now;
      }
      peak[0] = Math.max(peak[0], now[0]);
      peak[1] = Math.max(peak[1], now[1]);
    }
    running = false;
    Thread.sleep(3000); // let the last broadcasts arrive
    long[] last = report(start);
    boolean ready200 = ready() == 200;
    vertx.close().await(10, TimeUnit.SECONDS);

    long expected = sent.get() * clients;
    StringBuilder why = new StringBuilder();
    if (lost.get() > 0) {
      why.append(" lost=").append(lost.get());
    }
    if (reordered.get() > 0) {
      why.append(" reordered=").append(reordered.get());
    }
    if (normalDisconnects.get() > 0) {
      why.append(" normal-disconnects=").append(normalDisconnects.get());
    }
    if (!ready200) {
      why.append(" not-ready-at-end");
    }
    if (first != null && serverPid > 0 && last[0] > first[0] * 2 + 64 * 1024) {
      why.append(" rss-grew=").append(first[0] / 1024).append("->").append(last[0] / 1024).append("MiB");
    }
    if (first != null && serverPid > 0 && last[1] > first[1] + 50) {
      why.append(" fds-grew=").append(first[1]).append("->").append(last[1]);
    }
    System.out.printf("SUMMARY duration=%ds clients=%d chats_sent=%d deliveries_expected=%d received=%d lost=%d "
            + "reordered=%d normal_disconnects=%d unexpected_replies=%d hostile_rounds=%d hostile_oddities=%d "
            + "rss_first_kib=%d rss_last_kib=%d rss_peak_kib=%d fds_first=%d fds_last=%d fds_peak=%d%n",
        durationMillis / 1000, clients, sent.get(), expected, received.get(), lost.get(), reordered.get(),
        normalDisconnects.get(), unexpectedReplies.get(), hostileRounds.get(), hostileOddities.get(),
        first == null ? 0 : first[0], last[0], peak[0], first == null ? 0 : first[1], last[1], peak[1]);
    lastOddity.forEach((k, v) -> System.out.println("last oddity (" + k + "): " + v));
    System.out.println(why.isEmpty() ? "VERDICT PASS" : "VERDICT FAIL:" + why);
    return why.isEmpty();
  }

  /** Prints one status line; returns {RSS KiB, fds}. */
  private long[] report(long start) {
    long rss = serverPid > 0 ? rssKib(serverPid) : 0;
    long fds = serverPid > 0 ? fdCount(serverPid) : 0;
    String metrics = get("/metrics");
    System.out.printf("%7ds %7s %7s %10d %10d %6d %6d %6d %8d %9d %8d %6d%n", (System.currentTimeMillis() - start) / 1000,
        metric(metrics, "chat_connections"), metric(metrics, "chat_sessions"), sent.get(), received.get(), lost.get(),
        reordered.get(), normalDisconnects.get(), hostileRounds.get(), rss / 1024, fds, ready());
    System.out.flush(); // as it runs, also when the output goes to a file
    return new long[] {rss, fds};
  }

  private static String metric(String text, String name) {
    for (String line : text.split("\n")) {
      if (line.startsWith(name + " ")) {
        return String.valueOf((long) Double.parseDouble(line.substring(name.length() + 1).trim()));
      }
    }
    return "?";
  }

  private static long rssKib(long pid) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
        if (line.startsWith("VmRSS:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", ""));
        }
      }
    } catch (IOException e) {
      return -1;
    }
    return -1;
  }

  private static long fdCount(long pid) {
    try (var files = Files.list(Path.of("/proc/" + pid + "/fd"))) {
      return files.count();
    } catch (IOException e) {
      return -1;
    }
  }

  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  private String get(String path) {
    try {
      return http.send(HttpRequest.newBuilder(URI.create("http://" + host + ":" + httpPort + path))
          .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString()).body();
    } catch (Exception e) {
      return "";
    }
  }

  private int ready() {
    try {
      return http.send(HttpRequest.newBuilder(URI.create("http://" + host + ":" + httpPort + "/health/ready"))
          .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.discarding()).statusCode();
    } catch (Exception e) {
      return 0;
    }
  }

  // ---- hostile clients ----

  private void attack(int kind) {
    Random random = new Random(kind);
    List<Runnable> moves = List.of(
        () -> raw(random, "garbage", bytes(random, 2000)),
        () -> raw(random, "oversized", ("{\"type\":\"chat\",\"message\":\"" + "x".repeat(70_000) + "\"}").getBytes(StandardCharsets.UTF_8)),
        () -> raw(random, "bad-json", "{\"type\":\"login\",}\n[1,2]\n\"hi\"\n{\"type\":123}\n{\"a\":1e999}\n".getBytes(StandardCharsets.UTF_8)),
        () -> slowloris(random),
        () -> bruteForce(random),
        () -> churn(random),
        () -> nonReader(random),
        () -> httpAbuse(random));
    while (running) {
      moves.get(kind % moves.size()).run();
      hostileRounds.incrementAndGet();
      kind += 1 + random.nextInt(3);
    }
  }

  private static byte[] bytes(Random random, int max) {
    byte[] b = new byte[1 + random.nextInt(max)];
    random.nextBytes(b);
    return b;
  }

  private Socket open() throws IOException {
    Socket s = new Socket();
    s.connect(new InetSocketAddress(host, tcpPort), 5000);
    s.setSoTimeout(5000);
    return s;
  }

  private void raw(Random random, String what, byte[] payload) {
    try (Socket s = open()) {
      s.getOutputStream().write(payload);
      s.getOutputStream().flush();
      drain(s.getInputStream(), what);
    } catch (IOException e) {
      // the server may close on us: that is its right
    }
  }

  /** Reads replies for a moment; a reply that is not JSON, or names a Java class, is an oddity. */
  private void drain(InputStream in, String what) throws IOException {
    byte[] buf = new byte[8192];
    long until = System.currentTimeMillis() + 300;
    StringBuilder text = new StringBuilder();
    try {
      int n;
      while (System.currentTimeMillis() < until && (n = in.read(buf)) > 0) {
        text.append(new String(buf, 0, n, StandardCharsets.UTF_8));
      }
    } catch (java.net.SocketTimeoutException ignored) {
      // quiet
    }
    for (String line : text.toString().split("\n")) {
      if (!line.isBlank() && (!line.startsWith("{") || line.contains("Exception") || line.contains("java."))) {
        hostileOddities.incrementAndGet();
        lastOddity.put(what, line.length() > 200 ? line.substring(0, 200) : line);
      }
    }
  }

  private void slowloris(Random random) {
    try (Socket s = open()) {
      OutputStream out = s.getOutputStream();
      byte[] start = "{\"type\":\"heartbeat\",\"token\":\"".getBytes(StandardCharsets.UTF_8);
      for (int i = 0; i < start.length && running; i++) {
        out.write(start[i]);
        out.flush();
        Thread.sleep(200 + random.nextInt(300));
      }
    } catch (IOException | InterruptedException e) {
      // closed by the idle rule, or the run ended
    }
  }

  private void bruteForce(Random random) {
    try (Socket s = open()) {
      OutputStream out = s.getOutputStream();
      for (int i = 0; i < 20; i++) {
        out.write(("{\"type\":\"login\",\"username\":\"" + prefix + random.nextInt(Math.max(1, clients))
            + "\",\"password\":\"guess" + random.nextInt() + "\"}\n").getBytes(StandardCharsets.UTF_8));
      }
      out.flush();
      drain(s.getInputStream(), "brute-force");
    } catch (IOException e) {
      // fine
    }
  }

  private void churn(Random random) {
    for (int i = 0; i < 50 && running; i++) {
      try (Socket s = open()) {
        if (random.nextBoolean()) {
          s.getOutputStream().write("{\"type\":\"hea".getBytes(StandardCharsets.UTF_8));
        }
      } catch (IOException e) {
        // fine
      }
    }
  }

  private void nonReader(Random random) {
    String name = prefix + "mute" + random.nextInt(1000);
    try (Socket s = open()) {
      OutputStream out = s.getOutputStream();
      out.write(("{\"type\":\"register\",\"username\":\"" + name + "\",\"password\":\"pw\"}{\"type\":\"login\",\"username\":\""
          + name + "\",\"password\":\"pw\"}").getBytes(StandardCharsets.UTF_8));
      out.flush();
      Thread.sleep(20_000); // never reads: the server must cut it off, or the reaper close it
    } catch (IOException | InterruptedException e) {
      // fine
    }
  }

  private void httpAbuse(Random random) {
    String[] paths = {"/avatar/../usr.db", "/avatar/%2e%2e/usr.db", "/avatar/x/..%2f..%2fusr.db", "/api/login",
        "/api/chat", "/api/register", "/nope"};
    for (String path : paths) {
      try {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://" + host + ":" + httpPort + path.replace("..", "%2e%2e")))
            .timeout(Duration.ofSeconds(5));
        HttpResponse<String> r = http.send(path.startsWith("/api")
            ? b.POST(HttpRequest.BodyPublishers.ofByteArray(bytes(random, 3000))).build() : b.GET().build(),
            HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() >= 500 || r.body().contains("Exception") || r.body().contains("CREATE TABLE")) {
          hostileOddities.incrementAndGet();
          lastOddity.put("http", r.statusCode() + " " + path);
        }
      } catch (Exception e) {
        // fine
      }
    }
  }
}
