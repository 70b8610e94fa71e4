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
 * {@link LineClient}s over TLS: a JDK SSLSocket (host name checked against the certificate),
 * handshaken before it is handed to a LineClient.
 */
public final class TlsLineClient {

  private TlsLineClient() {
  }

  public static LineClient connect(int port, SSLContext context) {
    return connect(port, context, null);
  }

  /** @param protocols the TLS versions to offer, or null for the JDK's defaults */
  public static LineClient connect(int port, SSLContext context, String[] protocols) {
    try {
      Socket plain = LineClient.connect(port);
      plain.setSoTimeout(5000);
      SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket(plain, "localhost", port, true);
      var params = socket.getSSLParameters();
      params.setEndpointIdentificationAlgorithm("HTTPS");
      if (protocols != null) {
        params.setProtocols(protocols);
      }
      socket.setSSLParameters(params);
      socket.startHandshake();
      return new LineClient(socket);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The TLS version the client's connection negotiated. */
  public static String protocol(LineClient client) {
    return ((SSLSocket) client.socket()).getSession().getProtocol();
  }
}
