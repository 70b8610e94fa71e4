package chat.tcp;

import io.vertx.core.buffer.Buffer;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The framer alone (PROTOCOL.md §4.1), fed buffers by hand. Every event is recorded in stream
 * order as {@code frame:<text>}, {@code garbage} or {@code tooLarge}.
 */
class JsonFramerTest {

  private static final int MAX = 64;

  /** Records events; copies each frame at once, since the framer may hand out slices of its input. */
  private static final class Recorder implements JsonFramer.Sink {
    final List<String> events = new ArrayList<>();

    @Override
    public void onFrame(Buffer frame) {
      events.add("frame:" + new String(frame.getBytes(), StandardCharsets.UTF_8));
    }

    @Override
    public void onGarbage() {
      events.add("garbage");
    }

    @Override
    public void onTooLarge() {
      events.add("tooLarge");
    }
  }

  private final Recorder sink = new Recorder();

  private JsonFramer framer(int max) {
    return new JsonFramer(max, sink);
  }

  private static void feed(JsonFramer framer, String text) {
    framer.handle(Buffer.buffer(text.getBytes(StandardCharsets.UTF_8)));
  }

  private static void feedBytes(JsonFramer framer, byte[] bytes) {
    framer.handle(Buffer.buffer(bytes));
  }

  private void assertEvents(String... expected) {
    assertEquals(Arrays.asList(expected), sink.events);
  }

  /** A brace-balanced object of exactly {@code size} bytes: {"p":"xxx...x"}. */
  private static String objectOfSize(int size) {
    String head = "{\"p\":\"";
    String tail = "\"}";
    return head + "x".repeat(size - head.length() - tail.length()) + tail;
  }

  @Test
  @DisplayName("two objects in one chunk are delivered as two frames, in order")
  void twoObjectsInOneChunk() {
    JsonFramer f = framer(MAX);
    feed(f, "{\"a\":1}{\"b\":2}");
    assertEvents("frame:{\"a\":1}", "frame:{\"b\":2}");
  }

  @Test
  @DisplayName("one object fed byte by byte is delivered once, whole, after its last byte")
  void oneObjectByteByByte() {
    JsonFramer f = framer(MAX);
    byte[] bytes = "{\"type\":\"chat\",\"n\":{\"x\":[1,2]}}".getBytes(StandardCharsets.UTF_8);
    for (int i = 0; i < bytes.length; i++) {
      feedBytes(f, new byte[] {bytes[i]});
      if (i < bytes.length - 1) {
        assertEvents();
      }
    }
    assertEvents("frame:{\"type\":\"chat\",\"n\":{\"x\":[1,2]}}");
  }

  @Test
  @DisplayName("braces and quotes inside strings do not end or open an object")
  void bracesInsideStrings() {
    JsonFramer f = framer(MAX);
    feed(f, "{\"m\":\"}{}}{\"}{\"n\":\"{{{\"}");
    assertEvents("frame:{\"m\":\"}{}}{\"}", "frame:{\"n\":\"{{{\"}");
  }

  @Test
  @DisplayName("escaped quotes and backslashes inside strings are handled")
  void escapedQuotesAndBackslashes() {
    JsonFramer f = framer(MAX);
    // {"m":"a\\\"}"}  : a, an escaped backslash, an escaped quote, a brace, then the string ends
    String first = "{\"m\":\"a\\\\\\\"}\"}";
    // {"m":"\\"} : the string is one escaped backslash, so the quote after it ends the string
    String second = "{\"m\":\"\\\\\"}";
    feed(f, first + second);
    assertEvents("frame:" + first, "frame:" + second);
  }

  @Test
  @DisplayName("an escape split across chunks is still honoured")
  void escapeSplitAcrossChunks() {
    JsonFramer f = framer(MAX);
    feed(f, "{\"m\":\"a\\");
    feed(f, "\"}\"}");
    assertEvents("frame:{\"m\":\"a\\\"}\"}");
  }

  @Test
  @DisplayName("nested objects form one frame that ends at the matching brace")
  void nestedObjects() {
    JsonFramer f = framer(MAX);
    feed(f, "{\"a\":{\"b\":{\"c\":{}}},\"d\":1}{}");
    assertEvents("frame:{\"a\":{\"b\":{\"c\":{}}},\"d\":1}", "frame:{}");
  }

  @Test
  @DisplayName("multi-byte UTF-8 split at every byte position across two chunks arrives intact")
  void multiByteUtf8SplitEverywhere() {
    String object = "{\"message\":\"h\u00e9llo \uD83D\uDE00\"}";
    byte[] bytes = object.getBytes(StandardCharsets.UTF_8);
    for (int cut = 0; cut <= bytes.length; cut++) {
      sink.events.clear();
      JsonFramer f = framer(MAX);
      feedBytes(f, Arrays.copyOfRange(bytes, 0, cut));
      feedBytes(f, Arrays.copyOfRange(bytes, cut, bytes.length));
      assertEquals(List.of("frame:" + object), sink.events, "cut at byte " + cut);
    }
  }

