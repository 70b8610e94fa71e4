package chat.protocol;

import io.vertx.core.json.JsonObject;

/**
 * Commands sent to the TCP verticle instance that owns a connection (its address is the
 * {@code owner} of a SessionRef): the only way another verticle or node touches a socket.
 */
public final class OwnerCommands {

  private OwnerCommands() {
  }

  public static final String OP = "op";
  public static final String CONNECTION = "connection";
  public static final String USER = "user";

  /** Write {@code {"type":"ping"}} to the connection, so a dead one surfaces. */
  public static final String PING = "ping";
  /** Close the connection's session for idleness, if it is still the user's. */
  public static final String CLOSE_IDLE = "close-idle";

  /** Close the connection's session (an administrator's kick), if it is still the user's. */
  public static final String KICK = "kick";

  /** Close the connection's session: its user holds another one (after a cluster split healed). */
  public static final String LOGGED_IN_ELSEWHERE = "logged-in-elsewhere";

  public static JsonObject loggedInElsewhere(long connection, String username) {
    return new JsonObject().put(OP, LOGGED_IN_ELSEWHERE).put(CONNECTION, connection).put(USER, username);
  }

  /** Record activity on the connection's session (a heartbeat or chat that arrived on another node). */
  public static final String TOUCH = "touch";

  public static JsonObject touch(long connection, String username) {
    return new JsonObject().put(OP, TOUCH).put(CONNECTION, connection).put(USER, username);
  }

  public static JsonObject kick(long connection, String username) {
    return new JsonObject().put(OP, KICK).put(CONNECTION, connection).put(USER, username);
  }

  public static JsonObject ping(long connection) {
    return new JsonObject().put(OP, PING).put(CONNECTION, connection);
  }

  public static JsonObject closeIdle(long connection, String username) {
    return new JsonObject().put(OP, CLOSE_IDLE).put(CONNECTION, connection).put(USER, username);
  }
}
