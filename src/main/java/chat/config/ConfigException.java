package chat.config;

/** A configuration value that cannot be used; the message names the key and is safe to print. */
public final class ConfigException extends RuntimeException {
  public ConfigException(String message) {
    super(message);
  }
}
