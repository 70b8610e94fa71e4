package chat.protocol;

import java.nio.charset.StandardCharsets;

/**
 * {@code /avatar/<username>/<avatar>} with each part percent-encoded as a path segment (RFC 3986
 * pchar), so {@code #}, {@code ?} and {@code %} in a username no longer break the URL. A plain
 * alphanumeric name comes out byte-identical to the original server's URL.
 */
public final class AvatarUrls {

  private AvatarUrls() {
  }

  public static String of(String username, String avatar) {
    String file = Rules.isDefaultAvatar(avatar) ? Rules.DEFAULT_AVATAR : avatar;
    return "/avatar/" + encodeSegment(username) + "/" + encodeSegment(file);
  }

  private static final String HEX = "0123456789ABCDEF";

  static String encodeSegment(String s) {
    StringBuilder out = null;
    byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
    for (int i = 0; i < bytes.length; i++) {
      int b = bytes[i] & 0xff;
      if (isPchar(b)) {
        if (out != null) {
          out.append((char) b);
        }
      } else {
        if (out == null) {
          out = new StringBuilder(bytes.length * 3);
          out.append(new String(bytes, 0, i, StandardCharsets.US_ASCII));
        }
        out.append('%').append(HEX.charAt(b >> 4)).append(HEX.charAt(b & 0xf));
      }
    }
    return out == null ? s : out.toString();
  }

  /** unreserved / sub-delims / ":" / "@" (RFC 3986 section 3.3). */
  private static boolean isPchar(int b) {
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')
        || "-._~!$&'()*+,;=:@".indexOf(b) >= 0;
  }
}
