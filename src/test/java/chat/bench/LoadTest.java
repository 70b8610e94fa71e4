package chat.bench;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * chat.bench.Load, each scenario briefly and small, in this JVM; each run launches its own server
 * (a child JVM on the test class path, as the tool does from the jar) and must end with a passing
 * RESULT line, and with no server left running.
 */
class LoadTest {

  /** Light on a small shared machine; no effect on behaviour. */
  private static final String SERVER_JVM = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xmx256m";

  private record Run(int status, String out, String err, Map<String, String> result) {
    long num(String key) {
      assertTrue(result.containsKey(key), "no " + key + " in the RESULT line\n" + this);
      return (long) Double.parseDouble(result.get(key));
    }

    @Override
    public String toString() {
      return "--- stdout ---\n" + out + "--- stderr ---\n" + err;
    }
  }

  private static Run load(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status = Load.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    String o = out.toString(StandardCharsets.UTF_8);
    Map<String, String> result = new LinkedHashMap<>();
    o.lines().filter(l -> l.startsWith("RESULT ")).findFirst().ifPresent(line -> {
      for (String kv : line.substring("RESULT ".length()).split(" ")) {
        int eq = kv.indexOf('=');
        result.put(kv.substring(0, eq), kv.substring(eq + 1));
      }
    });
    return new Run(status, o, err.toString(StandardCharsets.UTF_8), result);
  }

  /** A run that passed its checks, with its server stopped cleanly and gone. */
  private static Run passing(String... args) {
    Run r = load(args);
    assertEquals(0, r.status(), r.toString());
    assertEquals("ok", r.result().get("status"), r.toString());
    assertEquals("launched", r.result().get("server"), r.toString());
    assertEquals(0, r.num("server_exit"), "the server's exit status after SIGTERM\n" + r);
    assertFalse(ProcessHandle.of(r.num("server_pid")).map(ProcessHandle::isAlive).orElse(false), "server left running\n" + r);
    assertEquals(0, r.num("disconnects"), r.toString());
    assertEquals(0, r.num("errors"), r.toString());
    return r;
  }

  /** Every chat reached every receiver once, in order. */
  private static void allDelivered(Run r, long receivers) {
    assertTrue(r.num("sent") > 0, r.toString());
    assertEquals(0, r.num("lost"), r.toString());
    assertEquals(0, r.num("out_of_order"), r.toString());
    assertEquals(r.num("sent") * receivers, r.num("expected"), r.toString());
    assertEquals(r.num("expected"), r.num("delivered"), r.toString());
  }

  @Test
  @DisplayName("hold: every session logs in and stays connected; RSS and setup rate are reported")
  void hold() {
    Run r = passing("hold", "--sessions", "60", "--duration", "2s", "--heartbeat", "1s", "--server-jvm", SERVER_JVM);
    assertEquals(60, r.num("live"), r.toString());
    assertTrue(r.num("logins_per_s") > 0, r.toString());
    assertTrue(r.num("heartbeats") >= 60, "every session heartbeats once a second\n" + r);
    assertTrue(r.num("rss_hold_kib") > 0 && r.num("fds") >= 60, r.toString());
  }

  @Test
  @DisplayName("fanout at rate 0: every chat reaches the receivers and the senders, deliveries/s and latency are measured")
  void fanoutAsFastAsTheWindowAllows() {
    Run r = passing("fanout", "--sessions", "40", "--senders", "2", "--warmup", "500ms", "--duration", "2s",
        "--server-jvm", SERVER_JVM);
    allDelivered(r, 42);
    assertEquals(42, r.num("receivers_per_chat"), r.toString());
    assertTrue(r.num("deliveries_per_s") > 0 && r.num("msgs_per_s") > 0, r.toString());
    assertTrue(r.num("p50_us") > 0 && r.num("max_us") >= r.num("p99_us"), r.toString());
  }

  @Test
  @DisplayName("fanout at a fixed rate sends on the clock: the rate asked for")
  void fanoutAtAFixedRate() {
    Run r = passing("fanout", "--sessions", "20", "--senders", "2", "--rate", "200", "--warmup", "500ms", "--duration", "2s",
        "--server-jvm", SERVER_JVM);
    allDelivered(r, 22);
    assertTrue(Math.abs(r.num("msgs_per_s") - 200) <= 20, "about 200 msgs/s\n" + r);
  }

  @Test
  @DisplayName("fanout --sender-tcp-port: the senders connect to that port, every chat still counts at receivers and senders")
  void fanoutWithTheSendersOnAnotherPort() throws Exception {
    // one server reached by two ports' worth of configuration: the senders' address is its own
    // object, so their deliveries are counted apart, as they would be on a second cluster node
    try (LoadServer server = LoadServer.launch("low", 0, SERVER_JVM, java.util.List.of(), 60_000, null)) {
      Run r = load("fanout", "--attach", "--tcp-port", Integer.toString(server.tcpPort), "--http-port",
          Integer.toString(server.httpPort), "--server-pid", Long.toString(server.pid), "--sender-tcp-port",
          Integer.toString(server.tcpPort), "--sender-server-pid", Long.toString(server.pid), "--sessions", "30",
          "--senders", "2", "--warmup", "500ms", "--duration", "2s");
      assertEquals(0, r.status(), r.toString());
      allDelivered(r, 32);
      assertEquals(server.tcpPort, r.num("sender_tcp_port"), r.toString());
      long receiverSide = r.num("receiver_node_deliveries_per_s");
      long senderSide = r.num("sender_node_deliveries_per_s");
      assertTrue(receiverSide > 0 && senderSide > 0, r.toString());
      // 30 receivers and 2 senders get each chat: the split follows (rounded per second)
      assertTrue(Math.abs(receiverSide - 15 * senderSide) <= 15 * 2 + r.num("deliveries_per_s") / 50, r.toString());
      assertTrue(r.out().contains("nodes      senders on TCP port " + server.tcpPort), r.toString());
      assertTrue(r.result().containsKey("srv2_cpu"), r.toString());
    }
  }

