package chat.cluster;

import chat.config.ChatConfig;
import com.hazelcast.config.Config;
import com.hazelcast.config.InMemoryFormat;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.MapConfig;
import com.hazelcast.config.NetworkConfig;
import com.hazelcast.config.ReplicatedMapConfig;
import com.hazelcast.config.TcpIpConfig;
import com.hazelcast.core.HazelcastInstance;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxBuilder;
import io.vertx.core.VertxOptions;
import io.vertx.core.internal.VertxInternal;
import io.vertx.spi.cluster.hazelcast.ConfigUtil;
import io.vertx.spi.cluster.hazelcast.HazelcastClusterManager;

import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * cluster.enabled: this node joins the other nodes through Hazelcast (vertx-hazelcast), which
 * carries the clustered event bus (every chat is published to every node once) and holds the
 * cluster-wide tokens ({@link ClusterTokenStore}) and sessions ({@link ClusterSessionRegistry}).
 * Nothing here is loaded when clustering is off.
 */
public final class ClusterNode {

  /** Hazelcast structures of the chat server (the others, {@code __vertx.*}, are Vert.x's). */
  static final String SESSIONS_MAP = "chat.sessions";
  static final String TOKENS_MAP = "chat.tokens";
  static final String RECENT_TOKENS_MAP = "chat.tokens.recent";
  static final String REVOCATIONS_MAP = "chat.token-revocations";
  /**
   * The member attribute holding this node's id: a UUID drawn at startup that, unlike Hazelcast's
   * member UUID, stays the same when a node that was cut off merges back into the cluster (Hazelcast
   * gives it a new member UUID then). Session entries name their node by it.
   */
  static final String NODE_ATTRIBUTE = "chat.node";

  private ClusterNode() {
  }

  /**
   * Builds a clustered Vert.x: joins the members of {@code cluster.members} (or those found by multicast or
   * through {@code cluster.kubernetesService}), or forms a cluster alone.
   */
  public static Future<Vertx> start(VertxBuilder builder, VertxOptions options, ChatConfig config) {
    String address;
    try {
      address = config.clusterHost.isEmpty() ? null : InetAddress.getByName(config.clusterHost).getHostAddress();
    } catch (UnknownHostException e) {
      return Future.failedFuture(new IllegalArgumentException("cluster.host '" + config.clusterHost + "' does not resolve"));
    }
    if (address != null) {
      options.getEventBusOptions().setHost(address);
    }
    options.getEventBusOptions().setPort(config.clusterEventBusPort);
    return builder.with(options).withClusterManager(new HazelcastClusterManager(hazelcastConfig(config, address)))
        .buildClustered();
  }

