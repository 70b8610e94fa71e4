package chat.tcp;

import chat.support.TestServer;
import io.vertx.core.Vertx;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A client that sends its messages and then shuts down its sending side still gets every reply. */
@ExtendWith(VertxExtension.class)
class HalfCloseTest {

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
  @DisplayName("register and login sent before a FIN are both answered, then the server closes")
  void repliesToEverythingSentBeforeFin() throws Exception {
    try (Socket s = new Socket("127.0.0.1", server.tcpPort())) {
      s.setSoTimeout(5000);
      s.getOutputStream().write(("{\"type\":\"register\",\"username\":\"halfy\",\"password\":\"pw\"}\n"
          + "{\"type\":\"login\",\"username\":\"halfy\",\"password\":\"pw\"}\n"
          + "{\"type\":\"heartbeat\",\"token\":\"nope\"}\n").getBytes(StandardCharsets.UTF_8));
      s.shutdownOutput();
      BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
      assertEquals("{\"type\":\"register_1\",\"error\":false,\"message\":\"User registered successfully\"}", in.readLine());
      String login = in.readLine();
      assertTrue(login.matches("\\{\"type\":\"login\",\"status\":\"success\",\"message\":\"Login successful\","
          + "\"token\":\"[0-9a-f]{32}\",\"username\":\"halfy\",\"avatar\":\"/avatar/halfy/default_avatar.png\"}"), login);
      assertEquals("{\"type\":\"heartbeat\",\"status\":\"error\"}", in.readLine());
      assertNull(in.readLine(), "the server closes after the last reply");
    }
  }

  @Test
  @DisplayName("the session of a half-closed connection ends when the server closes it")
  void halfClosedSessionIsReleased() throws Exception {
    server.http().register("halfz", "pw");
    try (Socket s = new Socket("127.0.0.1", server.tcpPort())) {
      s.setSoTimeout(5000);
      s.getOutputStream().write("{\"type\":\"login\",\"username\":\"halfz\",\"password\":\"pw\"}".getBytes(StandardCharsets.UTF_8));
      s.shutdownOutput();
      BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
      assertTrue(in.readLine().contains("\"status\":\"success\""));
      assertNull(in.readLine());
    }
    // the release is processed when the server sees its own close; a fresh login must then win
    long deadline = System.currentTimeMillis() + 3000;
    int status;
    do {
      status = server.http().post("/api/login", "{\"username\":\"halfz\",\"password\":\"pw\"}").status();
    } while (status != 200 && System.currentTimeMillis() < deadline);
    assertEquals(200, status);
  }
}
