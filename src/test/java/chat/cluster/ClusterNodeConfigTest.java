package chat.cluster;

import chat.config.ChatConfig;
import com.hazelcast.config.JoinConfig;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How the cluster.* keys become Hazelcast's join settings: exactly one way to find the members. */
class ClusterNodeConfigTest {

  private static JoinConfig join(JsonObject overrides) {
    return ClusterNode.hazelcastConfig(ChatConfig.withOverrides(overrides.put("cluster.enabled", true)), "127.0.0.1")
        .getNetworkConfig().getJoin();
  }

  @Test
  @DisplayName("a member list: TCP/IP join with those members; no multicast, no Kubernetes discovery")
  void memberList() {
    JoinConfig join = join(new JsonObject().put("cluster.members", "10.0.0.1:5701,10.0.0.2:5701"));
    assertTrue(join.getTcpIpConfig().isEnabled());
    assertEquals(List.of("10.0.0.1:5701", "10.0.0.2:5701"), join.getTcpIpConfig().getMembers());
    assertFalse(join.getMulticastConfig().isEnabled());
    assertFalse(join.getKubernetesConfig().isEnabled());
  }

  @Test
  @DisplayName("no members: a cluster of one on its own address, which others can join")
  void alone() {
    JoinConfig join = join(new JsonObject().put("cluster.port", 5801));
    assertTrue(join.getTcpIpConfig().isEnabled());
    assertEquals(List.of("127.0.0.1:5801"), join.getTcpIpConfig().getMembers());
    assertFalse(join.getKubernetesConfig().isEnabled());
  }

  @Test
  @DisplayName("cluster.kubernetesService: Hazelcast's Kubernetes discovery in DNS mode, at cluster.port unless the service port is set")
  void kubernetesDns() {
    JoinConfig join = join(new JsonObject().put("cluster.kubernetesService", "chat-cluster.chat.svc.cluster.local"));
    assertTrue(join.getKubernetesConfig().isEnabled());
    assertEquals("chat-cluster.chat.svc.cluster.local", join.getKubernetesConfig().getProperty("service-dns"));
    assertEquals("5701", join.getKubernetesConfig().getProperty("service-port"));
    assertFalse(join.getTcpIpConfig().isEnabled(), "no member list besides the DNS name");
    assertFalse(join.getMulticastConfig().isEnabled());
    assertFalse(join.getAutoDetectionConfig().isEnabled());

    JoinConfig otherPort = join(new JsonObject().put("cluster.kubernetesService", "chat-cluster")
        .put("cluster.port", 5801).put("cluster.kubernetesServicePort", 5701));
    assertEquals("5701", otherPort.getKubernetesConfig().getProperty("service-port"));
  }
}
