package chat;

import chat.support.Http;
import chat.support.Prometheus;
import chat.support.ServerProcess;
import chat.support.SqliteFile;
import chat.support.TestServer;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code /health/live}, {@code /health/ready} and the {@code healthcheck} command. The database
 * is made unavailable the way a stuck writer would: another connection holds SQLite's write lock.
 */
@ExtendWith(VertxExtension.class)
class HealthTest {

  private static final String LIVE_UP = "{\"status\":\"UP\",\"checks\":[{\"id\":\"event-loop\",\"status\":\"UP\"}],\"outcome\":\"UP\"}";
  private static final String READY_UP = "{\"status\":\"UP\",\"checks\":[{\"id\":\"database\",\"status\":\"UP\"}],\"outcome\":\"UP\"}";
  private static final int TIMEOUT_MILLIS = 500;
  private static final String READY_DOWN = "{\"status\":\"DOWN\",\"checks\":[{\"id\":\"database\",\"status\":\"DOWN\","
      + "\"data\":{\"reason\":\"the database did not answer within " + TIMEOUT_MILLIS + " ms\"}}],\"outcome\":\"DOWN\"}";

  /** Holds the data folder and, beside it, the output files of the healthcheck processes. */
  @TempDir
  Path root;
  private Path dir;
  private Vertx vertx;
  private TestServer server;
  private Connection lock;

  @BeforeEach
  void init(Vertx vertx) throws IOException {
    this.vertx = vertx;
    dir = Files.createDirectory(root.resolve("data"));
  }

  @AfterEach
  void stop() throws SQLException {
    if (lock != null) {
      lock.close();
    }
    if (server != null) {
      server.close();
    }
  }

  private TestServer server() {
    if (server == null) {
      server = TestServer.start(vertx, dir, new JsonObject().put("health.timeoutMillis", TIMEOUT_MILLIS));
    }
    return server;
  }

  /** Takes SQLite's write lock from a connection of our own, as a stuck writer would hold it. */
  private void holdWriteLock() throws SQLException {
    lock = SqliteFile.open(server().db());
    lock.setAutoCommit(true);
    try (Statement s = lock.createStatement()) {
      s.execute("BEGIN IMMEDIATE");
    }
  }

  private void releaseWriteLock() throws SQLException {
    try (Statement s = lock.createStatement()) {
      s.execute("COMMIT");
    }
    lock.close();
    lock = null;
  }

