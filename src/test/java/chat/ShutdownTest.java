package chat;

import chat.support.LineClient;
import chat.support.ServerProcess;
import chat.support.SqliteFile;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** SIGTERM drains: stop accepting, finish what is in hand, tell the sessions, exit 0 within 10 s. */
class ShutdownTest {

  private static final String SHUTTING_DOWN = "{\"type\":\"error\",\"status\":\"error\",\"message\":\"Server shutting down\"}";

  @TempDir
  Path dir;
  @TempDir
  Path logs;
  ServerProcess server;

  @AfterEach
  void kill() {
    if (server != null) {
      server.close();
    }
  }

  @Test
  @DisplayName("on SIGTERM a registration being hashed is finished and answered, every session hears why, and the process exits 0")
  void sigtermDrainsAndExitsZero() throws Exception {
    // the production cost makes the registration's hash take long enough to be in flight at SIGTERM
    server = ServerProcess.start(dir, logs, Map.of("CHAT_HTTP_PORT", "0", "CHAT_TCP_PORT", "0",
        "CHAT_AUTH_HASHCOST", "production", "CHAT_SHUTDOWN_GRACESECONDS", "5"));
    ServerProcess.Ports ports = server.awaitListening(Duration.ofSeconds(30));
    try (LineClient alice = new LineClient(ports.tcp());
         LineClient bob = new LineClient(ports.tcp());
         LineClient late = new LineClient(ports.tcp())) {
      alice.registerAndLogin("alice", "pw-alice");
      bob.registerAndLogin("bob", "pw-bob");

      late.send("{\"type\":\"register\",\"username\":\"late\",\"password\":\"pw-late\"}");
      Thread.sleep(30); // the request reaches the server and its hash starts
      long signalled = System.nanoTime();
      server.terminate();

      late.expect("{\"type\":\"register_1\",\"error\":false,\"message\":\"User registered successfully\"}");
      late.expect(SHUTTING_DOWN);
      late.expectClosed();
      alice.expect(SHUTTING_DOWN);
      alice.expectClosed();
      bob.expect(SHUTTING_DOWN);
      bob.expectClosed();

      assertEquals(0, server.awaitExit(Duration.ofSeconds(10)), server.transcript());
      assertTrue(System.nanoTime() - signalled < Duration.ofSeconds(10).toNanos(), "stopped within 10 s");
    }
    assertEquals(1, SqliteFile.query(dir.resolve("usr.db"), "SELECT name FROM users WHERE name = ?", "late").size(),
        "the registration answered during the drain is on disk");
  }
}
