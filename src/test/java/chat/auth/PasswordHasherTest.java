package chat.auth;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.Base64;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

class PasswordHasherTest {

  /** The PHC string of Argon2id as the server writes it: parameters, 16-byte salt, 32-byte hash. */
  private static final Pattern PHC = Pattern.compile(
      "\\$argon2id\\$v=19\\$m=(\\d+),t=(\\d+),p=(\\d+)\\$([A-Za-z0-9+/]+)\\$([A-Za-z0-9+/]+)");

  private final PasswordHasher low = new PasswordHasher(PasswordHasher.Params.LOW);

  @Test
  @DisplayName("a hash is an Argon2id PHC string carrying its parameters, a 16-byte salt and a 32-byte hash")
  void hashFormat() {
    String hash = low.hash("correct horse");
    Matcher m = PHC.matcher(hash);
    assertTrue(m.matches(), hash);
    assertEquals(PasswordHasher.Params.LOW.memoryKiB(), Integer.parseInt(m.group(1)));
    assertEquals(PasswordHasher.Params.LOW.iterations(), Integer.parseInt(m.group(2)));
    assertEquals(PasswordHasher.Params.LOW.parallelism(), Integer.parseInt(m.group(3)));
    assertEquals(16, Base64.getDecoder().decode(m.group(4)).length);
    assertEquals(32, Base64.getDecoder().decode(m.group(5)).length);
    assertFalse(hash.contains("correct horse"));
    assertTrue(PasswordHasher.isHash(hash));
  }

  @Test
  @DisplayName("verify accepts the right password and refuses a wrong, empty, differently-cased or null one")
  void verifyTrueAndFalse() {
    String hash = low.hash("correct horse");
    assertTrue(PasswordHasher.verify("correct horse", hash));
    assertFalse(PasswordHasher.verify("correct horsE", hash));
    assertFalse(PasswordHasher.verify("correct horse ", hash));
    assertFalse(PasswordHasher.verify("", hash));
    assertFalse(PasswordHasher.verify(null, hash));
    assertFalse(PasswordHasher.verify("correct horse", null));
    // the hash string itself is not a password
    assertFalse(PasswordHasher.verify(hash, hash));
  }

  @Test
  @DisplayName("non-ASCII passwords hash and verify as UTF-8")
  void unicodePassword() {
    String hash = low.hash("пароль-密码-🔑");
    assertTrue(PasswordHasher.verify("пароль-密码-🔑", hash));
    assertFalse(PasswordHasher.verify("пароль-密码-", hash));
  }

  @Test
  @DisplayName("equal passwords get different salts and so different hashes, and both verify")
  void differentSalts() {
    String a = low.hash("same password");
    String b = low.hash("same password");
    assertNotEquals(a, b);
    Matcher ma = PHC.matcher(a);
    Matcher mb = PHC.matcher(b);
    assertTrue(ma.matches());
    assertTrue(mb.matches());
    assertNotEquals(ma.group(4), mb.group(4), "salts must differ");
    assertTrue(PasswordHasher.verify("same password", a));
    assertTrue(PasswordHasher.verify("same password", b));
  }

  @Test
  @DisplayName("a hash made with other parameters still verifies: the parameters are read from the stored string")
  void parametersComeFromTheStoredString() {
    String owasp = new PasswordHasher(PasswordHasher.Params.OWASP).hash("pw-owasp");
    assertTrue(owasp.startsWith("$argon2id$v=19$m=19456,t=2,p=1$"), owasp);
    String custom = new PasswordHasher(new PasswordHasher.Params(64, 3, 2)).hash("pw-custom");
    assertTrue(custom.startsWith("$argon2id$v=19$m=64,t=3,p=2$"), custom);

    // verify is static: it can only know the cost from the string
    assertTrue(PasswordHasher.verify("pw-owasp", owasp));
    assertFalse(PasswordHasher.verify("pw-custom", owasp));
    assertTrue(PasswordHasher.verify("pw-custom", custom));
    assertFalse(PasswordHasher.verify("pw-owasp", custom));

    // the parameters really are part of the hash: the same salt and hash under other parameters fail
    String tampered = custom.replace("m=64,t=3,p=2", "m=64,t=2,p=2");
    assertTrue(PasswordHasher.isHash(tampered));
    assertFalse(PasswordHasher.verify("pw-custom", tampered));
  }

  @Test
  @DisplayName("a legacy plain-text password verifies against itself only, exactly")
  void legacyPlainText() {
    assertFalse(PasswordHasher.isHash("hunter2"));
    assertTrue(PasswordHasher.verify("hunter2", "hunter2"));
    assertFalse(PasswordHasher.verify("Hunter2", "hunter2"));
    assertFalse(PasswordHasher.verify("hunter", "hunter2"));
    assertFalse(PasswordHasher.verify("hunter2 ", "hunter2"));
    assertTrue(PasswordHasher.verify("mot de passe é", "mot de passe é"));
  }

  @Test
  @DisplayName("isHash refuses null, garbage, other algorithms and structurally truncated hash strings")
  void isHashOnGarbage() {
    String good = low.hash("pw");
    String[] notHashes = {
        null, "", "$", "$argon2id$", "$argon2id$v=19$", "$argon2id$v=19$m=256,t=1,p=1",
        "$argon2id$v=19$m=256,t=1,p=1$", "$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHRzYWx0", // no hash part
        good.substring(0, good.lastIndexOf('$')), // cut before the hash
        good.substring(0, good.lastIndexOf('$') + 1), // empty hash
        good.substring(0, good.lastIndexOf('$') + 10), // hash cut to under 16 bytes
        good.substring(0, good.indexOf("$", "$argon2id$v=19$".length()) + 5), // cut inside the salt
        good.replace("$argon2id$", "$argon2i$"), good.replace("$argon2id$", "$argon2d$"),
        good.replace("v=19", "v=16"), good.replace("m=256", "m=abc"), good.replace("m=256,", ""),
        good.replace("t=1", "t=0"), good.replace("p=1", "p=0"), good.replace("m=256", "m=4"),
        good.replace("m=256", "x=256"), good + "$extra", " " + good,
        "$2b$12$abcdefghijklmnopqrstuuQn4n3KkQZK3xQz1Yy0Y7H1mV3Yk8kq6", // bcrypt
        "pbkdf2_sha256$600000$salt$hash",
        "$argon2id$v=19$m=256,t=1,p=1$!!!not-base64!!!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (String s : notHashes) {
      if (PasswordHasher.isHash(s)) {
        fail("isHash accepted " + s);
      }
    }
  }

  @Test
  @DisplayName("a hash with its tail cut off never verifies, even with the right password")
  void tailTruncatedHashNeverVerifies() {
    String good = low.hash("right password");
    for (int cut = 1; cut <= 8; cut++) {
      String truncated = good.substring(0, good.length() - cut);
      assertFalse(PasswordHasher.verify("right password", truncated), "cut " + cut + ": " + truncated);
    }
  }

  @Test
  @DisplayName("hash refuses nothing it will later verify: an empty and a 1024-character password round-trip")
  void edgeLengths() {
    String longPw = "x".repeat(1023) + "y";
    String h = low.hash(longPw);
    assertTrue(PasswordHasher.verify(longPw, h));
    assertFalse(PasswordHasher.verify("x".repeat(1024), h));
    String empty = low.hash("");
    assertTrue(PasswordHasher.isHash(empty));
    assertTrue(PasswordHasher.verify("", empty));
    assertFalse(PasswordHasher.verify(" ", empty));
  }
}