  /** Polls {@code /health/ready} (bounded) until it answers {@code status}; returns that answer. */
  private Http.Response awaitReady(int status, int seconds) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    Http.Response r = server().http().get("/health/ready");
    while (r.status() != status && System.nanoTime() < deadline) {
      r = server().http().get("/health/ready");
    }
    assertEquals(status, r.status(), () -> "readiness did not turn " + status + " within " + seconds + " s");
    return r;
  }

  private static void assertJson(Http.Response r) {
    String type = r.header("Content-Type");
    assertTrue(type != null && type.startsWith("application/json"), "content type " + type);
  }

  /** {@code chat.Main healthcheck} against {@code httpPort}; returns the process once it has exited. */
  private ServerProcess healthcheck(int httpPort) {
    ServerProcess p = ServerProcess.start(dir, root, Map.of("CHAT_HTTP_PORT", Integer.toString(httpPort)), "healthcheck");
    p.awaitExit(Duration.ofSeconds(60));
    return p;
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  // ---- tests ----

  @Test
  @DisplayName("/health/live answers 200 with the event-loop check UP")
  void liveIsUp() {
    Http.Response r = server().http().get("/health/live");
    assertEquals(200, r.status());
    assertEquals(LIVE_UP, r.body());
    assertJson(r);
  }

  @Test
  @DisplayName("/health/ready answers 200 with the database check UP")
  void readyIsUp() {
    Http.Response r = server().http().get("/health/ready");
    assertEquals(200, r.status());
    assertEquals(READY_UP, r.body());
    assertJson(r);
  }

  @Test
  @DisplayName("readiness turns 503 DOWN, naming the database check, while the write lock is held, and 200 again once released; liveness stays UP")
  void readinessFollowsTheDatabase() throws Exception {
    assertEquals(200, server().http().get("/health/ready").status());

    holdWriteLock();
    long t0 = System.nanoTime();
    Http.Response down = server().http().get("/health/ready");
    long took = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    assertEquals(503, down.status(), down.body());
    assertEquals(READY_DOWN, down.body());
    assertJson(down);
    assertTrue(took >= TIMEOUT_MILLIS - 50 && took < TIMEOUT_MILLIS + 2500,
        "the DOWN answer should come after health.timeoutMillis (" + TIMEOUT_MILLIS + " ms), took " + took + " ms");
    // still down on a second look, and the process itself is alive
    Http.Response again = server().http().get("/health/ready");
    assertEquals(503, again.status(), again.body());
    assertEquals(READY_DOWN, again.body());
    Http.Response live = server().http().get("/health/live");
    assertEquals(200, live.status());
    assertEquals(LIVE_UP, live.body());

    releaseWriteLock();
    Http.Response up = awaitReady(200, 20);
    assertEquals(READY_UP, up.body());
    // and the database really works again
    server().http().register("after", "pw-after");
  }

  @Test
  @DisplayName("a readiness probe while the write lock is held does not hold up a login, which only reads (WAL)")
  void readinessProbeDoesNotHoldUpLogins() throws Exception {
    Http http = server().http();
    http.register("alice", "pw-alice");
    holdWriteLock();

    // without a probe, a login gets through at once: WAL readers never wait for the writer
    long t0 = System.nanoTime();
    http.login("alice", "pw-alice");
    long alone = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);

    assertEquals(503, http.get("/health/ready").status());
    long t1 = System.nanoTime();
    http.login("alice", "pw-alice");
    long afterProbe = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t1);
    assertTrue(afterProbe < TIMEOUT_MILLIS + 1500, "a login right after a DOWN readiness probe took " + afterProbe
        + " ms (" + alone + " ms without the probe): the probe's write-lock attempt still holds the pool's connection");
  }

  @Test
  @DisplayName("probes repeated while the database hangs share one database check: checks do not pile up in the pool")
  void probesDoNotPileUp() throws Exception {
    Http http = server().http();
    assertEquals(200, http.get("/health/ready").status());
    holdWriteLock();
    for (int i = 0; i < 4; i++) {
      Http.Response r = http.get("/health/ready");
      assertEquals(503, r.status(), r.body());
      assertEquals(READY_DOWN, r.body());
    }
    // one shared check at most; it gives up after health.timeoutMillis, so it may be over already
    double inFlight = Prometheus.scrape(http).value("chat_db_operations_in_flight");
    assertTrue(inFlight <= 1.0, "database checks waiting for the lock after four probes: " + inFlight);
    releaseWriteLock();
    assertEquals(READY_UP, awaitReady(200, 20).body());
    assertEquals(0.0, Prometheus.scrape(http).value("chat_db_operations_in_flight"));
  }

  @Test
  @DisplayName("the healthcheck command exits 0 against a ready server")
  void healthcheckExitsZeroWhenReady() {
    ServerProcess p = healthcheck(server().httpPort());
    assertEquals(0, p.process().exitValue(), p.transcript());
    assertTrue(p.stdout().stream().anyMatch(l -> l.startsWith("200")), p.transcript());
  }

  @Test
  @DisplayName("the healthcheck command exits 1 when nothing listens on the HTTP port")
  void healthcheckExitsOneWhenNothingListens() throws IOException {
    ServerProcess p = healthcheck(freePort());
    assertEquals(1, p.process().exitValue(), p.transcript());
  }

  @Test
  @DisplayName("the healthcheck command exits 1 while the database write lock is held, 0 again after")
  void healthcheckExitsOneWhileTheDatabaseIsLocked() throws Exception {
    int port = server().httpPort();
    holdWriteLock();
    ServerProcess locked = healthcheck(port);
    assertEquals(1, locked.process().exitValue(), locked.transcript());
    assertTrue(locked.stdout().stream().anyMatch(l -> l.startsWith("503")), locked.transcript());

    releaseWriteLock();
    awaitReady(200, 20);
    ServerProcess ready = healthcheck(port);
    assertEquals(0, ready.process().exitValue(), ready.transcript());
  }
}
