package chat;

import chat.config.ChatConfig;
import chat.config.ConfigLoader;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * docker-compose.yml (three cluster nodes, PostgreSQL, HAProxy) against the launch contract: no
 * Docker engine runs where the project is built, so {@code docker compose config} cannot, and the
 * file is read here instead. Each node runs the image of this repository's Dockerfile with only
 * real configuration keys; the cluster settings agree with each other and with the ports the image
 * exposes; the nodes use the postgres service; HAProxy's configuration sends HTTP and TCP to every
 * node on the ports they listen on, checks their readiness, and keeps quiet TCP connections open
 * longer than the protocol's heartbeat window. Each node's environment is also given to the real
 * configuration loader, in a JVM of its own.
 *
 * <p>The YAML is read by {@link MiniYaml}, a reader for the block subset the file is written in
 * (no anchors, flow collections or multi-line scalars: it refuses them). Where Hazelcast's copy of
 * snakeyaml-engine is on the classpath, a test checks that a full YAML parser reads the same.
 */
class DockerComposeTest {

  static final Path COMPOSE = Path.of("docker-compose.yml");
  /** Where the official haproxy image reads its configuration. */
  static final String HAPROXY_CFG_IN_IMAGE = "/usr/local/etc/haproxy/haproxy.cfg";
  /** PROTOCOL.md §4.7: a client sends at least one heartbeat every 5 minutes. */
  static final long HEARTBEAT_WINDOW_MILLIS = TimeUnit.MINUTES.toMillis(5);

  static Map<String, Object> compose;
  static Map<String, Object> services;
  /** The chat nodes: the services with CHAT_CLUSTER_ENABLED, in file order. */
  static List<String> nodes;

  @TempDir
  Path dir;

  @BeforeAll
  static void read() throws IOException {
    compose = map(MiniYaml.parse(Files.readString(COMPOSE)), "docker-compose.yml");
    services = map(compose.get("services"), "services");
    nodes = services.keySet().stream()
        .filter(s -> environment(s).containsKey("CHAT_CLUSTER_ENABLED")).toList();
  }

  // ---- the file ----

  @Test
  @DisplayName("docker-compose.yml reads the same with a full YAML parser (snakeyaml-engine, from Hazelcast's jar)")
  void fullYamlParserAgrees() throws Exception {
    Class<?> settingsClass;
    try {
      settingsClass = Class.forName("com.hazelcast.shaded.org.snakeyaml.engine.v2.api.LoadSettings");
    } catch (ClassNotFoundException e) {
      assumeTrue(false, "no snakeyaml-engine on the classpath");
      return;
    }
    Object builder = settingsClass.getMethod("builder").invoke(null);
    Object settings = builder.getClass().getMethod("build").invoke(builder);
    Class<?> loadClass = Class.forName("com.hazelcast.shaded.org.snakeyaml.engine.v2.api.Load");
    Object load = loadClass.getConstructor(settingsClass).newInstance(settings);
    Object full = loadClass.getMethod("loadFromString", String.class).invoke(load, Files.readString(COMPOSE));
    assertEquals(scalarsAsText(full), MiniYaml.parse(Files.readString(COMPOSE)));
  }

  @Test
  @DisplayName("three chat nodes run the image built from this repository's Dockerfile, reached only through the load balancer")
  void nodesBuildThisDockerfile() throws IOException {
    assertEquals(List.of("node1", "node2", "node3"), nodes, "the chat nodes");
    Set<String> images = new LinkedHashSet<>();
    for (String node : nodes) {
      Map<String, Object> service = service(node);
      Object build = service.get("build");
      String context;
      String dockerfile = "Dockerfile";
      if (build instanceof String s) {
        context = s;
      } else {
        Map<String, Object> b = map(build, node + ".build");
        context = (String) b.get("context");
        if (b.get("dockerfile") != null) {
          dockerfile = (String) b.get("dockerfile");
        }
      }
      assertEquals(Path.of("").toAbsolutePath(), COMPOSE.toAbsolutePath().getParent().resolve(context).normalize(),
          node + " builds in this repository");
      assertEquals(Path.of("Dockerfile"), Path.of(context).resolve(dockerfile).normalize(), node + " builds the Dockerfile");
      images.add((String) service.get("image"));
      assertNull(service.get("ports"), node + " publishes no port: its clients come through the load balancer");
      assertNull(service.get("command"), node + " runs the image's entrypoint as it is");
      assertNull(service.get("entrypoint"), node + " runs the image's entrypoint as it is");
      // docker stop waits stop_grace_period, then kills: the server's own shutdown must fit in it
      ChatConfig config = nodeConfig(node);
      long grace = millis(text(service.get("stop_grace_period"), node + ".stop_grace_period"), "s");
      assertTrue(grace > TimeUnit.SECONDS.toMillis(config.shutdownGraceSeconds + 4L),
          node + ": stop_grace_period above the server's shutdown (shutdown.graceSeconds + 4 s)");
    }
    assertEquals(1, images.size(), "one image for all nodes: " + images);
    assertNotNull(images.iterator().next(), "the nodes name their image");
  }

