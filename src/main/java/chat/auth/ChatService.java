package chat.auth;

import chat.limits.AbuseLimits;
import chat.limits.TokenBucketLimiter;
import chat.metrics.ServerMetrics;
import chat.protocol.Addresses;
import chat.protocol.ChatOutcome;
import chat.protocol.Replies;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;

import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * Accepts chats and heartbeats for both listeners. It runs on the caller's event loop and
 * answers from the token store and session registry directly: the hot path pays no event-bus
 * round trip, and an accepted chat is encoded once and handed to {@code broadcast}: a publish on
 * {@link Addresses#BROADCAST}, or with the cluster on, {@code chat.cluster.ClusterRelay#publish}.
 */
public final class ChatService {

  private static final Future<Boolean> NO_SESSION_NEEDED = Future.succeededFuture(true);

  /** Sends an accepted chat's encoded line to every session. */
  private final Consumer<Buffer> broadcast;
  private final TokenStore tokens;
  private final SessionRegistry sessions;
  private final int maxMessageLength;
  private final LongSupplier clock;
  private final ServerMetrics metrics;
  /** limits.chatMessagesPerSecond, per author, shared by both listeners. */
  private final TokenBucketLimiter chatLimit;

  public ChatService(Consumer<Buffer> broadcast, TokenStore tokens, SessionRegistry sessions, int maxMessageLength,
      TokenBucketLimiter chatLimit, ServerMetrics metrics, LongSupplier clock) {
    this.chatLimit = chatLimit;
    this.metrics = metrics;
    this.broadcast = broadcast;
    this.tokens = tokens;
    this.sessions = sessions;
    this.maxMessageLength = maxMessageLength;
    this.clock = clock;
  }

  /**
   * Runs the checks of PROTOCOL.md §4.4 in their documented order (the author's chat rate last,
   * so that only a chat that would be sent takes one of the author's tokens) and, when they pass,
   * broadcasts the chat. {@code needsSession}: socket chats need the author to hold a socket
   * session; HTTP chats don't (§3.3).
   */
  public Future<ChatOutcome> chat(Object token, Object message, boolean needsSession) {
    if (token == null || "".equals(token)) {
      return Future.succeededFuture(ChatOutcome.MISSING_TOKEN);
    }
    if (!(token instanceof String t)) {
      return Future.succeededFuture(ChatOutcome.INVALID_TOKEN);
    }
    return tokens.use(t).compose(holder -> {
      if (holder == null) {
        return Future.succeededFuture(ChatOutcome.INVALID_TOKEN);
      }
      // a socket chat needs the author's session (§4.4); an HTTP chat does not (§3.3)
      Future<Boolean> allowed = needsSession ? sessions.isOnline(holder.username()) : NO_SESSION_NEEDED;
      return allowed.map(online -> {
        if (!online) {
          return ChatOutcome.NOT_LOGGED_IN;
        }
        if (!(message instanceof String text)) {
          return ChatOutcome.MISSING_MESSAGE;
        }
        if (text.length() > maxMessageLength && text.codePointCount(0, text.length()) > maxMessageLength) {
          return ChatOutcome.TOO_LONG;
        }
        if (!chatLimit.tryAcquire(holder.username())) {
          metrics.limited(AbuseLimits.Limit.CHAT.label);
          return ChatOutcome.TOO_MANY_MESSAGES;
        }
        sessions.touch(holder.username()); // the author's session, if there is one, is active
        broadcast.accept(Replies.broadcast(holder.username(), text, holder.avatarUrl(), clock.getAsLong()));
        metrics.chatAccepted(!needsSession);
        return ChatOutcome.SENT;
      });
    });
  }

  /** Whether the token is valid (and refreshes it): for an HTTP chat whose body cannot be read. */
  public Future<Boolean> checkToken(Object token) {
    if (!(token instanceof String t) || t.isEmpty()) {
      return Future.succeededFuture(false);
    }
    return tokens.use(t).map(holder -> holder != null);
  }

  /** §4.6: succeeds when the token is valid and its user holds a socket session; refreshes activity. */
  public Future<Boolean> heartbeat(Object token) {
    if (!(token instanceof String t) || t.isEmpty()) {
      return Future.succeededFuture(false);
    }
    return tokens.use(t).compose(holder -> {
      if (holder == null) {
        return Future.succeededFuture(false);
      }
      return sessions.isOnline(holder.username()).map(online -> {
        if (online) {
          sessions.touch(holder.username());
        }
        return online;
      });
    });
  }
}
