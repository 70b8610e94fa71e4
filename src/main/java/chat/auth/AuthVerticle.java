package chat.auth;

import chat.limits.AbuseLimits;
import chat.limits.FixedWindowLimiter;
import chat.metrics.ServerMetrics;
import chat.protocol.Addresses;
import chat.protocol.AvatarUrls;
import chat.protocol.LoginOutcome;
import chat.protocol.OwnerCommands;
import chat.protocol.RegisterOutcome;
import chat.protocol.Rules;
import chat.store.UserStore;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.WorkerExecutor;
import io.vertx.core.eventbus.Message;
import io.vertx.core.json.JsonObject;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Users, passwords, tokens and sessions. Its event-bus API ({@link Addresses#REGISTER},
 * {@link Addresses#LOGIN}) is how the listeners register and log users in; password hashing runs
 * on a bounded worker pool, never on an event loop, so a login storm queues instead of stalling
 * the loops. Replies carry an outcome name; each listener turns it into its own wire shape.
 */
public final class AuthVerticle extends VerticleBase {

  private static final Logger log = LoggerFactory.getLogger(AuthVerticle.class);

  /** The request field that names the socket connection asking to log in; absent for HTTP. */
  public static final String SESSION_OWNER = "sessionOwner";
  public static final String SESSION_CONNECTION = "sessionConnection";

  private final UserStore users;
  private final PasswordHasher hasher;
  private final WorkerExecutor hashing;
  private final TokenStore tokens;
  private final SessionRegistry sessions;
  private final String avatarDir;
  private final long purgeIntervalMillis;
  private final ServerMetrics metrics;
  private final AbuseLimits limits;
  private long untrackedLogged;

  public AuthVerticle(UserStore users, PasswordHasher hasher, WorkerExecutor hashing, TokenStore tokens,
      SessionRegistry sessions, String avatarDir, long purgeIntervalMillis, AbuseLimits limits, ServerMetrics metrics) {
    this.limits = limits;
    this.metrics = metrics;
    this.users = users;
    this.hasher = hasher;
    this.hashing = hashing;
    this.tokens = tokens;
    this.sessions = sessions;
    this.avatarDir = avatarDir;
    this.purgeIntervalMillis = purgeIntervalMillis;
  }

  @Override
  public Future<?> start() {
    vertx.setPeriodic(purgeIntervalMillis, id -> tokens.purgeExpired().onSuccess(n -> {
      if (n > 0) {
        log.debug("Purged {} expired token(s)", n);
      }
    }));
    vertx.setPeriodic(AbuseLimits.PURGE_INTERVAL_MILLIS, id -> purgeLimits());
    return Future.all(
        // local: each node's listeners use their own node's auth verticle (its hashing pool, its limits)
        vertx.eventBus().<JsonObject>localConsumer(Addresses.REGISTER, this::register).completion(),
        vertx.eventBus().<JsonObject>localConsumer(Addresses.LOGIN, this::login).completion());
  }

  // ---- registration: username, then avatar, then password, then the database (§2) ----

  private void register(Message<JsonObject> msg) {
    JsonObject body = msg.body();
    String address = clientAddress(msg);
    Object username = body.getValue("username");
    Object avatar = body.getValue("avatar");
    Object password = body.getValue("password");
    Future<RegisterOutcome> outcome;
    if (!Rules.isValidUsername(username)) {
      outcome = Future.succeededFuture(RegisterOutcome.BAD_USERNAME);
    } else if (!Rules.isDefaultAvatar(avatar) && !Rules.isValidAvatar(avatar)) {
      outcome = Future.succeededFuture(RegisterOutcome.BAD_AVATAR);
    } else if (!Rules.isValidPassword(password)) {
      outcome = Future.succeededFuture(RegisterOutcome.BAD_PASSWORD);
    } else if (!limits.registrationsPerAddress.tryAcquire(address)) {
      // before the database and the hash: a refused registration costs nothing
      metrics.limited(AbuseLimits.Limit.REGISTRATION.label);
      log.debug("Registration refused: limits.registrationsPerAddress reached by {}", address);
      outcome = Future.succeededFuture(RegisterOutcome.TOO_MANY_REGISTRATIONS);
    } else {
      // the slot taken above is given back unless the user is created: only registrations count
      String avatarFile = Rules.isDefaultAvatar(avatar) ? Rules.DEFAULT_AVATAR : (String) avatar;
      outcome = createUser((String) username, (String) password, avatarFile).andThen(r -> {
        if (r.failed() || r.result() != RegisterOutcome.CREATED) {
          limits.registrationsPerAddress.release(address);
        }
      });
    }
    outcome.onComplete(r -> {
      RegisterOutcome o = r.succeeded() ? r.result() : RegisterOutcome.DATABASE_ERROR;
      metrics.outcome("registrations", o.name(), transport(msg)).increment();
      msg.reply(new JsonObject().put("outcome", o.name()));
    });
  }

  private Future<RegisterOutcome> createUser(String username, String password, String avatarFile) {
    // a taken name is answered before paying for a hash; the insert still enforces uniqueness
    return users.exists(username).compose(taken -> {
      if (taken) {
        return Future.succeededFuture(RegisterOutcome.NAME_TAKEN);
      }
      return hash(password)
          .compose(hash -> users.insert(username, hash, avatarFile))
          .compose(created -> {
            if (!created) {
              return Future.succeededFuture(RegisterOutcome.NAME_TAKEN);
            }
            log.info("Registered user {}", username);
            return vertx.fileSystem().mkdirs(avatarDir + "/" + username)
                .otherwise(err -> {
                  log.warn("Could not create the avatar folder of {}: {}", username, err.getMessage());
                  return null;
                })
                .map(RegisterOutcome.CREATED);
          });
    }).recover(err -> {
      log.error("Registration failed on the database: {}", err.toString());
      return Future.succeededFuture(RegisterOutcome.DATABASE_ERROR);
    });
  }

  // ---- login: credentials first, then the one-session rule (§3.2, §4.3) ----

  private void login(Message<JsonObject> msg) {
    JsonObject body = msg.body();
    String owner = body.getString(SESSION_OWNER);
    SessionRef ref = owner == null ? null : new SessionRef(owner, body.getLong(SESSION_CONNECTION));
    Object username = body.getValue("username");
    Object password = body.getValue("password");
    Object token = body.getValue("token");
    String address = clientAddress(msg);
    boolean resume = password == null && token != null && ref != null;
    // the per-username limit guards passwords; a resume token is no password guess (the address limit still applies)
    String userKey = !resume && Rules.isValidUsername(username) ? (String) username : null;

    AbuseLimits.Limit refusedBy = reserveLoginAttempt(userKey, address);
    if (refusedBy != null) {
      // refused before any lookup or hash: an attacker over the limit costs nothing
      metrics.limited(refusedBy.label);
      log.debug("Login refused: {} reached (user {}, address {})", refusedBy.label, userKey, address);
      metrics.outcome("logins", LoginOutcome.TOO_MANY_ATTEMPTS.name(), transport(msg)).increment();
      msg.reply(new JsonObject().put("outcome", LoginOutcome.TOO_MANY_ATTEMPTS.name()));
      return;
    }

    Future<JsonObject> result;
    if (password != null) {
      result = checkPassword(username, password).compose(holder -> holder == null
          ? outcome(LoginOutcome.BAD_CREDENTIALS)
          : openSession(holder, null, ref));
    } else if (token != null && ref != null) {
      result = resume(username, token, ref);
    } else {
      result = outcome(LoginOutcome.BAD_CREDENTIALS);
    }
    result.onComplete(r -> {
      JsonObject reply = r.succeeded() ? r.result() : new JsonObject().put("outcome", LoginOutcome.BAD_CREDENTIALS.name());
      if (r.failed()) {
        log.error("Login failed unexpectedly: {}", r.cause().toString());
      }
      settleLoginAttempt(userKey, address, r.succeeded() ? LoginOutcome.valueOf(reply.getString("outcome")) : null);
      metrics.outcome("logins", reply.getString("outcome"), transport(msg)).increment();
      msg.reply(reply);
    });
  }

  /**
   * Refuses a login whose username or address has reached its failure limit. The username's
   * attempt is reserved before the password is checked, so concurrent guesses at one name cannot
   * pass its limit together ({@link #settleLoginAttempt} gives it back unless it failed). The
   * address is only checked here, and charged once a login has failed: many people behind one
   * address (a NAT, a reconnect storm) may log in at once, and only failures count against them.
   * Returns the limit that is already reached, or null.
   */
  private AbuseLimits.Limit reserveLoginAttempt(String userKey, String address) {
    FixedWindowLimiter perUser = limits.loginFailuresPerUser;
    if (!perUser.tryAcquire(userKey)) {
      return AbuseLimits.Limit.LOGIN_USER;
    }
    FixedWindowLimiter perAddress = limits.loginFailuresPerAddress;
    if (perAddress.enabled() && address != null && perAddress.count(address) >= perAddress.limit()) {
      perUser.release(userKey);
      return AbuseLimits.Limit.LOGIN_ADDRESS;
    }
    return null;
  }

  /**
   * Bad credentials and invalid resume tokens are failures: the address is charged, and the
   * username keeps its reserved attempt. Anything else is no failure: the right password clears
   * the username's count (a success never clears the address's count, so an attacker cannot
   * interleave logins of their own). {@code outcome} null: the login broke on our side, which
   * counts against nobody.
   */
  private void settleLoginAttempt(String userKey, String address, LoginOutcome outcome) {
    if (outcome == LoginOutcome.BAD_CREDENTIALS || outcome == LoginOutcome.INVALID_TOKEN) {
      limits.loginFailuresPerAddress.tryAcquire(address);
      return;
    }
    if (outcome == LoginOutcome.SUCCESS || outcome == LoginOutcome.ALREADY_LOGGED_IN) {
      limits.loginFailuresPerUser.reset(userKey);
    } else {
      limits.loginFailuresPerUser.release(userKey);
    }
  }

  private void purgeLimits() {
    int purged = limits.purge();
    long untracked = limits.untracked();
    if (untracked > untrackedLogged) {
      log.warn("Abuse limits: {} request(s) went unlimited because a limiter already tracked {} keys",
          untracked - untrackedLogged, AbuseLimits.MAX_KEYS);
      untrackedLogged = untracked;
    }
    if (purged > 0) {
      log.debug("Abuse limits: forgot {} idle key(s)", purged);
    }
  }

  /** The user when the password is right, else {@code null}. */
  private Future<TokenStore.Holder> checkPassword(Object username, Object password) {
    // a password with a lone surrogate cannot have been registered (§2); hashed, it would equal one with '?' instead
    if (!(username instanceof String name) || !(password instanceof String pw) || pw.isEmpty() || !Rules.isWellFormed(pw)) {
      return Future.succeededFuture();
    }
    return users.find(name).compose(user -> {
      if (user == null || user.passwd() == null) {
        return Future.succeededFuture();
      }
      return hashing.executeBlocking(() -> metrics.hashing().recordCallable(() -> PasswordHasher.verify(pw, user.passwd())),
          false).compose(ok -> {
        if (!ok) {
          return Future.succeededFuture();
        }
        TokenStore.Holder holder = new TokenStore.Holder(user.name(), AvatarUrls.of(user.name(), user.avatar()));
        if (PasswordHasher.isHash(user.passwd())) {
          return Future.succeededFuture(holder);
        }
        // a plain-text password left by the original server: replace it now; if the database
        // refuses the write (locked, say), the password was still right: the next login retries
        return hash(pw).compose(h -> users.replacePassword(user.name(), user.passwd(), h)).map(holder)
            .otherwise(err -> {
              log.warn("Could not replace the plain-text password of {} with a hash: {}", user.name(), err.toString());
              return holder;
            });
      });
    });
  }

  /** §4.3 [ext]: binds a socket by token, without hashing. */
  private Future<JsonObject> resume(Object username, Object token, SessionRef ref) {
    if (!(token instanceof String t)) {
      return outcome(LoginOutcome.INVALID_TOKEN);
    }
    return tokens.use(t).compose(holder -> {
      if (holder == null || (username != null && !holder.username().equals(username))) {
        return outcome(LoginOutcome.INVALID_TOKEN);
      }
      return openSession(holder, t, ref);
    });
  }

  /**
   * For a socket ({@code ref} given): takes the user's one session, atomically. For HTTP: refuses
   * while the user holds a socket session. Then issues a token, unless resuming with one.
   */
  private Future<JsonObject> openSession(TokenStore.Holder holder, String existingToken, SessionRef ref) {
    Future<SessionRef> contested = ref == null ? sessions.holder(holder.username()) : sessions.bind(holder.username(), ref);
    return contested.compose(other -> {
      if (other != null) {
        // as the original did: probe the holder, so that a dead connection surfaces and closes
        vertx.eventBus().send(other.owner(), OwnerCommands.ping(other.connection()));
        return outcome(LoginOutcome.ALREADY_LOGGED_IN);
      }
      Future<String> token = existingToken != null ? Future.succeededFuture(existingToken) : tokens.issue(holder);
      return token.map(t -> {
        log.info("User {} logged in{}", holder.username(), ref == null ? " over HTTP" : "");
        return new JsonObject().put("outcome", LoginOutcome.SUCCESS.name()).put("token", t)
            .put("username", holder.username()).put("avatar", holder.avatarUrl());
      });
    });
  }

  /** The client's IP address, for the per-address limits; null (no such limit) when the listener sent none. */
  private static String clientAddress(Message<?> msg) {
    String a = msg.headers().get(Addresses.CLIENT_ADDRESS_HEADER);
    return a == null || a.isEmpty() ? null : a;
  }

  private static String transport(Message<?> msg) {
    String t = msg.headers().get(Addresses.TRANSPORT_HEADER);
    return t == null ? "other" : t;
  }

  private Future<String> hash(String password) {
    return hashing.executeBlocking(() -> metrics.hashing().recordCallable(() -> hasher.hash(password)), false);
  }

  private static Future<JsonObject> outcome(LoginOutcome outcome) {
    return Future.succeededFuture(new JsonObject().put("outcome", outcome.name()));
  }
}
