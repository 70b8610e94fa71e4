package chat.protocol;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;

import java.nio.charset.StandardCharsets;

/**
 * One documented reply: its HTTP status (when it has an HTTP form), its compact JSON text,
 * and the same bytes plus the newline that ends every TCP message. Fixed replies are built
 * once at class load, so answering them allocates nothing.
 */
public final class Reply {

  public final int status;
  public final String json;
  private final Buffer line;

  private Reply(int status, String json) {
    this.status = status;
    this.json = json;
    this.line = line(json);
  }

  public static Reply of(int status, JsonObject body) {
    return new Reply(status, body.encode());
  }

  /** The TCP form: compact JSON followed by {@code \n}. Shared instance; never modify it. */
  public Buffer line() {
    return line;
  }

  /** Encodes a dynamic reply as one newline-terminated TCP message. */
  public static Buffer line(JsonObject body) {
    return line(body.encode());
  }

  private static Buffer line(String json) {
    byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
    byte[] framed = new byte[bytes.length + 1];
    System.arraycopy(bytes, 0, framed, 0, bytes.length);
    framed[bytes.length] = '\n';
    return Buffer.buffer(framed);
  }

  @Override
  public String toString() {
    return status + " " + json;
  }
}
