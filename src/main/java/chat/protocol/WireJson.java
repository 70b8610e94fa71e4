package chat.protocol;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;

/** Decoding of client JSON, shared by both listeners. */
public final class WireJson {

  private WireJson() {
  }

  /**
   * The JSON object in {@code bytes}, or {@code null} when they are not exactly one valid JSON
   * object (arrays, strings, numbers and {@code null} included: §3, §4.1) in well-formed UTF-8.
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
    if (i == n || bytes.getByte(i) != '{' || !isUtf8(bytes, i, n)) {
      return null;
    }
    try {
      return new JsonObject(bytes);
    } catch (RuntimeException e) {
      return null;
    }
  }

  /**
   * Whether {@code bytes[from, to)} is well-formed UTF-8 (RFC 3629). Jackson's byte parser is
   * lenient: it decodes overlong forms ({@code C0 AF} as {@code /}), encoded surrogates
   * ({@code ED A0 80}) and code points past U+10FFFF. No allocation; ASCII costs one test a byte.
   */
  static boolean isUtf8(Buffer bytes, int from, int to) {
    int i = from;
    while (i < to) {
      int b = bytes.getByte(i) & 0xFF;
      if (b < 0x80) {
        i++;
        continue;
      }
      int extra;
      int min = 0x80;
      int max = 0xBF;
      if (b >= 0xC2 && b <= 0xDF) {
        extra = 1;
      } else if (b >= 0xE0 && b <= 0xEF) {
        extra = 2;
        if (b == 0xE0) {
          min = 0xA0; // overlong
        } else if (b == 0xED) {
          max = 0x9F; // surrogates
        }
      } else if (b >= 0xF0 && b <= 0xF4) {
        extra = 3;
        if (b == 0xF0) {
          min = 0x90; // overlong
        } else if (b == 0xF4) {
          max = 0x8F; // past U+10FFFF
        }
      } else {
        return false; // continuation byte, C0/C1 (overlong) or F5-FF
      }
      if (i + extra >= to) {
        return false;
      }
      int second = bytes.getByte(i + 1) & 0xFF;
      if (second < min || second > max) {
        return false;
      }
      for (int k = 2; k <= extra; k++) {
        int c = bytes.getByte(i + k) & 0xFF;
        if (c < 0x80 || c > 0xBF) {
          return false;
        }
      }
      i += extra + 1;
    }
    return true;
  }

  private static boolean isWhitespace(byte b) {
    return b == ' ' || b == '\n' || b == '\r' || b == '\t';
  }
}
