package chat.auth;

import io.vertx.core.Future;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/** The sessions of one node, in memory, safe to use from every event loop. */
public final class LocalSessionRegistry implements SessionRegistry {

  private static final class Session {
    final SessionRef ref;
    volatile long lastActiveMillis;

    Session(SessionRef ref, long now) {
      this.ref = ref;
      this.lastActiveMillis = now;
    }
  }

  private final ConcurrentHashMap<String, Session> sessions = new ConcurrentHashMap<>();
  private final LongSupplier clock;

  public LocalSessionRegistry(LongSupplier clock) {
    this.clock = clock;
  }

  @Override
  public Future<SessionRef> bind(String username, SessionRef ref) {
    Session mine = new Session(ref, clock.getAsLong());
    Session existing = sessions.putIfAbsent(username, mine);
    return Future.succeededFuture(existing == null ? null : existing.ref);
  }

  @Override
  public Future<Boolean> release(String username, SessionRef ref) {
    boolean[] released = {false};
    sessions.computeIfPresent(username, (k, s) -> {
      if (s.ref.equals(ref)) {
        released[0] = true;
        return null;
      }
      return s;
    });
    return Future.succeededFuture(released[0]);
  }

  @Override
  public Future<SessionRef> holder(String username) {
    Session s = sessions.get(username);
    return Future.succeededFuture(s == null ? null : s.ref);
  }

  @Override
  public Future<Boolean> isOnline(String username) {
    return Future.succeededFuture(sessions.containsKey(username));
  }

  @Override
  public void touch(String username) {
    Session s = sessions.get(username);
    if (s != null) {
      s.lastActiveMillis = clock.getAsLong();
    }
  }

  @Override
  public Future<List<IdleSession>> idleSince(long cutoffMillis) {
    List<IdleSession> idle = new ArrayList<>();
    sessions.forEach((user, s) -> {
      if (s.lastActiveMillis < cutoffMillis) {
        idle.add(new IdleSession(user, s.ref));
      }
    });
    return Future.succeededFuture(idle);
  }
}
