# syntax=docker/dockerfile:1
# Chat server image: build with Maven, run on a JRE as a non-root user.
#   docker build -t chat-server .
#   docker run -d --name chat -p 5001:5001 -p 8889:8889 -v chat-data:/data chat-server

FROM maven:3.9-eclipse-temurin-17 AS build
WORKDIR /src
COPY pom.xml .
RUN mvn -B -q dependency:go-offline
COPY conf conf
COPY src src
RUN mvn -B -q -DskipTests package

FROM eclipse-temurin:17-jre
RUN groupadd --system chat \
 && useradd --system --gid chat --home-dir /data --shell /usr/sbin/nologin chat \
 && mkdir -p /data /app \
 && chown chat:chat /data
COPY --from=build /src/target/chat-server.jar /app/chat-server.jar
# the working directory is the data folder: usr.db and avatar/ live here
WORKDIR /data
VOLUME ["/data"]
# 5443 and 8890: HTTPS and TCP over TLS, when CHAT_TLS_ENABLED=true
EXPOSE 5001 8889 5443 8890
USER chat
# Serial GC with a small young generation and a heap that gives memory back: the live heap is small
# and the event loops should not share their cores with GC threads (5.2 kB of RSS per idle session
# measured with 19,000 sessions: README, Performance); container-aware heap
# sizing, and a restart (not a limp) on running out of memory; override with -e JAVA_OPTS=...
ENV JAVA_OPTS="-XX:+UseSerialGC -Xmn8m -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=20 -XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError"
# ready = the database answers (GET /health/ready); the jar asks it itself, the image has no curl
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx32m", "-jar", "/app/chat-server.jar", "healthcheck"]
# every config key can be set with an environment variable, e.g. -e CHAT_TCP_PORT=9000
ENTRYPOINT ["sh", "-c", "exec java $JAVA_OPTS -jar /app/chat-server.jar \"$@\"", "chat-server"]
