package chat.auth;

import io.vertx.core.Future;

import java.util.List;

/**
 * The one-live-socket-session-per-user rule (PROTOCOL.md §4.3) and each user's activity time
 * (§4.7). Behind an interface so that a cluster-wide registry replaces the local one without
 * touching the code that uses it.
 */
public interface SessionRegistry {

  record IdleSession(String username, SessionRef ref) {
  }

  /**
   * Gives the user's session to {@code ref} if nobody holds it, atomically. Completes with
   * {@code null} on success, or with the connection that already holds it.
   */
  Future<SessionRef> bind(String username, SessionRef ref);

  /** Ends the session if {@code ref} still holds it; completes with whether it did. */
  Future<Boolean> release(String username, SessionRef ref);

  /** The connection holding the user's session, or {@code null}. */
  Future<SessionRef> holder(String username);

  /** Whether the user holds a session. On the chat hot path: answered locally. */
  Future<Boolean> isOnline(String username);

  /** Records activity (login, chat, heartbeat) that keeps the user's session, if any, from the reaper. */
  void touch(String username);

  /** Sessions whose user has shown no activity since {@code cutoffMillis}. */
  Future<List<IdleSession>> idleSince(long cutoffMillis);
}
