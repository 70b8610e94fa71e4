package chat;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * No Docker engine runs where this project is built, so the Dockerfile is checked against the
 * launch contract instead: what it copies exists, the jar it runs is the one Maven builds, the
 * ports and data folder match the defaults. JarLaunchIT runs its entrypoint command for real.
 */
class DockerfileTest {

  /** The server's JVM flags for many idle sessions per megabyte: in the README's run command and the image. */
  static final String README_JVM_FLAGS = "-XX:+UseSerialGC -Xmn8m -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=20";

  record Instruction(String keyword, String args) {
  }

  static List<Instruction> parse(Path dockerfile) throws IOException {
    List<Instruction> out = new ArrayList<>();
    StringBuilder current = new StringBuilder();
    for (String raw : Files.readAllLines(dockerfile)) {
      String line = raw.strip();
      if (current.isEmpty() && (line.isEmpty() || line.startsWith("#"))) {
        continue;
      }
      if (line.endsWith("\\")) {
        current.append(line, 0, line.length() - 1).append(' ');
        continue;
      }
      current.append(line);
      String text = current.toString().strip();
      current.setLength(0);
      int space = text.indexOf(' ');
      out.add(new Instruction(text.substring(0, space).toUpperCase(), text.substring(space + 1).strip()));
    }
    return out;
  }

  static List<Instruction> finalStage(List<Instruction> all) {
    int last = 0;
    for (int i = 0; i < all.size(); i++) {
      if (all.get(i).keyword().equals("FROM")) {
        last = i;
      }
    }
    return all.subList(last, all.size());
  }

  static String only(List<Instruction> stage, String keyword) {
    List<String> found = stage.stream().filter(i -> i.keyword().equals(keyword)).map(Instruction::args).toList();
    assertEquals(1, found.size(), "exactly one " + keyword + " in the final stage");
    return found.get(0);
  }

  @Test
  @DisplayName("the Dockerfile parses into a multi-stage build: Maven, then a JRE image")
  void isMultiStageWithJreRuntime() throws IOException {
    List<Instruction> all = parse(Path.of("Dockerfile"));
    List<String> froms = all.stream().filter(i -> i.keyword().equals("FROM")).map(Instruction::args).toList();
    assertEquals(2, froms.size());
    assertTrue(froms.get(0).contains("maven") && froms.get(0).contains(" AS build"), froms.get(0));
    assertTrue(froms.get(1).contains("-jre"), froms.get(1));
    for (Instruction i : all) {
      assertTrue(List.of("FROM", "WORKDIR", "COPY", "RUN", "VOLUME", "EXPOSE", "USER", "ENV", "ENTRYPOINT", "CMD",
          "HEALTHCHECK", "ARG", "LABEL").contains(i.keyword()), "unknown instruction " + i.keyword());
    }
  }

  @Test
  @DisplayName("everything the build stage copies exists, and the jar it runs is the one Maven builds")
  void copiesExistingFilesAndRunsTheBuiltJar() throws IOException {
    List<Instruction> all = parse(Path.of("Dockerfile"));
    for (Instruction i : all) {
      if (i.keyword().equals("COPY") && !i.args().startsWith("--from")) {
        String source = i.args().split("\\s+")[0];
        assertTrue(Files.exists(Path.of(source)), "COPY source " + source + " exists");
      }
    }
    String pom = Files.readString(Path.of("pom.xml"));
    assertTrue(pom.contains("<finalName>chat-server</finalName>"), "Maven builds target/chat-server.jar");
    String copyJar = finalStage(all).stream().filter(i -> i.keyword().equals("COPY")).map(Instruction::args)
        .filter(a -> a.startsWith("--from=build")).findFirst().orElseThrow();
    assertTrue(copyJar.contains("/src/target/chat-server.jar /app/chat-server.jar"), copyJar);
    String entrypoint = only(finalStage(all), "ENTRYPOINT");
    assertTrue(entrypoint.contains("exec java $JAVA_OPTS -jar /app/chat-server.jar"), entrypoint);
    String ignore = Files.readString(Path.of(".dockerignore"));
    for (String needed : List.of("pom.xml", "conf", "src")) {
      assertFalse(ignore.lines().anyMatch(l -> l.strip().equals(needed) || l.strip().equals(needed + "/")),
          ".dockerignore keeps " + needed);
    }
  }

  @Test
  @DisplayName("the image exposes the default ports, runs as non-root, and its data volume is the working directory")
  void portsUserAndDataFolderMatchTheLaunchContract() throws IOException {
    List<Instruction> stage = finalStage(parse(Path.of("Dockerfile")));
    JsonObject defaults = new JsonObject(Files.readString(Path.of("conf/config.json")));
    String expose = only(stage, "EXPOSE");
    assertTrue(List.of(expose.split("\\s+")).contains(String.valueOf(defaults.getJsonObject("http").getInteger("port"))));
    assertTrue(List.of(expose.split("\\s+")).contains(String.valueOf(defaults.getJsonObject("tcp").getInteger("port"))));
    String user = only(stage, "USER");
    assertNotEquals("root", user);
    assertNotEquals("0", user);
    String workdir = only(stage, "WORKDIR");
    assertEquals("[\"" + workdir + "\"]", only(stage, "VOLUME"));
    assertTrue(only(stage, "ENV").contains("-XX:MaxRAMPercentage"), "container-aware heap sizing");
    // the flags the README's run command gives, measured in its Performance section
    assertTrue(only(stage, "ENV").contains(README_JVM_FLAGS), "JAVA_OPTS has " + README_JVM_FLAGS);
    assertTrue(Files.readString(Path.of("README.md")).contains("java " + README_JVM_FLAGS + " -jar target/chat-server.jar"),
        "the README's run command has " + README_JVM_FLAGS);
  }

  @Test
  @DisplayName("the image's HEALTHCHECK runs the jar's own healthcheck command")
  void healthcheckUsesTheJar() throws IOException {
    String healthcheck = only(finalStage(parse(Path.of("Dockerfile"))), "HEALTHCHECK");
    assertTrue(healthcheck.contains("CMD [\"java\""), healthcheck);
    assertTrue(healthcheck.contains("\"-jar\", \"/app/chat-server.jar\", \"healthcheck\"]"), healthcheck);
    assertTrue(chat.Main.help().contains("healthcheck"), "Main knows the healthcheck command");
  }
}
