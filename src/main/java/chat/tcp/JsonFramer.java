package chat.tcp;

import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;

/**
 * Cuts a byte stream into JSON objects (PROTOCOL.md §4.1): each frame runs from a top-level
 * {@code {} to its matching {@code }}, braces inside strings not counted. It works on bytes, so a
 * multi-byte UTF-8 character split across reads needs no care: every structural character is
 * ASCII and never appears inside a multi-byte sequence.
 *
 * <ul>
 *   <li>Whitespace between objects is skipped.</li>
 *   <li>Any other byte outside an object starts garbage: reported once, then everything up to
 *       the end of its line is discarded.</li>
 *   <li>A frame longer than {@code maxFrameBytes} is reported as too large and the framer stops
 *       for good; it never buffers more than {@code maxFrameBytes} of one frame.</li>
 * </ul>
 *
 * The state is a handful of fields; bytes are only kept while an object spans reads.
 */
public final class JsonFramer implements Handler<Buffer> {

  /** Receives the framer's findings, in stream order. */
  public interface Sink {
    /** One complete, brace-balanced object (not yet checked to be valid JSON). */
    void onFrame(Buffer frame);

    /** Bytes outside any object; the rest of their line is being discarded. */
    void onGarbage();

    /** A frame grew past the limit; nothing more will be reported. */
    void onTooLarge();
  }

  private final int maxFrameBytes;
  private final Sink sink;

  private int depth;
  private boolean inString;
  private boolean escaped;
  private boolean skippingLine;
  private boolean stopped;
  /** The start of the current object when it began in an earlier read; null otherwise. */
  private Buffer partial;

  public JsonFramer(int maxFrameBytes, Sink sink) {
    this.maxFrameBytes = maxFrameBytes;
    this.sink = sink;
  }

  @Override
  public void handle(Buffer chunk) {
    if (stopped) {
      return;
    }
    int length = chunk.length();
    int start = depth > 0 ? 0 : -1;
    for (int i = 0; i < length; i++) {
      byte b = chunk.getByte(i);
      if (depth == 0) {
        if (skippingLine) {
          if (b == '\n') {
            skippingLine = false;
          }
        } else if (b == '{') {
          depth = 1;
          start = i;
        } else if (b != ' ' && b != '\n' && b != '\r' && b != '\t') {
          skippingLine = true;
          sink.onGarbage();
          if (stopped) {
            return;
          }
        }
      } else {
        if (inString) {
          if (escaped) {
            escaped = false;
          } else if (b == '\\') {
            escaped = true;
          } else if (b == '"') {
            inString = false;
          }
        } else if (b == '"') {
          inString = true;
        } else if (b == '{') {
          depth++;
        } else if (b == '}' && --depth == 0) {
          Buffer frame;
          if (partial == null) {
            frame = chunk.slice(start, i + 1);
          } else {
            frame = partial.appendBuffer(chunk, 0, i + 1);
            partial = null;
          }
          if (frame.length() > maxFrameBytes) {
            tooLarge();
            return;
          }
          sink.onFrame(frame);
          if (stopped) {
            return;
          }
          continue;
        }
        if ((partial == null ? 0 : partial.length()) + (i - start + 1) > maxFrameBytes) {
          tooLarge();
          return;
        }
      }
    }
    if (depth > 0) {
      if (partial == null) {
        partial = Buffer.buffer(Math.min(maxFrameBytes, 2 * (length - start))).appendBuffer(chunk, start, length - start);
      } else {
        partial.appendBuffer(chunk, start, length - start);
      }
    }
  }

  /** Stops the framer: later input is ignored (the connection is closing). */
  public void stop() {
    stopped = true;
    partial = null;
  }

  private void tooLarge() {
    stop();
    sink.onTooLarge();
  }
}
