package chat.http;

import chat.auth.ChatService;
import chat.protocol.Addresses;
import chat.protocol.LoginOutcome;
import chat.protocol.RegisterOutcome;
import chat.protocol.Replies;
import chat.protocol.Reply;
import chat.protocol.WireJson;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import io.vertx.ext.web.healthchecks.HealthCheckHandler;
import io.vertx.ext.healthchecks.HealthChecks;
import io.vertx.micrometer.PrometheusScrapingHandler;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.TimeUnit;

/**
 * The HTTP API (PROTOCOL.md §3): register, login, chat, avatars. It only speaks the wire:
 * registration and login go to the auth verticle over the event bus, chats to the shared
 * {@link ChatService}, and every body comes from {@link Replies}.
 */
public final class HttpVerticle extends VerticleBase {

  private static final Logger log = LoggerFactory.getLogger(HttpVerticle.class);
  private static final DeliveryOptions SLOW_REQUEST = new DeliveryOptions().setSendTimeout(120_000)
      .addHeader(Addresses.TRANSPORT_HEADER, "http");
  private static final String JSON = "application/json; charset=utf-8";

  /** {@code idleSeconds}: a connection with no traffic for so long is closed (reaper.idleSeconds, §4.7). */
  public record Settings(String host, int port, int maxBodyBytes, String avatarDir, int idleSeconds) {
  }

  /** What operators read: metrics (null registry when off) and the two health endpoints. */
  public record Operations(PrometheusMeterRegistry metrics, HealthChecks liveness, HealthChecks readiness) {
  }

  private final Settings settings;
  private final ChatService chats;
  private final Operations operations;
  private HttpServer server;

  public HttpVerticle(Settings settings, ChatService chats, Operations operations) {
    this.settings = settings;
    this.chats = chats;
    this.operations = operations;
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
    // the idle rule for HTTP too: a connection that stops in the middle of a request, or holds on
    // to keep-alive without using it, is not kept for ever
    server = vertx.createHttpServer(new HttpServerOptions().setHost(settings.host()).setPort(settings.port())
            .setIdleTimeout(settings.idleSeconds()).setIdleTimeoutUnit(TimeUnit.SECONDS))
        .requestHandler(router)
        .invalidRequestHandler(HttpVerticle::invalidRequest);
    return server.listen();
  }

  @Override
  public Future<?> stop() {
    return server.close();
  }

  public int actualPort() {
    return server.actualPort();
  }

  private void register(RoutingContext ctx) {
    JsonObject body = WireJson.parseObject(ctx.body().buffer());
    if (body == null) {
      respond(ctx, Replies.INVALID_JSON);
      return;
    }
    vertx.eventBus().<JsonObject>request(Addresses.REGISTER, body, SLOW_REQUEST).onComplete(r -> respond(ctx,
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
    vertx.eventBus().<JsonObject>request(Addresses.LOGIN, request, SLOW_REQUEST).onComplete(r -> {
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
