package chat.bench;

import chat.bench.LoadEngine.Phase;
import chat.bench.LoadEngine.Session;
import chat.bench.LoadEngine.Step;
import chat.bench.LoadEngine.Totals;
import chat.bench.LoadEngine.Window;

import java.io.PrintStream;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The project's load generator: one command that launches a server (or attaches to one), puts a
 * scenario's load on it over the real protocol, prints a progress line a second on stderr and a
 * report on stdout ending with one {@code RESULT key=value ...} line for scripts. See {@link #USAGE}.
 */
public final class Load {

  static final String USAGE = """
      Usage: java -cp target/chat-server.jar chat.bench.Load SCENARIO [options]

      Scenarios:
        hold     --sessions N logged-in sessions, heartbeating, idle for --duration: setup rate,
                 server RSS per session, open files, disconnects
        fanout   --sessions N receivers + --senders S senders chatting at --rate R msgs/s in all (open
                 loop), or with --rate 0 as fast as --window W undelivered chats per sender allow:
                 msgs/s, deliveries/s, latency percentiles, loss, order, server and generator CPU
        storm    a fanout at a fixed rate, then --storm N password logins on new connections at once,
                 then --resume N token logins (PROTOCOL.md 4.3) at once: chat latency and loss before
                 and during each, logins/s and login latency (hash cost production unless --hash-cost)
        http     --receivers N TCP sessions, --connections C HTTP/1.1 keep-alive clients posting
                 POST /api/chat back to back: requests/s, request latency, non-200, deliveries, loss

      Server (default: launched by this tool in a temporary folder, deleted afterwards):
        --server-cpu N          pin the server to CPU N with taskset (default 0)
        --server-jvm "FLAGS"    server JVM flags (default "%s")
        --server-env K=V        extra server environment, repeatable (e.g. CHAT_TCP_INSTANCES=1)
        --hash-cost low|production   CHAT_AUTH_HASHCOST (default low; storm: production)
        --attach --tcp-port P --http-port Q [--server-pid PID]   use a running server instead
        --sender-tcp-port P2 [--sender-server-pid PID2]   fanout with --attach: the senders connect to
                                another node of the same cluster (TCP port P2), the receivers to P;
                                every chat still counts at all N + S sessions (the senders' own
                                sessions on P2 receive it too); deliveries on each node are reported
        --host 127.0.0.1        the server's address (loopback only)

      Load (defaults depend on the scenario; durations as 500ms, 10s, 2m):
        --sessions N  --senders S  --rate R  --window W  --payload BYTES (100)  --warmup 2s
        --duration D  --drain 5s  --storm N (1000)  --resume N (10000)  --receivers N (10)
        --connections C (16)  --prefix ld_  --src-ips K (8)  --setup-conc N (64)
        --setup-timeout 300s (each setup, storm and resume phase)  --heartbeat 60s

      Pin the generator away from the server:  taskset -c 1 java -cp target/chat-server.jar chat.bench.Load ...
      Users are PREFIX<i> with password pw-<i>. Exit status: 0 passed its checks, 1 failed them (loss,
      disconnects, errors, setup failures), 2 bad arguments.
      """.formatted(LoadServer.DEFAULT_JVM);

  private static final Set<String> SCENARIOS = Set.of("hold", "fanout", "storm", "http");

  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  /** The whole command; returns the exit status. */
  static int run(String[] args, PrintStream out, PrintStream err) {
    Options o;
    try {
      o = Options.parse(args);
    } catch (IllegalArgumentException e) {
      err.println("chat.bench.Load: " + e.getMessage() + " (see --help)");
      return 2;
    }
    if (o == null) {
      out.print(USAGE);
      return 0;
    }
    return new Load(o, out, err).execute();
  }

  // ---- options ----

  static final class Options {
    final String scenario;
    final Map<String, String> values;
    final List<String> serverEnv = new ArrayList<>();
    boolean attach;

    private Options(String scenario) {
      this.scenario = scenario;
      this.values = defaults(scenario);
    }

    private static Map<String, String> defaults(String scenario) {
      Map<String, String> d = new LinkedHashMap<>();
      for (String kv : ("host=127.0.0.1 tcp-port= http-port= server-pid=0 server-cpu=0 hash-cost= prefix=ld_ payload=100 "
          + "src-ips=8 setup-conc=64 setup-timeout=300s heartbeat=60s").split(" ")) {
        d.put(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
      }
      d.put("server-jvm", LoadServer.DEFAULT_JVM);
      String specific = switch (scenario) {
        case "hold" -> "sessions=1000 duration=20s";
        case "fanout" -> "sessions=1000 senders=4 rate=0 window=4 warmup=2s duration=10s drain=5s sender-tcp-port= "
            + "sender-server-pid=0";
        case "storm" -> "sessions=1000 senders=1 rate=100 window=4 warmup=2s duration=5s drain=5s storm=1000 resume=10000";
        default -> "receivers=10 connections=16 warmup=2s duration=10s drain=5s";
      };
      for (String kv : specific.split(" ")) {
        d.put(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
      }
      return d;
    }

    /** The options, or null for --help; IllegalArgumentException for anything wrong. */
    static Options parse(String[] args) {
      if (args.length == 0) {
        throw new IllegalArgumentException("missing SCENARIO: one of hold, fanout, storm, http");
      }
      if (List.of(args).contains("--help") || List.of(args).contains("-h")) {
        return null;
      }
      if (!SCENARIOS.contains(args[0])) {
        throw new IllegalArgumentException("unknown scenario '" + args[0] + "': one of hold, fanout, storm, http");
      }
      Options o = new Options(args[0]);
      for (int i = 1; i < args.length; i++) {
        String a = args[i];
        if (a.equals("--attach")) {
          o.attach = true;
          continue;
        }
        String key = a.startsWith("--") ? a.substring(2) : "";
        String value;
        int eq = key.indexOf('=');
        if (eq > 0) {
          value = key.substring(eq + 1);
          key = key.substring(0, eq);
        } else if (i + 1 < args.length) {
          value = args[++i];
        } else {
          throw new IllegalArgumentException(a.startsWith("--") ? a + " needs a value" : "unexpected argument '" + a + "'");
        }
        if (key.equals("server-env")) {
          if (!value.matches("[A-Za-z_][A-Za-z0-9_]*=.*")) {
            throw new IllegalArgumentException("--server-env wants K=V, got '" + value + "'");
          }
          o.serverEnv.add(value);
        } else if (o.values.containsKey(key)) {
          o.values.put(key, value);
        } else {
          throw new IllegalArgumentException("unknown option '" + a + "' for " + o.scenario);
        }
      }
      o.check();
      return o;
    }

    private void check() {
      for (String k : values.keySet()) {
        switch (k) {
          case "sessions", "storm", "receivers", "connections" -> integer(k, k.equals("storm") ? 0 : 1, 100_000);
          case "resume" -> integer(k, 0, 100_000);
          case "senders" -> integer(k, 1, 0xffff);
          case "window" -> integer(k, 1, 1_000_000);
          case "payload" -> integer(k, Marker.LENGTH, 4000);
          case "src-ips" -> integer(k, 1, 254);
          case "setup-conc" -> integer(k, 1, 100_000);
          case "server-cpu" -> integer(k, 0, 4095);
          case "rate" -> {
            if (number(k) < 0) {
              throw new IllegalArgumentException("--rate must be >= 0");
            }
          }
          case "warmup", "duration", "drain", "setup-timeout", "heartbeat" -> millis(k);
          case "hash-cost" -> {
            if (!Set.of("", "low", "production").contains(get(k))) {
              throw new IllegalArgumentException("--hash-cost is low or production");
            }
          }
          case "host" -> {
            try {
              byte[] ip = InetAddress.getByName(get(k)).getAddress();
              if (ip.length != 4 || ip[0] != 127) {
                throw new IllegalArgumentException("--host must be in 127.0.0.0/8 (loopback only), got " + get(k));
              }
            } catch (java.net.UnknownHostException e) {
              throw new IllegalArgumentException("--host: unknown host " + get(k));
            }
          }
          default -> {
          }
        }
      }
      if (attach) {
        if (!serverEnv.isEmpty()) {
          throw new IllegalArgumentException("--server-env is for a server this tool launches, not with --attach");
        }
        integer("tcp-port", 1, 65535);
        integer("http-port", 1, 65535);
        integer("server-pid", 0, Integer.MAX_VALUE);
        if (splitNodes()) {
          integer("sender-tcp-port", 1, 65535);
          integer("sender-server-pid", 0, Integer.MAX_VALUE);
        } else if (values.containsKey("sender-server-pid") && !get("sender-server-pid").equals("0")) {
          throw new IllegalArgumentException("--sender-server-pid goes with --sender-tcp-port");
        }
      } else if (!get("tcp-port").isEmpty() || !get("http-port").isEmpty()) {
        throw new IllegalArgumentException("--tcp-port and --http-port go with --attach");
      } else if (splitNodes() || values.containsKey("sender-server-pid") && !get("sender-server-pid").equals("0")) {
        throw new IllegalArgumentException("--sender-tcp-port and --sender-server-pid go with --attach (two running nodes)");
      }
    }

    /** fanout --sender-tcp-port: senders on one node, receivers on another. */
    boolean splitNodes() {
      return values.containsKey("sender-tcp-port") && !get("sender-tcp-port").isEmpty();
    }

    /** The senders' node's pid with --sender-tcp-port, else 0. */
    long senderPid() {
      return splitNodes() ? integer("sender-server-pid") : 0;
    }

    String get(String k) {
      return values.get(k);
    }

    int integer(String k, int min, int max) {
      try {
        int v = Integer.parseInt(get(k));
        if (v < min || v > max) {
          throw new IllegalArgumentException("--" + k + " must be in " + min + ".." + max + ", got " + v);
        }
        return v;
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("--" + k + " wants a whole number, got '" + get(k) + "'");
      }
    }

    int integer(String k) {
      return integer(k, Integer.MIN_VALUE, Integer.MAX_VALUE);
    }

    double number(String k) {
      try {
        return Double.parseDouble(get(k));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("--" + k + " wants a number, got '" + get(k) + "'");
      }
    }

    long millis(String k) {
      String s = get(k).trim();
      var m = java.util.regex.Pattern.compile("(\\d+(?:\\.\\d+)?)(ms|s|m|)").matcher(s);
      if (!m.matches()) {
        throw new IllegalArgumentException("--" + k + " wants a duration such as 500ms, 10s, 2m; got '" + s + "'");
      }
      double n = Double.parseDouble(m.group(1));
      return (long) (m.group(2).equals("ms") ? n : m.group(2).equals("m") ? n * 60_000 : n * 1000);
    }
  }

  // ---- one run ----

  private final Options o;
  private final PrintStream out;
  private final PrintStream err;
  private final long self = ProcessHandle.current().pid();
  private final List<String> lines = new ArrayList<>();
  private final Map<String, String> result = new LinkedHashMap<>();
  private final List<String> failures = new ArrayList<>();
  private LoadServer server;
  private LoadEngine engine;
  private volatile String phase = "start";
  private volatile boolean finished;
  private boolean seeded;
  private Cpu windowStart;
  private Cpu windowEnd;

  private Load(Options o, PrintStream out, PrintStream err) {
    this.o = o;
    this.out = out;
    this.err = err;
  }

  /** Thrown to end a run early: what went wrong, for the report. */
  private static final class RunFailure extends RuntimeException {
    RunFailure(String message) {
      super(message);
    }
  }

  private int execute() {
    Thread progress = null;
    boolean aborted = true; // until the scenario ran to its end: then the server gets a clean SIGTERM, else it is killed
    try {
      String cost = !o.get("hash-cost").isEmpty() ? o.get("hash-cost")
          : o.attach ? "unknown" : o.scenario.equals("storm") ? "production" : "low";
      phase = "startup";
      if (o.attach) {
        server = LoadServer.attach(o.integer("tcp-port"), o.integer("http-port"), o.integer("server-pid"), cost);
      } else {
        server = LoadServer.launch(cost, o.integer("server-cpu"), o.get("server-jvm"), o.serverEnv,
            o.millis("setup-timeout"), stormSeed(cost));
      }
      header();
      engine = new LoadEngine(o.get("host"), server.tcpPort, server.httpPort, o.integer("src-ips"), o.integer("payload"),
          o.millis("heartbeat"), err);
      result.put("transport", engine.transport);
      progress = new Thread(this::progressLines, "load-progress");
      progress.setDaemon(true);
      progress.start();
      switch (o.scenario) {
        case "hold" -> hold();
        case "fanout" -> fanout();
        case "storm" -> storm();
        default -> http();
      }
      aborted = false;
    } catch (RunFailure e) {
      failures.add(e.getMessage());
    } catch (Exception e) {
      failures.add(String.valueOf(e.getMessage() == null ? e : e.getMessage()));
      if (!(e instanceof java.io.IOException)) {
        e.printStackTrace(err);
      }
    } finally {
      finished = true;
      if (progress != null) {
        progress.interrupt();
      }
      if (engine != null) {
        engine.close();
      }
      if (server != null && server.launched && !aborted) {
        try {
          int status = server.stop();
          result.put("server_exit", Integer.toString(status));
          if (status != 0) {
            lines.add("note       the server's exit status after SIGTERM was " + status + " (expected 0)");
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      if (server != null) {
        server.close();
      }
    }
    for (String l : lines) {
      out.println(l);
    }
    out.println(failures.isEmpty() ? "checks     passed" : "checks     FAILED: " + String.join("; ", failures));
    Map<String, String> all = new LinkedHashMap<>();
    all.put("scenario", o.scenario);
    all.put("status", failures.isEmpty() ? "ok" : "fail");
    all.putAll(result);
    StringBuilder line = new StringBuilder("RESULT");
    all.forEach((k, v) -> line.append(' ').append(k).append('=').append(v.isEmpty() ? "-" : v.replace(' ', ',')));
    out.println(line);
    out.flush();
    return failures.isEmpty() ? 0 : 1;
  }

  /** What the report says about the server, the machine and the generator's settings. */
  private void header() {
    lines.add("== chat.bench.Load " + o.scenario + " ==");
    String pin = server.launched ? (server.pinned ? "pinned to CPU " + o.integer("server-cpu") + " (taskset)"
        : "NOT pinned (" + (LoadServer.onlineCpus() < 2 ? "1 CPU" : "no taskset") + ")") : "may run on CPUs " + server.cpus;
    lines.add(String.format("server     %s, pid %d, %s, hash cost %s%s", server.launched ? "launched" : "attached",
        server.pid, server.pid > 0 ? pin : "CPUs unknown", server.hashCost,
        server.launched ? String.format(", started in %d ms (process start to both ports accepting)", server.startupMillis) : ""));
    lines.add("           JVM " + server.jvmFlags + (server.launched ? "; env " + String.join(" ", server.env) : ""));
    if (seeded) {
      lines.add("           users other than the storm's were written into a new usr.db with low-cost hashes before the start");
    }
    String gen = LoadServer.cpusAllowed(self);
    lines.add(String.format("machine    %d CPUs online, Java %s (%s); generator may run on CPUs %s",
        LoadServer.onlineCpus(), System.getProperty("java.version"), System.getProperty("java.vm.name"), gen));
    StringBuilder settings = new StringBuilder();
    o.values.forEach((k, v) -> {
      if (!k.startsWith("server-") && !k.startsWith("sender-") && !k.endsWith("-port") && !k.equals("hash-cost")) {
        settings.append(k).append(' ').append(v).append(", ");
      }
    });
    lines.add("generator  " + settings.substring(0, settings.length() - 2));
    result.put("server", server.launched ? "launched" : "attached");
    result.put("server_pid", Long.toString(server.pid));
    result.put("server_cpus", server.cpus);
    result.put("pinned", Boolean.toString(server.pinned));
    result.put("hash_cost", server.hashCost);
    result.put("startup_ms", Long.toString(server.startupMillis));
    result.put("server_jvm", server.jvmFlags);
    result.put("nproc", Integer.toString(LoadServer.onlineCpus()));
    result.put("java", System.getProperty("java.version"));
    result.put("gen_cpus", gen);
    if (server.pid > 0 && !server.cpus.isEmpty() && !gen.isEmpty()
        && LoadServer.cpuList(gen).intersects(LoadServer.cpuList(server.cpus))) {
      err.println("load: warning: this generator may run on CPUs " + gen + ", which include the server's (" + server.cpus
          + "): pin it to others, e.g. taskset -c 1 java -cp ... chat.bench.Load ...");
    }
  }

  // ---- scenarios ----

  private void hold() {
    int n = o.integer("sessions");
    long rss0 = LoadServer.rssKiB(server.pid);
    long fds0 = LoadServer.fds(server.pid);
    List<Session> sessions = engine.sessions(o.get("prefix"), 0, n, false);
    Phase register = setup("register", sessions, Step.REGISTER, false);
    Phase login = setup("login", sessions, Step.LOGIN, false);
    long rss1 = LoadServer.rssKiB(server.pid);
    long fds1 = LoadServer.fds(server.pid);
    phase = "hold";
    Cpu a = cpu();
    sleepUntil(System.nanoTime() + o.millis("duration") * 1_000_000);
    Cpu b = cpu();
    long rss2 = LoadServer.rssKiB(server.pid);
    long fds2 = LoadServer.fds(server.pid);
    Totals t = engine.totals();
    double setupSeconds = (login.end - register.start) / 1e9;
    lines.add(String.format("setup      %,d sessions in %.2f s: register %.2f s, login %.2f s = %.0f logins/s (login p50 %s, p99 %s)",
        n, setupSeconds, register.seconds(), login.seconds(), n / login.seconds(), ms(login.latency.percentile(50)),
        ms(login.latency.percentile(99))));
    lines.add(String.format("hold       %.1f s: %d live at the end, %d disconnects, %d heartbeats answered, %d errors; "
        + "server CPU %s", (b.at - a.at) / 1e9, t.live(), t.disconnects(), t.heartbeatsOk(), t.errors(), pct(a.serverPct(b))));
    double perSession = (rss2 - rss0) / (double) n;
    lines.add(String.format("server     RSS %s before any connection, %s after setup, %s after the hold: %.1f kB per session; "
        + "open files %d -> %d -> %d", mib(rss0), mib(rss1), mib(rss2), perSession, fds0, fds1, fds2));
    put("sessions", n);
    put("setup_s", setupSeconds);
    put("logins_per_s", n / login.seconds());
    put("rss_before_kib", rss0);
    put("rss_setup_kib", rss1);
    put("rss_hold_kib", rss2);
    put("rss_per_session_kb", perSession);
    put("fds", fds2);
    put("live", t.live());
    put("heartbeats", t.heartbeatsOk());
    put("srv_cpu", a.serverPct(b));
    put("gen_cpu", a.selfPct(b));
    put("other_cpu", a.otherPct(b));
    checks(t, false);
    if (t.live() != n) {
      failures.add(t.live() + " of " + n + " sessions live at the end");
    }
  }

  private void fanout() {
    int n = o.integer("sessions");
    int s = o.integer("senders");
    boolean split = o.splitNodes();
    // with --sender-tcp-port the senders log in on the other node: their sessions live there
    List<Session> sessions = new ArrayList<>(engine.sessions(o.get("prefix"), 0, n, true));
    sessions.addAll(split ? engine.sessions(o.get("prefix"), n, n + s, true, o.integer("sender-tcp-port"))
        : engine.sessions(o.get("prefix"), n, n + s, true));
    Phase register = setup("register", sessions, Step.REGISTER, false);
    Phase login = setup("login", sessions, Step.LOGIN, false);
    engine.senders(sessions.subList(n, n + s));
    int receivers = engine.receivers();
    double rate = o.number("rate");
    Window m = measure(rate, o.integer("window"));
    Totals t = engine.totals();
    lines.add(String.format("setup      %,d sessions in %.2f s (register %.2f s, login %.2f s = %.0f logins/s)", n + s,
        (login.end - register.start) / 1e9, register.seconds(), login.seconds(), (n + s) / login.seconds()));
    lines.add(String.format("traffic    %,d receivers + %d senders: every chat goes to all %,d sessions; %s; payload %s B",
        n, s, receivers, rate > 0 ? String.format("%.0f msgs/s in all", rate) : "rate 0, window " + o.get("window"),
        o.get("payload")));
    if (split) {
      double secs = m.seconds();
      lines.add(String.format("nodes      senders on TCP port %d (pid %s), receivers on TCP port %d (pid %s): %,.0f deliveries/s "
              + "on the receivers' node (%,d), %,.0f/s to the senders' own sessions on theirs (%,d)",
          o.integer("sender-tcp-port"), o.senderPid() > 0 ? Long.toString(o.senderPid()) : "unknown", server.tcpPort,
          server.pid > 0 ? Long.toString(server.pid) : "unknown", (m.received - m.receivedAtSenders) / secs,
          m.received - m.receivedAtSenders, m.receivedAtSenders / secs, m.receivedAtSenders));
      put("sender_tcp_port", o.integer("sender-tcp-port"));
      put("receiver_node_deliveries_per_s", (m.received - m.receivedAtSenders) / secs);
      put("sender_node_deliveries_per_s", m.receivedAtSenders / secs);
    }
    traffic(m, t, receivers);
    put("sessions", n);
    put("senders", s);
    put("rate", rate);
    put("window", o.integer("window"));
    checks(t, true);
  }

  private void storm() {
    int n = o.integer("sessions");
    int s = o.integer("senders");
    int storm = o.integer("storm");
    int resume = resumeCount();
    String prefix = o.get("prefix");
    List<Session> room = engine.sessions(prefix, 0, n + s, true);
    // the storm's and the resume phase's connections are new ones: their users are set up on others
    List<Session> stormSetup = engine.sessions(prefix, n + s, n + s + storm, false);
    List<Session> stormers = engine.sessions(prefix, n + s, n + s + storm, false);
    List<Session> tokens = engine.sessions(prefix, n + s + storm, n + s + storm + resume, false);
    if (!seeded) {
      setup("register", room, Step.REGISTER, false);
      setup("register resume users", tokens, Step.REGISTER, false);
    }
    Phase registerStorm = setup("register storm users", stormSetup, Step.REGISTER, true);
    Phase login = setup("login", room, Step.LOGIN, false);
    setup("tokens", tokens, Step.LOGIN, true);
    List<Session> resumers = engine.resumeSessions(tokens);
    engine.senders(room.subList(n, n + s));
    int receivers = engine.receivers();
    double rate = o.number("rate");

    long t0 = System.nanoTime() + 20_000_000;
    long warm = t0 + o.millis("warmup") * 1_000_000;
    Window before = engine.window("before", warm, warm + o.millis("duration") * 1_000_000);
    engine.startChat(t0, Long.MAX_VALUE, rate, o.integer("window"));
    phase = "warmup";
    sleepUntil(before.start);
    phase = "before";
    Cpu c0 = cpu();
    sleepUntil(before.end);
    Cpu c1 = cpu();
    Window stormWindow = engine.window("storm", Long.MAX_VALUE, Long.MAX_VALUE);
    phase = "storm";
    Phase stormPhase = await(engine.phase("storm", stormers, Step.LOGIN, Integer.MAX_VALUE, false, stormWindow));
    Cpu c2 = cpu();
    phase = "pause";
    sleepUntil(System.nanoTime() + 1_000_000_000L);
    Window resumeWindow = engine.window("resume", Long.MAX_VALUE, Long.MAX_VALUE);
    phase = "resume";
    Cpu c3 = cpu();
    Phase resumePhase = resume == 0 ? null
        : await(engine.phase("resume", resumers, Step.RESUME, Integer.MAX_VALUE, false, resumeWindow));
    Cpu c4 = cpu();
    phase = "pause";
    sleepUntil(System.nanoTime() + 1_000_000_000L);
    engine.stopChat();
    drain();
    Totals t = engine.totals();

    lines.add(String.format("setup      %,d room sessions logged in in %.2f s; %,d storm users registered in %.2f s (%.1f/s at "
            + "hash cost %s); %,d resume tokens", n + s, login.seconds(), storm, registerStorm.seconds(),
        storm / registerStorm.seconds(), server.hashCost, resume));
    lines.add(String.format("traffic    %,d receivers + %d sender(s), %s, payload %s B; storm and resume sessions receive too "
        + "(%,d such deliveries, not counted)", n, s, rate > 0 ? String.format("%.0f msgs/s", rate)
        : "rate 0, window " + o.get("window"), o.get("payload"), t.extraDeliveries()));
    lines.add(chatLine(before, c0, c1));
    lines.add(chatLine(stormWindow, c1, c2));
    lines.add(String.format("storm      %,d password logins at once: %d ok, %d failed, all done in %.2f s = %.1f logins/s; "
            + "login latency (connect to reply) p50 %s, p99 %s, max %s", storm, stormPhase.ok, stormPhase.failed,
        stormPhase.seconds(), stormPhase.ok / stormPhase.seconds(), ms(stormPhase.latency.percentile(50)),
        ms(stormPhase.latency.percentile(99)), ms(stormPhase.latency.max())));
    if (resumePhase != null) {
      lines.add(chatLine(resumeWindow, c3, c4));
      lines.add(String.format("resume     %,d token logins at once: %d ok, %d failed, all done in %.2f s = %.0f resumes/s; "
              + "latency (connect to reply) p50 %s, p99 %s, max %s", resume, resumePhase.ok, resumePhase.failed,
          resumePhase.seconds(), resumePhase.ok / resumePhase.seconds(), ms(resumePhase.latency.percentile(50)),
          ms(resumePhase.latency.percentile(99)), ms(resumePhase.latency.max())));
    }
    lines.add(String.format("total      %,d chats sent, %,d deliveries of %,d expected: lost %,d, out of order %,d; %,d sessions "
            + "live; server RSS %s, %d open files", t.sent(), t.delivered(), t.expected(), t.lost(), t.outOfOrder(), t.live(),
        mib(LoadServer.rssKiB(server.pid)), LoadServer.fds(server.pid)));
    put("sessions", n);
    put("senders", s);
    put("rate", rate);
    windowResult(before);
    windowResult(stormWindow);
    put("storm", storm);
    put("storm_ok", stormPhase.ok);
    put("storm_s", stormPhase.seconds());
    put("logins_per_s", stormPhase.ok / stormPhase.seconds());
    put("login_p50_us", us(stormPhase.latency.percentile(50)));
    put("login_p99_us", us(stormPhase.latency.percentile(99)));
    put("resume", resume);
    if (resumePhase != null) {
      windowResult(resumeWindow);
      put("resume_ok", resumePhase.ok);
      put("resume_s", resumePhase.seconds());
      put("resumes_per_s", resumePhase.ok / resumePhase.seconds());
      put("resume_p50_us", us(resumePhase.latency.percentile(50)));
      put("resume_p99_us", us(resumePhase.latency.percentile(99)));
    }
    put("sent", t.sent());
    put("expected", t.expected());
    put("delivered", t.delivered());
    put("lost", t.lost());
    put("out_of_order", t.outOfOrder());
    put("live", t.live());
    put("srv_rss_kib", LoadServer.rssKiB(server.pid));
    checks(t, true);
    if (stormPhase.failed > 0) {
      failures.add(stormPhase.failed + " storm logins failed, first: " + stormPhase.firstFailure);
    }
    if (resumePhase != null && resumePhase.failed > 0) {
      failures.add(resumePhase.failed + " resumes failed, first: " + resumePhase.firstFailure);
    }
  }

  private void http() {
    int r = o.integer("receivers");
    int c = o.integer("connections");
    String prefix = o.get("prefix");
    List<Session> receivers = engine.sessions(prefix, 0, r, true);
    List<Session> users = engine.sessions(prefix, r, r + c, false);
    List<Session> everyone = new ArrayList<>(receivers);
    everyone.addAll(users);
    setup("register", everyone, Step.REGISTER, false);
    setup("login", receivers, Step.LOGIN, false);
    setup("tokens", users, Step.LOGIN, true); // the HTTP clients chat with these users' tokens
    List<LoadEngine.Poster> posters = engine.posters(users);
    setup("connect HTTP", posters, Step.CONNECT, false);
    engine.senders(posters);
    Window m = measure(0, 0);
    Totals t = engine.totals();
    lines.add(String.format("traffic    %d HTTP/1.1 keep-alive connections posting POST /api/chat back to back; %d TCP receivers; "
        + "payload %s B", c, r, o.get("payload")));
    lines.add(String.format("requests   %,.0f requests/s (%,d answered in the window), latency p50 %s, p99 %s, max %s; non-200: %d",
        m.responses / m.seconds(), m.responses, us(m.requests.percentile(50)) + " us", us(m.requests.percentile(99)) + " us",
        us(m.requests.max()) + " us", t.nonOk()));
    put("connections", c);
    put("receivers", r);
    put("requests_per_s", m.responses / m.seconds());
    put("req_p50_us", us(m.requests.percentile(50)));
    put("req_p99_us", us(m.requests.percentile(99)));
    put("req_max_us", us(m.requests.max()));
    put("non_200", t.nonOk());
    traffic(m, t, t.receivers());
    checks(t, true);
  }

  // ---- the pieces of a scenario ----

  /** Runs a setup step on every connection (--setup-conc at a time): a failure ends the run. */
  private Phase setup(String name, List<? extends LoadEngine.Conn> conns, Step step, boolean closeAfter) {
    phase = name;
    Phase p = await(engine.phase(name, conns, step, o.integer("setup-conc"), closeAfter, null));
    if (p.failed > 0) {
      throw new RunFailure(name + ": " + p.failed + " of " + conns.size() + " failed, first: " + p.firstFailure);
    }
    return p;
  }

  /** Waits for a phase: at most --setup-timeout, and at most 60 s without one more connection done. */
  private Phase await(Phase p) {
    long now = System.nanoTime();
    long deadline = now + o.millis("setup-timeout") * 1_000_000;
    long lastProgress = now;
    int lastDone = 0;
    while (true) {
      try {
        return p.done.get(100, TimeUnit.MILLISECONDS);
      } catch (TimeoutException e) {
        checkServer();
        if (p.fatal != null) {
          throw new RunFailure(p.name + ": " + p.fatal);
        }
        now = System.nanoTime();
        int done = engine.call(() -> p.ok + p.failed);
        if (done != lastDone) {
          lastDone = done;
          lastProgress = now;
        }
        if (now > deadline || now - lastProgress > Math.min(60_000, o.millis("setup-timeout")) * 1_000_000) {
          throw new RunFailure(p.name + (now > deadline ? " timed out after " + o.get("setup-timeout")
              : " made no progress for 60 s") + ": " + done + " of " + p.conns.size() + " done"
              + (p.firstFailure == null ? "" : ", first failure: " + p.firstFailure));
        }
      } catch (Exception e) {
        throw new RunFailure(p.name + ": " + e);
      }
    }
  }

  /** Warm-up, measured window, drain; the window's CPU readings go to windowStart/windowEnd. */
  private Window measure(double rate, int window) {
    long t0 = System.nanoTime() + 20_000_000;
    long start = t0 + o.millis("warmup") * 1_000_000;
    Window m = engine.window("measure", start, start + o.millis("duration") * 1_000_000);
    engine.startChat(t0, m.end, rate, window);
    phase = "warmup";
    sleepUntil(m.start);
    phase = "measure";
    windowStart = cpu();
    sleepUntil(m.end);
    windowEnd = cpu();
    drain();
    return m;
  }

  /** Waits, at most --drain, until every chat sent was answered and delivered. */
  private void drain() {
    phase = "drain";
    long deadline = System.nanoTime() + o.millis("drain") * 1_000_000;
    while (!engine.settled() && System.nanoTime() < deadline) {
      sleepUntil(System.nanoTime() + 20_000_000);
    }
  }

  /** The lines and results of a measured chat window (fanout, http). */
  private void traffic(Window m, Totals t, int receivers) {
    double secs = m.seconds();
    lines.add(String.format("sent       %,d chats in the %.1f s window = %,.0f msgs/s; %,d skipped (generator behind its schedule)",
        m.sent, secs, m.sent / secs, t.skipped()));
    lines.add(String.format("delivered  %,.0f deliveries/s (%,d in the window); all run: %,d of %,d expected, lost %,d, "
            + "out of order %,d, duplicates %,d", m.received / secs, m.received, t.delivered(), t.expected(), t.lost(),
        t.outOfOrder(), t.duplicates()));
    lines.add(String.format("latency    send to receive of the window's chats: p50 %s, p90 %s, p99 %s, p99.9 %s, max %s us "
            + "(%,d samples)", us(m.latency.percentile(50)), us(m.latency.percentile(90)), us(m.latency.percentile(99)),
        us(m.latency.percentile(99.9)), us(m.latency.max()), m.latency.count()));
    lines.add(String.format("cpu        server %s%s, generator %s, other processes %s (100 %% = one core, over the window)",
        pct(windowStart.serverPct(windowEnd)), o.senderPid() > 0 ? " + senders' node " + pct(windowStart.server2Pct(windowEnd))
            : "", pct(windowStart.selfPct(windowEnd)), pct(windowStart.otherPct(windowEnd))));
    long rss = LoadServer.rssKiB(server.pid);
    lines.add(String.format("server     RSS %s, %d open files", mib(rss), LoadServer.fds(server.pid)));
    put("receivers_per_chat", receivers);
    put("sent", t.sent());
    put("msgs_per_s", m.sent / secs);
    put("deliveries_per_s", m.received / secs);
    put("expected", t.expected());
    put("delivered", t.delivered());
    put("lost", t.lost());
    put("out_of_order", t.outOfOrder());
    put("duplicates", t.duplicates());
    put("skipped", t.skipped());
    put("acks", t.acks());
    put("foreign", t.foreign());
    put("p50_us", us(m.latency.percentile(50)));
    put("p90_us", us(m.latency.percentile(90)));
    put("p99_us", us(m.latency.percentile(99)));
    put("p999_us", us(m.latency.percentile(99.9)));
    put("max_us", us(m.latency.max()));
    put("srv_cpu", windowStart.serverPct(windowEnd));
    if (o.senderPid() > 0) {
      put("srv2_cpu", windowStart.server2Pct(windowEnd));
    }
    put("gen_cpu", windowStart.selfPct(windowEnd));
    put("other_cpu", windowStart.otherPct(windowEnd));
    put("srv_rss_kib", rss);
  }

  private String chatLine(Window w, Cpu a, Cpu b) {
    return String.format("chat %-6s %.1f s: %,d chats sent, latency p50 %s, p99 %s, max %s us, lost %,d; CPU server %s, "
            + "generator %s, others %s", w.name, w.seconds(), w.sent, us(w.latency.percentile(50)),
        us(w.latency.percentile(99)), us(w.latency.max()), w.lost, pct(a.serverPct(b)), pct(a.selfPct(b)), pct(a.otherPct(b)));
  }

  private void windowResult(Window w) {
    put("chat_" + w.name + "_sent", w.sent);
    put("chat_" + w.name + "_p50_us", us(w.latency.percentile(50)));
    put("chat_" + w.name + "_p99_us", us(w.latency.percentile(99)));
    put("chat_" + w.name + "_max_us", us(w.latency.max()));
    put("chat_" + w.name + "_lost", w.lost);
  }

  /** The failed checks of a run: loss, order, disconnects, unexpected replies. */
  private void checks(Totals t, boolean chats) {
    if (chats && t.sent() == 0) {
      failures.add("no chat was sent");
    }
    if (t.lost() > 0) {
      failures.add("lost=" + t.lost());
    }
    if (t.outOfOrder() > 0) {
      failures.add("out_of_order=" + t.outOfOrder());
    }
    if (t.duplicates() > 0) {
      failures.add("duplicates=" + t.duplicates());
    }
    if (t.unanswered() > 0) {
      failures.add(t.unanswered() + " chats never answered");
    }
    if (t.nonOk() > 0) {
      failures.add("non_200=" + t.nonOk());
    }
    if (t.disconnects() > 0) {
      failures.add("disconnects=" + t.disconnects());
    }
    if (t.errors() > 0) {
      failures.add("errors=" + t.errors() + " (unexpected replies, printed on stderr)");
    }
    put("disconnects", t.disconnects());
    put("errors", t.errors());
  }

  /** Storm at production cost on a launched server: the users whose passwords are not measured get cheap hashes. */
  private LoadServer.SeedUsers stormSeed(String cost) {
    if (!o.scenario.equals("storm") || o.attach || !cost.equals("production")) {
      return null;
    }
    int n = o.integer("sessions") + o.integer("senders");
    int storm = o.integer("storm");
    List<String> names = new ArrayList<>();
    List<String> passwords = new ArrayList<>();
    for (int i = 0; i < n + storm + resumeCount(); i++) {
      if (i < n || i >= n + storm) {
        names.add(o.get("prefix") + i);
        passwords.add("pw-" + i);
      }
    }
    seeded = true;
    return new LoadServer.SeedUsers(names, passwords);
  }

  /** --resume, or as many connections as the open-files limit leaves room for next to the others. */
  private int resumeCount() {
    int wanted = o.integer("resume");
    long limit = LoadServer.OPEN_FILE_LIMIT;
    int others = o.integer("sessions") + o.integer("senders") + o.integer("storm");
    int fit = limit < 0 ? wanted : (int) Math.max(0, Math.min(20_000 - 100, limit - 200) - others);
    if (fit < wanted && !result.containsKey("resume_limited")) {
      result.put("resume_limited", Integer.toString(wanted));
      err.println("load: --resume " + wanted + " does not fit next to " + others + " other connections under the limit of "
          + limit + " open files: resuming " + fit);
    }
    return Math.min(wanted, fit);
  }

  // ---- time, CPU, progress ----

  /** CPU time of the server, of this process and of the whole machine at one moment. */
  private record Cpu(long at, long server, long server2, long self, long machine) {
    double serverPct(Cpu later) {
      return pct(server, later.server, later.at - at);
    }

    /** The senders' node (fanout --sender-tcp-port with --sender-server-pid), else -1. */
    double server2Pct(Cpu later) {
      return pct(server2, later.server2, later.at - at);
    }

    double selfPct(Cpu later) {
      return pct(self, later.self, later.at - at);
    }

    /** What other processes used: a measurement taken while this is high is not worth much. */
    double otherPct(Cpu later) {
      double all = pct(machine, later.machine, later.at - at);
      return all < 0 ? -1 : Math.max(0, all - Math.max(0, serverPct(later)) - Math.max(0, server2Pct(later))
          - Math.max(0, selfPct(later)));
    }

    private static double pct(long a, long b, long nanos) {
      return a < 0 || b < 0 || nanos <= 0 ? -1 : (b - a) * 100.0 / LoadServer.CLOCK_TICKS / (nanos / 1e9);
    }
  }

  private Cpu cpu() {
    long pid2 = o.senderPid();
    return new Cpu(System.nanoTime(), server.pid > 0 ? LoadServer.cpuTicks(server.pid) : -1,
        pid2 > 0 ? LoadServer.cpuTicks(pid2) : -1, LoadServer.cpuTicks(self), LoadServer.machineTicks());
  }

  private void sleepUntil(long nanos) {
    long left;
    while ((left = nanos - System.nanoTime()) > 0) {
      try {
        Thread.sleep(Math.max(1, Math.min(100, left / 1_000_000)));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new RunFailure("interrupted");
      }
      checkServer();
    }
  }

  private void checkServer() {
    if (!server.alive()) {
      throw new RunFailure("the server exited during the run; its last output:\n" + server.logTail(20));
    }
  }

  /** One line a second on stderr: phase, connections, traffic, loss estimate, server CPU and RSS. */
  private void progressLines() {
    long begin = System.nanoTime();
    Cpu last = cpu();
    long lastDelivered = 0;
    while (!finished) {
      try {
        Thread.sleep(1000);
        LoadEngine.Progress p = engine.progress(o.values.containsKey("drain") ? o.millis("drain") * 1_000_000 : 5_000_000_000L);
        Cpu now = cpu();
        String step = p.phaseTotal() > 0 && !phase.equals("measure") && !phase.equals("before")
            && !phase.equals("warmup") && !phase.equals("drain") && !phase.equals("hold") && !phase.equals("pause")
            ? String.format(" %,d/%,d", p.phaseDone(), p.phaseTotal()) : "";
        err.printf(Locale.ROOT, "[%6.1fs] %-12s%s live %,d  sent %,d  delivered %,d  lost~%,d  %,.0f deliveries/s  server CPU %s"
                + " RSS %s%s%n", (now.at - begin) / 1e9, phase, step, p.live(), p.sent(), p.delivered(), p.lostEstimate(),
            (p.delivered() - lastDelivered) / ((now.at - last.at) / 1e9), pct(last.serverPct(now)), mib(LoadServer.rssKiB(server.pid)),
            p.errors() + p.disconnects() > 0 ? String.format("  errors %d disconnects %d", p.errors(), p.disconnects()) : "");
        last = now;
        lastDelivered = p.delivered();
      } catch (InterruptedException e) {
        return;
      } catch (RuntimeException e) {
        if (finished) {
          return;
        }
      }
    }
  }

  // ---- formatting ----

  private void put(String key, double v) {
    result.put(key, v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : String.format(Locale.ROOT, "%.1f", v));
  }

  private static long us(long nanos) {
    return nanos / 1000;
  }

  private static String ms(long nanos) {
    return String.format(Locale.ROOT, "%.1f ms", nanos / 1e6);
  }

  private static String pct(double v) {
    return v < 0 ? "n/a" : String.format(Locale.ROOT, "%.1f %%", v);
  }

  private static String mib(long kib) {
    return kib < 0 ? "n/a" : String.format(Locale.ROOT, "%.1f MiB", kib / 1024.0);
  }
}
