package chat;

import chat.config.ChatConfig;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/**
 * {@code java -jar chat-server.jar healthcheck}: asks the server on this machine whether it is
 * ready ({@code GET /health/ready} on the configured HTTP port). Exit 0 when it is, 1 when not:
 * what a container HEALTHCHECK wants, with no curl in the image.
 */
final class HealthProbe {

  private HealthProbe() {
  }

  static int run(ChatConfig config) {
    String host = config.host.equals("0.0.0.0") || config.host.equals("::") ? "127.0.0.1" : config.host;
    URI uri = URI.create("http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + config.httpPort + "/health/ready");
    try {
      HttpResponse<String> r = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(3)).build()
          .send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(5)).GET().build(), HttpResponse.BodyHandlers.ofString());
      System.out.println(r.statusCode() + " " + r.body());
      return r.statusCode() == 200 ? 0 : 1;
    } catch (Exception e) {
      System.out.println("not ready: " + e);
      return 1;
    }
  }
}
