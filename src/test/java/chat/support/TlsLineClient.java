package chat.support;

import io.vertx.core.json.JsonObject;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
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
 * {@link LineClient} over TLS: a JDK SSLSocket (host name checked against the certificate),
 * newline-delimited JSON in and out. The handshake happens in the constructor.
 */
public final class TlsLineClient implements AutoCloseable {

  private final SSLSocket socket;
  private final InputStream in;
  private final OutputStream out;

  public TlsLineClient(int port, SSLContext context) {
    this(port, context, null);
  }

  /** @param protocols the TLS versions to offer, or null for the JDK's defaults */
  public TlsLineClient(int port, SSLContext context, String[] protocols) {
    try {
      Socket plain = new Socket();
      plain.connect(new InetSocketAddress("127.0.0.1", port), 5000);
      plain.setSoTimeout(5000);
      plain.setTcpNoDelay(true);
      socket = (SSLSocket) context.getSocketFactory().createSocket(plain, "localhost", port, true);
      var params = socket.getSSLParameters();
      params.setEndpointIdentificationAlgorithm("HTTPS");
      if (protocols != null) {
        params.setProtocols(protocols);
      }
      socket.setSSLParameters(params);
      socket.startHandshake();
      in = new BufferedInputStream(socket.getInputStream());
      out = socket.getOutputStream();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public SSLSocket socket() {
    return socket;
  }

  /** The negotiated protocol, e.g. {@code TLSv1.3}. */
  public String protocol() {
    return socket.getSession().getProtocol();
  }

  public TlsLineClient send(String text) {
    try {
      out.write(text.getBytes(StandardCharsets.UTF_8));
      out.flush();
      return this;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public TlsLineClient send(JsonObject message) {
    return send(message.encode());
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

  public TlsLineClient expect(String expectedJson) {
    assertEquals(expectedJson, readLine());
    return this;
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
      // a reset or a TLS close without close_notify also means closed
    }
  }

  /** Registers and logs in on this connection; returns the token. */
  public String registerAndLogin(String username, String password) {
    send(new JsonObject().put("type", "register").put("username", username).put("password", password));
    assertEquals("register_1", read().getString("type"));
    return login(username, password);
  }

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
