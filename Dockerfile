# syntax=docker/dockerfile:1
# Chat server image: build with Maven, run on a JRE as a non-root user.
#   docker build -t chat-server .
#   docker run -d --name chat -p 5001:5001 -p 8889:8889 -v chat-data:/data chat-server
# The same image runs a cluster node (CHAT_CLUSTER_ENABLED=true): see docker-compose.yml, three
# nodes on one PostgreSQL database behind HAProxy.

FROM maven:3.9-eclipse-temurin-17 AS build
WORKDIR /src
COPY pom.xml .
RUN mvn -B -q dependency:go-offline
COPY conf conf
COPY src src
# -Dcds.skip: the final stage trains its own class-data-sharing archive, with the image's flags.
# The package also copies SQLite's native library for this machine out of the jar, to
# target/sqlite-native (chat.SqliteLibrary): the server loads it from /app/lib instead of writing a
# copy to /tmp and checking it at every start (about 0.1 s; README, Performance)
RUN mvn -B -q -DskipTests -Dcds.skip=true package

FROM eclipse-temurin:17-jre
RUN groupadd --system chat \
 && useradd --system --gid chat --home-dir /data --shell /usr/sbin/nologin chat \
 && mkdir -p /data/avatar /app \
 && chown chat:chat /data /data/avatar
COPY --from=build /src/target/chat-server.jar /app/chat-server.jar
COPY --from=build /src/target/sqlite-native/libsqlitejdbc.so /app/lib/libsqlitejdbc.so
# the working directory is the data folder: usr.db and avatar/ live here (avatar/ is made here, owned
# by chat, so that a volume mounted on /data/avatar alone, as the nodes of docker-compose.yml share
# one, starts out writable by the server)
WORKDIR /data
VOLUME ["/data"]
# 5001: HTTP API; 8889: the TCP line protocol
# 5443 and 8890: HTTPS and TCP over TLS, when CHAT_TLS_ENABLED=true
# 5701 and 5702: cluster mode only (CHAT_CLUSTER_ENABLED=true), between the nodes, never for clients:
#   5701 is Hazelcast's member port (cluster.port, CHAT_CLUSTER_PORT; no auto-increment), 5702 the
#   clustered event bus (cluster.eventBusPort: the jar's default 0 picks a free port, which no one
#   could publish, so the image fixes it with CHAT_CLUSTER_EVENTBUSPORT below)
EXPOSE 5001 8889 5443 8890 5701 5702
# Serial GC with a small young generation and a heap that gives memory back: the live heap is small
# and the event loops should not share their cores with GC threads (5.2 kB of RSS per idle session
# measured with 19,000 sessions: README, Performance); compile thresholds x10, so that a start
# compiles far fewer methods (0.3 s less on one core; the hot paths still reach full
# optimisation within seconds of load: README, Quick start); container-aware heap sizing, and a restart (not a limp) on running out of memory; then the module access Hazelcast asks
# for in cluster mode (without it, it warns and runs slower paths): opens and exports only, no effect
# when clustering is off; override with -e JAVA_OPTS=...
# CHAT_CLUSTER_EVENTBUSPORT: the exposed event-bus port above; only read when CHAT_CLUSTER_ENABLED=true
ENV JAVA_OPTS="-XX:+UseSerialGC -Xmn8m -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=20 -XX:CompileThresholdScaling=10 -XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError --add-modules java.se --add-exports java.base/jdk.internal.ref=ALL-UNNAMED --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED --add-opens java.management/sun.management=ALL-UNNAMED --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED" \
    CHAT_CLUSTER_EVENTBUSPORT=5702
# Class-data sharing: a training start of the server, here at build time, records the classes a
# start loads (about 4,700) in an archive that every start of the container then maps instead of
# reading and verifying them from the jar: with SQLite's library from /app/lib and the flags above,
# startup to both ports on one core 1.9 s -> 0.7 s (README, Performance). The archive belongs to this JDK and this
# jar; a start that cannot use it (other flags, another JDK) falls back to the jar.
RUN mkdir /tmp/cds-training && cd /tmp/cds-training \
 && CHAT_HTTP_PORT=0 CHAT_TCP_PORT=0 CHAT_HOST=127.0.0.1 CHAT_AUTH_HASHCOST=low \
    java -Dorg.sqlite.lib.path=/app/lib $JAVA_OPTS -XX:ArchiveClassesAtExit=/app/chat-server.jsa -jar /app/chat-server.jar --exit-after-startup \
 && cd / && rm -rf /tmp/cds-training && chmod 444 /app/chat-server.jsa
USER chat
# ready = the database answers (GET /health/ready); the jar asks it itself, the image has no curl.
# A fresh JVM every 30 s: the class-data-sharing archive and C1 only keep it at about 0.4 s and 0.5 s
# of CPU (README, Container)
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["java", "-XX:SharedArchiveFile=/app/chat-server.jsa", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx32m", "-jar", "/app/chat-server.jar", "healthcheck"]
# every config key can be set with an environment variable, e.g. -e CHAT_TCP_PORT=9000
ENTRYPOINT ["sh", "-c", "exec java -XX:SharedArchiveFile=/app/chat-server.jsa -Dorg.sqlite.lib.path=/app/lib $JAVA_OPTS -jar /app/chat-server.jar \"$@\"", "chat-server"]
