package chat.protocol;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;

/** Decoding of client JSON, shared by both listeners. */
public final class WireJson {

  private WireJson() {
  }

  /**
   * The JSON object in {@code bytes}, or {@code null} when they are not exactly one valid JSON
   * object (arrays, strings, numbers and {@code null} included: §3, §4.1).
   */
  public static JsonObject parseObject(Buffer bytes) {
    if (bytes == null) {
      return null;
    }
    int i = 0;
    int n = bytes.length();
    while (i < n && isWhitespace(bytes.getByte(i))) {
      i++;
    }
    if (i == n || bytes.getByte(i) != '{') {
      return null;
    }
    try {
      return new JsonObject(bytes);
    } catch (RuntimeException e) {
      return null;
    }
  }

  private static boolean isWhitespace(byte b) {
    return b == ' ' || b == '\n' || b == '\r' || b == '\t';
  }
}
