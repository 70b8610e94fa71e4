package chat.protocol;

/** What a registration came to, with the documented reply of each listener (§3.1, §4.2). */
public enum RegisterOutcome {
  CREATED(Replies.REGISTERED, Replies.REGISTERED),
  NAME_TAKEN(Replies.NAME_TAKEN, Replies.NAME_TAKEN),
  BAD_USERNAME(Replies.HTTP_BAD_USERNAME, Replies.TCP_BAD_USERNAME),
  BAD_AVATAR(Replies.HTTP_BAD_AVATAR, Replies.TCP_BAD_AVATAR),
  BAD_PASSWORD(Replies.BAD_PASSWORD, Replies.BAD_PASSWORD),
  /** [ext] Abuse limits: too many registrations from the client address. */
  TOO_MANY_REGISTRATIONS(Replies.TOO_MANY_REGISTRATIONS, Replies.TOO_MANY_REGISTRATIONS),
  DATABASE_ERROR(Replies.REGISTER_FAILED, Replies.REGISTER_FAILED);

  public final Reply http;
  public final Reply tcp;

  RegisterOutcome(Reply http, Reply tcp) {
    this.http = http;
    this.tcp = tcp;
  }
}
