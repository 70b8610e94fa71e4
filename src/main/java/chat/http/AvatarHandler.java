package chat.http;

import chat.protocol.Replies;
import chat.protocol.Rules;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.file.FileProps;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;

import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Locale;

/**
 * {@code GET /avatar/<username>/<filename>} (§3.4): the file, or the shipped default avatar when
 * there is none. Nothing outside the avatar folder is served: each decoded path part must be one
 * plain segment (no {@code /}, {@code \}, NUL, {@code .} or {@code ..}) and the resolved path
 * must stay under the folder; otherwise 404. Symbolic links are not followed, neither the file
 * nor the user's folder: a link gets the default avatar, like a missing file.
 */
final class AvatarHandler implements Handler<RoutingContext> {

  static final String DEFAULT_FOLDER = "default";

  private final Vertx vertx;
  private final Path base;
  private final Path defaultAvatar;

  AvatarHandler(Vertx vertx, String avatarDir) {
    this.vertx = vertx;
    this.base = Path.of(avatarDir).toAbsolutePath().normalize();
    this.defaultAvatar = base.resolve(DEFAULT_FOLDER).resolve(Rules.DEFAULT_AVATAR);
  }

  @Override
  public void handle(RoutingContext ctx) {
    String user = ctx.pathParam("username");
    String file = ctx.pathParam("filename");
    if (!Rules.isSafePathSegment(user) || !Rules.isSafePathSegment(file)) {
      HttpVerticle.respond(ctx, Replies.NOT_FOUND);
      return;
    }
    Path wanted = base.resolve(user).resolve(file).normalize();
    if (!wanted.startsWith(base) || !wanted.getParent().getParent().equals(base)) {
      HttpVerticle.respond(ctx, Replies.NOT_FOUND);
      return;
    }
    // lprops does not follow the last link of a path, but does follow the ones before it: the
    // user's folder is checked on its own, so a link there cannot lead out of the avatar folder
    vertx.fileSystem().lprops(wanted.getParent().toString())
        .compose(folder -> folder.isDirectory()
            ? vertx.fileSystem().lprops(wanted.toString())
            : io.vertx.core.Future.failedFuture("not a folder"))
        .compose(props -> props.isRegularFile()
            ? io.vertx.core.Future.succeededFuture(new Found(wanted, props))
            : io.vertx.core.Future.failedFuture("not a file"))
        .recover(missing -> vertx.fileSystem().lprops(defaultAvatar.toString())
            .map(props -> new Found(defaultAvatar, props)))
        .onComplete(r -> {
          if (r.failed() || !r.result().props.isRegularFile()) {
            HttpVerticle.respond(ctx, Replies.NOT_FOUND);
          } else {
            send(ctx, r.result());
          }
        });
  }

  private record Found(Path path, FileProps props) {
  }

  private static void send(RoutingContext ctx, Found found) {
    HttpServerResponse response = ctx.response();
    long modified = found.props.lastModifiedTime();
    String etag = "\"" + Long.toHexString(found.props.size()) + "-" + Long.toHexString(modified) + "\"";
    response.putHeader("ETag", etag)
        .putHeader("Last-Modified", DateTimeFormatter.RFC_1123_DATE_TIME.format(
            Instant.ofEpochMilli(modified).atZone(ZoneOffset.UTC)))
        .putHeader("Cache-Control", "no-cache");
    if (etag.equals(ctx.request().getHeader("If-None-Match"))) {
      response.setStatusCode(304).end();
      return;
    }
    response.putHeader("Content-Type", contentType(found.path.getFileName().toString()))
        .sendFile(found.path.toString());
  }

  private static String contentType(String name) {
    String lower = name.toLowerCase(Locale.ROOT);
    if (lower.endsWith(".png")) {
      return "image/png";
    }
    if (lower.endsWith(".jpg") || lower.endsWith(".jpeg")) {
      return "image/jpeg";
    }
    if (lower.endsWith(".gif")) {
      return "image/gif";
    }
    if (lower.endsWith(".webp")) {
      return "image/webp";
    }
    return "application/octet-stream";
  }
}