  // ---- the nodes' configuration ----

  @Test
  @DisplayName("each node sets only real configuration keys, and its cluster settings name the node services and the ports the image exposes")
  void clusterSettingsAgree() throws IOException {
    Set<String> envNames = new LinkedHashSet<>();
    ConfigLoader.flatDefaults().keySet().forEach(k -> envNames.add(ConfigLoader.envName(k)));
    List<Integer> exposed = DockerfileTest.exposedPorts();
    Map<String, ChatConfig> configs = new LinkedHashMap<>();
    for (String node : nodes) {
      for (String name : environment(node).keySet()) {
        assertTrue(envNames.contains(name), node + ": " + name + " is the variable of a configuration key (--help lists them)");
      }
      configs.put(node, nodeConfig(node));
    }
    for (String node : nodes) {
      ChatConfig c = configs.get(node);
      assertTrue(c.clusterEnabled, node);
      assertEquals(node, c.clusterHost, node + ": CHAT_CLUSTER_HOST is the node's own service name, its address for the others");
      List<String> expected = nodes.stream().map(n -> n + ":" + configs.get(n).clusterPort).toList();
      assertEquals(Set.copyOf(expected), Set.copyOf(c.clusterMembers),
          node + ": CHAT_CLUSTER_MEMBERS lists every node at its CHAT_CLUSTER_PORT");
      assertEquals(expected.size(), c.clusterMembers.size(), node + ": no member twice");
      assertFalse(c.clusterMulticast, node + ": members found by their names, not multicast");
      assertEquals(configs.get(nodes.get(0)).clusterName, c.clusterName, node + ": one cluster name");
      assertTrue(exposed.contains(c.clusterPort), node + ": the image exposes the member port " + c.clusterPort);
      assertNotEquals(0, c.clusterEventBusPort, node + ": a fixed event-bus port");
      assertTrue(exposed.contains(c.clusterEventBusPort), node + ": the image exposes the event-bus port " + c.clusterEventBusPort);
      assertNotEquals(c.clusterPort, c.clusterEventBusPort, node);
      // listeners for the load balancer, which is another container
      assertTrue(c.host.equals("0.0.0.0") || c.host.equals("::"), node + ": listens on every interface, not " + c.host);
      assertFalse(c.tlsOnly, node + ": plain HTTP and TCP listeners for the load balancer");
    }
  }

  @Test
  @DisplayName("the nodes use the postgres service's database, after it is healthy")
  void nodesUseThePostgresService() {
    String postgres = services.keySet().stream()
        .filter(s -> String.valueOf(service(s).get("image")).matches("postgres(:.*)?")).findFirst()
        .orElseGet(() -> fail("a service runs the official postgres image"));
    Map<String, Object> pg = service(postgres);
    Map<String, String> pgEnv = environment(postgres);
    assertNotNull(map(pg.get("healthcheck"), postgres + ".healthcheck").get("test"), "postgres has a healthcheck");
    String dataVolume = volumes(postgres).stream().filter(v -> v.endsWith(":/var/lib/postgresql/data"))
        .map(v -> v.substring(0, v.indexOf(':'))).findFirst()
        .orElseGet(() -> fail("postgres keeps /var/lib/postgresql/data in a volume"));
    assertTrue(map(compose.get("volumes"), "volumes").containsKey(dataVolume), "the data volume is a named volume: " + dataVolume);
    for (String node : nodes) {
      ChatConfig c = nodeConfig(node);
      Matcher url = Pattern.compile("jdbc:postgresql://([^:/]+)(?::(\\d+))?/([^?]+).*").matcher(c.dbUrl);
      assertTrue(url.matches(), node + ": CHAT_DB_URL is a PostgreSQL URL: " + c.dbUrl);
      assertEquals(postgres, url.group(1), node + ": CHAT_DB_URL names the postgres service");
      assertTrue(url.group(2) == null || url.group(2).equals("5432"), node + ": PostgreSQL's port in the container");
      assertEquals(pgEnv.getOrDefault("POSTGRES_DB", pgEnv.get("POSTGRES_USER")), url.group(3), node + ": the database");
      assertEquals(pgEnv.get("POSTGRES_USER"), c.dbUser, node + ": CHAT_DB_USER");
      assertEquals(pgEnv.get("POSTGRES_PASSWORD"), environment(node).get("CHAT_DB_PASSWORD"),
          node + ": CHAT_DB_PASSWORD is the same setting as POSTGRES_PASSWORD");
      Map<String, Object> dependsOn = map(service(node).get("depends_on"), node + ".depends_on");
      assertEquals("service_healthy", map(dependsOn.get(postgres), node + ".depends_on." + postgres).get("condition"),
          node + " starts once postgres is healthy");
    }
  }

