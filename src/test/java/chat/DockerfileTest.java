package chat;

import chat.config.ChatConfig;
import chat.config.ConfigLoader;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

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

  /**
   * The server's JVM flags, in the README's run command and the image: many idle sessions per
   * megabyte (Serial GC, small young generation, a heap given back), and fewer compilations during
   * a start (README, Quick start).
   */
  static final String README_JVM_FLAGS =
      "-XX:+UseSerialGC -Xmn8m -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=20 -XX:CompileThresholdScaling=10";

  /**
   * The access to JDK internals Hazelcast asks for (its startup warning lists them): in the image's
   * JAVA_OPTS for cluster mode; JarLaunchIT starts a clustered node with them and sees no warning.
   */
  static final String HAZELCAST_JVM_FLAGS = "--add-modules java.se --add-exports java.base/jdk.internal.ref=ALL-UNNAMED"
      + " --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED"
      + " --add-opens java.management/sun.management=ALL-UNNAMED"
      + " --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED";

  record Instruction(String keyword, String args) {
  }

  private static final Pattern ENV_PAIR = Pattern.compile("\\G\\s*([A-Za-z_][A-Za-z0-9_]*)=(\"([^\"\\\\]*)\"|([^\\s\"]*))");

  /** The variables the final stage's ENV instructions set ({@code KEY=VALUE} pairs; values quoted or plain). */
  static Map<String, String> env(List<Instruction> stage) {
    Map<String, String> env = new LinkedHashMap<>();
    for (Instruction i : stage) {
      if (!i.keyword().equals("ENV")) {
        continue;
      }
      Matcher m = ENV_PAIR.matcher(i.args());
      int end = 0;
      while (m.find()) {
        env.put(m.group(1), m.group(3) != null ? m.group(3) : m.group(4));
        end = m.end();
      }
      assertEquals(i.args().length(), end, "ENV as KEY=VALUE pairs: " + i.args());
    }
    return env;
  }

  /** The image's environment: the Dockerfile's final stage. */
  static Map<String, String> imageEnv() throws IOException {
    return env(finalStage(parse(Path.of("Dockerfile"))));
  }

  /** The ports of the final stage's EXPOSE. */
  static List<Integer> exposedPorts() throws IOException {
    return List.of(only(finalStage(parse(Path.of("Dockerfile"))), "EXPOSE").split("\\s+")).stream()
        .map(p -> Integer.parseInt(p.replace("/tcp", ""))).toList();
  }

  /**
   * The configuration that {@code CHAT_*} environment variables give (every other variable is
   * ignored, as the server does): each must name a configuration key, and its text is typed as
   * the server's environment layer types it (integer, true/false, or text).
   */
  static ChatConfig configFromEnv(Map<String, String> env) {
    Map<String, Object> defaults = ConfigLoader.flatDefaults();
    Map<String, String> keyOfEnv = new LinkedHashMap<>();
    defaults.keySet().forEach(k -> keyOfEnv.put(ConfigLoader.envName(k), k));
    JsonObject flat = new JsonObject();
    env.forEach((name, text) -> {
      if (!name.startsWith("CHAT_")) {
        return;
      }
      String key = keyOfEnv.get(name);
      assertTrue(key != null, name + " is the environment variable of a configuration key");
      Object def = defaults.get(key);
      Object value;
      if (def instanceof Integer) {
        value = Integer.parseInt(text.trim());
      } else if (def instanceof Boolean) {
        assertTrue(text.trim().equalsIgnoreCase("true") || text.trim().equalsIgnoreCase("false"), name + " is true or false");
        value = Boolean.parseBoolean(text.trim());
      } else {
        value = text;
      }
      flat.put(key, value);
    });
    return ChatConfig.withOverrides(flat);
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
    assertTrue(entrypoint.contains("exec java -XX:SharedArchiveFile=/app/chat-server.jsa -Dorg.sqlite.lib.path=/app/lib"
        + " $JAVA_OPTS -jar /app/chat-server.jar"), entrypoint);
    // SQLite's native library: the package copies it out of the jar into target/sqlite-native
    // (chat.SqliteLibrary, for the build machine's platform; the image copies it to the folder the
    // entrypoint names)
    String build = all.stream().takeWhile(i -> !i.keyword().equals("FROM") || i.args().contains("AS build"))
        .filter(i -> i.keyword().equals("RUN")).map(Instruction::args).collect(java.util.stream.Collectors.joining("\n"));
    assertTrue(build.contains("mvn -B -q -DskipTests -Dcds.skip=true package"), "the image trains its own archive: " + build);
    String copy = pom.substring(pom.indexOf("<id>copy-sqlite-library</id>"));
    copy = copy.substring(0, copy.indexOf("</execution>"));
    assertTrue(copy.contains("<phase>package</phase>") && !copy.contains("<skip>"), "every package runs it: " + copy);
    assertTrue(copy.replaceAll("\\s+", "").contains(
        "<argument>chat.SqliteLibrary</argument><argument>${project.build.directory}/sqlite-native</argument>"), copy);
    assertTrue(pom.indexOf("<id>copy-sqlite-library</id>") < pom.indexOf("<id>train-class-data-sharing-archive</id>"),
        "the library is there before the training start loads it");
    assertTrue(finalStage(all).stream().anyMatch(i -> i.keyword().equals("COPY")
        && i.args().equals("--from=build /src/target/sqlite-native/libsqlitejdbc.so /app/lib/libsqlitejdbc.so")));
    // the class-data-sharing archive the entrypoint maps: written by a training run of the same
    // jar with the same JAVA_OPTS (JarLaunchIT runs that command), as root before USER, after ENV
    List<String> keywords = finalStage(all).stream().map(Instruction::keyword).toList();
    int training = -1;
    for (int i = 0; i < finalStage(all).size(); i++) {
      if (finalStage(all).get(i).keyword().equals("RUN") && finalStage(all).get(i).args()
          .contains("java -Dorg.sqlite.lib.path=/app/lib $JAVA_OPTS -XX:ArchiveClassesAtExit=/app/chat-server.jsa"
              + " -jar /app/chat-server.jar --exit-after-startup")) {
        training = i;
      }
    }
    assertTrue(training >= 0, "a RUN trains /app/chat-server.jsa with the image's JAVA_OPTS");
    assertTrue(keywords.indexOf("ENV") < training && training < keywords.indexOf("USER"),
        "the training run sees JAVA_OPTS and writes /app as root: " + keywords);
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
    assertTrue(Files.readString(Path.of("README.md")).contains("java -XX:SharedArchiveFile=target/chat-server.jsa"
        + " -Dorg.sqlite.lib.path=target/sqlite-native " + README_JVM_FLAGS + " -jar target/chat-server.jar"),
        "the README's run command has " + README_JVM_FLAGS);
    // and the build's training run for that command's archive (pom.xml) starts with the same flags
    String pom = Files.readString(Path.of("pom.xml"));
    String training = pom.substring(pom.indexOf("<id>train-class-data-sharing-archive</id>"));
    String arguments = training.substring(training.indexOf("<arguments>"), training.indexOf("</arguments>"));
    Matcher argument = Pattern.compile("<argument>([^<]*)</argument>").matcher(arguments);
    List<String> args = new ArrayList<>();
    while (argument.find()) {
      args.add(argument.group(1));
    }
    assertEquals(README_JVM_FLAGS, String.join(" ", args.subList(0, README_JVM_FLAGS.split(" ").length)), arguments);
    assertTrue(args.contains("-XX:ArchiveClassesAtExit=${project.build.directory}/chat-server.jsa"), arguments);
    assertTrue(args.contains("-Dorg.sqlite.lib.path=${project.build.directory}/sqlite-native"), arguments);
  }

  @Test
  @DisplayName("the benchmarks start the server with the run command's flags: bench scripts and the Load tool")
  void benchmarksUseTheRunCommandFlags() throws Exception {
    for (String script : List.of("bench/side-by-side.sh", "bench/cluster.sh", "bench/startup.sh")) {
      String text = Files.readString(Path.of(script));
      Matcher defaults = Pattern.compile("JAVA_OPTS=\\$\\{JAVA_OPTS:-([^}]*)}|JAVA_OPTS=\"([^\"]*)\"").matcher(text);
      assertTrue(defaults.find(), script + " sets a default JAVA_OPTS");
      String flags = defaults.group(1) != null ? defaults.group(1) : defaults.group(2);
      assertTrue(containsAll(flags, README_JVM_FLAGS), script + "'s JAVA_OPTS " + flags + " lacks some of " + README_JVM_FLAGS);
    }
    java.lang.reflect.Field loadDefault = Class.forName("chat.bench.LoadServer").getDeclaredField("DEFAULT_JVM");
    loadDefault.setAccessible(true);
    String flags = (String) loadDefault.get(null);
    assertTrue(containsAll(flags, README_JVM_FLAGS), "Load's --server-jvm default " + flags + " lacks some of " + README_JVM_FLAGS);
  }

  private static boolean containsAll(String flags, String wanted) {
    return List.of(flags.trim().split("\\s+")).containsAll(List.of(wanted.split(" ")));
  }

  @Test
  @DisplayName("cluster mode: Hazelcast's member port and a fixed event-bus port are exposed, the JVM has the access"
      + " Hazelcast asks for, and clustering stays off by default")
  void clusterPortsAndFlags() throws IOException {
    Map<String, String> env = imageEnv();
    ChatConfig image = configFromEnv(env); // every CHAT_* variable of the image is a configuration key
    assertFalse(image.clusterEnabled, "the image runs one server unless CHAT_CLUSTER_ENABLED=true");
    assertNotEquals(0, image.clusterEventBusPort, "the image fixes the event-bus port, so that it can be exposed");
    List<Integer> exposed = exposedPorts();
    assertTrue(exposed.contains(image.clusterPort), "EXPOSE has Hazelcast's member port " + image.clusterPort);
    assertTrue(exposed.contains(image.clusterEventBusPort), "EXPOSE has the event-bus port " + image.clusterEventBusPort);
    assertNotEquals(image.clusterPort, image.clusterEventBusPort);
    String javaOpts = env.get("JAVA_OPTS");
    assertTrue(javaOpts.contains(HAZELCAST_JVM_FLAGS), "JAVA_OPTS has " + HAZELCAST_JVM_FLAGS);
    assertTrue(javaOpts.startsWith(README_JVM_FLAGS), "the README's flags come first: " + javaOpts);
    // the avatar folder exists in the image, owned by the server's user: a volume mounted there
    // (the shared one of docker-compose.yml) starts out writable
    String avatarDir = only(finalStage(parse(Path.of("Dockerfile"))), "WORKDIR") + "/" + image.avatarDir;
    String run = finalStage(parse(Path.of("Dockerfile"))).stream().filter(i -> i.keyword().equals("RUN"))
        .map(Instruction::args).collect(java.util.stream.Collectors.joining("\n"));
    String user = only(finalStage(parse(Path.of("Dockerfile"))), "USER");
    assertTrue(run.matches("(?s).*mkdir -p [^&]*" + Pattern.quote(avatarDir) + "\\b.*"), "RUN makes " + avatarDir);
    assertTrue(run.matches("(?s).*chown " + user + ":" + user + " [^&]*" + Pattern.quote(avatarDir) + "\\b.*"),
        "RUN gives " + avatarDir + " to " + user);
  }

  @Test
  @DisplayName("the image's HEALTHCHECK runs the jar's own healthcheck command")
  void healthcheckUsesTheJar() throws IOException {
    String healthcheck = only(finalStage(parse(Path.of("Dockerfile"))), "HEALTHCHECK");
    assertTrue(healthcheck.contains("CMD [\"java\""), healthcheck);
    assertTrue(healthcheck.contains("\"-jar\", \"/app/chat-server.jar\", \"healthcheck\"]"), healthcheck);
    // a fresh JVM every 30 s: it maps the archive the image trained (JarLaunchIT runs this command)
    assertTrue(healthcheck.contains("\"-XX:SharedArchiveFile=/app/chat-server.jsa\""), healthcheck);
    assertTrue(chat.Main.help().contains("healthcheck"), "Main knows the healthcheck command");
  }
}
