package chat.support;

import io.vertx.core.json.JsonObject;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A plain blocking TCP client, as a third-party client would be: java.net sockets, raw bytes
 * out, newline-delimited JSON in. It shares no code with the server's framer or replies.
 */
public final class LineClient implements AutoCloseable {

  private final Socket socket;
  private final InputStream in;
  private final OutputStream out;

  public LineClient(int port) {
    this(connect(port));
  }

  /** Over a socket already connected (and, for TLS, handshaken: see {@link TlsLineClient}). */
  public LineClient(Socket connected) {
    try {
      socket = connected;
      socket.setSoTimeout(5000);
      in = new BufferedInputStream(socket.getInputStream());
      out = socket.getOutputStream();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A plain socket connected to 127.0.0.1:{@code port}. */
  static Socket connect(int port) {
    try {
      Socket s = new Socket();
      s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
      s.setTcpNoDelay(true);
      return s;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public Socket socket() {
    return socket;
  }

  public LineClient send(String text) {
    return sendBytes(text.getBytes(StandardCharsets.UTF_8));
  }

  public LineClient send(JsonObject message) {
    return send(message.encode());
  }

  public LineClient sendBytes(byte[] bytes) {
    try {
      out.write(bytes);
      out.flush();
      return this;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The next line the server sent, without its newline; fails after 5 s or at end of stream. */
  public String readLine() {
    try {
      ByteArrayOutputStream line = new ByteArrayOutputStream();
      int b;
      while ((b = in.read()) != -1) {
        if (b == '\n') {
          return line.toString(StandardCharsets.UTF_8);
        }
        line.write(b);
      }
      throw new AssertionError("connection closed by the server" + (line.size() > 0 ? " after '" + line + "'" : ""));
    } catch (SocketTimeoutException e) {
      throw new AssertionError("no reply within 5 s");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The next message, as JSON. */
  public JsonObject read() {
    return new JsonObject(readLine());
  }

  /** The next message that is not a {@code {"type":"ping"}} probe. */
  public JsonObject readSkippingPings() {
    while (true) {
      JsonObject m = read();
      if (!"ping".equals(m.getString("type"))) {
        return m;
      }
    }
  }

  /** Asserts that the next line is exactly {@code expectedJson} (compact, same key order). */
  public LineClient expect(String expectedJson) {
    assertEquals(expectedJson, readLine());
    return this;
  }

  /** Asserts that nothing arrives within {@code millis}. */
  public void expectSilence(long millis) {
    try {
      socket.setSoTimeout((int) millis);
      int b = in.read();
      if (b == -1) {
        fail("connection closed instead of staying silent");
      }
      fail("unexpected data from the server, starting with '" + (char) b + "'");
    } catch (SocketTimeoutException expected) {
      // silence, as wanted
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } finally {
      try {
        socket.setSoTimeout(5000);
      } catch (IOException ignored) {
        // closed
      }
    }
  }

  /** Asserts that the server closes the connection within 5 s (after any data still in flight). */
  public void expectClosed() {
    try {
      while (in.read() != -1) {
        // drain what was sent before the close
      }
    } catch (SocketTimeoutException e) {
      fail("the server did not close the connection within 5 s");
    } catch (IOException e) {
      // a reset also means closed
    }
  }

  /** Registers and logs in on this connection; returns the token. */
  public String registerAndLogin(String username, String password) {
    send(new JsonObject().put("type", "register").put("username", username).put("password", password));
    assertEquals("register_1", read().getString("type"));
    return login(username, password);
  }

  /** Logs in on this connection, asserting success; returns the token. */
  public String login(String username, String password) {
    send(new JsonObject().put("type", "login").put("username", username).put("password", password));
    JsonObject reply = readSkippingPings();
    assertEquals("success", reply.getString("status"), reply.encode());
    return reply.getString("token");
  }

  @Override
  public void close() {
    try {
      socket.close();
    } catch (IOException ignored) {
      // already closed
    }
  }
}
