package chat.support;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A parsed Prometheus text exposition (format 0.0.4), as a scraper reads it: samples with their
 * labels, and the {@code # TYPE} of each family. Written from the format's description, sharing
 * nothing with the server's exporter.
 */
public final class Prometheus {

  public record Sample(String name, Map<String, String> labels, double value) {
  }

  private static final Pattern SAMPLE = Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\\{(.*)\\})?\\s+(\\S+)(?:\\s+-?\\d+)?$");
  private static final Pattern LABEL = Pattern.compile("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\",?");
  private static final Pattern TYPE = Pattern.compile("^# TYPE (\\S+) (\\S+)$");

  private final String text;
  private final List<Sample> samples;
  private final Map<String, String> types;

  private Prometheus(String text, List<Sample> samples, Map<String, String> types) {
    this.text = text;
    this.samples = samples;
    this.types = types;
  }

  public static Prometheus parse(String text) {
    List<Sample> samples = new ArrayList<>();
    Map<String, String> types = new HashMap<>();
    for (String line : text.split("\n")) {
      if (line.isBlank()) {
        continue;
      }
      if (line.startsWith("#")) {
        Matcher t = TYPE.matcher(line);
        if (t.matches()) {
          types.put(t.group(1), t.group(2));
        }
        continue;
      }
      Matcher m = SAMPLE.matcher(line);
      if (!m.matches()) {
        throw new AssertionError("not a Prometheus sample line: " + line);
      }
      Map<String, String> labels = new LinkedHashMap<>();
      if (m.group(2) != null && !m.group(2).isEmpty()) {
        Matcher l = LABEL.matcher(m.group(2));
        int end = 0;
        while (l.find()) {
          if (l.start() != end) {
            throw new AssertionError("bad labels in: " + line);
          }
          labels.put(l.group(1), l.group(2).replace("\\\"", "\"").replace("\\n", "\n").replace("\\\\", "\\"));
          end = l.end();
        }
        if (end != m.group(2).length()) {
          throw new AssertionError("bad labels in: " + line);
        }
      }
      samples.add(new Sample(m.group(1), labels, parseValue(m.group(3))));
    }
    return new Prometheus(text, samples, types);
  }

  private static double parseValue(String v) {
    return switch (v) {
      case "+Inf" -> Double.POSITIVE_INFINITY;
      case "-Inf" -> Double.NEGATIVE_INFINITY;
      case "NaN" -> Double.NaN;
      default -> Double.parseDouble(v);
    };
  }

  /** GET /metrics, which must answer 200 with the Prometheus text content type. */
  public static Prometheus scrape(Http http) {
    Http.Response r = http.get("/metrics");
    if (r.status() != 200) {
      throw new AssertionError("/metrics answered " + r.status() + ": " + r.body());
    }
    String type = r.header("Content-Type");
    if (type == null || !type.startsWith("text/plain") || !type.contains("version=0.0.4")) {
      throw new AssertionError("/metrics content type is not Prometheus text 0.0.4: " + type);
    }
    return parse(r.body());
  }

  /**
   * GET /metrics until {@code settled} holds of it, for at most 5 s, then that scrape (or the last).
   * For the broadcast counters: a broadcast step adds up its writes and deliveries after making
   * them, so a client can read a chat a moment before the scrape counts it. The caller still
   * asserts exact values on what this returns: over-counting fails at once, under-counting after
   * the 5 s.
   */
  public static Prometheus scrapeWhen(Http http, Predicate<Prometheus> settled) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    Prometheus p = scrape(http);
    while (!settled.test(p) && System.nanoTime() < deadline) {
      LockSupport.parkNanos(10_000_000);
      p = scrape(http);
    }
    return p;
  }

  public String text() {
    return text;
  }

  public List<Sample> samples() {
    return samples;
  }

  /** The {@code # TYPE} of a family ({@code counter}, {@code gauge}, {@code summary}, ...), or null. */
  public String type(String family) {
    return types.get(family);
  }

  /** Whether any sample has this name and carries these labels ({@code "key", "value", ...}). */
  public boolean has(String name, String... labels) {
    return !matching(name, labels).isEmpty();
  }

  /** The samples with this name that carry (at least) these labels. */
  public List<Sample> matching(String name, String... labels) {
    List<Sample> hits = new ArrayList<>();
    for (Sample s : samples) {
      if (s.name().equals(name) && carries(s, labels)) {
        hits.add(s);
      }
    }
    return hits;
  }

  /** The value of the one sample with this name and these labels; fails when there is none or several. */
  public double value(String name, String... labels) {
    List<Sample> hits = matching(name, labels);
    if (hits.size() != 1) {
      throw new AssertionError("expected exactly one sample " + name + List.of(labels) + ", found " + hits.size()
          + ": " + hits);
    }
    return hits.get(0).value();
  }

  private static boolean carries(Sample s, String... labels) {
    for (int i = 0; i < labels.length; i += 2) {
      if (!labels[i + 1].equals(s.labels().get(labels[i]))) {
        return false;
      }
    }
    return true;
  }
}
