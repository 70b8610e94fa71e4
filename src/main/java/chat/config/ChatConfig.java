package chat.config;

import chat.store.Dialect;
import io.vertx.core.json.JsonObject;

import java.util.Collections;
import java.util.Map;

/**
 * The validated configuration. Field names follow the keys of {@code conf/config.json}; see the
 * README's configuration table for what each one does.
 */
public final class ChatConfig {

  public enum HashCost { PRODUCTION, LOW }

  public enum LogFormat { TEXT, JSON }

  private final Map<String, Object> values;

  public final String host;
  public final int eventLoops;
  public final int httpPort;
  public final int httpInstances;
  public final int httpMaxBodyBytes;
  public final int tcpPort;
  public final int tcpInstances;
  public final int tcpMaxFrameBytes;
  public final int tcpMaxPendingBytes;
  public final String dbUrl;
  public final String dbUser;
  public final String dbPassword;
  /** db.poolSize; 0: the database's default (1 on SQLite, 10 on PostgreSQL, see {@code UserStore.poolSize()}). */
  public final int dbPoolSize;
  /** db.busyTimeoutMillis: how long a statement waits for a lock held elsewhere (another process, another server) before it fails. */
  public final int dbBusyTimeoutMillis;
  public final String avatarDir;
  public final int tokenTtlSeconds;
  public final HashCost hashCost;
  public final int hashWorkers;
  public final int argon2MemoryKiB;
  public final int argon2Iterations;
  public final int argon2Parallelism;
  public final int maxMessageLength;
  public final int reaperIdleSeconds;
  public final int reaperIntervalSeconds;
  public final LogFormat logFormat;
  public final String logLevel;
  public final boolean metricsEnabled;
  public final int healthTimeoutMillis;
  public final int adminPollMillis;
  public final int httpMaxConnections;
  public final int tcpMaxConnections;
  /** limits.enabled: the one switch that turns every abuse limit off. */
  public final boolean limitsEnabled;
  /** Each of these is 0 when that limit is off (or when limits.enabled is false). */
  public final int loginFailuresPerUser;
  public final int loginFailuresPerAddress;
  public final int loginFailureWindowSeconds;
  public final int chatMessagesPerSecond;
  public final int registrationsPerAddress;
  public final int registrationWindowSeconds;
  public final boolean tlsEnabled;
  public final String tlsCertFile;
  public final String tlsKeyFile;
  public final boolean tlsOnly;
  public final int tlsHttpPort;
  public final int tlsTcpPort;
  public final int shutdownGraceSeconds;
  /** cluster.enabled: the clustered event bus and cluster-wide tokens and sessions (Hazelcast). */
  public final boolean clusterEnabled;
  /** cluster.name: nodes join only a cluster of the same name. */
  public final String clusterName;
  /** cluster.host: the address this node binds and gives the other nodes; "" = picked by Hazelcast. */
  public final String clusterHost;
  /** cluster.port: Hazelcast's member port. */
  public final int clusterPort;
  /** cluster.members: {@code host:port} of the members to join, comma-separated. */
  public final java.util.List<String> clusterMembers;
  public final boolean clusterMulticast;
  /**
   * cluster.kubernetesService: the DNS name of a headless Kubernetes Service whose addresses are the
   * members (Hazelcast's Kubernetes discovery, DNS lookup mode); "" = not used.
   */
  public final String clusterKubernetesService;
  /** cluster.kubernetesServicePort: the members' port behind that name; 0 = cluster.port. */
  public final int clusterKubernetesServicePort;
  /** cluster.eventBusPort: the port the clustered event bus listens on; 0 = a free port. */
  public final int clusterEventBusPort;
  /** cluster.failureSeconds: a member silent this long is dead, and its sessions are released. */
  public final int clusterFailureSeconds;

