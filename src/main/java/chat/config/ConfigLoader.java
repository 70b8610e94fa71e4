package chat.config;

import io.vertx.config.ConfigRetriever;
import io.vertx.config.ConfigRetrieverOptions;
import io.vertx.config.ConfigStoreOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Reads the configuration with vertx-config: the shipped defaults ({@code conf/config.json}
 * inside the jar) &lt; the {@code --conf FILE} &lt; environment variables. Every key {@code a.b}
 * has the environment name {@code CHAT_A_B} (upper case, dots to underscores).
 */
public final class ConfigLoader {

  static final String DEFAULTS_RESOURCE = "conf/config.json";

  private ConfigLoader() {
  }

  public static JsonObject defaults() {
    try (InputStream in = ConfigLoader.class.getClassLoader().getResourceAsStream(DEFAULTS_RESOURCE)) {
      if (in == null) {
        throw new IllegalStateException(DEFAULTS_RESOURCE + " is missing from the classpath");
      }
      return new JsonObject(new String(in.readAllBytes(), StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Every key with its default value, in file order. */
  public static Map<String, Object> flatDefaults() {
    return flatten(defaults());
  }

  /** The environment variable that overrides {@code key}. */
  public static String envName(String key) {
    return "CHAT_" + key.toUpperCase(Locale.ROOT).replace('.', '_');
  }

  /** Loads and validates; fails with a {@link ConfigException} naming the bad key. */
  public static Future<ChatConfig> load(Vertx vertx, String confFile) {
    JsonObject defaults = defaults();
    Map<String, Object> flatDefaults = flatten(defaults);
    JsonArray envKeys = new JsonArray();
    flatDefaults.keySet().forEach(k -> envKeys.add(envName(k)));

    ConfigRetrieverOptions options = new ConfigRetrieverOptions().setScanPeriod(0).setIncludeDefaultStores(false)
        .addStore(new ConfigStoreOptions().setType("json").setConfig(defaults));
    if (confFile != null) {
      options.addStore(new ConfigStoreOptions().setType("file").setFormat("json").setOptional(false)
          .setConfig(new JsonObject().put("path", confFile)));
    }
    options.addStore(new ConfigStoreOptions().setType("env")
        .setConfig(new JsonObject().put("keys", envKeys).put("raw-data", true)));

    ConfigRetriever retriever = ConfigRetriever.create(vertx, options);
    return retriever.getConfig()
        .recover(err -> Future.failedFuture(new ConfigException(
            "cannot read configuration" + (confFile != null ? " file " + confFile : "") + ": " + oneLine(err.getMessage()))))
        .compose(merged -> {
          retriever.close();
          try {
            return Future.succeededFuture(resolve(flatDefaults, merged));
          } catch (ConfigException e) {
            return Future.failedFuture(e);
          }
        });
  }

  /** Parser messages (Jackson's) span lines; the error printed at startup stays one line. */
  private static String oneLine(String message) {
    return message == null ? "" : message.strip().replaceAll("\\s*\\R\\s*", " ");
  }

  /** Applies types, environment overrides and unknown-key checks to the merged stores. */
  static ChatConfig resolve(Map<String, Object> flatDefaults, JsonObject merged) {
    Map<String, Object> values = new LinkedHashMap<>();
    JsonObject filepart = merged.copy();
    Map<String, String> env = new LinkedHashMap<>();
    for (String key : flatDefaults.keySet()) {
      Object v = filepart.remove(envName(key));
      if (v != null) {
        env.put(key, v.toString());
      }
    }
    Map<String, Object> flatFile = flatten(filepart);
    for (String key : flatFile.keySet()) {
      if (!flatDefaults.containsKey(key)) {
        throw new ConfigException("unknown configuration key '" + key + "'");
      }
    }
    for (Map.Entry<String, Object> d : flatDefaults.entrySet()) {
      String key = d.getKey();
      Object value = env.containsKey(key)
          ? fromText(key, d.getValue(), env.get(key), envName(key))
          : typed(key, d.getValue(), flatFile.get(key));
      values.put(key, value);
    }
    return new ChatConfig(values);
  }

  private static Object typed(String key, Object defaultValue, Object value) {
    if (value == null) {
      return defaultValue;
    }
    if (defaultValue instanceof Integer) {
      if (value instanceof Integer || (value instanceof Long l && l >= Integer.MIN_VALUE && l <= Integer.MAX_VALUE)) {
        return ((Number) value).intValue();
      }
      throw new ConfigException("configuration key '" + key + "' must be an integer, got " + value);
    }
    if (defaultValue instanceof Boolean) {
      if (value instanceof Boolean) {
        return value;
      }
      throw new ConfigException("configuration key '" + key + "' must be true or false, got " + value);
    }
    if (value instanceof String) {
      return value;
    }
    throw new ConfigException("configuration key '" + key + "' must be a string, got " + value);
  }

  private static Object fromText(String key, Object defaultValue, String text, String envName) {
    String t = text.trim();
    if (defaultValue instanceof Integer) {
      try {
        return Integer.parseInt(t);
      } catch (NumberFormatException e) {
        throw new ConfigException(envName + " (" + key + ") must be an integer, got '" + text + "'");
      }
    }
    if (defaultValue instanceof Boolean) {
      if (t.equalsIgnoreCase("true") || t.equalsIgnoreCase("false")) {
        return Boolean.parseBoolean(t);
      }
      throw new ConfigException(envName + " (" + key + ") must be true or false, got '" + text + "'");
    }
    return text;
  }

  static Map<String, Object> flatten(JsonObject json) {
    Map<String, Object> out = new LinkedHashMap<>();
    flatten("", json, out);
    return out;
  }

  private static void flatten(String prefix, JsonObject json, Map<String, Object> out) {
    for (Map.Entry<String, Object> e : json) {
      String key = prefix + e.getKey();
      if (e.getValue() instanceof JsonObject nested) {
        flatten(key + ".", nested, out);
      } else {
        out.put(key, e.getValue());
      }
    }
  }
}
