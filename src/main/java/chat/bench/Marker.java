package chat.bench;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The marker at the start of every chat text the load generator sends, so that a receiver can
 * tell from the raw bytes of a broadcast who sent it, which one it is and when it left:
 * {@code @@L} + 16 hex digits of System.nanoTime at sending + 4 hex digits of the sender id +
 * 8 hex digits of the sender's sequence number, padded with {@code x} to the payload size.
 * Reading it is on the hot path (once per delivery), so it is read 8 digits at a time.
 */
final class Marker {

  static final int LENGTH = 31;
  /** Offsets in the marker: the send time (16 digits), the sender id (4) and the sequence number (8). */
  static final int TIME = 3;
  static final int SENDER = 19;
  static final int SEQ = 23;
  /** {@link #hexDigits} of 8 hex digits. */
  static final long ALL_HEX = 0x8080808080808080L;

  private static final byte[] DIGITS = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
  private static final VarHandle LONGS = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

  private Marker() {
  }

  /** A chat text of {@code payload} characters: the marker with zeros, then padding. */
  static String placeholder(int payload) {
    return "@@L" + "0".repeat(LENGTH - 3) + "x".repeat(payload - LENGTH);
  }

  /** Writes the marker's digits into a placeholder that starts at {@code t[at]}. */
  static void write(byte[] t, int at, long sentNanos, int sender, int seq) {
    putHex(t, at + TIME, sentNanos, 16);
    putHex(t, at + SENDER, sender, 4);
    putHex(t, at + SEQ, seq & 0xffffffffL, 8);
  }

  private static void putHex(byte[] t, int at, long v, int digits) {
    for (int i = digits - 1; i >= 0; i--) {
      t[at + i] = DIGITS[(int) (v & 15)];
      v >>>= 4;
    }
  }

  /** 8 bytes of b from {@code at}, the first in the lowest byte. */
  static long word(byte[] b, int at) {
    return (long) LONGS.get(b, at);
  }

  /**
   * The top bit of each byte of x set where that byte is a lowercase hex digit (0-9, a-f), all 8
   * at once: adding 0x80 - bound to a byte below 0x80 sets its top bit iff the byte is >= bound.
   */
  static long hexDigits(long x) {
    long digit = (x + 0x5050505050505050L) & ~(x + 0x4646464646464646L);
    long letter = (x + 0x1f1f1f1f1f1f1f1fL) & ~(x + 0x1919191919191919L);
    return (digit | letter) & ~x & ALL_HEX;
  }

  /** The number that 8 hex digits (checked with {@link #hexDigits}) spell, the first byte the most significant. */
  static long unhex(long x) {
    x = (x & 0x0f0f0f0f0f0f0f0fL) + ((x & 0x4040404040404040L) >>> 6) * 9; // a-f: low 4 bits + 9
    x = (x & 0x000f000f000f000fL) << 4 | (x & 0x0f000f000f000f00L) >>> 8;
    x = (x & 0x000000ff000000ffL) << 8 | (x & 0x00ff000000ff0000L) >>> 16;
    return (x & 0x000000000000ffffL) << 16 | (x & 0x0000ffff00000000L) >>> 32;
  }
}
