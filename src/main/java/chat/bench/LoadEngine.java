package chat.bench;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.FixedRecvByteBufAllocator;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.util.ResourceLeakDetector;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.ScheduledFuture;
import io.vertx.core.json.JsonObject;
import io.vertx.core.transport.Transport;

import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The client side of a load run: every connection on one Netty event loop thread (epoll when
 * available), so all state below is confined to that thread and needs no locks; other threads
 * reach it through {@link #call}.
 *
 * <p>Receiving is the hot path (millions of broadcasts a second): each read is copied into one
 * reused array and scanned as bytes. A broadcast is recognised by its fixed start, the
 * {@link Marker} at the start of its message gives sender, sequence number and send time, and the
 * end of the line is found by arithmetic (the rest of the line has a known length) rather than by
 * scanning. No broadcast is ever parsed as JSON, nothing is allocated per delivery. Replies
 * (login, chat acknowledgements, heartbeats) take the slow path and are parsed.
 */
final class LoadEngine implements AutoCloseable {

  enum Step { CONNECT, REGISTER, LOGIN, RESUME }

  private static final byte[] CHAT_OK = ascii("{\"type\":\"chat\",\"status\":\"success\"}");
  private static final byte[] HEARTBEAT_OK = ascii("{\"type\":\"heartbeat\",\"status\":\"success\"}");
  /** PROTOCOL.md §4.5: a broadcast starts {"type":"chat","user":" (23 bytes) */
  private static final int BROADCAST_HEAD = 23;
  /**
   * From the closing quote of a broadcast's message to its newline: {@code ","avatar":"} + avatar
   * URL + {@code ","ts":} + 13 digits of epoch ms + <code>}</code>; plus the URL's length.
   */
  private static final int TAIL_WITHOUT_AVATAR = 33;
  private static final int MAX_LINE = 1 << 20;
  private static final byte PENDING = 0;
  private static final byte ACCEPTED = 1;
  private static final byte REFUSED = 2;

  final String transport;
  private final EventLoopGroup group;
  private final EventLoop loop;
  private final Bootstrap bootstrap;
  private final InetSocketAddress tcp;
  private final InetSocketAddress http;
  private final InetAddress[] sources;
  private final int payload;
  private final long heartbeatMillis;
  private final PrintStream err;

  // ---- from here on: the event loop thread only ----
  private byte[] scratch = new byte[1 << 17];
  private final List<Conn> all = new ArrayList<>();
  /** Logged-in sessions that stay open: they heartbeat. */
  private final List<Session> live = new ArrayList<>();
  private long heartbeatTick;
  private long connects;
  private final Set<String> noted = new HashSet<>();
  private Phase phase;

  private MessageLog[] logs = new MessageLog[0];
  private int receivers;
  private Window[] windows = new Window[0];
  private boolean sending;
  private long sendUntil;
  private int window;

  long delivered;
  long extraDeliveries;
  long foreign;
  long outOfOrder;
  long disconnects;
  long errors;
  long acks;
  long heartbeatsOk;
  long skipped;
  long nonOk;

  LoadEngine(String host, int tcpPort, int httpPort, int srcIps, int payload, long heartbeatMillis, PrintStream err)
      throws UnknownHostException {
    // Netty's epoll transport when it loads (through Vert.x, which has it on its class path), else NIO
    Transport t = Transport.EPOLL.available() ? Transport.EPOLL : Transport.NIO;
    transport = t.name().toLowerCase(java.util.Locale.ROOT);
    group = new MultiThreadIoEventLoopGroup(1, new DefaultThreadFactory("load-io", true), t.implementation().ioHandlerFactory());
    loop = group.next();
    // per read: one 64 KiB buffer (no size guessing), and no leak-detection sampling (it records stack traces)
    ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.DISABLED);
    bootstrap = new Bootstrap().group(group).channelFactory(t.implementation().channelFactory(false))
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.RCVBUF_ALLOCATOR, new FixedRecvByteBufAllocator(65536))
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 15_000);
    tcp = new InetSocketAddress(InetAddress.getByName(host), tcpPort);
    http = new InetSocketAddress(InetAddress.getByName(host), httpPort);
    // one source address has one ephemeral port range (about 28,000 ports): spread over several
    sources = new InetAddress[srcIps];
    for (int i = 0; i < srcIps; i++) {
      sources[i] = InetAddress.getByAddress(new byte[] {127, 0, 0, (byte) (1 + i)});
    }
    this.payload = payload;
    this.heartbeatMillis = heartbeatMillis;
    this.err = err;
    loop.scheduleAtFixedRate(this::heartbeats, 100, 100, TimeUnit.MILLISECONDS);
  }

  /** Runs {@code task} on the event loop and waits for its result. */
  <T> T call(Callable<T> task) {
    try {
      return loop.submit(task).get(60, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IllegalStateException("the I/O thread did not answer: " + e, e);
    }
  }

  void run(Runnable task) {
    call(() -> {
      task.run();
      return null;
    });
  }

  // ---- setup: sessions and phases ----

  /** Sessions for users {@code prefix + i}, {@code i} in [from, to), password {@code pw-i}; not connected yet. */
  List<Session> sessions(String prefix, int from, int to, boolean counted) {
    List<Session> list = new ArrayList<>(to - from);
    for (int i = from; i < to; i++) {
      list.add(new Session(prefix + i, "pw-" + i, counted));
    }
    return list;
  }

  /**
   * The same, connecting to TCP port {@code tcpPort} on the same host instead: another node of a
   * cluster (fanout --sender-tcp-port). Their deliveries are also counted apart, in
   * {@link Window#receivedAtSenders}.
   */
  List<Session> sessions(String prefix, int from, int to, boolean counted, int tcpPort) {
    InetSocketAddress elsewhere = new InetSocketAddress(tcp.getAddress(), tcpPort);
    List<Session> list = sessions(prefix, from, to, counted);
    for (Session s : list) {
      s.to = elsewhere;
    }
    return list;
  }

  /** New, unconnected sessions for the same users, to log in again with their tokens. */
  List<Session> resumeSessions(List<Session> from) {
    List<Session> list = new ArrayList<>(from.size());
    for (Session s : from) {
      Session r = new Session(s.user, s.password, false);
      r.token = s.token;
      list.add(r);
    }
    return list;
  }

  /**
   * Starts {@code step} on every connection, at most {@code concurrency} at a time (connecting
   * first when needed); each one that succeeds is closed again when {@code closeAfter}. The
   * phase's future completes once every connection has finished, well or not.
   */
  Phase phase(String name, List<? extends Conn> conns, Step step, int concurrency, boolean closeAfter, Window window) {
    Phase p = new Phase(name, conns, step, concurrency, closeAfter, window);
    run(() -> {
      phase = p;
      p.start = System.nanoTime();
      if (window != null) {
        window.start = p.start;
      }
      p.pump();
    });
    return p;
  }

  final class Phase {
    final String name;
    final List<? extends Conn> conns;
    final Step step;
    final int concurrency;
    final boolean closeAfter;
    final Window window;
    final Histogram latency = new Histogram();
    final CompletableFuture<Phase> done = new CompletableFuture<>();
    int next;
    int inFlight;
    int ok;
    int failed;
    String firstFailure;
    /** A failure that dooms the phase: the run ends at once. */
    volatile String fatal;
    long start;
    long end;

    Phase(String name, List<? extends Conn> conns, Step step, int concurrency, boolean closeAfter, Window window) {
      this.name = name;
      this.conns = conns;
      this.step = step;
      this.concurrency = concurrency;
      this.closeAfter = closeAfter;
      this.window = window;
    }

    void pump() {
      // start a slice at a time, so that reading the other connections goes on in between
      int slice = 32;
      while (inFlight < concurrency && next < conns.size() && slice-- > 0) {
        inFlight++;
        conns.get(next++).start(this);
      }
      if (next < conns.size() && inFlight < concurrency) {
        loop.execute(this::pump);
      } else if (inFlight == 0 && next == conns.size() && !done.isDone()) {
        end = System.nanoTime();
        if (window != null) {
          window.end = end;
        }
        done.complete(this);
      }
    }

    void finished(Conn c, boolean success, String why) {
      inFlight--;
      if (success) {
        ok++;
        latency.record(System.nanoTime() - c.stepStart);
        if (closeAfter) {
          c.close();
        }
      } else {
        failed++;
        if (firstFailure == null) {
          firstFailure = why;
        }
        note(name + " failed", why);
      }
      pump();
    }

    double seconds() {
      return (end - start) / 1e9;
    }
  }

  // ---- measurement windows ----

  /** A time interval: what was sent in it, what arrived in it, and the latency of what was sent in it. */
  static final class Window {
    final String name;
    long start;
    long end;
    final Histogram latency = new Histogram();
    final Histogram requests = new Histogram();
    long sent;
    long received;
    /** Of {@link #received}: the deliveries to sessions on the other node (fanout --sender-tcp-port). */
    long receivedAtSenders;
    long responses;
    long lost;

    Window(String name, long start, long end) {
      this.name = name;
      this.start = start;
      this.end = end;
    }

    boolean contains(long t) {
      return t >= start && t < end;
    }

    double seconds() {
      return (end - start) / 1e9;
    }
  }

  /** A window [start, end) in System.nanoTime; Long.MAX_VALUE for one that a phase will open and close. */
  Window window(String name, long start, long end) {
    Window w = new Window(name, start, end);
    run(() -> {
      windows = Arrays.copyOf(windows, windows.length + 1);
      windows[windows.length - 1] = w;
    });
    return w;
  }

  // ---- chat traffic ----

  /**
   * Makes these connections the senders (marker sender id = position in the list) and sets how many
   * counted receivers each chat must reach.
   */
  void senders(List<? extends Conn> conns) {
    run(() -> {
      logs = new MessageLog[conns.size()];
      for (int i = 0; i < logs.length; i++) {
        Conn c = conns.get(i);
        logs[i] = new MessageLog(i, c);
        c.log = logs[i];
        c.prepareChat();
      }
      receivers = 0;
      for (Conn c : all) {
        if (c instanceof Session s && s.counted && s.token != null && !s.closing) {
          receivers++;
          s.lastSeq = new int[logs.length];
          Arrays.fill(s.lastSeq, -1);
        }
      }
    });
  }

  int receivers() {
    return call(() -> receivers);
  }

  /**
   * From {@code at} until {@code until} (System.nanoTime): {@code rate} chats a second in all, round
   * robin over the senders, on a clock (open loop); or with rate 0, as fast as each sender's window
   * allows: at most {@code window} of its chats not yet delivered to every receiver. HTTP senders
   * always send their next request when the previous answer arrives.
   */
  void startChat(long at, long until, double rate, int window) {
    run(() -> {
      boolean onClock = rate > 0 && !(logs.length > 0 && logs[0].conn instanceof Poster);
      this.window = onClock ? 0 : window; // on a clock, deliveries never trigger sends
      sendUntil = until;
      loop.schedule(() -> {
        sending = true;
        if (onClock) {
          new Clock(rate).start();
        } else {
          for (MessageLog log : logs) {
            log.conn.fill();
          }
        }
      }, Math.max(0, at - System.nanoTime()), TimeUnit.NANOSECONDS);
    });
  }

  /** Sending on a clock (open loop): every millisecond, the chats due by then, round robin over the senders. */
  private final class Clock implements Runnable {
    private final double rate;
    private final long start = System.nanoTime();
    /** Behind schedule, it catches up at most 20 ms (or 4 chats) at once and skips the rest. */
    private final long burst;
    private long issued;
    private int next;
    private ScheduledFuture<?> task;

    Clock(double rate) {
      this.rate = rate;
      this.burst = Math.max(4, (long) (rate / 50));
    }

    void start() {
      task = loop.scheduleAtFixedRate(this, 0, 1, TimeUnit.MILLISECONDS);
    }

    @Override
    public void run() {
      long now = System.nanoTime();
      if (!sending || now >= sendUntil) {
        sending = false;
        task.cancel(false);
        return;
      }
      long due = (long) ((now - start) / 1e9 * rate) - issued;
      if (due > burst) {
        skipped += due - burst;
        issued += due - burst;
        due = burst;
      }
      for (; due > 0; due--, issued++) {
        logs[next++ % logs.length].conn.sendChat(System.nanoTime(), false);
      }
      for (MessageLog log : logs) {
        log.conn.ch.flush(); // one write per sender and tick
      }
    }
  }

  void stopChat() {
    run(() -> sending = false);
  }

  /** Everything sent was answered, and every accepted chat reached every receiver. */
  boolean settled() {
    return call(() -> {
      for (MessageLog log : logs) {
        log.advance();
        if (log.lowest < log.next || log.conn.awaitingReply()) {
          return false;
        }
      }
      return true;
    });
  }

  /** Per sender: when each chat was sent, how many receivers got it, whether the server accepted it. */
  final class MessageLog {
    final int id;
    final Conn conn;
    long[] sentAt = new long[1024];
    int[] count = new int[1024];
    byte[] state = new byte[1024];
    int next;
    /** TCP: chat replies received so far (they come in order). */
    int replied;
    /** The first chat not yet complete (delivered to all, or refused). */
    int lowest;
    /** The first chat not yet counted by {@link #lostEstimate}. */
    int settled;
    /** The distance from the marker to the broadcast's newline, once the sender's avatar URL is known. */
    int lineRest = -1;

    MessageLog(int id, Conn conn) {
      this.id = id;
      this.conn = conn;
    }

    int add(long now) {
      if (next == sentAt.length) {
        sentAt = Arrays.copyOf(sentAt, next * 2);
        count = Arrays.copyOf(count, next * 2);
        state = Arrays.copyOf(state, next * 2);
      }
      sentAt[next] = now;
      for (Window w : windows) {
        if (w.contains(now)) {
          w.sent++;
        }
      }
      return next++;
    }

    void advance() {
      while (lowest < next && (state[lowest] == REFUSED || count[lowest] >= receivers)) {
        lowest++;
      }
    }

    /** A chat completed: with a window, the sender may send more. */
    void completed() {
      if (window > 0) {
        advance();
        conn.fill();
      }
    }
  }

  // ---- connections ----

  /** One TCP connection: reads into the shared array, keeps the unfinished line for the next read. */
  abstract class Conn extends ChannelInboundHandlerAdapter {
    Channel ch;
    private byte[] carry = new byte[0];
    private int carryLen;
    boolean closing;
    Phase phase;
    long stepStart;
    String lastError;
    MessageLog log;

    /** Consumes one message (a line, an HTTP response) at b[s..end): returns where the next starts, or -1 if incomplete. */
    abstract int take(byte[] b, int s, int end, long now);

    abstract void begin(Step step);

    abstract InetSocketAddress target();

    abstract String describe();

    void prepareChat() {
    }

    void sendChat(long now, boolean flush) {
    }

    /** Window mode: send while the window has room. */
    void fill() {
    }

    boolean awaitingReply() {
      return false;
    }

    void start(Phase p) {
      phase = p;
      stepStart = System.nanoTime();
      if (ch != null) {
        if (ch.isActive()) {
          begin(p.step);
        } else {
          loop.execute(() -> finish(false, "connection closed" + (lastError == null ? "" : "; last: " + lastError)));
        }
        return;
      }
      all.add(this);
      InetSocketAddress local = new InetSocketAddress(sources[(int) (connects++ % sources.length)], 0);
      bootstrap.clone().handler(this).connect(target(), local).addListener(f -> {
        if (f.isSuccess()) {
          begin(p.step);
        } else {
          String why = String.valueOf(f.cause());
          if (why.contains("Too many open files")) {
            why = "the generator ran out of file descriptors (limit " + LoadServer.OPEN_FILE_LIMIT
                + " per process): run fewer connections; " + why;
            p.fatal = why; // no use waiting for the others
          } else if (why.contains("Cannot assign requested address")) {
            why = "out of local ports: use more --src-ips; " + why;
            p.fatal = why;
          }
          String reason = "connect: " + why;
          loop.execute(() -> finish(false, reason)); // later: a failed connect may call back at once
        }
      });
    }

    void finish(boolean ok, String why) {
      Phase p = phase;
      if (p != null) {
        phase = null;
        p.finished(this, ok, describe() + ": " + why);
      }
    }

    void write(String line) {
      ch.writeAndFlush(ByteBufUtil.writeUtf8(ch.alloc(), line), ch.voidPromise());
    }

    void close() {
      closing = true;
      if (ch != null) {
        ch.close();
      }
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      ch = ctx.channel();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ByteBuf in = (ByteBuf) msg;
      try {
        consume(in);
      } finally {
        in.release();
      }
    }

    private void consume(ByteBuf in) {
      int n = in.readableBytes();
      int total = carryLen + n;
      if (scratch.length < total) {
        scratch = new byte[Math.max(total, scratch.length * 2)];
      }
      byte[] b = scratch;
      System.arraycopy(carry, 0, b, 0, carryLen);
      in.getBytes(in.readerIndex(), b, carryLen, n);
      long now = System.nanoTime(); // one clock reading per read: every line in it arrived together
      int s = 0;
      while (s < total) {
        int next = take(b, s, total, now);
        if (next < 0) {
          break;
        }
        s = next;
      }
      carryLen = total - s;
      if (carryLen > MAX_LINE) {
        error("line too long", describe() + " received over " + MAX_LINE + " bytes without a newline");
        carryLen = 0;
        ch.close();
        return;
      }
      if (carry.length < carryLen) {
        carry = new byte[Math.max(carryLen, 256)];
      }
      System.arraycopy(b, s, carry, 0, carryLen);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      if (!closing) {
        disconnects++;
        note("disconnected", describe() + " was disconnected" + (lastError == null ? "" : "; last: " + lastError));
      }
      finish(false, "connection closed" + (lastError == null ? "" : "; last: " + lastError));
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      lastError = cause.toString();
      ctx.close();
    }
  }

  /** A TCP client of the chat protocol: a user's session. */
  final class Session extends Conn {
    final String user;
    final String password;
    /** Counted receiver: every chat must reach it exactly once, in order. */
    final boolean counted;
    String token;
    String avatar;
    Step awaiting;
    int[] lastSeq;
    private byte[] chat;
    private int marker;
    private boolean flushQueued;
    /** The node this session connects to: the server's TCP port unless made with a port of its own. */
    InetSocketAddress to = tcp;

    Session(String user, String password, boolean counted) {
      this.user = user;
      this.password = password;
      this.counted = counted;
    }

    @Override
    InetSocketAddress target() {
      return to;
    }

    @Override
    String describe() {
      return user;
    }

    @Override
    void begin(Step step) {
      awaiting = step;
      switch (step) {
        case CONNECT -> {
          awaiting = null;
          finish(true, null);
        }
        case REGISTER -> write(new JsonObject().put("type", "register").put("username", user).put("password", password)
            .encode() + "\n");
        case LOGIN -> write(new JsonObject().put("type", "login").put("username", user).put("password", password)
            .encode() + "\n");
        case RESUME -> write(new JsonObject().put("type", "login").put("token", token).encode() + "\n");
        default -> throw new IllegalArgumentException(step.toString());
      }
    }

    @Override
    int take(byte[] b, int s, int end, long now) {
      if (end - s > BROADCAST_HEAD + 13 + Marker.LENGTH && b[s + 16] == 'u' && b[s + 9] == 'c' && b[s + 22] == '"') {
        int q = s + BROADCAST_HEAD;
        int limit = Math.min(end, q + 64);
        while (q < limit && b[q] != '"') {
          q++; // the end of the author's name (names hold no quote)
        }
        int m = q + 13; // past ","message":"
        if (m + Marker.LENGTH <= end && b[m] == '@' && b[m + 1] == '@' && b[m + 2] == 'L') {
          // the marker's 28 hex digits, 8 at a time: send time (2 words), sender id + top half of seq, seq
          long t1 = Marker.word(b, m + Marker.TIME);
          long t2 = Marker.word(b, m + Marker.TIME + 8);
          long idSeq = Marker.word(b, m + Marker.SENDER);
          long seq = Marker.word(b, m + Marker.SEQ);
          int sender = (int) (Marker.unhex(idSeq) >>> 16);
          long hex = Marker.hexDigits(t1) & Marker.hexDigits(t2) & Marker.hexDigits(idSeq) & Marker.hexDigits(seq);
          if (hex == Marker.ALL_HEX && sender < logs.length) {
            MessageLog log = logs[sender];
            int nl = log.lineRest < 0 ? -1 : m + log.lineRest;
            if (nl < 0 || nl >= end || b[nl] != '\n' || b[nl - 1] != '}') {
              nl = indexOf(b, m + Marker.LENGTH, end, (byte) '\n'); // not the usual shape: look for the end
              if (nl < 0) {
                return -1;
              }
            }
            delivery(this, log, (int) Marker.unhex(seq), Marker.unhex(t1) << 32 | Marker.unhex(t2), now);
            return nl + 1;
          }
        }
      }
      int nl = indexOf(b, s, end, (byte) '\n');
      if (nl < 0) {
        return -1;
      }
      if (nl > s) {
        reply(b, s, nl);
      }
      return nl + 1;
    }

    private void reply(byte[] b, int s, int nl) {
      if (same(b, s, nl, CHAT_OK)) {
        chatReplied(true, null);
        return;
      }
      if (same(b, s, nl, HEARTBEAT_OK)) {
        heartbeatsOk++;
        return;
      }
      String text = new String(b, s, nl - s, StandardCharsets.UTF_8);
      if (text.startsWith("{\"type\":\"chat\",\"user\":")) {
        foreign++; // someone else's chat
        return;
      }
      JsonObject m;
      try {
        m = new JsonObject(text);
      } catch (RuntimeException e) {
        error("reply that is not JSON", user + " got " + text);
        return;
      }
      String type = String.valueOf(m.getValue("type"));
      String status = String.valueOf(m.getValue("status"));
      if (type.equals("ping")) {
        return; // the server probing a contested session: clients ignore it
      }
      if (type.equals("chat")) {
        chatReplied(false, text);
      } else if (type.startsWith("register") && awaiting == Step.REGISTER) {
        awaiting = null;
        boolean ok = type.equals("register_1")
            || (type.equals("register_0") && "Username already exists".equals(m.getValue("message")));
        finish(ok, text);
      } else if (type.equals("login") && (awaiting == Step.LOGIN || awaiting == Step.RESUME)) {
        awaiting = null;
        if (status.equals("success") && m.getValue("token") instanceof String t) {
          token = t;
          avatar = String.valueOf(m.getValue("avatar"));
          if (phase != null && !phase.closeAfter) {
            live.add(this);
          }
          finish(true, null);
        } else {
          finish(false, text);
        }
      } else if (awaiting != null && type.equals("error")) {
        awaiting = null; // e.g. "Server busy, try again": the step failed, the phase counts it
        finish(false, text);
      } else {
        lastError = text;
        error(type.equals("heartbeat") ? "heartbeat refused" : "unexpected reply", user + " got " + text);
      }
    }

    private void chatReplied(boolean ok, String text) {
      if (log == null || log.replied >= log.next) {
        error("chat reply for no chat", user + " got " + (ok ? "success" : text));
        return;
      }
      int seq = log.replied++;
      if (ok) {
        acks++;
        log.state[seq] = ACCEPTED;
      } else {
        error("chat refused", user + " got " + text);
        log.state[seq] = REFUSED;
        log.completed();
      }
    }

    @Override
    boolean awaitingReply() {
      return log.replied < log.next;
    }

    void heartbeat() {
      if (token != null && !closing && ch.isActive()) {
        write("{\"type\":\"heartbeat\",\"token\":\"" + token + "\"}\n");
      }
    }

    @Override
    void prepareChat() {
      String text = new JsonObject().put("type", "chat").put("token", token).put("message", Marker.placeholder(payload))
          .encode() + "\n";
      chat = text.getBytes(StandardCharsets.UTF_8);
      marker = text.indexOf("@@L");
      log.lineRest = payload + TAIL_WITHOUT_AVATAR + JsonObject.of("a", avatar).encode().length() - 8;
    }

    @Override
    void sendChat(long now, boolean flush) {
      if (closing || !ch.isActive()) {
        return;
      }
      int seq = log.add(now);
      Marker.write(chat, marker, now, log.id, seq);
      ByteBuf buf = ch.alloc().ioBuffer(chat.length).writeBytes(chat);
      if (flush) {
        ch.writeAndFlush(buf, ch.voidPromise());
      } else {
        ch.write(buf, ch.voidPromise());
      }
    }

    @Override
    void fill() {
      boolean wrote = false;
      while (sending && log.next < log.lowest + window && !closing) {
        long now = System.nanoTime();
        if (now >= sendUntil) {
          sending = false;
          break;
        }
        sendChat(now, false);
        wrote = true;
      }
      // flushed once the event loop has handled the reads at hand: the chats that this batch of
      // deliveries allows go out in one write, as a client library's pipelining would send them
      if (wrote && !flushQueued) {
        flushQueued = true;
        loop.execute(() -> {
          flushQueued = false;
          ch.flush();
        });
      }
    }
  }

  /** An HTTP/1.1 keep-alive connection posting chats (PROTOCOL.md §3.3), one request at a time. */
  final class Poster extends Conn {
    final Session user;
    private byte[] request;
    private int marker;
    private int inFlight = -1;
    private long requestStart;

    Poster(Session user) {
      this.user = user;
    }

    @Override
    InetSocketAddress target() {
      return http;
    }

    @Override
    String describe() {
      return "HTTP client of " + user.user;
    }

    @Override
    void begin(Step step) {
      finish(true, null);
    }

    @Override
    void prepareChat() {
      String body = new JsonObject().put("message", Marker.placeholder(payload)).encode();
      String text = "POST /api/chat HTTP/1.1\r\nHost: " + http.getAddress().getHostAddress() + ":" + http.getPort()
          + "\r\nAuthorization: " + user.token + "\r\nContent-Type: application/json\r\nContent-Length: "
          + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body;
      request = text.getBytes(StandardCharsets.UTF_8);
      marker = text.indexOf("@@L");
      log.lineRest = payload + TAIL_WITHOUT_AVATAR + JsonObject.of("a", user.avatar).encode().length() - 8;
    }

    @Override
    void fill() {
      long now = System.nanoTime();
      if (sending && now < sendUntil && inFlight < 0 && !closing && ch.isActive()) {
        inFlight = log.add(now);
        requestStart = now;
        Marker.write(request, marker, now, log.id, inFlight);
        ch.writeAndFlush(ch.alloc().ioBuffer(request.length).writeBytes(request), ch.voidPromise());
      }
    }

    @Override
    boolean awaitingReply() {
      return inFlight >= 0;
    }

    @Override
    int take(byte[] b, int s, int end, long now) {
      int head = indexOf(b, s, end, HEAD_END);
      if (head < 0) {
        return -1;
      }
      int status = end - s > 12 && b[s] == 'H' && b[s + 8] == ' ' ? (int) digits(b, s + 9, s + 12) : -1;
      long length = contentLength(b, s, head);
      if (length < 0) {
        // this client reads Content-Length bodies only (Vert.x sends them): it cannot find the next response
        error("HTTP response without Content-Length", describe() + " got " + new String(b, s, head - s, StandardCharsets.UTF_8));
        close();
        return end;
      }
      int bodyEnd = head + 4 + (int) length;
      if (bodyEnd > end) {
        return -1;
      }
      if (inFlight < 0) {
        error("HTTP response to no request", describe() + " got status " + status);
        return bodyEnd;
      }
      for (Window w : windows) {
        if (w.contains(requestStart)) {
          w.requests.record(now - requestStart);
        }
        if (w.contains(now)) {
          w.responses++;
        }
      }
      if (status == 200) {
        acks++;
        log.state[inFlight] = ACCEPTED;
      } else {
        nonOk++;
        log.state[inFlight] = REFUSED;
        note("HTTP status " + status, describe() + " got " + status + " "
            + new String(b, head + 4, bodyEnd - head - 4, StandardCharsets.UTF_8));
      }
      inFlight = -1;
      fill();
      return bodyEnd;
    }
  }

  private static final byte[] HEAD_END = ascii("\r\n\r\n");
  private static final byte[] CONTENT_LENGTH = ascii("\ncontent-length:");

  /** Content-Length of the headers in b[s..head), case-insensitive; -1 if absent. */
  private static long contentLength(byte[] b, int s, int head) {
    outer:
    for (int i = s; i + CONTENT_LENGTH.length <= head; i++) {
      for (int k = 0; k < CONTENT_LENGTH.length; k++) {
        if ((b[i + k] | 0x20) != CONTENT_LENGTH[k] && b[i + k] != CONTENT_LENGTH[k]) {
          continue outer;
        }
      }
      int v = i + CONTENT_LENGTH.length;
      while (v < head && b[v] == ' ') {
        v++;
      }
      int e = v;
      while (e < head && b[e] >= '0' && b[e] <= '9') {
        e++;
      }
      return digits(b, v, e);
    }
    return -1;
  }

  /** HTTP clients posting with the tokens of these (logged-in, then closed) sessions. */
  List<Poster> posters(List<Session> users) {
    List<Poster> list = new ArrayList<>();
    for (Session u : users) {
      list.add(new Poster(u));
    }
    return list;
  }

  // ---- deliveries ----

  private void delivery(Session r, MessageLog log, int seq, long sentNanos, long now) {
    if (!r.counted || r.lastSeq == null) {
      extraDeliveries++; // a session of the storm or the resume phase: it reads, nobody counts
      return;
    }
    if (seq < 0 || seq >= log.next) {
      foreign++; // not sent by this run
      return;
    }
    if (seq <= r.lastSeq[log.id]) {
      outOfOrder++;
    } else {
      r.lastSeq[log.id] = seq;
    }
    delivered++;
    long latency = now - sentNanos;
    for (Window w : windows) {
      if (w.contains(sentNanos)) {
        w.latency.record(latency);
      }
      if (w.contains(now)) {
        w.received++;
        if (r.to != tcp) {
          w.receivedAtSenders++;
        }
      }
    }
    if (++log.count[seq] == receivers) {
      log.completed();
    }
  }

  private void heartbeats() {
    // every session once per heartbeat period, spread over the period in 100 ms slots
    int slots = (int) Math.max(1, heartbeatMillis / 100);
    int slot = (int) (heartbeatTick++ % slots);
    for (int i = slot; i < live.size(); i += slots) {
      live.get(i).heartbeat();
    }
  }

  // ---- what the report and the progress line read ----

  record Totals(long sent, long accepted, long refused, long unanswered, long expected, long delivered, long lost,
      long duplicates, long outOfOrder, long extraDeliveries, long foreign, long disconnects, long errors, long acks,
      long heartbeatsOk, long skipped, long nonOk, int receivers, int live) {
  }

  /** Counts everything; also the loss of each window (chats sent in it that did not reach every receiver). */
  Totals totals() {
    return call(() -> {
      long sent = 0, accepted = 0, refused = 0, unanswered = 0, lost = 0, duplicates = 0;
      for (Window w : windows) {
        w.lost = 0;
      }
      for (MessageLog log : logs) {
        for (int i = 0; i < log.next; i++) {
          sent++;
          if (log.state[i] == REFUSED) {
            refused++;
            continue;
          }
          if (log.state[i] == PENDING) {
            unanswered++;
          } else {
            accepted++;
          }
          int missing = Math.max(0, receivers - log.count[i]);
          lost += missing;
          duplicates += Math.max(0, log.count[i] - receivers);
          for (Window w : windows) {
            if (w.contains(log.sentAt[i])) {
              w.lost += missing;
            }
          }
        }
      }
      return new Totals(sent, accepted, refused, unanswered, (sent - refused) * receivers, delivered, lost, duplicates,
          outOfOrder, extraDeliveries, foreign, disconnects, errors, acks, heartbeatsOk, skipped, nonOk, receivers,
          liveCount());
    });
  }

  record Progress(String phase, int phaseDone, int phaseTotal, int live, long sent, long delivered, long extra,
      long lostEstimate, long errors, long disconnects) {
  }

  private long lostEstimate;

  /** For the progress line; chats sent over {@code settleNanos} ago that have not reached everyone are counted as lost. */
  Progress progress(long settleNanos) {
    return call(() -> {
      long old = System.nanoTime() - settleNanos;
      long sent = 0;
      for (MessageLog log : logs) {
        sent += log.next;
        while (log.settled < log.next && log.sentAt[log.settled] < old) {
          if (log.state[log.settled] != REFUSED) {
            lostEstimate += Math.max(0, receivers - log.count[log.settled]);
          }
          log.settled++;
        }
      }
      Phase p = phase;
      return new Progress(p == null ? "" : p.name, p == null ? 0 : p.ok + p.failed, p == null ? 0 : p.conns.size(),
          liveCount(), sent, delivered, extraDeliveries, lostEstimate, errors, disconnects);
    });
  }

  private int liveCount() {
    int n = 0;
    for (Session s : live) {
      if (!s.closing && s.ch.isActive()) {
        n++;
      }
    }
    return n;
  }

  /** Closes every connection, then the event loop. */
  @Override
  public void close() {
    try {
      run(() -> {
        sending = false;
        for (Conn c : all) {
          c.close();
        }
      });
    } finally {
      group.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(10, TimeUnit.SECONDS);
    }
  }

  // ---- notes and errors: each kind printed once ----

  void error(String kind, String detail) {
    errors++;
    note(kind, detail);
  }

  void note(String kind, String detail) {
    if (noted.add(kind)) {
      err.println("load: " + kind + ": " + detail + " (printed once)");
    }
  }

  // ---- bytes ----

  private static long digits(byte[] b, int from, int to) {
    long v = 0;
    for (int i = from; i < to; i++) {
      if (b[i] < '0' || b[i] > '9') {
        return -1;
      }
      v = v * 10 + (b[i] - '0');
    }
    return to > from ? v : -1;
  }

  private static int indexOf(byte[] b, int from, int end, byte x) {
    for (int i = from; i < end; i++) {
      if (b[i] == x) {
        return i;
      }
    }
    return -1;
  }

  private static int indexOf(byte[] b, int from, int end, byte[] x) {
    outer:
    for (int i = from; i + x.length <= end; i++) {
      for (int k = 0; k < x.length; k++) {
        if (b[i + k] != x[k]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  private static boolean same(byte[] b, int s, int e, byte[] x) {
    return e - s == x.length && Arrays.equals(b, s, e, x, 0, x.length);
  }

  private static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.US_ASCII);
  }
}