  @Test
  @DisplayName("the nodes share one avatar folder, and the per-address limits, which would see only HAProxy's address, are off")
  void sharedAvatarsAndLimitsBehindTheProxy() throws IOException {
    Set<String> avatarMounts = new LinkedHashSet<>();
    String workdir = DockerfileTest.only(DockerfileTest.finalStage(DockerfileTest.parse(Path.of("Dockerfile"))), "WORKDIR");
    for (String node : nodes) {
      ChatConfig c = nodeConfig(node);
      String avatarDir = c.avatarDir.startsWith("/") ? c.avatarDir : workdir + "/" + c.avatarDir;
      List<String> mounts = volumes(node).stream().filter(v -> v.endsWith(":" + avatarDir)).toList();
      assertEquals(1, mounts.size(), node + " mounts a volume on its avatar folder " + avatarDir);
      avatarMounts.add(mounts.get(0));
      assertEquals(0, c.loginFailuresPerAddress, node + ": every client has HAProxy's address");
      assertEquals(0, c.registrationsPerAddress, node + ": every client has HAProxy's address");
      assertTrue(c.limitsEnabled && c.loginFailuresPerUser > 0 && c.chatMessagesPerSecond > 0, node + ": per-user limits on");
    }
    assertEquals(1, avatarMounts.size(), "one avatar volume for all nodes: " + avatarMounts);
    String volume = avatarMounts.iterator().next().split(":")[0];
    assertTrue(map(compose.get("volumes"), "volumes").containsKey(volume), "a named volume: " + volume);
  }

  @Test
  @DisplayName("each node's environment, with the image's, makes a valid configuration")
  void nodeEnvironmentIsAValidConfiguration() {
    for (String node : nodes) {
      ChatConfig c = nodeConfig(node);
      assertTrue(c.clusterEnabled);
      assertEquals(node, c.clusterHost);
      assertTrue(c.dbUrl.startsWith("jdbc:postgresql://"), c.dbUrl);
      assertFalse(c.dbPassword.isEmpty(), node + ": a database password");
      // the addresses are resolved when the node starts; here, any host name would do
      ChatConfig local = DockerfileTest.configFromEnv(withLocalHosts(effectiveEnv(node)));
      assertEquals("127.0.0.1", local.clusterHost);
      assertTrue(local.clusterMembers.stream().allMatch(m -> m.startsWith("127.0.0.1:")), local.clusterMembers.toString());
    }
  }

  @Test
  @DisplayName("the server's own configuration loader, in a JVM of its own, accepts each node's environment")
  void realConfigLoaderAcceptsNodeEnvironment() throws Exception {
    int closedPort;
    try (ServerSocket s = new ServerSocket(0)) {
      closedPort = s.getLocalPort();
    }
    // "healthcheck" loads the configuration from the environment as the server does (exit 2 when
    // it is refused), then asks the server on this machine: none at closedPort, so 1
    for (String node : nodes) {
      Map<String, String> env = withLocalHosts(effectiveEnv(node));
      env.put("CHAT_HTTP_PORT", String.valueOf(closedPort));
      Result r = healthcheck(env);
      assertEquals(1, r.exit, node + ": configuration accepted, no server at the port: " + r.output);
      assertTrue(r.output.contains("not ready"), r.output);
    }
    // the check tells a refused configuration apart
    Map<String, String> broken = withLocalHosts(effectiveEnv(nodes.get(0)));
    broken.put("CHAT_CLUSTER_MEMBERS", "node1:5701 node2:5701");
    Result r = healthcheck(broken);
    assertEquals(2, r.exit, r.output);
    assertTrue(r.output.contains("cluster.members"), r.output);
  }

  // ---- the load balancer ----

