package chat;

import chat.support.ClusterNodes;
import chat.support.ClusterNodes.Node;
import chat.support.LineClient;
import chat.support.PgDatabase;
import chat.support.Postgres;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A node that goes silent instead of dying (SIGSTOP: its sockets stay open, as when a machine or
 * its network is lost): the others declare it dead after cluster.failureSeconds and release its
 * sessions within 10 s. When it wakes up (SIGCONT) it merges back into the cluster, and a session
 * it still holds whose user has logged in elsewhere meanwhile ends with the documented message,
 * so that each user holds one session again.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class ClusterSilentNodeTest {

  private static final String LOGGED_IN_ELSEWHERE =
      "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Session ended: logged in elsewhere\"}";
  private static final String ALREADY = "{\"type\":\"login\",\"status\":\"error_-1\",\"message\":\"Account already logged in\"}";

  @TempDir
  Path root;

  private static void signal(Node node, String sig) throws Exception {
    Process kill = new ProcessBuilder("kill", "-" + sig, Long.toString(node.process.process().pid())).inheritIO().start();
    assertEquals(0, kill.waitFor());
  }

  private static String loginJson(String user) {
    return new JsonObject().put("type", "login").put("username", user).put("password", "pw-" + user).encode();
  }

  @Test
  @DisplayName("a frozen node's sessions are released within 10 s; when it wakes it rejoins and ends the sessions taken over meanwhile")
  void silentNodeIsDeclaredDeadThenRejoins() throws Exception {
    try (PgDatabase db = Postgres.server().newDatabase();
        ClusterNodes c = new ClusterNodes(root, db, 3, Map.of("CHAT_CLUSTER_FAILURESECONDS", "3"))) {
      c.start();
      Node frozen = c.node(0);
      Node b = c.node(1);
      for (String u : new String[] {"sAlice", "sBob"}) {
        assertEquals(200, b.http.post("/api/register", new JsonObject().put("username", u).put("password", "pw-" + u)
            .encode()).status());
      }
      try (LineClient alice = frozen.connect(); LineClient bob = frozen.connect()) {
        assertTrue(alice.send(loginJson("sAlice")).readLine().contains("\"status\":\"success\""));
        assertTrue(bob.send(loginJson("sBob")).readLine().contains("\"status\":\"success\""));

        signal(frozen, "STOP");
        long stopped = System.nanoTime();
        String reply;
        try (LineClient elsewhere = b.connect()) {
          // a login whose session entry lives on the frozen node waits until the node is declared dead
          elsewhere.socket().setSoTimeout(15_000);
          do {
            reply = elsewhere.send(loginJson("sAlice")).readLine();
            if (!reply.equals(ALREADY)) {
              break;
            }
            Thread.sleep(200);
          } while (System.nanoTime() - stopped < TimeUnit.SECONDS.toNanos(12));
          long millis = (System.nanoTime() - stopped) / 1_000_000;
          System.out.println("[figures] frozen node (failureSeconds 3): its user logged in on another node after " + millis + " ms");
          assertTrue(reply.contains("\"status\":\"success\""), "after " + millis + " ms: " + reply);
          assertTrue(millis <= 10_000, "released after " + millis + " ms");

          signal(frozen, "CONT");
          // alice logged in elsewhere: her old session on the woken node ends; bob's did not move: his stays
          alice.socket().setSoTimeout(90_000);
          String line = alice.readLine();
          while (line.equals("{\"type\":\"ping\"}")) {
            line = alice.readLine();
          }
          assertEquals(LOGGED_IN_ELSEWHERE, line);
          alice.expectClosed();
          c.awaitMembers(3, Duration.ofSeconds(90));
          long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
          while (frozen.log("rejoined the cluster after being cut off").isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(100);
          }
          assertEquals(1, frozen.log("rejoined the cluster after being cut off: 1 of its session(s) kept, 1 ended").size(),
              String.join("\n", frozen.log("rejoined")));
          // past the oldest member's next sweeps of the sessions of gone members (at the merge, 2 s
          // later, every 15 s): the woken node's sessions are not taken for a gone member's
          Thread.sleep(16_000);
          // one session each: alice's is the one on b; bob's, on the woken node, is his again cluster-wide
          try (LineClient probe = c.node(2).connect()) {
            assertEquals(ALREADY, probe.send(loginJson("sAlice")).readLine());
            assertEquals(ALREADY, probe.send(loginJson("sBob")).readLine());
          }
          // the contested login probes the holder: bob's connection on the woken node gets the ping
          assertEquals("{\"type\":\"ping\"}", bob.readLine());
        }
      } finally {
        if (frozen.alive()) {
          signal(frozen, "CONT");
        }
      }
    }
  }
}
