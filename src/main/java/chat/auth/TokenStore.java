package chat.auth;

import io.vertx.core.Future;

/**
 * Login tokens with a sliding expiry (PROTOCOL.md §2). Behind an interface so that a
 * cluster-wide store replaces the local one without touching the code that uses it.
 */
public interface TokenStore {

  /** Who a token belongs to, with the avatar URL that every chat of theirs carries. */
  record Holder(String username, String avatarUrl) implements java.io.Serializable {
  }

  /** A new token for the user. */
  Future<String> issue(Holder holder);

  /** The token's holder, refreshing its expiry; {@code null} when unknown or expired. */
  Future<Holder> use(String token);

  /** Invalidates every token of the user (deleted, or password reset); completes with how many. */
  Future<Integer> revokeUser(String username);

  /** Forgets expired tokens; completes with how many were removed. */
  Future<Integer> purgeExpired();
}