  ChatConfig(Map<String, Object> values) {
    this.values = Collections.unmodifiableMap(values);
    host = string("host");
    eventLoops = integer("vertx.eventLoops", 0, 1024);
    httpPort = integer("http.port", 0, 65535);
    httpInstances = integer("http.instances", 0, 1024);
    httpMaxBodyBytes = integer("http.maxBodyBytes", 1024, Integer.MAX_VALUE);
    tcpPort = integer("tcp.port", 0, 65535);
    tcpInstances = integer("tcp.instances", 0, 1024);
    tcpMaxFrameBytes = integer("tcp.maxFrameBytes", 64, Integer.MAX_VALUE);
    tcpMaxPendingBytes = integer("tcp.maxPendingBytes", 1024, Integer.MAX_VALUE);
    dbUrl = string("db.url");
    if (Dialect.of(dbUrl) == null) {
      throw new ConfigException("configuration key 'db.url' must start with " + Dialect.supportedPrefixes() + ", got '"
          + maskDbUrl(dbUrl) + "'");
    }
    dbUser = (String) values.get("db.user");
    dbPassword = (String) values.get("db.password");
    dbPoolSize = integer("db.poolSize", 0, 1024);
    dbBusyTimeoutMillis = integer("db.busyTimeoutMillis", 0, 600_000);
    avatarDir = string("avatar.dir");
    tokenTtlSeconds = integer("auth.tokenTtlSeconds", 1, Integer.MAX_VALUE);
    hashCost = switch ((String) values.get("auth.hashCost")) {
      case "production" -> HashCost.PRODUCTION;
      case "low" -> HashCost.LOW;
      default -> throw new ConfigException("configuration key 'auth.hashCost' must be 'production' or 'low', got '"
          + values.get("auth.hashCost") + "'");
    };
    hashWorkers = integer("auth.hashWorkers", 0, 1024);
    argon2MemoryKiB = integer("auth.argon2.memoryKiB", 8, 4 * 1024 * 1024);
    argon2Iterations = integer("auth.argon2.iterations", 1, 1000);
    argon2Parallelism = integer("auth.argon2.parallelism", 1, 64);
    if (argon2MemoryKiB < 8 * argon2Parallelism) {
      throw new ConfigException("configuration key 'auth.argon2.memoryKiB' must be at least 8 x auth.argon2.parallelism");
    }
    maxMessageLength = integer("chat.maxMessageLength", 1, 1 << 20);
    reaperIdleSeconds = integer("reaper.idleSeconds", 1, Integer.MAX_VALUE);
    reaperIntervalSeconds = integer("reaper.intervalSeconds", 1, Integer.MAX_VALUE);
    logFormat = switch ((String) values.get("log.format")) {
      case "text" -> LogFormat.TEXT;
      case "json" -> LogFormat.JSON;
      default -> throw new ConfigException("configuration key 'log.format' must be 'text' or 'json', got '"
          + values.get("log.format") + "'");
    };
    logLevel = ((String) values.get("log.level")).toUpperCase(java.util.Locale.ROOT);
    if (!java.util.List.of("TRACE", "DEBUG", "INFO", "WARN", "ERROR").contains(logLevel)) {
      throw new ConfigException("configuration key 'log.level' must be one of TRACE, DEBUG, INFO, WARN, ERROR, got '"
          + values.get("log.level") + "'");
    }
    metricsEnabled = (Boolean) values.get("metrics.enabled");
    healthTimeoutMillis = integer("health.timeoutMillis", 100, 60_000);
    adminPollMillis = integer("admin.pollMillis", 50, 60_000);
    httpMaxConnections = integer("http.maxConnections", 1, Integer.MAX_VALUE);
    tcpMaxConnections = integer("tcp.maxConnections", 1, Integer.MAX_VALUE);
    limitsEnabled = (Boolean) values.get("limits.enabled");
    loginFailuresPerUser = limit("limits.loginFailuresPerUser");
    loginFailuresPerAddress = limit("limits.loginFailuresPerAddress");
    loginFailureWindowSeconds = integer("limits.loginFailureWindowSeconds", 1, 86_400);
    chatMessagesPerSecond = limit("limits.chatMessagesPerSecond");
    registrationsPerAddress = limit("limits.registrationsPerAddress");
    registrationWindowSeconds = integer("limits.registrationWindowSeconds", 1, 86_400 * 7);
    tlsEnabled = (Boolean) values.get("tls.enabled");
    tlsCertFile = (String) values.get("tls.certFile");
    tlsKeyFile = (String) values.get("tls.keyFile");
    tlsOnly = (Boolean) values.get("tls.only");
    tlsHttpPort = integer("tls.httpPort", 0, 65535);
    tlsTcpPort = integer("tls.tcpPort", 0, 65535);
    if (tlsEnabled && (tlsCertFile.isBlank() || tlsKeyFile.isBlank())) {
      throw new ConfigException("configuration keys 'tls.certFile' and 'tls.keyFile' must name PEM files when tls.enabled is true");
    }
    if (tlsOnly && !tlsEnabled) {
      throw new ConfigException("configuration key 'tls.only' needs tls.enabled=true");
    }
    shutdownGraceSeconds = integer("shutdown.graceSeconds", 0, 60);
    clusterEnabled = (Boolean) values.get("cluster.enabled");
    clusterName = string("cluster.name");
    clusterHost = ((String) values.get("cluster.host")).trim();
    clusterPort = integer("cluster.port", 1, 65535);
    clusterMembers = java.util.Arrays.stream(((String) values.get("cluster.members")).split(","))
        .map(String::trim).filter(m -> !m.isEmpty()).toList();
    for (String member : clusterMembers) {
      if (!member.matches("[^:\\s]+(:\\d{1,5})?")) {
        throw new ConfigException("configuration key 'cluster.members' must list host or host:port entries separated by"
            + " commas, got '" + member + "'");
      }
    }
    clusterMulticast = (Boolean) values.get("cluster.multicast");
    clusterKubernetesService = ((String) values.get("cluster.kubernetesService")).trim();
    clusterKubernetesServicePort = integer("cluster.kubernetesServicePort", 0, 65535);
    if (!clusterKubernetesService.isEmpty() && (clusterMulticast || !clusterMembers.isEmpty())) {
      throw new ConfigException("configuration key 'cluster.kubernetesService' finds the members by itself: leave"
          + " cluster.members empty and cluster.multicast false");
    }
    clusterEventBusPort = integer("cluster.eventBusPort", 0, 65535);
    clusterFailureSeconds = integer("cluster.failureSeconds", 2, 600);
  }

