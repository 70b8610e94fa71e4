package chat.admin;

/** Administration commands run from the same jar ({@code java -jar chat-server.jar user list}). */
public final class AdminCli {

  private AdminCli() {
  }

  /** Whether {@code command} (the first argument) names an administration command. */
  public static boolean handles(String command) {
    return false;
  }

  /** Runs the command; returns the process exit code. */
  public static int run(String[] args) {
    return 2;
  }
}
