package chat;

import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every {@link BroadcastTest} again on the native epoll transport, as {@code chat.Main} runs: there,
 * broadcasts to plain connections are sent straight to the kernel socket when nothing is pending,
 * and through Netty otherwise (TcpConnection.deliver); the default test Vert.x runs on NIO.
 */
class BroadcastEpollTest extends BroadcastTest {

  private Vertx epoll;

  @Override
  @BeforeEach
  void init(Vertx ignored) {
    epoll = Vertx.vertx(new VertxOptions().setPreferNativeTransport(true));
    assertTrue(epoll.isNativeTransportEnabled(), "the epoll transport is not available here");
    super.init(epoll);
  }

  @AfterEach
  void closeEpoll() throws Exception {
    // JUnit runs a subclass's @AfterEach before its superclass's: stop the server before its Vert.x
    stop();
    epoll.close().await(30, TimeUnit.SECONDS);
  }
}
