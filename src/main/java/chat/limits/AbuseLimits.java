package chat.limits;

import chat.config.ChatConfig;

import java.util.function.LongSupplier;

/**
 * The server's abuse limits (PROTOCOL.md, "Abuse limits"), built from the {@code limits.*} keys.
 * Each limiter is unlimited when its key is 0 or {@code limits.enabled} is false (ChatConfig
 * then reports it as 0). Shared by every event loop; {@link #purge()} runs every
 * {@link #PURGE_INTERVAL_MILLIS}.
 */
public final class AbuseLimits {

  /** The most keys (usernames or addresses) each limiter tracks at once: see {@link KeyedLimiter}. */
  public static final int MAX_KEYS = 100_000;
  /** How often idle keys are forgotten. */
  public static final long PURGE_INTERVAL_MILLIS = 30_000;

  /** Which limit refused a request: the {@code limit} label of {@code chat_limited_total}. */
  public enum Limit {
    LOGIN_USER("login_user"),
    LOGIN_ADDRESS("login_address"),
    CHAT("chat"),
    REGISTRATION("registration");

    public final String label;

    Limit(String label) {
      this.label = label;
    }
  }

  /** Failed password logins per username (valid usernames only). */
  public final FixedWindowLimiter loginFailuresPerUser;
  /** Failed logins (passwords and resume tokens) per client address. */
  public final FixedWindowLimiter loginFailuresPerAddress;
  /** Registrations per client address. */
  public final FixedWindowLimiter registrationsPerAddress;
  /** Chats per user: a bucket of chatMessagesPerSecond tokens, refilled at that rate. */
  public final TokenBucketLimiter chatsPerUser;

  public AbuseLimits(FixedWindowLimiter loginFailuresPerUser, FixedWindowLimiter loginFailuresPerAddress,
      FixedWindowLimiter registrationsPerAddress, TokenBucketLimiter chatsPerUser) {
    this.loginFailuresPerUser = loginFailuresPerUser;
    this.loginFailuresPerAddress = loginFailuresPerAddress;
    this.registrationsPerAddress = registrationsPerAddress;
    this.chatsPerUser = chatsPerUser;
  }

  public static AbuseLimits of(ChatConfig config, LongSupplier nanoClock) {
    long loginWindow = config.loginFailureWindowSeconds * 1000L;
    int chat = config.chatMessagesPerSecond;
    return new AbuseLimits(
        new FixedWindowLimiter(config.loginFailuresPerUser, loginWindow, MAX_KEYS, nanoClock),
        new FixedWindowLimiter(config.loginFailuresPerAddress, loginWindow, MAX_KEYS, nanoClock),
        new FixedWindowLimiter(config.registrationsPerAddress, config.registrationWindowSeconds * 1000L, MAX_KEYS,
            nanoClock),
        new TokenBucketLimiter(chat, Math.max(1, chat), MAX_KEYS, nanoClock));
  }

  /** Forgets every idle key of every limiter; returns how many. */
  public int purge() {
    return loginFailuresPerUser.purge() + loginFailuresPerAddress.purge() + registrationsPerAddress.purge()
        + chatsPerUser.purge();
  }

  /** Requests allowed untracked because a limiter was full (see {@link KeyedLimiter}). */
  public long untracked() {
    return loginFailuresPerUser.untracked() + loginFailuresPerAddress.untracked()
        + registrationsPerAddress.untracked() + chatsPerUser.untracked();
  }
}
