package chat.protocol;

/** Event-bus addresses between the verticles. */
public final class Addresses {

  private Addresses() {
  }

  /*
   * With cluster.enabled: REGISTER, LOGIN and SWEEP_UNAUTHENTICATED stay on their node (local
   * consumers, local-only sends); BROADCAST reaches every node; the owner addresses are reached
   * from any node.
   */

  /** Request/reply: register a user. Body: the client's JSON object. Reply: {@code {"outcome"}}. */
  public static final String REGISTER = "chat.auth.register";
  /** Request/reply: password or token login. Reply: {@code {"outcome","token","username","avatar"}}. */
  public static final String LOGIN = "chat.auth.login";
  /** Publish: one accepted chat as the encoded broadcast line (a Buffer), for every TCP verticle. */
  public static final String BROADCAST = "chat.broadcast";
  /** Publish: the reaper asks every TCP verticle to close connections that never logged in and went idle. */
  public static final String SWEEP_UNAUTHENTICATED = "chat.tcp.sweep";
  /** Header of REGISTER and LOGIN requests naming the listener that asks: "tcp" or "http" (for metrics). */
  public static final String TRANSPORT_HEADER = "transport";
  /**
   * Header of REGISTER and LOGIN requests: the client's IP address as the listener sees it (the
   * peer of the connection), for the per-address abuse limits. Absent: no per-address limit applies.
   */
  public static final String CLIENT_ADDRESS_HEADER = "clientAddress";

  /** Prefix of each TCP verticle instance's own address (see SessionRef). */
  public static final String TCP_OWNER_PREFIX = "chat.tcp.owner.";
}