  @Test
  @DisplayName("HAProxy sends HTTP and TCP to every node on the ports it listens on and the image exposes, checking /health/ready")
  void loadBalancerTargetsEveryNode() throws IOException {
    String lb = loadBalancer();
    Map<String, Object> lbService = service(lb);
    assertTrue(String.valueOf(lbService.get("image")).matches("haproxy:.+"), "the official haproxy image");
    List<String> mounts = volumes(lb);
    String cfgMount = mounts.stream().filter(v -> v.split(":")[1].equals(HAPROXY_CFG_IN_IMAGE)).findFirst()
        .orElseGet(() -> fail("the lb mounts its configuration at " + HAPROXY_CFG_IN_IMAGE));
    Path cfgFile = COMPOSE.toAbsolutePath().getParent().resolve(cfgMount.split(":")[0]).normalize();
    assertEquals(Path.of("deploy/haproxy/haproxy.cfg").toAbsolutePath(), cfgFile);
    HaproxyCfg cfg = HaproxyCfg.parse(cfgFile);

    // published host port -> container port: the frontends' bind ports
    Map<Integer, Integer> published = new LinkedHashMap<>();
    for (Object p : list(lbService.get("ports"), lb + ".ports")) {
      String[] parts = ((String) p).replace("/tcp", "").split(":");
      published.put(Integer.parseInt(parts[parts.length - 2]), Integer.parseInt(parts[parts.length - 1]));
    }
    List<Integer> exposed = DockerfileTest.exposedPorts();
    Set<Integer> httpPorts = new LinkedHashSet<>();
    Set<Integer> tcpPorts = new LinkedHashSet<>();
    for (String node : nodes) {
      httpPorts.add(nodeConfig(node).httpPort);
      tcpPorts.add(nodeConfig(node).tcpPort);
    }
    assertEquals(1, httpPorts.size(), "one HTTP port on every node");
    assertEquals(1, tcpPorts.size(), "one TCP port on every node");
    int http = httpPorts.iterator().next();
    int tcp = tcpPorts.iterator().next();
    assertTrue(exposed.contains(http) && exposed.contains(tcp), "the image exposes " + http + " and " + tcp);
    assertEquals(Map.of(http, http, tcp, tcp), published, "the lb publishes the nodes' ports, HTTP and TCP, as they are");
    assertEquals(Set.copyOf(published.values()), cfg.frontends().stream().map(cfg::bindPort)
        .collect(java.util.stream.Collectors.toSet()), "HAProxy binds the published ports, and only those");

    for (int port : List.of(http, tcp)) {
      HaproxyCfg.Section frontend = cfg.frontends().stream().filter(f -> cfg.bindPort(f) == port).findFirst().orElseThrow();
      HaproxyCfg.Section backend = cfg.backendOf(frontend);
      String mode = port == http ? "http" : "tcp";
      assertEquals(mode, cfg.setting(frontend, "mode"), frontend.name() + " mode");
      assertEquals(mode, cfg.setting(backend, "mode"), backend.name() + " mode");
      List<HaproxyCfg.Server> servers = cfg.servers(backend);
      assertEquals(nodes, servers.stream().map(HaproxyCfg.Server::host).toList(), backend.name() + " has every node, once");
      for (HaproxyCfg.Server s : servers) {
        assertEquals(port, s.port(), backend.name() + "/" + s.name() + " targets the node's " + mode.toUpperCase(Locale.ROOT) + " port");
        assertTrue(s.params().contains("check"), s.name() + " is health-checked");
        int checkPort = s.params().contains("port") ? Integer.parseInt(s.params().get(s.params().indexOf("port") + 1)) : s.port();
        assertEquals(http, checkPort, s.name() + ": the check asks the node's HTTP port");
        assertFalse(s.params().stream().anyMatch(p -> p.startsWith("send-proxy")),
            s.name() + ": the server reads no PROXY protocol header (it would take it for a message)");
        assertFalse(s.params().contains("ssl"), s.name() + ": the nodes' plain ports");
      }
      assertEquals("/health/ready", cfg.httpCheckUri(backend), backend.name() + " checks readiness");
    }
  }

  @Test
  @DisplayName("HAProxy's TCP side uses leastconn and keeps a quiet connection open longer than the heartbeat window and the reaper")
  void tcpTimeoutsOutlastTheHeartbeatWindow() throws IOException {
    String lb = loadBalancer();
    String cfgMount = volumes(lb).stream().filter(v -> v.split(":")[1].equals(HAPROXY_CFG_IN_IMAGE)).findFirst().orElseThrow();
    HaproxyCfg cfg = HaproxyCfg.parse(COMPOSE.toAbsolutePath().getParent().resolve(cfgMount.split(":")[0]).normalize());
    int tcp = nodeConfig(nodes.get(0)).tcpPort;
    long reaper = 0;
    for (String node : nodes) {
      reaper = Math.max(reaper, TimeUnit.SECONDS.toMillis(nodeConfig(node).reaperIdleSeconds));
    }
    long floor = Math.max(HEARTBEAT_WINDOW_MILLIS, reaper);
    HaproxyCfg.Section frontend = cfg.frontends().stream().filter(f -> cfg.bindPort(f) == tcp).findFirst().orElseThrow();
    HaproxyCfg.Section backend = cfg.backendOf(frontend);
    assertEquals("leastconn", cfg.setting(backend, "balance"), "long-lived connections: least connections");
    long client = HaproxyCfg.millis(cfg.timeout(frontend, "client"));
    long server = HaproxyCfg.millis(cfg.timeout(backend, "server"));
    assertTrue(client > floor, "timeout client " + client + " ms > " + floor + " ms");
    assertTrue(server > floor, "timeout server " + server + " ms > " + floor + " ms");
    String tunnel = cfg.timeout(backend, "tunnel");
    assertTrue(tunnel == null || HaproxyCfg.millis(tunnel) > floor, "timeout tunnel " + tunnel + " > " + floor + " ms");
    assertTrue(HaproxyCfg.millis(cfg.timeout(backend, "connect")) < client, "a short timeout connect");
  }

