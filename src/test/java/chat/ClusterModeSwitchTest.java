package chat;

import chat.support.ServerProcess;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * cluster.enabled switches the cluster on (readiness then checks the cluster member too), and off it stays off: with the default configuration
 * no Hazelcast member is started (none of its engine's classes is even loaded) and no class of
 * chat.cluster runs (the JVM's class-load log says so). Vert.x's service discovery does construct
 * vertx-hazelcast's cluster-manager object at startup, which loads its few interface types
 * (Config, HazelcastInstance, two listener interfaces) and nothing else: it is never used.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class ClusterModeSwitchTest {

  @TempDir
  Path root;

  private Map<String, String> env(Path classLog) {
    Map<String, String> env = new HashMap<>();
    env.put("CHAT_HTTP_PORT", "0");
    env.put("CHAT_TCP_PORT", "0");
    env.put("CHAT_HOST", "127.0.0.1");
    env.put("CHAT_AUTH_HASHCOST", "low");
    env.put("JAVA_TOOL_OPTIONS", "-Xlog:class+load=info:file=" + classLog);
    return env;
  }

  /** Runs the server until it listens, checks its startup line and readiness, stops it; returns its class-load log. */
  private List<String> run(Map<String, String> env, String expectInLine, String expectInReadiness) throws Exception {
    Path dir = Files.createDirectories(root.resolve(UUID.randomUUID().toString()));
    try (ServerProcess p = ServerProcess.start(dir, root, env)) {
      ServerProcess.Ports ports = p.awaitListening(Duration.ofMinutes(2));
      assertTrue(ports.line().contains(expectInLine), ports.line());
      HttpResponse<String> ready = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
          URI.create("http://127.0.0.1:" + ports.http() + "/health/ready")).build(), HttpResponse.BodyHandlers.ofString());
      assertEquals(200, ready.statusCode(), ready.body());
      assertTrue(ready.body().contains(expectInReadiness), ready.body());
      p.terminate();
      assertEquals(0, p.awaitExit(Duration.ofSeconds(30)), p.transcript());
    }
    return Files.readAllLines(Path.of(env.get("JAVA_TOOL_OPTIONS").substring("-Xlog:class+load=info:file=".length())));
  }

  private static long count(List<String> classLog, String prefix) {
    return classLog.stream().filter(l -> l.contains(" " + prefix)).count();
  }

  @Test
  @DisplayName("cluster off (the default): no Hazelcast and no chat.cluster class is loaded")
  void offLoadsNoClusterCode() throws Exception {
    List<String> classes = run(env(root.resolve("off-classes.log")), "cluster off,", "\"id\":\"database\"");
    assertTrue(count(classes, "chat.Main ") > 0, "the class-load log lists the server's classes");
    assertEquals(0, count(classes, "com.hazelcast.instance."), "a Hazelcast member started with the cluster off");
    assertEquals(0, count(classes, "com.hazelcast.internal."), "Hazelcast's engine loaded with the cluster off");
    assertEquals(0, count(classes, "com.hazelcast.spi."), "Hazelcast's engine loaded with the cluster off");
    assertEquals(0, count(classes, "chat.cluster."), "chat.cluster classes loaded with the cluster off");
    assertTrue(count(classes, "com.hazelcast.") <= 8, "only the cluster manager's interface types: "
        + classes.stream().filter(l -> l.contains(" com.hazelcast.")).toList());
  }

  @Test
  @DisplayName("cluster.enabled=true: the node forms a cluster (of one here) and says so in its startup line")
  void onStartsAClusterNode() throws Exception {
    Map<String, String> env = env(root.resolve("on-classes.log"));
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    env.put("CHAT_CLUSTER_ENABLED", "true");
    env.put("CHAT_CLUSTER_NAME", "chat-test-" + UUID.randomUUID());
    env.put("CHAT_CLUSTER_HOST", "127.0.0.1");
    env.put("CHAT_CLUSTER_PORT", Integer.toString(port));
    List<String> classes = run(env, "1 member(s))", "{\"id\":\"cluster\",\"status\":\"UP\",\"data\":{\"members\":1}}");
    assertTrue(count(classes, "com.hazelcast.instance.") > 0, "a Hazelcast member ran");
    assertTrue(count(classes, "chat.cluster.ClusterSessionRegistry ") > 0);
  }
}
