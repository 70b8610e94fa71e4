package chat.protocol;

/**
 * What a login came to. {@code SUCCESS} has no fixed reply: it carries a token and an avatar
 * URL ({@link Replies#httpLoggedIn}, {@link Replies#tcpLoggedIn}).
 */
public enum LoginOutcome {
  SUCCESS(null, null),
  BAD_CREDENTIALS(Replies.HTTP_BAD_CREDENTIALS, Replies.TCP_BAD_CREDENTIALS),
  ALREADY_LOGGED_IN(Replies.HTTP_ALREADY_LOGGED_IN, Replies.TCP_ALREADY_LOGGED_IN),
  /** Token resume only (§4.3 [ext]), so socket only. */
  INVALID_TOKEN(null, Replies.TCP_INVALID_RESUME_TOKEN),
  /** [ext] Abuse limits: too many failed logins for the username or from the client address. */
  TOO_MANY_ATTEMPTS(Replies.HTTP_TOO_MANY_ATTEMPTS, Replies.TCP_TOO_MANY_ATTEMPTS);

  public final Reply http;
  public final Reply tcp;

  LoginOutcome(Reply http, Reply tcp) {
    this.http = http;
    this.tcp = tcp;
  }
}
