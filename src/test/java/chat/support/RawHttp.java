package chat.support;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * HTTP/1.1 over a plain socket, for requests no well-behaved client library sends: any bytes in
 * the request target, any method, any header, any body. Keeps the connection alive between
 * requests and opens a new one when the server closed it. Responses are read by the book
 * (Content-Length, chunked, or up to the close), with a bound on their size.
 */
public final class RawHttp implements AutoCloseable {

  public record Response(int status, Map<String, String> headers, byte[] body, boolean closed) {
    public String text() {
      return new String(body, StandardCharsets.UTF_8);
    }

    public String header(String name) {
      return headers.get(name.toLowerCase(Locale.ROOT));
    }
  }

  private static final int MAX_RESPONSE = 8 << 20;

  private final int port;
  private Socket socket;
  private InputStream in;
  private OutputStream out;

  public RawHttp(int port) {
    this.port = port;
  }

  /** Sends {@code method target HTTP/1.1} with the headers (name, value, ...) and body; Host and Content-Length are added. */
  public Response request(String method, byte[] target, byte[] body, String... headers) throws IOException {
    ByteArrayOutputStream req = new ByteArrayOutputStream();
    req.write((method + " ").getBytes(StandardCharsets.ISO_8859_1));
    req.write(target);
    req.write(" HTTP/1.1\r\nHost: 127.0.0.1\r\n".getBytes(StandardCharsets.ISO_8859_1));
    for (int i = 0; i < headers.length; i += 2) {
      req.write((headers[i] + ": " + headers[i + 1] + "\r\n").getBytes(StandardCharsets.UTF_8));
    }
    if (body != null) {
      req.write(("Content-Length: " + body.length + "\r\n").getBytes(StandardCharsets.ISO_8859_1));
    }
    req.write("\r\n".getBytes(StandardCharsets.ISO_8859_1));
    if (body != null) {
      req.write(body);
    }
    return exchange(req.toByteArray(), method.equals("HEAD"));
  }

  public Response get(String target) throws IOException {
    return request("GET", target.getBytes(StandardCharsets.UTF_8), null);
  }

  public Response post(String target, byte[] body, String... headers) throws IOException {
    return request("POST", target.getBytes(StandardCharsets.UTF_8), body, headers);
  }

  /** Sends the bytes as they are (a whole request, well formed or not) and reads one response. */
  public Response exchange(byte[] rawRequest, boolean head) throws IOException {
    if (socket == null || socket.isClosed()) {
      connect();
    }
    try {
      out.write(rawRequest);
      out.flush();
    } catch (IOException e) {
      // the server may have closed an idle keep-alive connection: once more on a fresh one
      connect();
      out.write(rawRequest);
      out.flush();
    }
    Response r = read(head);
    if (r.closed) {
      close();
    }
    return r;
  }

  private void connect() throws IOException {
    close();
    socket = new Socket();
    socket.connect(new InetSocketAddress("127.0.0.1", port), 5000);
    socket.setSoTimeout(10_000);
    socket.setTcpNoDelay(true);
    in = new BufferedInputStream(socket.getInputStream());
    out = socket.getOutputStream();
  }

  private Response read(boolean head) throws IOException {
    String statusLine = line();
    if (statusLine == null) {
      throw new IOException("the server closed the connection without a response");
    }
    String[] parts = statusLine.split(" ", 3);
    if (parts.length < 2 || !parts[0].startsWith("HTTP/1.")) {
      throw new IOException("not an HTTP status line: " + statusLine);
    }
    int status = Integer.parseInt(parts[1]);
    Map<String, String> headers = new LinkedHashMap<>();
    String h;
    while ((h = line()) != null && !h.isEmpty()) {
      int colon = h.indexOf(':');
      if (colon > 0) {
        headers.merge(h.substring(0, colon).trim().toLowerCase(Locale.ROOT), h.substring(colon + 1).trim(), (a, b) -> a + ", " + b);
      }
    }
    boolean closeAfter = "close".equalsIgnoreCase(headers.get("connection"));
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    if (head || status == 304 || status == 204 || status / 100 == 1) {
      // no body
    } else if (headers.containsKey("content-length")) {
      long n = Long.parseLong(headers.get("content-length"));
      if (n > MAX_RESPONSE) {
        throw new IOException("response of " + n + " bytes");
      }
      body.write(in.readNBytes((int) n));
      if (body.size() < n) {
        throw new IOException("response body cut short");
      }
    } else if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
      while (true) {
        String size = line();
        if (size == null) {
          throw new IOException("chunked body cut short");
        }
        int n = Integer.parseInt(size.split(";")[0].trim(), 16);
        if (n == 0) {
          while ((h = line()) != null && !h.isEmpty()) {
            // trailers
          }
          break;
        }
        body.write(in.readNBytes(n));
        line();
        if (body.size() > MAX_RESPONSE) {
          throw new IOException("response over " + MAX_RESPONSE + " bytes");
        }
      }
    } else {
      closeAfter = true;
      byte[] buf = new byte[8192];
      int k;
      while ((k = in.read(buf)) != -1) {
        body.write(buf, 0, k);
        if (body.size() > MAX_RESPONSE) {
          throw new IOException("response over " + MAX_RESPONSE + " bytes");
        }
      }
    }
    return new Response(status, headers, body.toByteArray(), closeAfter);
  }

  private String line() throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    int c;
    while ((c = in.read()) != -1) {
      if (c == '\n') {
        String s = b.toString(StandardCharsets.ISO_8859_1);
        return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
      }
      b.write(c);
      if (b.size() > 64 * 1024) {
        throw new IOException("header line over 64 KiB");
      }
    }
    return b.size() == 0 ? null : b.toString(StandardCharsets.ISO_8859_1);
  }

  /** Whether the server closed the connection (reads -1 or a reset within the time). */
  public boolean awaitClosed(int millis) throws IOException {
    if (socket == null || socket.isClosed()) {
      return true;
    }
    socket.setSoTimeout(millis);
    try {
      while (in.read() != -1) {
        // drain
      }
      return true;
    } catch (SocketTimeoutException e) {
      return false;
    } catch (IOException e) {
      return true;
    }
  }

  @Override
  public void close() {
    if (socket != null) {
      try {
        socket.close();
      } catch (IOException ignored) {
        // closed
      }
      socket = null;
    }
  }
}
