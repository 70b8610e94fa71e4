package chat.support;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** What Linux says about a process: resident memory and open file descriptors, from /proc. */
public final class ProcStats {

  private static final Pattern RSS = Pattern.compile("(?m)^VmRSS:\\s+(\\d+) kB");
  private static final Pattern HWM = Pattern.compile("(?m)^VmHWM:\\s+(\\d+) kB");

  private ProcStats() {
  }

  /** Resident set size in KiB ({@code VmRSS} of /proc/<pid>/status). */
  public static long rssKiB(long pid) {
    return field(pid, RSS);
  }

  /** Peak resident set size in KiB since the process started ({@code VmHWM}). */
  public static long peakRssKiB(long pid) {
    return field(pid, HWM);
  }

  /** Open file descriptors (entries of /proc/<pid>/fd). */
  public static int openFds(long pid) {
    try (Stream<Path> s = Files.list(Path.of("/proc", Long.toString(pid), "fd"))) {
      return (int) s.count();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static long field(long pid, Pattern p) {
    try {
      Matcher m = p.matcher(Files.readString(Path.of("/proc", Long.toString(pid), "status")));
      if (!m.find()) {
        throw new IllegalStateException("no " + p + " for process " + pid);
      }
      return Long.parseLong(m.group(1));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
