package chat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.core.ConsoleAppender;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Logback setup in code that replaces a logback.xml (the jar's log lines are checked by the process tests). */
class LogbackDefaultsTest {

  @Test
  void setsUpTheServersLogging() {
    LoggerContext context = new LoggerContext();
    LogbackDefaults.apply(context);
    ch.qos.logback.classic.Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    assertEquals(Level.INFO, root.getLevel());
    ConsoleAppender<?> console = assertInstanceOf(ConsoleAppender.class, root.getAppender("STDOUT"));
    assertTrue(console.isStarted());
    assertEquals("%d{yyyy-MM-dd HH:mm:ss.SSS} %-5level [%thread] %logger{0} - %msg%n",
        assertInstanceOf(PatternLayoutEncoder.class, console.getEncoder()).getPattern());
    assertEquals(Level.WARN, context.getLogger("io.netty").getLevel());
    assertEquals(Level.WARN, context.getLogger("io.agroal").getLevel());
    assertEquals(Level.ERROR, context.getLogger("com.hazelcast.cp.CPSubsystem").getLevel());
    assertEquals(1, context.getTurboFilterList().size());
    assertInstanceOf(EventBusLogThrottle.class, context.getTurboFilterList().get(0));
    assertTrue(context.getTurboFilterList().get(0).isStarted());
  }

  @Test
  void stepsAsideForAConfigurationFile() {
    // the tests' class path has a logback-test.xml: Logback reads that instead
    assertTrue(LogbackDefaults.configurationFileGiven());
    assertEquals(Configurator.ExecutionStatus.INVOKE_NEXT_IF_ANY, new LogbackDefaults().configure(new LoggerContext()));
  }

  @Test
  void isRegisteredAsALogbackConfigurator() throws Exception {
    try (InputStream in = LogbackDefaults.class.getClassLoader()
        .getResourceAsStream("META-INF/services/ch.qos.logback.classic.spi.Configurator")) {
      assertNotNull(in);
      assertEquals("chat.LogbackDefaults", new String(in.readAllBytes(), StandardCharsets.UTF_8).trim());
    }
  }
}
