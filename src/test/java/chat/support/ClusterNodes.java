package chat.support;

import io.vertx.core.json.JsonObject;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * A cluster of chat servers ({@code cluster.enabled=true}) as separate JVMs on the loopback
 * interface, sharing one database, as it is deployed: {@code chat.Main} per node, each in its own
 * data folder, each a Hazelcast member listening on a port chosen here (the member list names
 * them all), HTTP and TCP on free ports read from the startup line.
 *
 * <p>Every cluster gets a random {@code cluster.name}, so that clusters of tests running at the
 * same time on the machine never merge. Abuse limits are off (tests send bursts from one author)
 * and hashing is cheap.
 */
public final class ClusterNodes implements AutoCloseable {

  public static final Duration STARTUP = Duration.ofSeconds(150);
  /** The cluster part of the startup line: {@code cluster on (node <uuid>, N member(s))}. */
  public static final Pattern STARTUP_CLUSTER = Pattern.compile("cluster on \\(node ([0-9a-f-]{36}), (\\d+) member\\(s\\)\\)");
  /** Hazelcast's membership line, logged by every member at each change: {@code Members {size:3, ver:3} [}. */
  private static final Pattern MEMBERS = Pattern.compile("Members \\{size:(\\d+), ver:(\\d+)\\}");
  private static final SecureRandom RANDOM = new SecureRandom();

  public final String name;
  private final Path root;
  private final PgDatabase db;
  private final Map<String, String> extraEnv;
  private final int[] hazelcastPorts;
  private final String members;
  private final Node[] nodes;
  private final List<ServerProcess> processes = new CopyOnWriteArrayList<>();
  private final Thread killOnExit;
  private int restarts;
  /** Members found through a DNS name (Kubernetes discovery) instead of the member list. */
  private boolean kubernetesDns;

  /** A cluster of {@code size} nodes (not started yet) on {@code db}; {@code extraEnv} goes to every node. */
  public ClusterNodes(Path root, PgDatabase db, int size, Map<String, String> extraEnv) {
    this.root = root;
    this.db = db;
    this.extraEnv = Map.copyOf(extraEnv);
    this.name = "chat-test-" + HexFormat.of().formatHex(randomBytes(6));
    this.hazelcastPorts = freePorts(size);
    this.members = java.util.Arrays.stream(hazelcastPorts).mapToObj(p -> "127.0.0.1:" + p).collect(Collectors.joining(","));
    this.nodes = new Node[size];
    // a test JVM that ends without its @AfterAll (a crash, a kill) leaves no server behind
    this.killOnExit = new Thread(() -> processes.forEach(p -> p.process().destroyForcibly()), "kill-cluster-" + name);
    Runtime.getRuntime().addShutdownHook(killOnExit);
  }

  /**
   * Before {@link #start()}: the nodes get no member list but find each other as on Kubernetes,
   * through a DNS name ({@code cluster.kubernetesService}): {@code localhost}, which resolves to
   * 127.0.0.1, at node 0's member port (every pod has the same port on Kubernetes; here only node 0
   * is found, and the others join it).
   */
  public ClusterNodes kubernetesDns() {
    this.kubernetesDns = true;
    return this;
  }

  /** One running node: its process and the ports of its startup line. */
  public final class Node {
    public final int index;
    public final ServerProcess process;
    public final ServerProcess.Ports ports;
    /** The node id of the startup line (the Hazelcast member UUID). */
    public final String nodeId;
    /** How many members the startup line counted. */
    public final int membersAtStartup;
    public final Http http;

    Node(int index, ServerProcess process, ServerProcess.Ports ports) {
      this.index = index;
      this.process = process;
      this.ports = ports;
      Matcher m = STARTUP_CLUSTER.matcher(ports.line());
      if (!m.find()) {
        throw new AssertionError("node " + index + ": the startup line does not say it is clustered: " + ports.line());
      }
      this.nodeId = m.group(1);
      this.membersAtStartup = Integer.parseInt(m.group(2));
      this.http = new Http(ports.http());
    }

    /** A new TCP connection to this node. */
    public LineClient connect() {
      return new LineClient(ports.tcp());
    }

    public int tcp() {
      return ports.tcp();
    }

    public boolean alive() {
      return process.process().isAlive();
    }

