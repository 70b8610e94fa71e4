package chat.net;

import chat.config.ChatConfig;
import chat.config.ConfigException;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.TCPSSLOptions;

import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.X509KeyManager;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The TLS settings of the TLS listeners ({@code tls.*}): the PEM certificate chain and private
 * key, read and checked once at startup, and TLS 1.2 and 1.3 only. Every problem with the files
 * is a {@link ConfigException} whose one-line message names the key and the file.
 */
public final class Tls {

  /** TLS 1.0 and 1.1 are refused (RFC 8996). */
  public static final Set<String> PROTOCOLS = new LinkedHashSet<>(List.of("TLSv1.2", "TLSv1.3"));

  private final PemKeyCertOptions keyCert;
  private final X509Certificate certificate;

  private Tls(PemKeyCertOptions keyCert, X509Certificate certificate) {
    this.keyCert = keyCert;
    this.certificate = certificate;
  }

  /** The server certificate (the first of the chain). */
  public X509Certificate certificate() {
    return certificate;
  }

  /** Switches TLS on for a listener's options, with this certificate and key. */
  public <T extends TCPSSLOptions> T applyTo(T options) {
    options.setSsl(true);
    options.setKeyCertOptions(keyCert.copy());
    options.setEnabledSecureTransportProtocols(new LinkedHashSet<>(PROTOCOLS));
    return options;
  }

  /**
   * Reads {@code tls.certFile} and {@code tls.keyFile} (relative paths: the working directory)
   * and checks that they hold a certificate and the private key that belongs to it.
   *
   * @throws ConfigException naming the key and the file, on any problem
   */
  public static Tls load(Vertx vertx, ChatConfig config) {
    Path certFile = Path.of(config.tlsCertFile).toAbsolutePath();
    Path keyFile = Path.of(config.tlsKeyFile).toAbsolutePath();
    byte[] certPem = read("tls.certFile", "certificate", certFile);
    byte[] keyPem = read("tls.keyFile", "private key", keyFile);

    List<X509Certificate> chain;
    try {
      Collection<? extends Certificate> certs = CertificateFactory.getInstance("X.509")
          .generateCertificates(new ByteArrayInputStream(certPem));
      chain = certs.stream().filter(X509Certificate.class::isInstance).map(X509Certificate.class::cast).toList();
    } catch (Exception e) {
      chain = List.of();
    }
    if (chain.isEmpty()) {
      throw new ConfigException("configuration key 'tls.certFile': " + certFile
          + " holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
    }
    X509Certificate cert = chain.get(0);

    PemKeyCertOptions keyCert = new PemKeyCertOptions().setCertValue(Buffer.buffer(certPem))
        .setKeyValue(Buffer.buffer(keyPem));
    PrivateKey key;
    try {
      key = privateKeyFor(cert, keyCert.getKeyManagerFactory(vertx));
    } catch (Exception e) {
      if (String.valueOf(e.getMessage()).contains("does not match")) {
        throw mismatch(certFile, keyFile); // e.g. an RSA key with an EC certificate
      }
      throw new ConfigException("configuration key 'tls.keyFile': " + keyFile
          + " holds no usable PEM private key (an unencrypted RSA or EC key is needed): " + oneLine(e));
    }
    if (key == null || !belongTogether(key, cert)) {
      throw mismatch(certFile, keyFile);
    }
    return new Tls(keyCert, cert);
  }

  private static ConfigException mismatch(Path certFile, Path keyFile) {
    return new ConfigException("configuration keys 'tls.certFile' and 'tls.keyFile': the private key in " + keyFile
        + " does not belong to the certificate in " + certFile);
  }

  private static byte[] read(String key, String what, Path file) {
    String problem;
    try {
      if (Files.isDirectory(file)) {
        problem = "it is a directory";
      } else {
        return Files.readAllBytes(file);
      }
    } catch (NoSuchFileException e) {
      problem = "no such file";
    } catch (AccessDeniedException e) {
      problem = "permission denied";
    } catch (IOException e) {
      problem = oneLine(e);
    }
    throw new ConfigException("configuration key '" + key + "': cannot read the PEM " + what + " file " + file
        + " (" + problem + ")");
  }

  /** The private key the key manager holds for the certificate's key type, or null. */
  private static PrivateKey privateKeyFor(X509Certificate cert, KeyManagerFactory kmf) {
    String keyType = cert.getPublicKey().getAlgorithm();
    for (KeyManager m : kmf.getKeyManagers()) {
      if (m instanceof X509KeyManager x509) {
        String[] aliases = x509.getServerAliases(keyType, null);
        if (aliases != null && aliases.length > 0) {
          return x509.getPrivateKey(aliases[0]);
        }
      }
    }
    return null;
  }

  /** Signs a random challenge with the key and verifies it with the certificate's public key. */
  private static boolean belongTogether(PrivateKey key, X509Certificate cert) {
    String algorithm = switch (key.getAlgorithm()) {
      case "RSA" -> "SHA256withRSA";
      case "EC" -> "SHA256withECDSA";
      default -> null;
    };
    if (algorithm == null) {
      return true; // Vert.x loads RSA and EC keys only; nothing else reaches here
    }
    try {
      byte[] challenge = new byte[32];
      new SecureRandom().nextBytes(challenge);
      Signature signer = Signature.getInstance(algorithm);
      signer.initSign(key);
      signer.update(challenge);
      byte[] signature = signer.sign();
      Signature verifier = Signature.getInstance(algorithm);
      verifier.initVerify(cert.getPublicKey());
      verifier.update(challenge);
      return verifier.verify(signature);
    } catch (Exception e) {
      return false;
    }
  }

  private static String oneLine(Throwable e) {
    String m = e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    return m.replaceAll("\\s+", " ").trim();
  }
}
