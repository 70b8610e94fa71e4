package chat.http;

import chat.auth.ChatService;
import chat.net.ConnectionCap;
import chat.net.Tls;
import chat.protocol.Addresses;
import chat.protocol.LoginOutcome;
import chat.protocol.RegisterOutcome;
import chat.protocol.Replies;
import chat.protocol.Reply;
import chat.protocol.WireJson;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import io.vertx.ext.web.healthchecks.HealthCheckHandler;
import io.vertx.ext.healthchecks.HealthChecks;
import io.vertx.micrometer.PrometheusScrapingHandler;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The HTTP API (PROTOCOL.md §3): register, login, chat, avatars. It only speaks the wire:
 * registration and login go to the auth verticle over the event bus, chats to the shared
 * {@link ChatService}, and every body comes from {@link Replies}.
 *
 * <p>The same class serves HTTP and HTTPS ({@link Settings#tls} set). Every connection takes a
 * place in the shared {@link ConnectionCap} of all HTTP listeners; a connection past
 * {@code http.maxConnections} is accepted but marked refused: its first request gets 503
 * {@code Too many connections} with {@code Connection: close}, then it is closed (at the latest
 * {@link #REFUSED_GRACE_MILLIS} after it opened, request or not).
 */
public final class HttpVerticle extends VerticleBase {

  private static final Logger log = LoggerFactory.getLogger(HttpVerticle.class);
  private static final long AUTH_TIMEOUT_MILLIS = 120_000;
  private static final String JSON = "application/json; charset=utf-8";

  /**
   * @param tls         the certificate for an HTTPS listener, null for plain HTTP
   * @param idleSeconds a connection with no traffic for so long is closed (reaper.idleSeconds, §4.7)
   */
  public record Settings(String host, int port, int maxBodyBytes, String avatarDir, Tls tls, int shutdownGraceSeconds,
      int idleSeconds) {
  }

  /** How long a refused connection may stay open waiting for the request to answer with 503. */
  static final long REFUSED_GRACE_MILLIS = 5000;

  /** What operators read: metrics (null registry when off) and the two health endpoints. */
  public record Operations(PrometheusMeterRegistry metrics, HealthChecks liveness, HealthChecks readiness) {
  }

  private final Settings settings;
  private final ChatService chats;
  private final Operations operations;
  private final ConnectionCap cap;
  /** Connections past http.maxConnections, until they close; touched on this verticle's event loop only. */
  private final Set<HttpConnection> refused = Collections.newSetFromMap(new IdentityHashMap<>());
  private HttpServer server;

  public HttpVerticle(Settings settings, ChatService chats, Operations operations, ConnectionCap cap) {
    this.settings = settings;
    this.chats = chats;
    this.operations = operations;
    this.cap = cap;
  }

  @Override
  public Future<?> start() {
    Router router = Router.router(vertx);
    router.post("/api/*").handler(BodyHandler.create(false).setBodyLimit(settings.maxBodyBytes()));
    router.post("/api/register").handler(this::register);
    router.post("/api/login").handler(this::login);
    router.post("/api/chat").handler(this::chat);
    router.get("/avatar/:username/:filename").handler(new AvatarHandler(vertx, settings.avatarDir()));
    router.get("/health/live").handler(HealthCheckHandler.createWithHealthChecks(operations.liveness()));
    router.get("/health/ready").handler(HealthCheckHandler.createWithHealthChecks(operations.readiness()));
    if (operations.metrics() != null) {
      router.get("/metrics").handler(PrometheusScrapingHandler.create(operations.metrics()));
    }
    router.errorHandler(404, ctx -> respond(ctx, Replies.NOT_FOUND));
    router.errorHandler(405, ctx -> respond(ctx, Replies.METHOD_NOT_ALLOWED));
    router.errorHandler(413, ctx -> respond(ctx, Replies.REQUEST_TOO_LARGE));
    // a 400 of vertx-web itself: an HTTP/1.1 request without a Host header, else a body it could not decode
    router.errorHandler(400, ctx -> respond(ctx, ctx.request().authority() == null ? Replies.BAD_REQUEST : Replies.INVALID_JSON));
    router.errorHandler(500, ctx -> {
      if (ctx.failure() != null) {
        log.error("HTTP {} {} failed", ctx.request().method(), ctx.request().path(), ctx.failure());
      }
      respond(ctx, Replies.INTERNAL_ERROR);
    });
    // HTTP/1.1 only, as the original server: without h2c, Vert.x sets a connection up (and our
    // connectionHandler counts it) as soon as it is accepted, not only once its first bytes arrive.
    // The idle rule for HTTP too: a connection that stops in the middle of a request, or holds on
    // to keep-alive without using it, is not kept for ever
    HttpServerOptions options = new HttpServerOptions().setHost(settings.host()).setPort(settings.port())
        .setHttp2ClearTextEnabled(false)
        .setIdleTimeout(settings.idleSeconds()).setIdleTimeoutUnit(TimeUnit.SECONDS);
    if (settings.tls() != null) {
      settings.tls().applyTo(options);
    }
    server = vertx.createHttpServer(options)
        .connectionHandler(this::connected)
        .invalidRequestHandler(HttpVerticle::invalidRequest)
        .requestHandler(request -> {
          if (!refused.isEmpty() && refused.contains(request.connection())) {
            refuse(request);
          } else {
            router.handle(request);
          }
        });
    return server.listen();
  }

  /** Stops accepting and lets requests in flight finish, for at most the grace period. */
  @Override
  public Future<?> stop() {
    return server.shutdown(settings.shutdownGraceSeconds(), java.util.concurrent.TimeUnit.SECONDS);
  }

  public int actualPort() {
    return server.actualPort();
  }

  /** Counts the connection against http.maxConnections, or marks it refused. */
  private void connected(HttpConnection connection) {
    if (cap.tryAcquire()) {
      connection.closeHandler(v -> cap.release());
      return;
    }
    refused.add(connection);
    connection.closeHandler(v -> refused.remove(connection));
    vertx.setTimer(REFUSED_GRACE_MILLIS, t -> {
      if (refused.contains(connection)) {
        connection.close();
      }
    });
  }

  private void refuse(HttpServerRequest request) {
    Reply reply = Replies.TOO_MANY_CONNECTIONS;
    request.response().setStatusCode(reply.status).putHeader("Content-Type", JSON).putHeader("Connection", "close")
        .end(reply.json).onComplete(v -> request.connection().close());
  }

  private void register(RoutingContext ctx) {
    JsonObject body = WireJson.parseObject(ctx.body().buffer());
    if (body == null) {
      respond(ctx, Replies.INVALID_JSON);
      return;
    }
    vertx.eventBus().<JsonObject>request(Addresses.REGISTER, body, authRequest(ctx)).onComplete(r -> respond(ctx,
        r.succeeded() ? RegisterOutcome.valueOf(r.result().body().getString("outcome")).http : Replies.SERVER_BUSY));
  }

  private void login(RoutingContext ctx) {
    JsonObject body = WireJson.parseObject(ctx.body().buffer());
    if (body == null) {
      respond(ctx, Replies.INVALID_JSON);
      return;
    }
    JsonObject request = new JsonObject()
        .put("username", body.getValue("username"))
        .put("password", body.getValue("password"));
    vertx.eventBus().<JsonObject>request(Addresses.LOGIN, request, authRequest(ctx)).onComplete(r -> {
      if (r.failed()) {
        respond(ctx, Replies.SERVER_BUSY);
        return;
      }
      JsonObject reply = r.result().body();
      LoginOutcome outcome = LoginOutcome.valueOf(reply.getString("outcome"));
      respond(ctx, outcome == LoginOutcome.SUCCESS
          ? Replies.httpLoggedIn(reply.getString("token"), reply.getString("avatar"))
          : outcome.http);
    });
  }

  /** The listener and the client's address travel as headers (metrics, per-address abuse limits). */
  private static DeliveryOptions authRequest(RoutingContext ctx) {
    DeliveryOptions options = new DeliveryOptions().setSendTimeout(AUTH_TIMEOUT_MILLIS).setLocalOnly(true)
        .addHeader(Addresses.TRANSPORT_HEADER, "http");
    SocketAddress peer = ctx.request().remoteAddress();
    if (peer != null && peer.hostAddress() != null) {
      options.addHeader(Addresses.CLIENT_ADDRESS_HEADER, peer.hostAddress());
    }
    return options;
  }

  /** §3.3: the token (header {@code Authorization: <token>} or {@code Bearer <token>}) is checked before the body. */
  private void chat(RoutingContext ctx) {
    String token = bearer(ctx.request().getHeader("Authorization"));
    JsonObject body = WireJson.parseObject(ctx.body().buffer());
    if (body == null) {
      chats.checkToken(token).onComplete(valid -> respond(ctx,
          valid.succeeded() && valid.result() ? Replies.INVALID_JSON : Replies.HTTP_CHAT_UNAUTHORIZED));
      return;
    }
    chats.chat(token, body.getValue("message"), false).onComplete(r -> respond(ctx,
        r.succeeded() ? r.result().http : Replies.INTERNAL_ERROR));
  }

  /**
   * A request Netty could not decode (bad request line or header, line or headers too long): the
   * JSON error of §3 instead of Vert.x's empty reply, with the status Vert.x would use, then close.
   */
  private static void invalidRequest(HttpServerRequest request) {
    Throwable cause = request.decoderResult().cause();
    int status = cause instanceof TooLongHttpLineException ? 414
        : cause instanceof TooLongHttpHeaderException ? 431
        : 400;
    log.debug("Invalid HTTP request: {}", String.valueOf(cause));
    request.response().setStatusCode(status).putHeader("Content-Type", JSON).putHeader("Connection", "close")
        .end(Replies.BAD_REQUEST.json)
        .onComplete(done -> request.connection().close());
  }

  private static String bearer(String header) {
    if (header == null) {
      return null;
    }
    String h = header.trim();
    if (h.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return h.substring(7).trim();
    }
    return h;
  }

  static void respond(RoutingContext ctx, Reply reply) {
    if (ctx.response().ended()) {
      return;
    }
    ctx.response().setStatusCode(reply.status).putHeader("Content-Type", JSON).end(reply.json);
  }
}