    /** kill -9, and wait until the process is gone. */
    public void kill() {
      process.kill();
    }

    /** How many members this node last said the cluster has (Hazelcast's membership log line); -1 before any. */
    public int membersSeen() {
      int size = -1;
      for (String line : process.stdout()) {
        Matcher m = MEMBERS.matcher(line);
        if (m.find()) {
          size = Integer.parseInt(m.group(1));
        }
      }
      return size;
    }

    /** The node's log lines that contain {@code fragment}. */
    public List<String> log(String fragment) {
      return process.stdout().stream().filter(l -> l.contains(fragment)).toList();
    }

    @Override
    public String toString() {
      return "node " + index + " (HTTP " + ports.http() + ", TCP " + ports.tcp() + ", member port "
          + hazelcastPorts[index] + ")";
    }
  }

  public int size() {
    return nodes.length;
  }

  public Node node(int index) {
    return nodes[index];
  }

  /** The nodes whose process is alive. */
  public List<Node> live() {
    List<Node> live = new ArrayList<>();
    for (Node n : nodes) {
      if (n != null && n.alive()) {
        live.add(n);
      }
    }
    return live;
  }

  public String memberList() {
    return members;
  }

  /** The environment of node {@code index}. */
  public Map<String, String> env(int index) {
    Map<String, String> env = new HashMap<>();
    env.put("CHAT_HOST", "127.0.0.1");
    env.put("CHAT_HTTP_PORT", "0");
    env.put("CHAT_TCP_PORT", "0");
    env.put("CHAT_AUTH_HASHCOST", "low");
    env.put("CHAT_LIMITS_ENABLED", "false");
    env.put("CHAT_ADMIN_POLLMILLIS", "100");
    env.put("CHAT_CLUSTER_ENABLED", "true");
    env.put("CHAT_CLUSTER_NAME", name);
    env.put("CHAT_CLUSTER_HOST", "127.0.0.1");
    env.put("CHAT_CLUSTER_PORT", Integer.toString(hazelcastPorts[index]));
    if (kubernetesDns) {
      env.put("CHAT_CLUSTER_MEMBERS", "");
      env.put("CHAT_CLUSTER_KUBERNETESSERVICE", "localhost");
      env.put("CHAT_CLUSTER_KUBERNETESSERVICEPORT", Integer.toString(hazelcastPorts[0]));
    } else {
      env.put("CHAT_CLUSTER_MEMBERS", members);
    }
    env.put("CHAT_CLUSTER_EVENTBUSPORT", "0");
    env.putAll(dbEnv());
    env.putAll(extraEnv);
    return env;
  }

  private Map<String, String> dbEnv() {
    JsonObject settings = db.config();
    return Map.of("CHAT_DB_URL", settings.getString("db.url"), "CHAT_DB_USER", settings.getString("db.user"),
        "CHAT_DB_PASSWORD", settings.getString("db.password"));
  }

