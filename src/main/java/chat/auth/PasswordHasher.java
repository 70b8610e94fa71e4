package chat.auth;

import chat.config.ChatConfig;
import org.bouncycastle.crypto.generators.Argon2BytesGenerator;
import org.bouncycastle.crypto.params.Argon2Parameters;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;

/**
 * Argon2id password hashes in the PHC string format
 * ({@code $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>}), so every stored hash carries its own
 * parameters and changing the configured cost never locks anyone out. Every method here is
 * slow on purpose: call them on the hashing worker pool, never on an event loop.
 */
public final class PasswordHasher {

  /** Argon2id cost. OWASP's recommended minimum is m=19 MiB, t=2, p=1. */
  public record Params(int memoryKiB, int iterations, int parallelism) {
    public static final Params OWASP = new Params(19456, 2, 1);
    /** Cheap, for tests and benchmarks only (auth.hashCost=low). */
    public static final Params LOW = new Params(256, 1, 1);

    /**
     * The cost configured by {@code auth.hashCost} and {@code auth.argon2.*}: the one place that
     * reads them, for the server and the admin commands alike.
     */
    public static Params of(ChatConfig config) {
      return config.hashCost == ChatConfig.HashCost.LOW
          ? LOW
          : new Params(config.argon2MemoryKiB, config.argon2Iterations, config.argon2Parallelism);
    }
  }

  private static final String PREFIX = "$argon2id$v=19$";
  private static final int SALT_BYTES = 16;
  private static final int HASH_BYTES = 32;
  private static final Base64.Encoder B64 = Base64.getEncoder().withoutPadding();
  private static final Base64.Decoder B64D = Base64.getDecoder();

  /**
   * Argon2's memory, kept by each hashing thread from one hash to the next. Without it every hash
   * allocates its whole cost (19 MiB at the default) in 1 KiB blocks that live as long as the hash:
   * measured here, 20 hashes made 64 young and 9 full collections of a small-young-generation heap,
   * pauses the event loops share, against 6 young and none with the blocks kept (and hashing 30%
   * faster). Costs hashWorkers x the hash memory, at most {@link #MAX_KEPT_BLOCKS} KiB a thread.
   */
  private static final int MAX_KEPT_BLOCKS = 64 * 1024;
  private static final ThreadLocal<Argon2BytesGenerator.BlockPool> BLOCKS =
      ThreadLocal.withInitial(() -> new Argon2BytesGenerator.FixedBlockPool(MAX_KEPT_BLOCKS));

  private final Params params;
  private final SecureRandom random = new SecureRandom();

  public PasswordHasher(Params params) {
    this.params = params;
  }

  public Params params() {
    return params;
  }

  public String hash(String password) {
    byte[] salt = new byte[SALT_BYTES];
    random.nextBytes(salt);
    byte[] out = argon2(password, salt, params, HASH_BYTES);
    return PREFIX + "m=" + params.memoryKiB() + ",t=" + params.iterations() + ",p=" + params.parallelism()
        + "$" + B64.encodeToString(salt) + "$" + B64.encodeToString(out);
  }

  /** True when {@code stored} is one of our hashes (anything else in the column is a legacy plain-text password). */
  public static boolean isHash(String stored) {
    return stored != null && parse(stored) != null;
  }

  /**
   * Checks a password against a stored value: one of our hashes, or a plain-text password left by
   * the original server (compared in constant time; the caller then replaces it with a hash).
   */
  public static boolean verify(String password, String stored) {
    if (stored == null || password == null) {
      return false;
    }
    Parsed p = parse(stored);
    if (p == null) {
      return MessageDigest.isEqual(password.getBytes(StandardCharsets.UTF_8), stored.getBytes(StandardCharsets.UTF_8));
    }
    byte[] actual = argon2(password, p.salt, p.params, p.hash.length);
    return MessageDigest.isEqual(actual, p.hash);
  }

  private record Parsed(Params params, byte[] salt, byte[] hash) {
  }

  private static Parsed parse(String stored) {
    if (!stored.startsWith(PREFIX)) {
      return null;
    }
    String[] parts = stored.substring(PREFIX.length()).split("\\$", -1);
    if (parts.length != 3) {
      return null;
    }
    try {
      int m = -1, t = -1, p = -1;
      for (String kv : parts[0].split(",")) {
        String[] pair = kv.split("=", 2);
        int v = Integer.parseInt(pair[1]);
        switch (pair[0]) {
          case "m" -> m = v;
          case "t" -> t = v;
          case "p" -> p = v;
          default -> {
            return null;
          }
        }
      }
      if (m < 8 || t < 1 || p < 1 || m < 8 * p) {
        return null;
      }
      byte[] salt = B64D.decode(parts[1]);
      byte[] hash = B64D.decode(parts[2]);
      if (salt.length < 8 || hash.length < 16) {
        return null;
      }
      return new Parsed(new Params(m, t, p), salt, hash);
    } catch (RuntimeException e) {
      return null;
    }
  }

  private static byte[] argon2(String password, byte[] salt, Params params, int length) {
    Argon2Parameters parameters = new Argon2Parameters.Builder(Argon2Parameters.ARGON2_id)
        .withVersion(Argon2Parameters.ARGON2_VERSION_13)
        .withMemoryAsKB(params.memoryKiB())
        .withIterations(params.iterations())
        .withParallelism(params.parallelism())
        .withSalt(salt)
        .withBlockPool(BLOCKS.get())
        .build();
    Argon2BytesGenerator generator = new Argon2BytesGenerator();
    generator.init(parameters);
    byte[] out = new byte[length];
    generator.generateBytes(password.getBytes(StandardCharsets.UTF_8), out);
    return out;
  }
}
