package chat.support;

import io.vertx.core.json.JsonObject;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The documented replies, read from {@code docs/PROTOCOL.md} itself rather than copied into the
 * tests: every inline code span of §3 (HTTP, with the status of its table row) and §4 (TCP) that
 * is a reply object. Placeholders become patterns: {@code "<token>"} 32 lowercase hex digits, any
 * other quoted {@code "<...>"} any JSON string, an unquoted {@code <...>} an integer. So a reply
 * that the page does not document, or documents differently, fails whoever checks against it.
 */
public final class ProtocolCatalog {

  /** One documented reply: the HTTP status (0 for TCP), the text as written, and its pattern. */
  public record Shape(int status, String documented, Pattern pattern) {
    public boolean matches(String line) {
      return pattern.matcher(line).matches();
    }
  }

  private static final Pattern CODE_SPAN = Pattern.compile("`(\\{[^`]*\\})`");
  private static final Pattern PLACEHOLDER = Pattern.compile("\"<[^>\"]*>\"|<[^>]*>");
  private static final String JSON_STRING_BODY = "(?:[^\"\\\\\\x00-\\x1f]|\\\\[\"\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4})*";

  private final List<Shape> tcp;
  private final List<Shape> http;

  private ProtocolCatalog(List<Shape> tcp, List<Shape> http) {
    this.tcp = Collections.unmodifiableList(tcp);
    this.http = Collections.unmodifiableList(http);
  }

  /** Reads {@code docs/PROTOCOL.md} of the project (tests run in the project folder). */
  public static ProtocolCatalog load() {
    return load(Path.of("docs", "PROTOCOL.md"));
  }

  public static ProtocolCatalog load(Path doc) {
    List<String> lines;
    try {
      lines = Files.readAllLines(doc, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    List<Shape> tcp = new ArrayList<>();
    List<Shape> http = new ArrayList<>();
    int section = 0;
    for (String line : lines) {
      Matcher heading = Pattern.compile("^## (\\d+)\\.").matcher(line);
      if (heading.find()) {
        section = Integer.parseInt(heading.group(1));
        continue;
      }
      if (section == 3) {
        // table rows: | case | status | body |
        String[] cells = line.split("\\|");
        for (int i = 1; i + 1 < cells.length; i++) {
          // a status cell: "400", or several: "400, 414 or 431"
          if (cells[i].trim().matches("\\d{3}(\\s*(,|or)\\s*\\d{3})*")) {
            for (String status : cells[i].trim().split("\\s*(,|or)\\s*")) {
              for (String span : spans(cells[i + 1])) {
                addIfReply(http, Integer.parseInt(status), span);
              }
            }
          }
        }
      } else if (section == 4) {
        for (String span : spans(line)) {
          addIfReply(tcp, 0, span);
        }
      }
    }
    if (tcp.size() < 20 || http.size() < 15) {
      throw new IllegalStateException("docs/PROTOCOL.md yielded too few reply shapes (tcp " + tcp.size() + ", http "
          + http.size() + "): has its layout changed?");
    }
    return new ProtocolCatalog(dedupe(tcp), dedupe(http));
  }

  private static List<String> spans(String text) {
    List<String> out = new ArrayList<>();
    Matcher m = CODE_SPAN.matcher(text);
    while (m.find()) {
      out.add(m.group(1));
    }
    return out;
  }

  /** Keeps reply objects; request sketches ({@code {"type":"chat","token","message"}}, {@code {"type":"login","token":"<token>"}}) are dropped. */
  private static void addIfReply(List<Shape> into, int status, String documented) {
    JsonObject sample;
    try {
      sample = new JsonObject(PLACEHOLDER.matcher(documented).replaceAll(m -> m.group().startsWith("\"") ? "\"x\"" : "1"));
    } catch (RuntimeException notJson) {
      return;
    }
    boolean reply = sample.containsKey("status") || sample.containsKey("error") || sample.containsKey("success")
        || sample.containsKey("user") || "ping".equals(sample.getValue("type"));
    if (!reply) {
      return;
    }
    StringBuilder regex = new StringBuilder();
    Matcher m = PLACEHOLDER.matcher(documented);
    int last = 0;
    while (m.find()) {
      regex.append(Pattern.quote(documented.substring(last, m.start())));
      String p = m.group();
      if (p.equals("\"<token>\"")) {
        regex.append("\"[0-9a-f]{32}\"");
      } else if (p.startsWith("\"")) {
        regex.append('"').append(JSON_STRING_BODY).append('"');
      } else {
        regex.append("-?\\d+");
      }
      last = m.end();
    }
    regex.append(Pattern.quote(documented.substring(last)));
    into.add(new Shape(status, documented, Pattern.compile(regex.toString())));
  }

  private static List<Shape> dedupe(List<Shape> shapes) {
    Map<String, Shape> unique = new LinkedHashMap<>();
    for (Shape s : shapes) {
      unique.putIfAbsent(s.status + " " + s.documented, s);
    }
    return new ArrayList<>(unique.values());
  }

  public List<Shape> tcp() {
    return tcp;
  }

  public List<Shape> http() {
    return http;
  }

  /** The documented TCP reply this line is, or null. */
  public Shape tcpShape(String line) {
    for (Shape s : tcp) {
      if (s.matches(line)) {
        return s;
      }
    }
    return null;
  }

  /** The documented HTTP reply this status and body are, or null. */
  public Shape httpShape(int status, String body) {
    for (Shape s : http) {
      if (s.status == status && s.matches(body)) {
        return s;
      }
    }
    return null;
  }

  /** Every status §3 documents with a JSON body. */
  public Set<Integer> httpStatuses() {
    Set<Integer> out = new TreeSet<>();
    for (Shape s : http) {
      out.add(s.status);
    }
    return out;
  }
}
