package chat.protocol;

/** What a chat came to, in the order the checks run (§3.3, §4.4). */
public enum ChatOutcome {
  MISSING_TOKEN(Replies.HTTP_CHAT_UNAUTHORIZED, Replies.TCP_CHAT_MISSING_TOKEN),
  INVALID_TOKEN(Replies.HTTP_CHAT_UNAUTHORIZED, Replies.TCP_CHAT_INVALID_TOKEN),
  /** Socket only: HTTP chat needs no socket session. */
  NOT_LOGGED_IN(null, Replies.TCP_CHAT_NOT_LOGGED_IN),
  MISSING_MESSAGE(Replies.CHAT_MISSING_MESSAGE, Replies.CHAT_MISSING_MESSAGE),
  TOO_LONG(Replies.CHAT_TOO_LONG, Replies.CHAT_TOO_LONG),
  /** [ext] Abuse limits: the author is over limits.chatMessagesPerSecond. */
  TOO_MANY_MESSAGES(Replies.CHAT_TOO_MANY_MESSAGES, Replies.CHAT_TOO_MANY_MESSAGES),
  SENT(Replies.CHAT_SENT, Replies.CHAT_SENT);

  public final Reply http;
  public final Reply tcp;

  ChatOutcome(Reply http, Reply tcp) {
    this.http = http;
    this.tcp = tcp;
  }
}