  private ServerProcess launch(int index, String folder) {
    try {
      Path dir = Files.createDirectories(root.resolve(folder));
      ServerProcess p = ServerProcess.start(dir, root, env(index));
      processes.add(p);
      return p;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Starts every node: the first alone (it forms the cluster), then the others at once (they
   * join it); returns when every node has printed its startup line and sees all the members.
   */
  public ClusterNodes start() {
    ServerProcess first = launch(0, name + "-node-0");
    nodes[0] = new Node(0, first, awaitListening(first));
    List<ServerProcess> rest = new ArrayList<>();
    for (int i = 1; i < nodes.length; i++) {
      rest.add(launch(i, name + "-node-" + i));
    }
    for (int i = 1; i < nodes.length; i++) {
      ServerProcess p = rest.get(i - 1);
      nodes[i] = new Node(i, p, awaitListening(p));
    }
    awaitMembers(nodes.length, STARTUP);
    return this;
  }

  private static ServerProcess.Ports awaitListening(ServerProcess p) {
    return p.awaitListening(STARTUP);
  }

  /**
   * Starts a new process for node {@code index} (whose process must be gone): a new data folder,
   * the same member port and member list, as an operator replaces a lost machine. Returns once it
   * listens; it does not wait for the others to see it.
   */
  public Node restart(int index) {
    if (nodes[index] != null && nodes[index].alive()) {
      throw new IllegalStateException("node " + index + " is still running");
    }
    ServerProcess p = launch(index, name + "-node-" + index + "-again-" + (++restarts));
    nodes[index] = new Node(index, p, awaitListening(p));
    return nodes[index];
  }

  /** Waits (bounded) until every live node says the cluster has {@code count} members. */
  public void awaitMembers(int count, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      List<Node> live = live();
      Map<Integer, Integer> seen = new HashMap<>();
      for (Node n : live) {
        seen.put(n.index, n.membersSeen());
      }
      if (seen.values().stream().allMatch(s -> s == count)) {
        return;
      }
      if (System.nanoTime() > deadline) {
        StringBuilder b = new StringBuilder("the live nodes do not all see " + count + " members within " + timeout
            + " (node index -> members seen: " + seen + ")");
        for (Node n : live) {
          b.append("\n=== ").append(n).append(" ===\n").append(n.process.transcript());
        }
        throw new AssertionError(b.toString());
      }
      sleep(100);
    }
  }

  /** What an administration command did. */
  public record Cli(int exit, String out, String err) {
  }

  /**
   * Runs an administration command ({@code chat.Main user ...}, {@code session kick ...}) as its
   * own JVM against the cluster's database, as an operator does next to the running servers.
   */
  public Cli admin(String stdin, String... args) {
    List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx256m", "-cp", System.getProperty("java.class.path"),
        "chat.Main"));
    cmd.addAll(List.of(args));
    Process p = null;
    try {
      Path out = Files.createTempFile(root, "cli-", ".out");
      Path err = Files.createTempFile(root, "cli-", ".err");
      ProcessBuilder pb = new ProcessBuilder(cmd).directory(root.toFile())
          .redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.PIPE);
      pb.environment().keySet().removeIf(k -> k.startsWith("CHAT_"));
      pb.environment().put("CHAT_AUTH_HASHCOST", "low");
      pb.environment().put("CHAT_ADMIN_POLLMILLIS", "100");
      pb.environment().putAll(dbEnv());
      p = pb.start();
      try (OutputStream in = p.getOutputStream()) {
        if (stdin != null) {
          in.write(stdin.getBytes(StandardCharsets.UTF_8));
        }
      }
      if (!p.waitFor(90, TimeUnit.SECONDS)) {
        throw new AssertionError("command " + String.join(" ", args) + " still running after 90 s");
      }
      return new Cli(p.exitValue(), Files.readString(out), Files.readString(err));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    } finally {
      if (p != null && p.isAlive()) {
        p.destroyForcibly();
      }
    }
  }

  /** Every node's output, for a failure message. */
  public String transcripts() {
    StringBuilder b = new StringBuilder();
    for (ServerProcess p : processes) {
      b.append("\n=== ").append(p.process().pid()).append(p.process().isAlive() ? "" : " (gone)").append(" ===\n")
          .append(p.transcript());
    }
    return b.toString();
  }

  /** Kills every node this cluster started. */
  @Override
  public void close() {
    for (ServerProcess p : processes) {
      p.close();
    }
    try {
      Runtime.getRuntime().removeShutdownHook(killOnExit);
    } catch (IllegalStateException shuttingDown) {
      // the hook runs anyway
    }
  }

  /**
   * Member ports known before the nodes start (the member list names them): ports of 127.0.0.1 free
   * now, below the kernel's ephemeral range, so that no outgoing connection takes one meanwhile.
   */
  private static int[] freePorts(int count) {
    Set<Integer> chosen = new HashSet<>();
    int[] ports = new int[count];
    int found = 0;
    for (int attempt = 0; found < count && attempt < 10_000; attempt++) {
      int port = 20_000 + RANDOM.nextInt(12_000);
      if (chosen.contains(port) || chosen.contains(port + 1) || chosen.contains(port - 1)) {
        continue;
      }
      try (ServerSocket s = new ServerSocket()) {
        s.setReuseAddress(false);
        s.bind(new InetSocketAddress("0.0.0.0", port));
      } catch (IOException inUse) {
        continue;
      }
      chosen.add(port);
      ports[found++] = port;
    }
    if (found < count) {
      throw new IllegalStateException("no free ports for the cluster members");
    }
    return ports;
  }

  private static byte[] randomBytes(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }

  public static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