  static Config hazelcastConfig(ChatConfig config, String address) {
    Config hz = ConfigUtil.loadConfig(); // keeps the settings of Vert.x's own maps
    hz.setClusterName(config.clusterName);
    hz.getMemberAttributeConfig().setAttribute(NODE_ATTRIBUTE, java.util.UUID.randomUUID().toString());
    hz.setProperty("hazelcast.phone.home.enabled", "false");
    hz.setProperty("hazelcast.logging.type", "slf4j");
    // the server stops Vert.x (and so leaves the cluster) on SIGTERM itself
    hz.setProperty("hazelcast.shutdownhook.enabled", "false");
    // how fast a dead member (kill -9, lost machine) is noticed: cluster.failureSeconds
    hz.setProperty("hazelcast.heartbeat.interval.seconds", "1");
    hz.setProperty("hazelcast.max.no.heartbeat.seconds", Integer.toString(config.clusterFailureSeconds));
    hz.setProperty("hazelcast.merge.first.run.delay.seconds", "5");
    hz.setProperty("hazelcast.merge.next.run.delay.seconds", "5");
    if (address != null) {
      hz.setProperty("hazelcast.local.localAddress", address);
    }

    NetworkConfig net = hz.getNetworkConfig();
    net.setPort(config.clusterPort).setPortAutoIncrement(false);
    JoinConfig join = net.getJoin();
    join.getAutoDetectionConfig().setEnabled(false);
    boolean kubernetes = !config.clusterKubernetesService.isEmpty();
    join.getMulticastConfig().setEnabled(config.clusterMulticast);
    if (kubernetes) {
      // DNS lookup mode: the headless Service's name resolves to the pods' addresses; it needs no
      // access to the Kubernetes API (no service account, no RBAC)
      int port = config.clusterKubernetesServicePort > 0 ? config.clusterKubernetesServicePort : config.clusterPort;
      join.getKubernetesConfig().setEnabled(true)
          .setProperty("service-dns", config.clusterKubernetesService)
          .setProperty("service-port", Integer.toString(port));
    }
    TcpIpConfig tcp = join.getTcpIpConfig().setEnabled(!config.clusterMulticast && !kubernetes).setConnectionTimeoutSeconds(2);
    config.clusterMembers.forEach(tcp::addMember);
    if (tcp.isEnabled() && config.clusterMembers.isEmpty()) {
      tcp.addMember((address == null ? "127.0.0.1" : address) + ":" + config.clusterPort); // a cluster of one
    }

    // sessions: one entry per logged-in user, atomic across nodes; one backup survives a dead node
    hz.addMapConfig(new MapConfig(SESSIONS_MAP).setBackupCount(1).setInMemoryFormat(InMemoryFormat.OBJECT));
    // tokens: a full copy on every node, so every token check is answered locally; a joining
    // node copies them before it serves (async fill-up off)
    hz.addReplicatedMapConfig(new ReplicatedMapConfig(TOKENS_MAP).setInMemoryFormat(InMemoryFormat.OBJECT)
        .setAsyncFillup(false));
    // tokens issued in the last minute, confirmed by their partition's owner before the login is
    // answered: a node whose copy of TOKENS_MAP has not caught up yet finds them here
    hz.addMapConfig(new MapConfig(RECENT_TOKENS_MAP).setBackupCount(1).setInMemoryFormat(InMemoryFormat.OBJECT));
    hz.addReplicatedMapConfig(new ReplicatedMapConfig(REVOCATIONS_MAP).setInMemoryFormat(InMemoryFormat.OBJECT)
        .setAsyncFillup(false));
    return hz;
  }

  /** The Hazelcast member under a clustered Vert.x made by {@link #start}. */
  static HazelcastInstance hazelcast(Vertx vertx) {
    return ((HazelcastClusterManager) ((VertxInternal) vertx).clusterManager()).getHazelcastInstance();
  }

  /** This node's id in the cluster ({@link #NODE_ATTRIBUTE}). */
  public static String nodeId(Vertx vertx) {
    return nodeId(hazelcast(vertx).getCluster().getLocalMember());
  }

  static String nodeId(com.hazelcast.cluster.Member member) {
    String id = member.getAttribute(NODE_ATTRIBUTE);
    return id != null ? id : member.getUuid().toString();
  }

  /** Readiness: UP with the member count while this node's Hazelcast member runs, else DOWN. */
  public static io.vertx.ext.healthchecks.Status health(Vertx vertx) {
    HazelcastInstance hz = hazelcast(vertx);
    if (hz == null || !hz.getLifecycleService().isRunning()) {
      return io.vertx.ext.healthchecks.Status.KO(new io.vertx.core.json.JsonObject()
          .put("reason", "this node is not a running cluster member"));
    }
    return io.vertx.ext.healthchecks.Status.OK(new io.vertx.core.json.JsonObject()
        .put("members", hz.getCluster().getMembers().size()));
  }

  /**
   * How many members the cluster has, as this node sees it, itself included (the startup line,
   * {@code chat_cluster_members}); 0 once its member has stopped.
   */
  public static int members(Vertx vertx) {
    HazelcastInstance hz = hazelcast(vertx);
    return hz != null && hz.getLifecycleService().isRunning() ? hz.getCluster().getMembers().size() : 0;
  }
}