  /** The defaults with some keys replaced (flat keys, e.g. {@code "tcp.port"}); validated. For tests and tools. */
  public static ChatConfig withOverrides(JsonObject flatOverrides) {
    Map<String, Object> defaults = ConfigLoader.flatten(ConfigLoader.defaults());
    JsonObject nested = new JsonObject();
    flatOverrides.forEach(e -> {
      String[] parts = e.getKey().split("\\.");
      JsonObject at = nested;
      for (int i = 0; i < parts.length - 1; i++) {
        if (!(at.getValue(parts[i]) instanceof JsonObject)) {
          at.put(parts[i], new JsonObject());
        }
        at = at.getJsonObject(parts[i]);
      }
      at.put(parts[parts.length - 1], e.getValue());
    });
    return ConfigLoader.resolve(defaults, nested);
  }

  public int availableEventLoops() {
    return eventLoops > 0 ? eventLoops : Runtime.getRuntime().availableProcessors();
  }

  /** {@code db.url} with any password in it masked: safe to log. */
  public String safeDbUrl() {
    return maskDbUrl(dbUrl);
  }

  /**
   * A JDBC URL with its passwords masked: every {@code ...password=VALUE} parameter (any case, so
   * {@code sslpassword} too, up to {@code &} or {@code ;}) and the {@code user:VALUE@} of an
   * authority.
   */
  public static String maskDbUrl(String url) {
    return url.replaceAll("(?i)(password=)[^&;]*", "$1******").replaceAll("(//[^/:@]+:)[^@/]*@", "$1******@");
  }

  /** Every key with its value, the database password masked: safe to log. */
  public Map<String, Object> describe() {
    Map<String, Object> copy = new java.util.LinkedHashMap<>(values);
    if (!dbPassword.isEmpty()) {
      copy.put("db.password", "******");
    }
    return copy;
  }

  private String string(String key) {
    String v = (String) values.get(key);
    if (v.isBlank()) {
      throw new ConfigException("configuration key '" + key + "' must not be empty");
    }
    return v;
  }

  /** An abuse limit: its value, or 0 when it is off or limits.enabled is false. */
  private int limit(String key) {
    int v = integer(key, 0, Integer.MAX_VALUE);
    return limitsEnabled ? v : 0;
  }

  private int integer(String key, int min, int max) {
    int v = (Integer) values.get(key);
    if (v < min || v > max) {
      throw new ConfigException("configuration key '" + key + "' must be between " + min + " and " + max + ", got " + v);
    }
    return v;
  }
}