  @Test
  @DisplayName("the lb container may open the descriptors HAProxy's maxconn needs (else HAProxy does not start)")
  void loadBalancerDescriptorLimit() throws IOException {
    String lb = loadBalancer();
    String cfgMount = volumes(lb).stream().filter(v -> v.split(":")[1].equals(HAPROXY_CFG_IN_IMAGE)).findFirst().orElseThrow();
    HaproxyCfg cfg = HaproxyCfg.parse(COMPOSE.toAbsolutePath().getParent().resolve(cfgMount.split(":")[0]).normalize());
    int maxconn = Integer.parseInt(cfg.of("global").get(0).all("maxconn").get(0).get(1));
    for (HaproxyCfg.Section frontend : cfg.frontends()) {
      String own = cfg.setting(frontend, "maxconn");
      assertTrue(own != null && Integer.parseInt(own) <= maxconn, frontend.name() + ": a maxconn within the global " + maxconn);
    }
    // HAProxy 2.6 asked for 2 x maxconn + 38 descriptors with this file
    Object nofile = map(service(lb).get("ulimits"), lb + ".ulimits").get("nofile");
    List<String> limits = nofile instanceof String s ? List.of(s, s)
        : List.of(text(map(nofile, "nofile").get("soft"), "soft"), text(map(nofile, "nofile").get("hard"), "hard"));
    for (String limit : limits) {
      assertTrue(Long.parseLong(limit) >= 2L * maxconn + 1000, "nofile " + limit + " >= 2 x maxconn " + maxconn + " + 1000");
    }
  }

  // ---- helpers ----

  static String loadBalancer() {
    return services.keySet().stream().filter(s -> String.valueOf(service(s).get("image")).startsWith("haproxy"))
        .findFirst().orElseGet(() -> fail("a service runs haproxy"));
  }

  static Map<String, Object> service(String name) {
    return map(services.get(name), "services." + name);
  }

  /** A service's environment as written (mapping form), before interpolation. */
  static Map<String, String> environment(String service) {
    Object env = service(service).get("environment");
    Map<String, String> out = new LinkedHashMap<>();
    if (env == null) {
      return out;
    }
    map(env, service + ".environment").forEach((k, v) -> out.put(k, text(v, service + ".environment." + k)));
    return out;
  }

  static List<String> volumes(String service) {
    Object v = service(service).get("volumes");
    return v == null ? List.of() : list(v, service + ".volumes").stream().map(o -> text(o, service + ".volumes")).toList();
  }

