package chat.support;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A TCP relay on 127.0.0.1 in front of a real server (the tests' PostgreSQL), which a test can
 * take down and bring back: {@link #down()} closes the port and every relayed connection, as a
 * database host that goes away would (new connections refused, open ones reset); {@link #up()}
 * listens on the same port again; {@link #freeze()} keeps connections open but stops relaying,
 * as a network partition would. Nothing is simulated beyond that: the bytes are the server's.
 */
public final class TcpProxy implements AutoCloseable {

  private final String targetHost;
  private final int targetPort;
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();
  private volatile ServerSocket listener;
  private volatile boolean frozen;
  private int port;

  public TcpProxy(String targetHost, int targetPort) {
    this.targetHost = targetHost;
    this.targetPort = targetPort;
    up();
  }

  /** For a {@code jdbc:postgresql://host:port/...} URL. */
  public static TcpProxy to(String jdbcUrl) {
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("jdbc:postgresql://([^:/]+):(\\d+)").matcher(jdbcUrl);
    if (!m.lookingAt()) {
      throw new IllegalArgumentException("no host:port in " + jdbcUrl);
    }
    return new TcpProxy(m.group(1), Integer.parseInt(m.group(2)));
  }

  public int port() {
    return port;
  }

  /**
   * Listens (again) on the proxy's port, relaying new connections. The port is below the
   * kernel's range of ephemeral ports: while the proxy is down, no outgoing connection (an HTTP
   * client's, say) can take it as its source port and keep the proxy from coming back.
   */
  public synchronized void up() {
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (true) {
      int want = port != 0 ? port : 20000 + RANDOM.nextInt(Math.max(1, ephemeralLow() - 20000));
      try {
        ServerSocket s = new ServerSocket();
        try {
          s.setReuseAddress(true);
          s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), want));
        } catch (IOException e) {
          s.close();
          throw e;
        }
        port = s.getLocalPort();
        listener = s;
        frozen = false;
        Thread t = new Thread(() -> accept(s), "tcp-proxy-accept-" + port);
        t.setDaemon(true);
        t.start();
        return;
      } catch (IOException e) {
        if (System.nanoTime() > deadline) {
          throw new UncheckedIOException("cannot listen on port " + want, e);
        }
        try {
          Thread.sleep(50);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          throw new IllegalStateException(ie);
        }
      }
    }
  }

  private static final java.util.Random RANDOM = new java.util.Random();

  /** The lowest ephemeral port (Linux), or 32768. */
  private static int ephemeralLow() {
    try {
      String range = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/sys/net/ipv4/ip_local_port_range")).trim();
      return Math.max(20001, Integer.parseInt(range.split("\\s+")[0]));
    } catch (IOException | RuntimeException e) {
      return 32768;
    }
  }

  /** Closes the port and every connection through it. */
  public synchronized void down() {
    closeQuietly(listener);
    for (Socket s : sockets) {
      closeQuietly(s);
    }
    sockets.clear();
  }

  /** Keeps every connection open but relays nothing more, either way, until {@link #down()}. */
  public void freeze() {
    frozen = true;
  }

  @Override
  public void close() {
    down();
  }

  private void accept(ServerSocket s) {
    while (!s.isClosed()) {
      try {
        Socket client = s.accept();
        Socket server;
        try {
          server = new Socket(targetHost, targetPort);
        } catch (IOException e) {
          closeQuietly(client);
          continue;
        }
        sockets.add(client);
        sockets.add(server);
        pump(client, server);
        pump(server, client);
      } catch (IOException e) {
        return; // closed
      }
    }
  }

  private void pump(Socket from, Socket to) {
    Thread t = new Thread(() -> {
      byte[] buffer = new byte[16384];
      try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
        int n;
        while ((n = in.read(buffer)) >= 0) {
          while (frozen && !from.isClosed()) {
            Thread.sleep(20);
          }
          out.write(buffer, 0, n);
          out.flush();
        }
      } catch (IOException | InterruptedException e) {
        // one side went away
      } finally {
        closeQuietly(from);
        closeQuietly(to);
      }
    }, "tcp-proxy-pump");
    t.setDaemon(true);
    t.start();
  }

  private static void closeQuietly(AutoCloseable c) {
    if (c == null) {
      return;
    }
    try {
      c.close();
    } catch (Exception ignored) {
      // closing anyway
    }
  }
}
