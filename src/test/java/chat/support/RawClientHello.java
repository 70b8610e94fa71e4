package chat.support;

import java.io.ByteArrayOutputStream;
import java.security.SecureRandom;

/**
 * A TLS ClientHello built byte by byte, so a test can offer an old protocol version that the
 * JDK's own client would refuse to send. Offers ECDHE suites with AES-GCM (TLS 1.2) and AES-CBC
 * (TLS 1.0/1.1), P-256, and ECDSA/RSA signatures: what a server with an EC or RSA certificate
 * can answer at either version.
 */
public final class RawClientHello {

  private RawClientHello() {
  }

  /** @param version the client_version: 0x0302 TLS 1.1, 0x0303 TLS 1.2 */
  public static byte[] bytes(int version) {
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    u16(body, version);
    byte[] random = new byte[32];
    new SecureRandom().nextBytes(random);
    body.writeBytes(random);
    body.write(0); // no session id
    int[] suites = {0xC02B, 0xC02F, 0xC009, 0xC013, 0x002F};
    u16(body, suites.length * 2);
    for (int s : suites) {
      u16(body, s);
    }
    body.write(1); // compression methods: null only
    body.write(0);

    ByteArrayOutputStream ext = new ByteArrayOutputStream();
    extension(ext, 0x000a, new byte[] {0, 2, 0, 0x17});             // supported_groups: secp256r1
    extension(ext, 0x000b, new byte[] {1, 0});                      // ec_point_formats: uncompressed
    extension(ext, 0x000d, new byte[] {0, 6, 4, 3, 8, 4, 4, 1});    // signature_algorithms
    extension(ext, 0xff01, new byte[] {0});                         // renegotiation_info (empty)
    u16(body, ext.size());
    body.writeBytes(ext.toByteArray());

    ByteArrayOutputStream handshake = new ByteArrayOutputStream();
    handshake.write(1); // client_hello
    u24(handshake, body.size());
    handshake.writeBytes(body.toByteArray());

    ByteArrayOutputStream record = new ByteArrayOutputStream();
    record.write(0x16); // handshake
    u16(record, 0x0301);
    u16(record, handshake.size());
    record.writeBytes(handshake.toByteArray());
    return record.toByteArray();
  }

  private static void extension(ByteArrayOutputStream out, int type, byte[] data) {
    u16(out, type);
    u16(out, data.length);
    out.writeBytes(data);
  }

  private static void u16(ByteArrayOutputStream out, int v) {
    out.write((v >> 8) & 0xff);
    out.write(v & 0xff);
  }

  private static void u24(ByteArrayOutputStream out, int v) {
    out.write((v >> 16) & 0xff);
    u16(out, v & 0xffff);
  }
}