  /** What a node's container has: the image's ENV, then the service's environment, interpolated as Compose does. */
  static Map<String, String> effectiveEnv(String node) {
    try {
      Map<String, String> env = new LinkedHashMap<>(DockerfileTest.imageEnv());
      environment(node).forEach((k, v) -> env.put(k, interpolate(v)));
      return env;
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  static ChatConfig nodeConfig(String node) {
    return DockerfileTest.configFromEnv(effectiveEnv(node));
  }

  /** The node host names (service names) as 127.0.0.1: names that resolve outside Compose's network. */
  static Map<String, String> withLocalHosts(Map<String, String> env) {
    Map<String, String> out = new LinkedHashMap<>();
    env.forEach((k, v) -> {
      String value = v;
      for (String node : nodes) {
        value = value.replaceAll("\\b" + Pattern.quote(node) + "\\b", "127.0.0.1");
      }
      out.put(k, value);
    });
    return out;
  }

  private static final Pattern VARIABLE = Pattern.compile("\\$\\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?}|\\$\\$");

  /**
   * Compose's interpolation, with no variable set (as on a fresh checkout without .env): {@code ${VAR:-default}} is the
   * default, {@code $$} a dollar; a variable without a default would be empty, which no setting here wants.
   */
  static String interpolate(String value) {
    Matcher m = VARIABLE.matcher(value);
    StringBuilder out = new StringBuilder();
    while (m.find()) {
      if (m.group().equals("$$")) {
        m.appendReplacement(out, "\\$");
        continue;
      }
      assertNotNull(m.group(2), "a default for ${" + m.group(1) + "}: " + value);
      m.appendReplacement(out, Matcher.quoteReplacement(m.group(2)));
    }
    m.appendTail(out);
    assertFalse(out.toString().contains("$"), "no other use of $ in " + value);
    return out.toString();
  }

  record Result(int exit, String output) {
  }

  /** {@code chat.Main healthcheck} in its own JVM with exactly these CHAT_* variables. */
  private Result healthcheck(Map<String, String> env) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx64m", "-cp", System.getProperty("java.class.path"),
        "chat.Main", "healthcheck").directory(dir.toFile()).redirectErrorStream(true);
    Path out = Files.createTempFile(dir, "healthcheck-", ".out");
    pb.redirectOutput(out.toFile());
    pb.environment().keySet().removeIf(k -> k.startsWith("CHAT_"));
    env.forEach((k, v) -> {
      if (k.startsWith("CHAT_")) {
        pb.environment().put(k, v);
      }
    });
    Process p = pb.start();
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      fail("healthcheck did not finish: " + Files.readString(out));
    }
    return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
  }

  /** HAProxy time: a number with us, ms, s, m, h or d (none: ms). */
  static long millis(String text, String defaultUnit) {
    Matcher m = Pattern.compile("(\\d+)(us|ms|s|m|h|d)?").matcher(text.trim());
    assertTrue(m.matches(), "a duration: " + text);
    long n = Long.parseLong(m.group(1));
    return switch (m.group(2) == null ? defaultUnit : m.group(2)) {
      case "us" -> n / 1000;
      case "ms" -> n;
      case "s" -> TimeUnit.SECONDS.toMillis(n);
      case "m" -> TimeUnit.MINUTES.toMillis(n);
      case "h" -> TimeUnit.HOURS.toMillis(n);
      default -> TimeUnit.DAYS.toMillis(n);
    };
  }

  @SuppressWarnings("unchecked")
  static Map<String, Object> map(Object o, String what) {
    assertTrue(o instanceof Map, what + " is a mapping: " + o);
    return (Map<String, Object>) o;
  }

  @SuppressWarnings("unchecked")
  static List<Object> list(Object o, String what) {
    assertTrue(o instanceof List, what + " is a list: " + o);
    return (List<Object>) o;
  }

  static String text(Object o, String what) {
    assertTrue(o instanceof String, what + " is a scalar: " + o);
    return (String) o;
  }

  /** A full parser's result with every scalar as its text, as {@link MiniYaml} gives them. */
  static Object scalarsAsText(Object o) {
    if (o instanceof Map<?, ?> m) {
      Map<String, Object> out = new LinkedHashMap<>();
      m.forEach((k, v) -> out.put(String.valueOf(k), scalarsAsText(v)));
      return out;
    }
    if (o instanceof List<?> l) {
      List<Object> out = new ArrayList<>();
      l.forEach(v -> out.add(scalarsAsText(v)));
      return out;
    }
    return o == null ? null : String.valueOf(o);
  }

  /**
   * Block-style YAML: mappings, sequences of scalars or blocks, plain, 'single' and "double" quoted
   * scalars, comments. Scalars stay text; an empty value is null. Anything else (anchors, aliases,
   * tags, flow collections, multi-line scalars, several documents, tabs, duplicate keys) fails,
   * so the file is never read other than as written.
   */
  static final class MiniYaml {

    private record Line(int number, int indent, String text) {
      boolean item() {
        return text.equals("-") || text.startsWith("- ");
      }
    }

    private final List<Line> lines = new ArrayList<>();
    private int at;

    static Object parse(String text) {
      MiniYaml y = new MiniYaml();
      String[] raw = text.split("\n", -1);
      for (int i = 0; i < raw.length; i++) {
        String line = stripComment(raw[i].replaceAll("\r$", ""), i + 1).stripTrailing();
        if (line.isBlank()) {
          continue;
        }
        int indent = 0;
        while (line.charAt(indent) == ' ') {
          indent++;
        }
        if (line.charAt(indent) == '\t') {
          throw new IllegalArgumentException("line " + (i + 1) + ": a tab in the indentation");
        }
        String content = line.substring(indent);
        if (content.equals("---") || content.equals("...") || content.startsWith("%")) {
          throw new IllegalArgumentException("line " + (i + 1) + ": one plain document only");
        }
        y.lines.add(new Line(i + 1, indent, content));
      }
      if (y.lines.isEmpty()) {
        return null;
      }
      Object root = y.block(y.lines.get(0).indent());
      if (y.at < y.lines.size()) {
        throw y.error("unexpected indentation");
      }
      return root;
    }

    /** The line without its comment: a # at its start or after a space, outside quotes. */
    private static String stripComment(String line, int number) {
      char quote = 0;
      for (int i = 0; i < line.length(); i++) {
        char c = line.charAt(i);
        if (quote != 0) {
          if (c == '\\' && quote == '"') {
            i++;
          } else if (c == quote) {
            quote = 0;
          }
        } else if (c == '#' && (i == 0 || line.charAt(i - 1) == ' ')) {
          return line.substring(0, i);
        } else if ((c == '"' || c == '\'') && (i == 0 || " :-[{,".indexOf(line.charAt(i - 1)) >= 0)) {
          quote = c;
        }
      }
      if (quote != 0) {
        throw new IllegalArgumentException("line " + number + ": a quoted scalar continues on the next line");
      }
      return line;
    }

    private IllegalArgumentException error(String message) {
      Line l = lines.get(Math.min(at, lines.size() - 1));
      return new IllegalArgumentException("line " + l.number() + ": " + message + ": " + l.text());
    }

    private Object block(int indent) {
      Line first = lines.get(at);
      if (first.indent() != indent) {
        throw error("unexpected indentation");
      }
      return first.item() ? sequence(indent) : mapping(indent);
    }

    private Map<String, Object> mapping(int indent) {
      Map<String, Object> out = new LinkedHashMap<>();
      while (at < lines.size() && lines.get(at).indent() >= indent) {
        Line line = lines.get(at);
        if (line.indent() > indent || line.item()) {
          throw error("unexpected indentation or list item");
        }
        int colon = keyEnd(line.text());
        if (colon < 0) {
          throw error("not a key: value line");
        }
        String key = scalar(line.text().substring(0, colon).strip());
        if (key == null || out.containsKey(key)) {
          throw error("an empty or repeated key");
        }
        String rest = line.text().substring(colon + 1).strip();
        Object value = rest.isEmpty() ? null : scalar(rest);
        at++;
        out.put(key, rest.isEmpty() ? nested(indent, true) : value);
      }
      return out;
    }

    private List<Object> sequence(int indent) {
      List<Object> out = new ArrayList<>();
      while (at < lines.size() && lines.get(at).indent() >= indent) {
        Line line = lines.get(at);
        if (line.indent() > indent || !line.item()) {
          break;
        }
        String rest = line.text().substring(1).strip();
        if (!rest.isEmpty() && !rest.startsWith("\"") && !rest.startsWith("'") && keyEnd(rest) >= 0) {
          throw error("a mapping in a list item is not supported here");
        }
        Object value = rest.isEmpty() ? null : scalar(rest);
        at++;
        out.add(rest.isEmpty() ? nested(indent, false) : value);
      }
      if (at < lines.size() && lines.get(at).indent() > indent) {
        throw error("unexpected indentation");
      }
      return out;
    }

    /** The block under a key or item with no value on its line, or null. */
    private Object nested(int indent, boolean underKey) {
      if (at >= lines.size()) {
        return null;
      }
      Line next = lines.get(at);
      if (next.indent() > indent || (underKey && next.indent() == indent && next.item())) {
        return block(next.indent());
      }
      return null;
    }

    /** Where a plain or quoted key ends: its ':' followed by a space or the end of the line; -1 if none. */
    private static int keyEnd(String text) {
      if (text.startsWith("\"") || text.startsWith("'")) {
        int close = text.indexOf(text.charAt(0), 1);
        return close > 0 && close + 1 < text.length() && text.charAt(close + 1) == ':' ? close + 1 : -1;
      }
      for (int i = 0; i < text.length(); i++) {
        if (text.charAt(i) == ':' && (i + 1 == text.length() || text.charAt(i + 1) == ' ')) {
          return i;
        }
      }
      return -1;
    }

    private String scalar(String text) {
      if (text.startsWith("\"")) {
        StringBuilder out = new StringBuilder();
        int i = 1;
        for (; i < text.length() && text.charAt(i) != '"'; i++) {
          char c = text.charAt(i);
          if (c == '\\') {
            char e = text.charAt(++i);
            switch (e) {
              case '"', '\\', '/' -> out.append(e);
              case 'n' -> out.append('\n');
              case 't' -> out.append('\t');
              default -> throw error("an escape this reader does not know: \\" + e);
            }
          } else {
            out.append(c);
          }
        }
        if (i != text.length() - 1) {
          throw error("text after a quoted scalar");
        }
        return out.toString();
      }
      if (text.startsWith("'")) {
        if (text.length() < 2 || !text.endsWith("'")) {
          throw error("an unterminated quoted scalar");
        }
        String inner = text.substring(1, text.length() - 1);
        if (inner.replace("''", "").contains("'")) {
          throw error("text after a quoted scalar");
        }
        return inner.replace("''", "'");
      }
      if ("[{&*!|>@`%".indexOf(text.charAt(0)) >= 0) {
        throw error("a YAML construct this reader does not support (flow collection, anchor, alias, tag or block scalar)");
      }
      return text.equals("~") || text.equals("null") ? null : text;
    }
  }

  /** haproxy.cfg: sections (a line at column 0) and their directives (indented lines), comments removed. */
  record HaproxyCfg(List<Section> sections) {

    record Section(String kind, String name, List<List<String>> directives) {
      List<List<String>> all(String keyword) {
        return directives.stream().filter(d -> d.get(0).equals(keyword)).toList();
      }
    }

    record Server(String name, String host, int port, List<String> params) {
    }

    static HaproxyCfg parse(Path file) throws IOException {
      List<Section> sections = new ArrayList<>();
      for (String raw : Files.readAllLines(file)) {
        String line = raw.replaceAll("(^|\\s)#.*$", "").stripTrailing();
        if (line.isBlank()) {
          continue;
        }
        List<String> tokens = List.of(line.strip().split("\\s+"));
        if (!Character.isWhitespace(line.charAt(0))) {
          sections.add(new Section(tokens.get(0), tokens.size() > 1 ? tokens.get(1) : "", new ArrayList<>()));
        } else {
          assertFalse(sections.isEmpty(), "a directive before any section: " + line);
          sections.get(sections.size() - 1).directives().add(tokens);
        }
      }
      HaproxyCfg cfg = new HaproxyCfg(sections);
      assertTrue(cfg.of("defaults").size() <= 1, "one defaults section");
      return cfg;
    }

    List<Section> of(String kind) {
      return sections.stream().filter(s -> s.kind().equals(kind)).toList();
    }

    List<Section> frontends() {
      return of("frontend");
    }

    Section defaults() {
      List<Section> d = of("defaults");
      return d.isEmpty() ? new Section("defaults", "", List.of()) : d.get(0);
    }

    int bindPort(Section frontend) {
      List<List<String>> binds = frontend.all("bind");
      assertEquals(1, binds.size(), frontend.name() + " binds one address");
      String address = binds.get(0).get(1);
      return Integer.parseInt(address.substring(address.lastIndexOf(':') + 1));
    }

    Section backendOf(Section frontend) {
      List<List<String>> use = frontend.all("use_backend");
      assertTrue(use.isEmpty(), frontend.name() + " sends everything to its default_backend");
      String name = frontend.all("default_backend").get(0).get(1);
      return of("backend").stream().filter(b -> b.name().equals(name)).findFirst()
          .orElseGet(() -> fail("no backend " + name));
    }

    /** A one-word setting (mode, balance) of a section, or of the defaults. */
    String setting(Section section, String keyword) {
      List<List<String>> own = section.all(keyword);
      List<List<String>> found = own.isEmpty() ? defaults().all(keyword) : own;
      return found.isEmpty() ? null : found.get(found.size() - 1).get(1);
    }

    /** {@code timeout KIND} of a section, or of the defaults. */
    String timeout(Section section, String kind) {
      for (Section s : List.of(section, defaults())) {
        List<List<String>> t = s.all("timeout").stream().filter(d -> d.get(1).equals(kind)).toList();
        if (!t.isEmpty()) {
          return t.get(t.size() - 1).get(2);
        }
      }
      return null;
    }

    static long millis(String time) {
      assertNotNull(time, "a timeout");
      return DockerComposeTest.millis(time, "ms");
    }

    List<Server> servers(Section backend) {
      List<Server> out = new ArrayList<>();
      for (List<String> d : backend.all("server")) {
        String address = d.get(2);
        int colon = address.lastIndexOf(':');
        out.add(new Server(d.get(1), address.substring(0, colon), Integer.parseInt(address.substring(colon + 1)),
            d.subList(3, d.size())));
      }
      return out;
    }

    /** The URI of the backend's HTTP check: {@code option httpchk [METHOD URI]} or {@code http-check send ... uri URI}. */
    String httpCheckUri(Section backend) {
      List<List<String>> httpchk = backend.all("option").stream().filter(d -> d.get(1).equals("httpchk")).toList();
      assertEquals(1, httpchk.size(), backend.name() + " has option httpchk");
      if (httpchk.get(0).size() >= 4) {
        return httpchk.get(0).get(3);
      }
      for (List<String> send : backend.all("http-check")) {
        if (send.get(1).equals("send") && send.contains("uri")) {
          return send.get(send.indexOf("uri") + 1);
        }
      }
      return "/";
    }
  }
}
