package chat.auth;

/**
 * One socket connection that holds a session: the event-bus address of the TCP verticle
 * instance that owns it, and the connection's number there. Anyone (the reaper, a contested
 * login, an admin) reaches the connection by sending to {@code owner}.
 */
public record SessionRef(String owner, long connection) {
}
