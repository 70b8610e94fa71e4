package chat.config;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The configuration layers in-process: shipped defaults, the {@code --conf} file (through the real
 * vertx-config retriever) and the merge/validation step that applies environment values. Real
 * environment variables are tested through the separate JVM in {@code ProcessTest}.
 */
@ExtendWith(VertxExtension.class)
class ConfigTest {

  @TempDir
  Path dir;

  /** The file layer is read with the real environment: no CHAT_* variable may interfere. */
  private static void assumeCleanEnvironment() {
    assumeTrue(System.getenv().keySet().stream().noneMatch(k -> k.startsWith("CHAT_")),
        "CHAT_* environment variables are set for this JVM");
  }

  private Path file(String json) throws Exception {
    Path f = dir.resolve("conf-" + System.nanoTime() + ".json");
    Files.writeString(f, json);
    return f;
  }

  private static ChatConfig load(Vertx vertx, Path file) throws Exception {
    return ConfigLoader.load(vertx, file == null ? null : file.toString()).await(30, TimeUnit.SECONDS);
  }

  private static ConfigException loadFails(Vertx vertx, Path file) {
    Future<ChatConfig> f = ConfigLoader.load(vertx, file.toString());
    Exception e = assertThrows(Exception.class, () -> f.await(30, TimeUnit.SECONDS));
    Throwable cause = f.cause() != null ? f.cause() : e;
    return assertInstanceOf(ConfigException.class, cause, () -> "not a ConfigException: " + cause);
  }

  private static ConfigException overrideFails(JsonObject flat) {
    return assertThrows(ConfigException.class, () -> ChatConfig.withOverrides(flat));
  }

  private static void assertNames(ConfigException e, String key) {
    assertTrue(e.getMessage().contains(key), () -> "message does not name '" + key + "': " + e.getMessage());
    assertFalse(e.getMessage().contains("\n"), () -> "message is not one line: " + e.getMessage());
  }

  // ---- defaults ----

  @Test
  @DisplayName("the shipped defaults are the documented ones")
  void defaults() {
    ChatConfig c = ChatConfig.withOverrides(new JsonObject());
    assertEquals("0.0.0.0", c.host);
    assertEquals(5001, c.httpPort);
    assertEquals(8889, c.tcpPort);
    assertEquals(65536, c.tcpMaxFrameBytes);
    assertEquals("jdbc:sqlite:usr.db", c.dbUrl);
    assertEquals("avatar", c.avatarDir);
    assertEquals(3600, c.tokenTtlSeconds);
    assertEquals(ChatConfig.HashCost.PRODUCTION, c.hashCost);
    assertEquals(19456, c.argon2MemoryKiB);
    assertEquals(2, c.argon2Iterations);
    assertEquals(1, c.argon2Parallelism);
    assertEquals(4096, c.maxMessageLength);
    assertEquals(330, c.reaperIdleSeconds);
    assertEquals(60, c.reaperIntervalSeconds);
  }

  @Test
  @DisplayName("with no --conf file, load gives the shipped defaults")
  void loadWithoutFile(Vertx vertx) throws Exception {
    assumeCleanEnvironment();
    ChatConfig c = load(vertx, null);
    assertEquals(5001, c.httpPort);
    assertEquals(8889, c.tcpPort);
    assertEquals("jdbc:sqlite:usr.db", c.dbUrl);
    assertEquals(ChatConfig.HashCost.PRODUCTION, c.hashCost);
  }

  // ---- the file layer ----

  @Test
  @DisplayName("a --conf file overrides the defaults it names and leaves the others")
  void fileOverridesDefaults(Vertx vertx) throws Exception {
    assumeCleanEnvironment();
    ChatConfig c = load(vertx, file("""
        {"tcp": {"port": 7001},
         "db": {"url": "jdbc:sqlite:/tmp/other.db"},
         "auth": {"hashCost": "low", "argon2": {"iterations": 3}},
         "reaper": {"idleSeconds": 42}}"""));
    assertEquals(7001, c.tcpPort);
    assertEquals("jdbc:sqlite:/tmp/other.db", c.dbUrl);
    assertEquals(ChatConfig.HashCost.LOW, c.hashCost);
    assertEquals(3, c.argon2Iterations);
    assertEquals(42, c.reaperIdleSeconds);
    // untouched keys, including siblings of overridden ones, keep their defaults
    assertEquals(5001, c.httpPort);
    assertEquals(65536, c.tcpMaxFrameBytes);
    assertEquals(19456, c.argon2MemoryKiB);
    assertEquals(60, c.reaperIntervalSeconds);
    assertEquals("avatar", c.avatarDir);
  }

