package chat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.spi.ContextAwareBase;

/**
 * The server's Logback setup, in code: readable lines on standard output at INFO, Netty and Agroal
 * at WARN, Hazelcast's CP-subsystem notice off, and the clustered event bus's per-message warnings
 * throttled ({@link EventBusLogThrottle}). {@link Logging} then applies {@code log.level} and
 * {@code log.format}.
 *
 * <p>Why code and not a logback.xml: reading XML loads Logback's Joran and the JDK's XML parser:
 * measured on one core, a server start 0.14 s sooner without it, {@code --version} 0.43 s instead
 * of 0.69 s (README, Performance). A configuration file still
 * wins: with {@code -Dlogback.configurationFile=FILE}, or a {@code logback-test.xml} on the class
 * path (the tests), this steps aside and Logback reads the file. Found through
 * META-INF/services/ch.qos.logback.classic.spi.Configurator.
 */
public final class LogbackDefaults extends ContextAwareBase implements Configurator {

  private static final String PATTERN = "%d{yyyy-MM-dd HH:mm:ss.SSS} %-5level [%thread] %logger{0} - %msg%n";

  @Override
  public ExecutionStatus configure(LoggerContext context) {
    if (configurationFileGiven()) {
      return ExecutionStatus.INVOKE_NEXT_IF_ANY;
    }
    apply(context);
    return ExecutionStatus.DO_NOT_INVOKE_NEXT_IF_ANY;
  }

  static boolean configurationFileGiven() {
    return System.getProperty("logback.configurationFile") != null
        || LogbackDefaults.class.getClassLoader().getResource("logback-test.xml") != null;
  }

  static void apply(LoggerContext context) {
    EventBusLogThrottle throttle = new EventBusLogThrottle();
    throttle.setContext(context);
    throttle.start();
    context.addTurboFilter(throttle);

    PatternLayoutEncoder encoder = new PatternLayoutEncoder();
    encoder.setContext(context);
    encoder.setPattern(PATTERN);
    encoder.start();
    ConsoleAppender<ILoggingEvent> console = new ConsoleAppender<>();
    console.setContext(context);
    console.setName("STDOUT");
    console.setEncoder(encoder);
    console.start();

    context.getLogger("io.netty").setLevel(Level.WARN);
    context.getLogger("io.agroal").setLevel(Level.WARN);
    // Hazelcast's CP subsystem (locks, atomics with consensus) is not used by this server
    context.getLogger("com.hazelcast.cp.CPSubsystem").setLevel(Level.ERROR);
    Logger root = context.getLogger(Logger.ROOT_LOGGER_NAME);
    root.setLevel(Level.INFO);
    root.addAppender(console);
  }
}
