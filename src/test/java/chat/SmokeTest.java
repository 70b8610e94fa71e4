package chat;

import chat.support.LineClient;
import chat.support.TestServer;
import io.vertx.core.Vertx;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

@ExtendWith(VertxExtension.class)
class SmokeTest {

  @TempDir
  Path dir;
  TestServer server;

  @BeforeEach
  void start(Vertx vertx) {
    server = TestServer.start(vertx, dir);
  }

  @AfterEach
  void stop() {
    server.close();
  }

  @Test
  @DisplayName("a socket client registers, logs in and receives its own chat")
  void registerLoginChat() {
    try (LineClient c = server.connect()) {
      String token = c.registerAndLogin("alice", "secret");
      c.send("{\"type\":\"chat\",\"token\":\"" + token + "\",\"message\":\"hello\"}");
      var first = c.read();
      var second = c.read();
      var broadcast = "chat".equals(first.getString("type")) && first.containsKey("user") ? first : second;
      var reply = broadcast == first ? second : first;
      assertEquals("{\"type\":\"chat\",\"status\":\"success\"}", reply.encode());
      assertEquals("alice", broadcast.getString("user"));
      assertEquals("hello", broadcast.getString("message"));
      assertEquals("/avatar/alice/default_avatar.png", broadcast.getString("avatar"));
    }
  }
}