  @Test
  @DisplayName("an unknown key in the --conf file fails with a ConfigException naming it")
  void fileUnknownKey(Vertx vertx) throws Exception {
    assertNames(loadFails(vertx, file("{\"tcp\": {\"prot\": 7001}}")), "tcp.prot");
    assertNames(loadFails(vertx, file("{\"colour\": \"blue\"}")), "colour");
  }

  @Test
  @DisplayName("a section given as a scalar in the --conf file fails naming it")
  void fileSectionAsScalar(Vertx vertx) throws Exception {
    assertNames(loadFails(vertx, file("{\"tcp\": 7001}")), "tcp");
  }

  @Test
  @DisplayName("a wrongly typed value in the --conf file fails naming the key")
  void fileWrongType(Vertx vertx) throws Exception {
    assertNames(loadFails(vertx, file("{\"tcp\": {\"port\": \"7001\"}}")), "tcp.port");
    assertNames(loadFails(vertx, file("{\"http\": {\"port\": 80.5}}")), "http.port");
    assertNames(loadFails(vertx, file("{\"db\": {\"url\": 5}}")), "db.url");
    assertNames(loadFails(vertx, file("{\"reaper\": {\"idleSeconds\": true}}")), "reaper.idleSeconds");
  }

  @Test
  @DisplayName("an out-of-range value in the --conf file fails naming the key")
  void fileOutOfRange(Vertx vertx) throws Exception {
    assertNames(loadFails(vertx, file("{\"tcp\": {\"port\": 65536}}")), "tcp.port");
    assertNames(loadFails(vertx, file("{\"http\": {\"port\": 4294967297}}")), "http.port");
    assertNames(loadFails(vertx, file("{\"auth\": {\"hashCost\": \"cheap\"}}")), "auth.hashCost");
  }

  @Test
  @DisplayName("a missing or malformed --conf file fails with a ConfigException naming the file")
  void missingOrMalformedFile(Vertx vertx) throws Exception {
    Path missing = dir.resolve("no-such-file.json");
    assertNames(loadFails(vertx, missing), "no-such-file.json");
    Path broken = file("{\"tcp\": {\"port\": 7001,,}");
    assertNames(loadFails(vertx, broken), broken.getFileName().toString());
  }

  // ---- precedence, through the merge step the loader uses ----

  /** What vertx-config hands to {@code resolve}: the merged JSON of file and env stores. */
  private static ChatConfig resolve(JsonObject merged) {
    Map<String, Object> flatDefaults = ConfigLoader.flatten(ConfigLoader.defaults());
    return ConfigLoader.resolve(flatDefaults, merged);
  }

  @Test
  @DisplayName("precedence: defaults < file < environment, key by key")
  void precedence() {
    JsonObject merged = new JsonObject()
        .put("tcp", new JsonObject().put("port", 7001).put("maxFrameBytes", 1000))
        .put("auth", new JsonObject().put("hashCost", "low"))
        .put("CHAT_TCP_PORT", "7100")               // env beats the file
        .put("CHAT_REAPER_IDLESECONDS", "99")       // env beats the default
        .put("CHAT_AUTH_ARGON2_MEMORYKIB", " 4096 "); // env text is trimmed
    ChatConfig c = resolve(merged);
    assertEquals(7100, c.tcpPort);
    assertEquals(1000, c.tcpMaxFrameBytes);
    assertEquals(ChatConfig.HashCost.LOW, c.hashCost);
    assertEquals(99, c.reaperIdleSeconds);
    assertEquals(4096, c.argon2MemoryKiB);
    assertEquals(5001, c.httpPort);
    assertEquals(60, c.reaperIntervalSeconds);
  }

  @Test
  @DisplayName("environment names are CHAT_ plus the upper-cased key with dots as underscores")
  void envNames() {
    assertEquals("CHAT_HTTP_PORT", ConfigLoader.envName("http.port"));
    assertEquals("CHAT_REAPER_IDLESECONDS", ConfigLoader.envName("reaper.idleSeconds"));
    assertEquals("CHAT_AUTH_ARGON2_MEMORYKIB", ConfigLoader.envName("auth.argon2.memoryKiB"));
  }

  @Test
  @DisplayName("an environment value that is not a number fails naming the variable and the key")
  void envNotANumber() {
    ConfigException e = assertThrows(ConfigException.class,
        () -> resolve(new JsonObject().put("CHAT_TCP_PORT", "abc")));
    assertNames(e, "CHAT_TCP_PORT");
    assertNames(e, "tcp.port");
    assertNames(assertThrows(ConfigException.class, () -> resolve(new JsonObject().put("CHAT_HTTP_PORT", ""))),
        "CHAT_HTTP_PORT");
  }

