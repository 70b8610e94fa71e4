#!/usr/bin/env bash
# Fan-out side by side: this server and Redis pub/sub, measured by the independent referee
# (../shared/tools/fanout) at the same point, alternated, N runs each; prints every run and the
# medians. Server on core 0, generator on core 1 (taskset), as in the referee's ANCHORS.md.
#
#   bench/side-by-side.sh SUBS SENDERS WINDOW RATE [RUNS]
#     RATE 0 = as fast as WINDOW allows; RATE > 0 = fixed total msgs/s (WINDOW then unused)
#
# Environment: FANOUT (path of the built referee, default /tmp/fanout/fanout: build it with
# `gcc -O2 -o /tmp/fanout/fanout ../shared/tools/fanout/fanout.c`), JAR (default target/chat-server.jar),
# JAVA_OPTS (server JVM flags, default the README's), SERVER_ENV (more CHAT_* settings for the chat
# server, e.g. "CHAT_METRICS_ENABLED=false"), REDIS=0 to skip Redis, OUT (folder for the raw
# reports, default /tmp/side-by-side), WARMUP (the referee's warm-up in seconds, default 2 as in its
# ANCHORS.md; the same for both servers: Redis needs none, but this server's JIT on one core is
# still compiling its fan-out path seconds into the load, so 20 shows it as it runs for hours).
# The chat server runs with the low hashing cost and the abuse limits off: neither scenario is
# about them.
set -euo pipefail
SUBS=${1:?subs}; SENDERS=${2:?senders}; WINDOW=${3:?window}; RATE=${4:?rate}; RUNS=${5:-3}
cd "$(dirname "$0")/.."
FANOUT=${FANOUT:-/tmp/fanout/fanout}
JAR=${JAR:-$PWD/target/chat-server.jar}
JAVA_OPTS=${JAVA_OPTS:--XX:+UseSerialGC -Xms16m -Xmn8m -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=20 -XX:CompileThresholdScaling=10}
OUT=${OUT:-/tmp/side-by-side}
WARMUP=${WARMUP:-2}
mkdir -p "$OUT"
[ -x "$FANOUT" ] || { echo "build the referee first: mkdir -p $(dirname $FANOUT) && gcc -O2 -o $FANOUT ../shared/tools/fanout/fanout.c" >&2; exit 2; }
[ -f "$JAR" ] || { echo "build the server first: mvn -q -DskipTests package" >&2; exit 2; }

# wait until core 0 is idle, so one run does not start in the tail of the previous one
settle() { sleep 2; }

run_chat() {
  local port=$((28400 + RANDOM % 500)) pid report
  report="$OUT/chat-$SUBS-$SENDERS-$WINDOW-$RATE-$1.txt"
  # shellcheck disable=SC2086
  taskset -c 0 env -C "$OUT" CHAT_HTTP_PORT=$((port - 3000)) CHAT_TCP_PORT=$port CHAT_AUTH_HASHCOST=low \
      CHAT_LIMITS_ENABLED=false CHAT_LOG_LEVEL=WARN CHAT_TCP_MAXCONNECTIONS=20000 ${SERVER_ENV:-} \
      java $JAVA_OPTS -jar "$JAR" > "$OUT/chat-server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  taskset -c 1 "$FANOUT" --mode chat --port $port --subs "$SUBS" --senders "$SENDERS" --rate "$RATE" \
      --window "$WINDOW" --duration 10 --warmup "$WARMUP" --payload 100 --src-ips 4 --stall-ms 5000 \
      --server-pid $pid > "$report" 2>&1 || true
  kill $pid; wait $pid 2>/dev/null || true
  grep '^STATS' "$report" || echo "STATS failed (see $report)"
}

run_redis() {
  local port=$((16300 + RANDOM % 80)) pid report
  report="$OUT/redis-$SUBS-$SENDERS-$WINDOW-$RATE-$1.txt"
  taskset -c 0 redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no --protected-mode no \
      --maxclients 19968 --daemonize no --logfile "$OUT/redis.log" &
  pid=$!
  for _ in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  taskset -c 1 "$FANOUT" --mode redis --port $port --subs "$SUBS" --senders "$SENDERS" --rate "$RATE" \
      --window "$WINDOW" --duration 10 --warmup "$WARMUP" --payload 100 --stall-ms 5000 \
      --server-pid $pid > "$report" 2>&1 || true
  kill $pid; wait $pid 2>/dev/null || true
  grep '^STATS' "$report" || echo "STATS failed (see $report)"
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }

: > "$OUT/chat.stats"; : > "$OUT/redis.stats"
for i in $(seq 1 "$RUNS"); do
  run_chat "$i" | tee -a "$OUT/chat.stats"; settle
  if [ "${REDIS:-1}" != 0 ]; then run_redis "$i" | tee -a "$OUT/redis.stats"; settle; fi
done
for who in chat redis; do
  [ -s "$OUT/$who.stats" ] || continue
  echo "$who median: deliveries/s $(field deliveries_per_s < "$OUT/$who.stats" | median)" \
       "p50_us $(field p50_us < "$OUT/$who.stats" | median) p99_us $(field p99_us < "$OUT/$who.stats" | median)" \
       "max_us $(field max_us < "$OUT/$who.stats" | median) srv_cpu $(field srv_cpu < "$OUT/$who.stats" | median)%" \
       "lost $(field lost < "$OUT/$who.stats" | tr '\n' ' ')"
done
