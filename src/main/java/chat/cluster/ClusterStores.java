package chat.cluster;

import chat.auth.SessionRegistry;
import chat.auth.TokenStore;
import com.hazelcast.core.HazelcastInstance;
import io.vertx.core.Future;
import io.vertx.core.Vertx;

import java.util.function.LongSupplier;

/** The cluster-wide token store and session registry of a clustered Vert.x made by {@link ClusterNode#start}. */
public record ClusterStores(TokenStore tokens, SessionRegistry sessions) {

  public static Future<ClusterStores> open(Vertx vertx, long tokenTtlMillis, LongSupplier clock) {
    // getting the structures and registering listeners talks to the other members: off the event loop
    return vertx.executeBlocking(() -> {
      HazelcastInstance hz = ClusterNode.hazelcast(vertx);
      TokenStore tokens = new ClusterTokenStore(vertx, hz.getReplicatedMap(ClusterNode.TOKENS_MAP),
          hz.getMap(ClusterNode.RECENT_TOKENS_MAP), hz.getReplicatedMap(ClusterNode.REVOCATIONS_MAP), tokenTtlMillis, clock);
      return new ClusterStores(tokens, ClusterSessionRegistry.open(vertx, hz, clock));
    });
  }
}
