package chat;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class EventBusLogThrottleTest {

  @Test
  @DisplayName("one warning per interval from the clustered event bus; other loggers and levels untouched")
  void throttlesOnlyTheClusteredEventBus() {
    LoggerContext context = new LoggerContext();
    EventBusLogThrottle throttle = new EventBusLogThrottle();
    throttle.setContext(context);
    throttle.start();
    context.addTurboFilter(throttle);
    ListAppender<ILoggingEvent> events = new ListAppender<>();
    events.setContext(context);
    events.start();
    Logger root = context.getLogger(Logger.ROOT_LOGGER_NAME);
    root.addAppender(events);

    Logger bus = context.getLogger("io.vertx.core.eventbus.impl.clustered.ClusteredEventBus");
    Logger ours = context.getLogger("chat.auth.AuthVerticle");
    for (int i = 0; i < 100; i++) {
      bus.warn("Connecting to server {} failed", i, new RuntimeException("refused"));
      bus.error("also throttled {}", i);
      bus.info("info is not throttled {}", i);
      ours.warn("ours {}", i);
    }
    assertEquals(1, events.list.stream().filter(e -> e.getLoggerName().equals(bus.getName())
        && e.getLevel().isGreaterOrEqual(ch.qos.logback.classic.Level.WARN)).count());
    assertEquals("Connecting to server 0 failed", events.list.get(0).getFormattedMessage());
    assertEquals(100, events.list.stream().filter(e -> e.getFormattedMessage().startsWith("info is not")).count());
    assertEquals(100, events.list.stream().filter(e -> e.getLoggerName().equals(ours.getName())).count());
  }
}