  @Test
  @DisplayName("an out-of-range environment value fails naming the key")
  void envOutOfRange() {
    assertNames(assertThrows(ConfigException.class, () -> resolve(new JsonObject().put("CHAT_TCP_PORT", "70000"))),
        "tcp.port");
    assertNames(assertThrows(ConfigException.class, () -> resolve(new JsonObject().put("CHAT_AUTH_HASHCOST", "none"))),
        "auth.hashCost");
  }

  // ---- ChatConfig.withOverrides and validation ----

  @Test
  @DisplayName("withOverrides applies flat keys over the defaults")
  void withOverrides() {
    ChatConfig c = ChatConfig.withOverrides(new JsonObject()
        .put("http.port", 0).put("tcp.port", 0).put("auth.hashCost", "low")
        .put("auth.argon2.parallelism", 2).put("host", "127.0.0.1"));
    assertEquals(0, c.httpPort);
    assertEquals(0, c.tcpPort);
    assertEquals(ChatConfig.HashCost.LOW, c.hashCost);
    assertEquals(2, c.argon2Parallelism);
    assertEquals("127.0.0.1", c.host);
    assertEquals(19456, c.argon2MemoryKiB);
  }

  @Test
  @DisplayName("a wrongly typed override fails naming the key")
  void overrideWrongType() {
    assertNames(overrideFails(new JsonObject().put("tcp.port", "8889")), "tcp.port");
    assertNames(overrideFails(new JsonObject().put("reaper.idleSeconds", 1.5)), "reaper.idleSeconds");
    assertNames(overrideFails(new JsonObject().put("host", 127)), "host");
    assertNames(overrideFails(new JsonObject().put("auth.hashCost", true)), "auth.hashCost");
  }

  @Test
  @DisplayName("an out-of-range port fails naming the key")
  void overridePortOutOfRange() {
    assertNames(overrideFails(new JsonObject().put("http.port", 65536)), "http.port");
    assertNames(overrideFails(new JsonObject().put("http.port", -1)), "http.port");
    assertNames(overrideFails(new JsonObject().put("tcp.port", 100000)), "tcp.port");
    assertEquals(65535, ChatConfig.withOverrides(new JsonObject().put("tcp.port", 65535)).tcpPort);
  }

  @Test
  @DisplayName("other out-of-range numbers fail naming their key")
  void overrideOtherRanges() {
    assertNames(overrideFails(new JsonObject().put("db.poolSize", -1)), "db.poolSize");
    assertNames(overrideFails(new JsonObject().put("db.poolSize", 1025)), "db.poolSize");
    assertNames(overrideFails(new JsonObject().put("auth.tokenTtlSeconds", 0)), "auth.tokenTtlSeconds");
    assertNames(overrideFails(new JsonObject().put("tcp.maxFrameBytes", 10)), "tcp.maxFrameBytes");
    assertNames(overrideFails(new JsonObject().put("reaper.intervalSeconds", 0)), "reaper.intervalSeconds");
    assertNames(overrideFails(new JsonObject().put("auth.argon2.memoryKiB", 16).put("auth.argon2.parallelism", 4)),
        "auth.argon2.memoryKiB");
  }

  @Test
  @DisplayName("an unknown override key fails naming it")
  void overrideUnknownKey() {
    assertNames(overrideFails(new JsonObject().put("tcp.prot", 1)), "tcp.prot");
    assertNames(overrideFails(new JsonObject().put("auth.hashcost", "low")), "auth.hashcost");
  }

  @Test
  @DisplayName("a bad auth.hashCost fails naming the key; 'low' and 'production' are accepted")
  void badHashCost() {
    assertNames(overrideFails(new JsonObject().put("auth.hashCost", "medium")), "auth.hashCost");
    assertNames(overrideFails(new JsonObject().put("auth.hashCost", "LOW")), "auth.hashCost");
    assertNames(overrideFails(new JsonObject().put("auth.hashCost", "")), "auth.hashCost");
    assertEquals(ChatConfig.HashCost.LOW, ChatConfig.withOverrides(new JsonObject().put("auth.hashCost", "low")).hashCost);
    assertEquals(ChatConfig.HashCost.PRODUCTION,
        ChatConfig.withOverrides(new JsonObject().put("auth.hashCost", "production")).hashCost);
  }

  @Test
  @DisplayName("an empty string setting fails naming the key")
  void emptyString() {
    assertNames(overrideFails(new JsonObject().put("db.url", "")), "db.url");
    assertNames(overrideFails(new JsonObject().put("avatar.dir", "  ")), "avatar.dir");
  }

