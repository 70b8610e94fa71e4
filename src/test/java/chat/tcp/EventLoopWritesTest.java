package chat.tcp;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.NetServer;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The per-connection write queue swap reaches into Vert.x internals: this fails on a Vert.x
 * version where it no longer applies, instead of letting each connection silently cost 4.7 kB more.
 */
@ExtendWith(VertxExtension.class)
class EventLoopWritesTest {

  @Test
  void socketsWriteThroughTheDirectPathAndStillDeliverInOrder(Vertx vertx) throws Exception {
    assertTrue(EventLoopWrites.available(), "Vert.x's DirectOutboundMessageQueue was not found");
    CompletableFuture<Boolean> installed = new CompletableFuture<>();
    NetServer server = vertx.createNetServer().connectHandler(socket -> {
      EventLoopWrites.install(socket);
      try {
        installed.complete(EventLoopWrites.installedOn(socket));
      } catch (IllegalAccessException e) {
        installed.completeExceptionally(e);
      }
      socket.write("one\n");
      socket.write(Buffer.buffer("two\n"));
      socket.end(Buffer.buffer("three\n"));
    });
    int port = server.listen(0, "127.0.0.1").await().actualPort();
    try (Socket client = new Socket("127.0.0.1", port)) {
      client.setSoTimeout(5000);
      BufferedReader in = new BufferedReader(new InputStreamReader(client.getInputStream(), StandardCharsets.UTF_8));
      assertTrue(installed.get(5, TimeUnit.SECONDS));
      assertEquals("one", in.readLine());
      assertEquals("two", in.readLine());
      assertEquals("three", in.readLine());
      assertNull(in.readLine(), "end() closes the connection after its last write");
    } finally {
      server.close().await();
    }
  }
}
