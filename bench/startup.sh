#!/usr/bin/env bash
# Startup time: from launching `java` to the server's startup line ("Chat server listening"), the
# server pinned to one core (taskset -c CPU, default 0) in an empty temporary folder (a new SQLite
# database), RUNS times (default 5); prints each run and the median. The server's own figure
# ("started in N ms", counted from main()) is shown beside it.
#
#   bench/startup.sh [RUNS] [-- JVM FLAGS...]     e.g.  bench/startup.sh 5 -- -XX:SharedArchiveFile=chat.jsa
#
# Environment: JAR (default target/chat-server.jar), JAVA_OPTS (default the README run command's
# flags, with its class-data-sharing archive target/chat-server.jsa when the build made one; the
# flags after -- are added), CPU.
set -euo pipefail
RUNS=${1:-5}; shift || true
[ "${1:-}" = "--" ] && shift
cd "$(dirname "$0")/.."
JAR=${JAR:-$PWD/target/chat-server.jar}
if [ -z "${JAVA_OPTS:-}" ]; then
  JAVA_OPTS="-XX:+UseSerialGC -Xmn8m -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=20"
  [ -f target/chat-server.jsa ] && JAVA_OPTS="-XX:SharedArchiveFile=$PWD/target/chat-server.jsa $JAVA_OPTS"
fi
CPU=${CPU:-0}
[ -f "$JAR" ] || { echo "startup.sh: no $JAR: build it first (mvn -B -q package -DskipTests)" >&2; exit 2; }
times=()
for i in $(seq 1 "$RUNS"); do
  dir=$(mktemp -d /tmp/chat-startup.XXXXXX)
  t0=$(date +%s%N)
  # shellcheck disable=SC2086
  taskset -c "$CPU" env -C "$dir" CHAT_HTTP_PORT=0 CHAT_TCP_PORT=0 CHAT_HOST=127.0.0.1 \
      java $JAVA_OPTS "$@" -jar "$JAR" > "$dir/out.log" 2>&1 &
  pid=$!
  deadline=$((SECONDS + 60))
  until grep -q 'Chat server listening' "$dir/out.log" 2> /dev/null; do
    if ! kill -0 "$pid" 2> /dev/null || [ $SECONDS -ge $deadline ]; then
      echo "startup.sh: no startup line; the server's output:" >&2; cat "$dir/out.log" >&2; kill "$pid" 2> /dev/null; exit 1
    fi
    sleep 0.005
  done
  t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000000 ))
  times+=("$ms")
  echo "run $i: $ms ms to the startup line (the server's own count: $(grep -o 'started in [0-9]* ms' "$dir/out.log" | grep -o '[0-9]*') ms)"
  kill "$pid"; wait "$pid" 2> /dev/null || true
  rm -rf "$dir"
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR] = $1} END {print "median: " a[int((NR + 1) / 2)] " ms of " NR " runs"}'