  @Test
  @DisplayName("db.url: SQLite or PostgreSQL; another database fails naming the key, with any password in the URL masked")
  void databaseUrl() {
    assertEquals("jdbc:sqlite:usr.db", ChatConfig.withOverrides(new JsonObject()).dbUrl);
    assertEquals("jdbc:postgresql://db:5432/chat",
        ChatConfig.withOverrides(new JsonObject().put("db.url", "jdbc:postgresql://db:5432/chat")).dbUrl);
    ConfigException e = overrideFails(new JsonObject().put("db.url", "jdbc:mysql://db/chat?user=chat&password=s3cr3t-db-pw"));
    assertNames(e, "db.url");
    assertTrue(e.getMessage().contains("jdbc:sqlite: or jdbc:postgresql:"), e.getMessage());
    assertFalse(e.getMessage().contains("s3cr3t-db-pw"), e.getMessage());
    assertNames(overrideFails(new JsonObject().put("db.url", "usr.db")), "db.url");
  }

  @Test
  @DisplayName("db.poolSize 0 (the default) leaves the pool size to the database: 1 on SQLite, 10 on PostgreSQL")
  void poolSizeDefault() {
    assertEquals(0, ChatConfig.withOverrides(new JsonObject()).dbPoolSize);
    assertEquals(1, chat.store.Dialect.SQLITE.defaultPoolSize());
    assertEquals(10, chat.store.Dialect.POSTGRESQL.defaultPoolSize());
    assertEquals(4, ChatConfig.withOverrides(new JsonObject().put("db.poolSize", 4)).dbPoolSize);
  }

  @Test
  @DisplayName("describe() lists every key and masks the database password")
  void describeMasksPassword() {
    ChatConfig c = ChatConfig.withOverrides(new JsonObject().put("db.password", "s3cr3t-db-pw"));
    Map<String, Object> d = c.describe();
    assertEquals("******", d.get("db.password"));
    assertFalse(d.toString().contains("s3cr3t-db-pw"));
    assertEquals(ConfigLoader.flatten(ConfigLoader.defaults()).keySet(), d.keySet());
  }

  @Test
  @DisplayName("cluster: off by default; members are a comma-separated host[:port] list; bad values name their key")
  void clusterKeys() {
    ChatConfig off = ChatConfig.withOverrides(new JsonObject());
    assertFalse(off.clusterEnabled);
    assertEquals(java.util.List.of(), off.clusterMembers);
    assertEquals(5701, off.clusterPort);
    assertEquals(5, off.clusterFailureSeconds);
    assertEquals("", off.clusterHost);
    ChatConfig on = ChatConfig.withOverrides(new JsonObject().put("cluster.enabled", true)
        .put("cluster.members", " node1:5701, node2 ,10.0.0.3:5702,").put("cluster.host", " node1 "));
    assertTrue(on.clusterEnabled);
    assertEquals(java.util.List.of("node1:5701", "node2", "10.0.0.3:5702"), on.clusterMembers);
    assertEquals("node1", on.clusterHost);
    assertNames(overrideFails(new JsonObject().put("cluster.members", "node1:5701:1")), "cluster.members");
    assertNames(overrideFails(new JsonObject().put("cluster.members", "node1 node2")), "cluster.members");
    assertNames(overrideFails(new JsonObject().put("cluster.failureSeconds", 1)), "cluster.failureSeconds");
    assertNames(overrideFails(new JsonObject().put("cluster.port", 0)), "cluster.port");
    assertNames(overrideFails(new JsonObject().put("cluster.name", " ")), "cluster.name");
  }

  @Test
  @DisplayName("cluster.kubernetesService: unused by default; excludes a member list and multicast")
  void kubernetesDiscoveryKeys() {
    ChatConfig off = ChatConfig.withOverrides(new JsonObject());
    assertEquals("", off.clusterKubernetesService);
    assertEquals(0, off.clusterKubernetesServicePort);
    ChatConfig on = ChatConfig.withOverrides(new JsonObject().put("cluster.enabled", true)
        .put("cluster.kubernetesService", " chat-cluster.chat.svc.cluster.local ").put("cluster.kubernetesServicePort", 5801));
    assertEquals("chat-cluster.chat.svc.cluster.local", on.clusterKubernetesService);
    assertEquals(5801, on.clusterKubernetesServicePort);
    ConfigException withMembers = overrideFails(new JsonObject().put("cluster.kubernetesService", "chat-cluster")
        .put("cluster.members", "node1"));
    assertNames(withMembers, "cluster.kubernetesService");
    assertNames(withMembers, "cluster.members");
    ConfigException withMulticast = overrideFails(new JsonObject().put("cluster.kubernetesService", "chat-cluster")
        .put("cluster.multicast", true));
    assertNames(withMulticast, "cluster.kubernetesService");
    assertNames(withMulticast, "cluster.multicast");
    assertNames(overrideFails(new JsonObject().put("cluster.kubernetesServicePort", 70000)), "cluster.kubernetesServicePort");
  }
}