  @Test
  @DisplayName("storm (low hashing cost): the password logins and the token resumes all succeed while the chat loses nothing")
  void storm() {
    Run r = passing("storm", "--hash-cost", "low", "--sessions", "30", "--storm", "20", "--resume", "40", "--rate", "50",
        "--warmup", "500ms", "--duration", "1s", "--server-jvm", SERVER_JVM);
    assertEquals("low", r.result().get("hash_cost"), r.toString());
    allDelivered(r, 31);
    assertEquals(20, r.num("storm_ok"), r.toString());
    assertEquals(40, r.num("resume_ok"), r.toString());
    assertTrue(r.num("logins_per_s") > 0 && r.num("resumes_per_s") > 0, r.toString());
    assertEquals(31 + 20 + 40, r.num("live"), r.toString());
  }

  @Test
  @DisplayName("http: every 200 chat reaches every TCP receiver")
  void http() {
    Run r = passing("http", "--receivers", "5", "--connections", "4", "--warmup", "500ms", "--duration", "2s",
        "--server-jvm", SERVER_JVM);
    allDelivered(r, 5);
    assertEquals(0, r.num("non_200"), r.toString());
    assertTrue(r.num("requests_per_s") > 0 && r.num("req_p50_us") > 0, r.toString());
  }

  @Test
  @DisplayName("the marker in a chat's text decodes back to its send time, sender and sequence number; other bytes are refused")
  void marker() {
    byte[] text = ("xx" + Marker.placeholder(100)).getBytes(StandardCharsets.US_ASCII);
    Marker.write(text, 2, 0x0123456789abcdefL, 0xbeef, 0x7654321);
    assertEquals(102, text.length);
    assertEquals("@@L0123456789abcdefbeef07654321xxx", new String(text, 2, 34, StandardCharsets.US_ASCII));
    assertEquals(0x01234567L, Marker.unhex(Marker.word(text, 5)));
    assertEquals(0x89abcdefL, Marker.unhex(Marker.word(text, 13)));
    assertEquals(0xbeef0765L, Marker.unhex(Marker.word(text, 21)));
    assertEquals(0x07654321L, Marker.unhex(Marker.word(text, 25)));
    for (int c = 0; c < 256; c++) {
      boolean hex = c >= '0' && c <= '9' || c >= 'a' && c <= 'f';
      for (int at = 0; at < 8; at++) {
        byte[] digits = "0123abcd".getBytes(StandardCharsets.US_ASCII);
        digits[at] = (byte) c;
        assertEquals(hex, Marker.hexDigits(Marker.word(digits, 0)) == Marker.ALL_HEX, "byte " + c + " at " + at);
      }
    }
  }

  @Test
  @DisplayName("the histogram's percentiles are within 1/64 of the exact ones, its maximum exact")
  void histogram() {
    Histogram h = new Histogram();
    long[] values = new java.util.Random(7).longs(100_000, 0, 50_000_000).sorted().toArray();
    for (long v : values) {
      h.record(v);
    }
    for (double p : new double[] {50, 90, 99, 99.9}) {
      long exact = values[(int) Math.ceil(p / 100 * values.length) - 1];
      assertTrue(Math.abs(h.percentile(p) - exact) <= exact / 64 + 1, p + ": " + h.percentile(p) + " vs " + exact);
    }
    assertEquals(values[values.length - 1], h.max());
    assertEquals(values.length, h.count());
  }

  @Test
  @DisplayName("bad arguments exit 2 without starting anything; --help exits 0")
  void arguments() {
    assertEquals(2, load("fanout", "--host", "10.0.0.1").status());
    assertEquals(2, load("fanout", "--storm", "5").status(), "an option of another scenario");
    assertEquals(2, load("nosuch").status());
    assertEquals(2, load().status());
    assertEquals(2, load("hold", "--attach").status(), "--attach needs the ports");
    assertEquals(2, load("fanout", "--sender-tcp-port", "9000").status(), "--sender-tcp-port goes with --attach");
    assertEquals(2, load("fanout", "--attach", "--tcp-port", "1", "--http-port", "2", "--sender-server-pid", "5").status(),
        "--sender-server-pid goes with --sender-tcp-port");
    assertEquals(2, load("fanout", "--attach", "--tcp-port", "1", "--http-port", "2", "--sender-tcp-port", "70000").status());
    assertEquals(2, load("hold", "--attach", "--tcp-port", "1", "--http-port", "2", "--sender-tcp-port", "3").status(),
        "fanout only");
    Run help = load("--help");
    assertEquals(0, help.status());
    assertTrue(help.out().contains("Usage: java -cp target/chat-server.jar chat.bench.Load SCENARIO"), help.out());
  }
}
