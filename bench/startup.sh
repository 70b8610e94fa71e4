#!/usr/bin/env bash
# Startup time: from launching `java` to the server's startup line ("Chat server listening"), the
# server pinned to one core (taskset -c CPU, default 0) in an empty temporary folder (a new SQLite
# database), RUNS times (default 5); prints each run and the median. The server's own figure
# ("started in N ms", counted from main()) is shown beside it.
#
#   bench/startup.sh [RUNS] [-- JVM FLAGS...]     e.g.  bench/startup.sh 5 -- -XX:SharedArchiveFile=chat.jsa
#
# Environment: JAR (default target/chat-server.jar), JAVA_OPTS (default the README run command's
# flags, with its class-data-sharing archive target/chat-server.jsa and SQLite's library from
# target/sqlite-native when the build made them; the flags after -- are added), CPU.
set -euo pipefail
RUNS=${1:-5}; shift || true
[ "${1:-}" = "--" ] && shift
cd "$(dirname "$0")/.."
JAR=${JAR:-$PWD/target/chat-server.jar}
if [ -z "${JAVA_OPTS:-}" ]; then
  JAVA_OPTS="-XX:+UseSerialGC -Xmn8m -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=20 -XX:CompileThresholdScaling=10"
  [ -f target/sqlite-native/libsqlitejdbc.so ] && JAVA_OPTS="-Dorg.sqlite.lib.path=$PWD/target/sqlite-native $JAVA_OPTS"
  [ -f target/chat-server.jsa ] && JAVA_OPTS="-XX:SharedArchiveFile=$PWD/target/chat-server.jsa $JAVA_OPTS"
fi
CPU=${CPU:-0}
[ -f "$JAR" ] || { echo "startup.sh: no $JAR: build it first (mvn -B -q package -DskipTests)" >&2; exit 2; }
times=()
for i in $(seq 1 "$RUNS"); do
  dir=$(mktemp -d /tmp/chat-startup.XXXXXX)
  # the server's output through a FIFO that this script reads line by line, blocked until the next
  # one: polling a log file instead (a grep every few ms) took CPU from the server it measured and
  # added 0.1-0.3 s to every start
  mkfifo "$dir/out"
  t0=${EPOCHREALTIME/./}
  # shellcheck disable=SC2086
  taskset -c "$CPU" env -C "$dir" CHAT_HTTP_PORT=0 CHAT_TCP_PORT=0 CHAT_HOST=127.0.0.1 \
      java $JAVA_OPTS "$@" -jar "$JAR" > "$dir/out" 2>&1 &
  pid=$!
  line=""
  exec 3< "$dir/out"
  while IFS= read -r -t 60 line <&3; do
    echo "$line" >> "$dir/out.log"
    [[ $line == *'Chat server listening'* ]] && break
  done
  t1=${EPOCHREALTIME/./}
  if [[ $line != *'Chat server listening'* ]]; then
    echo "startup.sh: no startup line; the server's output:" >&2; cat "$dir/out.log" >&2; kill "$pid" 2> /dev/null; exit 1
  fi
  ms=$(( (t1 - t0) / 1000 ))
  times+=("$ms")
  echo "run $i: $ms ms to the startup line (the server's own count: $(grep -o 'started in [0-9]* ms' <<< "$line" | grep -o '[0-9]*') ms)"
  kill "$pid"; exec 3<&-; wait "$pid" 2> /dev/null || true
  rm -rf "$dir"
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR] = $1} END {print "median: " a[int((NR + 1) / 2)] " ms of " NR " runs"}'
