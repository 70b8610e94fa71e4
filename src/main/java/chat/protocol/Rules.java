package chat.protocol;

import java.util.regex.Pattern;

/** The shared input rules of PROTOCOL.md §2: username, password, avatar file name. */
public final class Rules {

  private Rules() {
  }

  public static final String DEFAULT_AVATAR = "default_avatar.png";
  public static final int MAX_PASSWORD_LENGTH = 1024;

  /**
   * 2-20 characters of {@code A-Z a-z 0-9 _!@#$%^&+-~?}, first not a digit. {@code matches()}
   * tests the whole string, so a trailing newline is refused (the original's {@code re.match(...$)}
   * let one through).
   */
  private static final Pattern USERNAME = Pattern.compile("[A-Za-z_!@#$%^&+\\-~?][A-Za-z0-9_!@#$%^&+\\-~?]{1,19}");

  public static boolean isValidUsername(Object value) {
    return value instanceof String s && s.length() >= 2 && s.length() <= 20 && USERNAME.matcher(s).matches();
  }

  /**
   * 1-1024 characters (code points), well-formed: a lone surrogate ({@code "\ud800"}) has no
   * UTF-8 form and would be hashed as {@code ?}, so that {@code "\ud800"} and {@code "?"} were
   * one password.
   */
  public static boolean isValidPassword(Object value) {
    if (!(value instanceof String s) || s.isEmpty() || s.length() > 2 * MAX_PASSWORD_LENGTH) {
      return false;
    }
    return s.codePointCount(0, s.length()) <= MAX_PASSWORD_LENGTH && isWellFormed(s);
  }

  /** Whether every surrogate in {@code s} is half of a pair, i.e. whether {@code s} has a UTF-8 form. */
  public static boolean isWellFormed(String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        return false;
      }
    }
    return true;
  }

  /** Absent, {@code null} and {@code ""} all mean the default avatar. */
  public static boolean isDefaultAvatar(Object value) {
    return value == null || "".equals(value);
  }

  /**
   * 1-64 characters ending in .png or .jpg (any case), no {@code /}, {@code \}, NUL, control
   * character or lone surrogate, not starting with a dot.
   */
  public static boolean isValidAvatar(Object value) {
    if (!(value instanceof String s) || s.isEmpty() || s.length() > 64 || s.charAt(0) == '.') {
      return false;
    }
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '/' || c == '\\' || Character.isISOControl(c)) {
        return false;
      }
    }
    String lower = s.toLowerCase(java.util.Locale.ROOT);
    return (lower.endsWith(".png") || lower.endsWith(".jpg")) && isWellFormed(s);
  }

  /** A name that is safe as one path segment under the avatar folder (the avatar route). */
  public static boolean isSafePathSegment(String s) {
    if (s == null || s.isEmpty() || s.equals(".") || s.equals("..") || s.length() > 255) {
      return false;
    }
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '/' || c == '\\' || Character.isISOControl(c)) {
        return false;
      }
    }
    return true;
  }
}