  @Test
  @DisplayName("whitespace and newlines between objects are ignored")
  void whitespaceBetweenObjectsIgnored() {
    JsonFramer f = framer(MAX);
    feed(f, "  \n\r\n\t{\"a\":1}\n\n   \t\r\n{\"b\":2}\n  ");
    feed(f, "\n\n");
    assertEvents("frame:{\"a\":1}", "frame:{\"b\":2}");
  }

  @Test
  @DisplayName("a garbage line gives one garbage event, the rest of its line is discarded, then the next object is framed")
  void garbageLineThenObject() {
    JsonFramer f = framer(MAX);
    feed(f, "hello world {\"dropped\":1} more junk }}}\n{\"a\":1}");
    assertEvents("garbage", "frame:{\"a\":1}");
  }

  @Test
  @DisplayName("a garbage line split across chunks is still one event, and the line ends in a later chunk")
  void garbageLineAcrossChunks() {
    JsonFramer f = framer(MAX);
    feed(f, "junk {\"x\"");
    feed(f, ":1} still junk");
    assertEvents("garbage");
    feed(f, "\n{\"a\":1}");
    assertEvents("garbage", "frame:{\"a\":1}");
  }

  @Test
  @DisplayName("garbage right after an object on the same line is reported once")
  void garbageAfterObject() {
    JsonFramer f = framer(MAX);
    feed(f, "{\"a\":1}xyz{\"b\":2}\n{\"c\":3}");
    assertEvents("frame:{\"a\":1}", "garbage", "frame:{\"c\":3}");
  }

  @Test
  @DisplayName("a stray }, [1,2], \"hi\", null or 123 outside objects each give one garbage event per line")
  void nonObjectTextOutsideObjects() {
    JsonFramer f = framer(MAX);
    feed(f, "}\n[1,2]\n\"hi\"\nnull\n123\n{\"ok\":true}");
    assertEvents("garbage", "garbage", "garbage", "garbage", "garbage", "frame:{\"ok\":true}");
  }

  @Test
  @DisplayName("a frame of exactly maxFrameBytes is delivered")
  void frameAtLimitDelivered() {
    JsonFramer f = framer(MAX);
    String exact = objectOfSize(MAX);
    assertEquals(MAX, exact.length());
    feed(f, exact);
    feed(f, exact.substring(0, 10));
    feed(f, exact.substring(10));
    assertEvents("frame:" + exact, "frame:" + exact);
  }

  @Test
  @DisplayName("a frame one byte over the limit in one chunk is reported too large, once, and nothing follows")
  void frameOverLimitInOneChunk() {
    JsonFramer f = framer(MAX);
    feed(f, objectOfSize(MAX + 1) + "{\"after\":1}\ngarbage\n");
    assertEvents("tooLarge");
    feed(f, "{\"later\":1}junk\n{}");
    assertEvents("tooLarge");
  }

  @Test
  @DisplayName("a frame that grows past the limit across chunks is reported too large, and nothing follows")
  void frameOverLimitAcrossChunks() {
    JsonFramer f = framer(MAX);
    String big = objectOfSize(MAX + 1);
    feed(f, big.substring(0, 20));
    feed(f, big.substring(20, 40));
    assertEvents();
    feed(f, big.substring(40));
    assertEvents("tooLarge");
    feed(f, "{\"a\":1}");
    feed(f, "x\n");
    assertEvents("tooLarge");
  }

  @Test
  @DisplayName("an oversized frame after a good one: the good one is delivered, then too large")
  void goodFrameThenOversized() {
    JsonFramer f = framer(MAX);
    feed(f, "{\"a\":1}" + objectOfSize(MAX + 1));
    assertEvents("frame:{\"a\":1}", "tooLarge");
  }

  @Test
  @DisplayName("the framer never holds more than the limit: too large is reported at byte limit+1, before the object closes")
  void neverHoldsMoreThanLimit() {
    JsonFramer f = framer(MAX);
    String open = "{\"p\":\"" + "y".repeat(MAX - 6);
    assertEquals(MAX, open.length());
    // exactly the limit, still open: nothing to report yet
    for (int i = 0; i < open.length(); i += 7) {
      feed(f, open.substring(i, Math.min(open.length(), i + 7)));
    }
    assertEvents();
    // one more byte of the same unfinished object: reported at once, without waiting for its end
    feed(f, "y");
    assertEvents("tooLarge");
  }

  @Test
  @DisplayName("a huge unterminated object in one chunk is reported too large once, without waiting for its end")
  void hugeUnterminatedChunk() {
    JsonFramer f = framer(MAX);
    feed(f, "{\"p\":\"" + "z".repeat(100 * MAX));
    assertEvents("tooLarge");
    feed(f, "\"}");
    assertEvents("tooLarge");
  }

  @Test
  @DisplayName("nested depth and open strings spanning many chunks still close correctly")
  void stateSpansChunks() {
    JsonFramer f = framer(MAX);
    feed(f, "{\"a\":{\"s\":\"}");
    feed(f, "{\"");
    feed(f, ",\"b\":{}");
    feed(f, "}");
    assertEvents();
    feed(f, "}");
    assertEvents("frame:{\"a\":{\"s\":\"}{\",\"b\":{}}}");
  }
}
