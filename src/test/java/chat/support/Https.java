package chat.support;

import io.vertx.core.json.JsonObject;

import javax.net.ssl.SSLContext;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/** {@link Http} over TLS: the JDK HttpClient with a given SSLContext, against https://localhost:port. */
public final class Https {

  private final HttpClient client;
  private final int port;

  public Https(int port, SSLContext context) {
    this.port = port;
    this.client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).sslContext(context).build();
  }

  public URI uri(String path) {
    return URI.create("https://localhost:" + port + path);
  }

  public Http.Response post(String path, String body, String... headers) {
    HttpRequest.Builder b = HttpRequest.newBuilder(uri(path)).timeout(Duration.ofSeconds(10))
        .POST(HttpRequest.BodyPublishers.ofString(body));
    for (int i = 0; i < headers.length; i += 2) {
      b.header(headers[i], headers[i + 1]);
    }
    return send(b.build());
  }

  public Http.Response get(String path) {
    return send(HttpRequest.newBuilder(uri(path)).timeout(Duration.ofSeconds(10)).GET().build());
  }

  public Http.Response send(HttpRequest request) {
    try {
      HttpResponse<byte[]> r = client.send(request, HttpResponse.BodyHandlers.ofByteArray());
      return new Http.Response(r.statusCode(), new String(r.body(), StandardCharsets.UTF_8), r);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  public String login(String username, String password) {
    Http.Response r = post("/api/login", new JsonObject().put("username", username).put("password", password).encode());
    if (r.status() != 200) {
      throw new AssertionError("login of " + username + " failed: " + r.status() + " " + r.body());
    }
    return r.json().getString("token");
  }
}
