#!/usr/bin/env bash
# Cluster fan-out side by side, measured by the project's load generator (chat.bench.Load fanout):
#   (a) one node, cluster off
#   (b) one node, cluster on (a cluster of one)
#   (c) two nodes A and B in one cluster: the senders on A, the receivers on B
# alternated (a, b, c, a, b, c, ...), RUNS repetitions each; prints every run, the medians and the
# ratios to (a). Every server process is pinned to core SERVER_CPU (0), both A and B in (c), so the
# server side has the same one core in all three; the generator runs on core GEN_CPU (1).
#
#   bench/cluster.sh [SESSIONS [SENDERS [WINDOW [DURATION [RUNS]]]]]     (default 1000 4 4 10s 3)
#
# Builds nothing: expects target/chat-server.jar (mvn -B -q package -DskipTests).
# Environment: JAR; JAVA_OPTS (server JVM flags, default the README run command's); HZ_OPTS (added
# for cluster runs: the flags that keep Hazelcast from warning); SERVER_CPU, GEN_CPU; SENDER_CPU (the
# core of node A in (c), default SERVER_CPU; set it to GEN_CPU to give B a core of its own, as (a)'s
# server has, with A beside the generator: two machines, as far as two cores can show it); WARMUP (60s: on one
# shared core the JVMs' compiler threads take that long to work off their queues, node A's above all
# (its hot paths warm slowly and its compiler threads compete with B's fan-out for the core): with 2s,
# runs rose by up to 2x within their window; with 20s, A's C2 compiler threads still took half of
# A's CPU in the window (async-profiler) and (c) measured 0.65x (a); with 60s, 1.06x);
# RATE (chats/s from all senders together, default 0: as fast as the window allows; at a fixed rate
# low enough that the server idles between chats, every scenario delivers the same, and the table's
# server CPU per delivery is what compares them);
# LOAD_OPTS (more chat.bench.Load options, e.g. "--payload 200"); SERVER_ENV (more CHAT_*=... for
# every server); ONLY (e.g. "a c": run only these scenarios); OUT (reports and server logs, kept;
# default /tmp/cluster-bench); PROFILER (path of async-profiler's libasyncProfiler.so: each server
# is CPU-profiled over the measured window, OUT/SCENARIO-RUN-NODE.collapsed; the profiler costs the
# server some throughput, so do not mix such runs with plain ones); MAX_SECONDS (the whole run's
# budget, default 2700; each step is bounded too). QUIET_MAX, QUIET_WAIT: before each run, wait at most QUIET_WAIT s (120) until the other processes use less
# than QUIET_MAX % of one core (25); the run starts anyway after that, and says what it saw.
# OTHERS_MAX, RETRIES: a run during whose window other processes used more than OTHERS_MAX % of a
# core (30; Load's other_cpu) is discarded and made again, at most RETRIES times (2); the last try
# is kept whatever it saw. The table shows each kept run's figure for other processes.
# The nodes share one SQLite file (CHAT_DB_URL) in a temporary folder that is deleted on exit, with
# the low hashing cost; the abuse limits are off, as in the other benchmarks.
set -euo pipefail
SESSIONS=${1:-1000}; SENDERS=${2:-4}; WINDOW=${3:-4}; DURATION=${4:-10s}; RUNS=${5:-3}
case $DURATION in *[0-9]) DURATION=${DURATION}s ;; esac
cd "$(dirname "$0")/.."
JAR=${JAR:-$PWD/target/chat-server.jar}
JAVA_OPTS=${JAVA_OPTS:--XX:+UseSerialGC -Xmn8m -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=20 -XX:CompileThresholdScaling=10}
HZ_OPTS=${HZ_OPTS:---add-modules java.se --add-exports java.base/jdk.internal.ref=ALL-UNNAMED --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED --add-opens java.management/sun.management=ALL-UNNAMED --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED}
RATE=${RATE:-0}; SERVER_CPU=${SERVER_CPU:-0}; GEN_CPU=${GEN_CPU:-1}; SENDER_CPU=${SENDER_CPU:-$SERVER_CPU}
WARMUP=${WARMUP:-60s}
ONLY=${ONLY:-a b c}
OUT=${OUT:-/tmp/cluster-bench}
MAX_SECONDS=${MAX_SECONDS:-2700}
QUIET_MAX=${QUIET_MAX:-25}; QUIET_WAIT=${QUIET_WAIT:-120}
OTHERS_MAX=${OTHERS_MAX:-30}; RETRIES=${RETRIES:-2}
STARTUP_SECONDS=90   # one node's startup line (a cluster node joins in 5-12 s)
[ -f "$JAR" ] || { echo "cluster.sh: no $JAR: build it first (mvn -B -q package -DskipTests)" >&2; exit 2; }
command -v taskset > /dev/null || { echo "cluster.sh: taskset is needed (util-linux)" >&2; exit 2; }
dur_s=$(awk -v d="$DURATION" 'BEGIN { n = d + 0; if (d ~ /ms$/) n /= 1000; else if (d ~ /m$/) n *= 60; print int(n + 1) }')
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/chat-cluster-bench.XXXXXX)
BEGIN=$SECONDS
PIDS=()

cleanup() {
  local pid
  if [ -n "${GEN_PID:-}" ]; then kill -TERM "$GEN_PID" 2> /dev/null && wait "$GEN_PID" 2> /dev/null || true; fi
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2> /dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "cluster.sh: interrupted" >&2; exit 130' INT TERM

# freeports N: N distinct free ports below the ephemeral range (Hazelcast's member ports: the
# generator's thousands of connections take ephemeral ports, and a port picked among those can be
# taken again before the node binds it); all held at once while they are picked
freeports() {
  python3 -c 'import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
ss = []
while len(ss) < int(sys.argv[1]):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randrange(max(1024, low - 12000), low)))
        ss.append(s)
    except OSError:
        s.close()
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1" 2> /dev/null \
    || { local p=$((20000 + RANDOM % 10000)); seq -s' ' "$p" $((p + $1 - 1)); }
}

# busy: the machine's CPU use over one second, in % of one core (what other processes use: between
# runs this script's servers are stopped)
busy() {
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat); sleep 1
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
  awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " ");
    printf "%.0f", (y[2] > x[2]) ? (y[1] - x[1]) * 100 * n / (y[2] - x[2]) : 0 }'
}

# quiet: before each run, waits (at most QUIET_WAIT s) until other processes use under QUIET_MAX %
# of one core; says what it saw
quiet() {
  local b t0=$SECONDS
  b=$(busy)
  while [ "$b" -ge "$QUIET_MAX" ] && [ $((SECONDS - t0)) -lt "$QUIET_WAIT" ]; do b=$(busy); done
  echo "machine busy ${b}% of a core before the run$([ $((SECONDS - t0)) -gt 1 ] && echo " (waited $((SECONDS - t0)) s)")"
}

# the server logs at WARN (nothing per login), but its startup line (chat.Main, INFO) is kept
cat > "$WORK/logback.xml" << 'EOF'
<configuration>
  <appender name="OUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level [%thread] %logger{0} - %msg%n</pattern></encoder>
  </appender>
  <logger name="chat.Main" level="INFO"/>
  <root level="WARN"><appender-ref ref="OUT"/></root>
</configuration>
EOF

# start_node NAME DIR [CLUSTER_NAME HZ_PORT MEMBERS]: starts a server pinned to SERVER_CPU (CPU, when
# set); sets NODE_PID
start_node() {
  local name=$1 dir=$2 cluster=() cpu=${CPU:-$SERVER_CPU}
  if [ $# -gt 2 ]; then
    cluster=(CHAT_CLUSTER_ENABLED=true "CHAT_CLUSTER_NAME=$3" CHAT_CLUSTER_HOST=127.0.0.1 "CHAT_CLUSTER_PORT=$4"
             "CHAT_CLUSTER_MEMBERS=$5" CHAT_CLUSTER_EVENTBUSPORT=0)
  fi
  local opts=$JAVA_OPTS
  [ $# -gt 2 ] && opts="$opts $HZ_OPTS"
  # loaded at startup, idle until the window: attaching it later would change the JIT's settings mid-run
  [ -n "${PROFILER:-}" ] && opts="$opts -agentpath:$PROFILER -XX:+UnlockDiagnosticVMOptions -XX:+DebugNonSafepoints"
  # shellcheck disable=SC2086
  taskset -c "$cpu" env -C "$dir" CHAT_HTTP_PORT=0 CHAT_TCP_PORT=0 CHAT_HOST=127.0.0.1 \
      "CHAT_DB_URL=jdbc:sqlite:$(dirname "$dir")/shared.db" CHAT_AUTH_HASHCOST=low CHAT_LIMITS_ENABLED=false CHAT_LOG_LEVEL=WARN \
      CHAT_TCP_MAXCONNECTIONS=20000 "${cluster[@]}" ${SERVER_ENV:-} \
      java $opts "-Dlogback.configurationFile=$WORK/logback.xml" -jar "$JAR" > "$dir/$name.log" 2>&1 &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
}

# await_node NAME DIR PID [MEMBERS]: waits for the startup line (with "MEMBERS member(s)"); sets NODE_HTTP, NODE_TCP
await_node() {
  local name=$1 dir=$2 pid=$3 members=${4:-} line deadline=$((SECONDS + STARTUP_SECONDS))
  while :; do
    line=$(grep -m1 'Chat server listening: HTTP port' "$dir/$name.log" 2> /dev/null || true)
    [ -n "$line" ] && break
    if ! kill -0 "$pid" 2> /dev/null; then
      echo "cluster.sh: node $name exited before listening; its log:" >&2; tail -20 "$dir/$name.log" >&2; return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "cluster.sh: node $name did not log its startup line in ${STARTUP_SECONDS} s" >&2; tail -20 "$dir/$name.log" >&2; return 1
    fi
    sleep 0.1
  done
  NODE_HTTP=$(sed 's/.*HTTP port \([0-9]*\), TCP port \([0-9]*\).*/\1/' <<< "$line")
  NODE_TCP=$(sed 's/.*HTTP port \([0-9]*\), TCP port \([0-9]*\).*/\2/' <<< "$line")
  if [ -n "$members" ] && ! grep -q "$members member(s)" <<< "$line"; then
    echo "cluster.sh: node $name did not join the cluster: $line" >&2; return 1
  fi
  echo "  $name: $(sed 's/.*Chat server listening: //' <<< "$line")"
}

stop_nodes() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2> /dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq 1 150); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
  done
  local keep=() p
  for p in "${PIDS[@]}"; do [[ " $* " == *" $p "* ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# load REPORT "PID:NODE ..." ARGS...: the generator, pinned to GEN_CPU, bounded in time; with PROFILER,
# each server PID is profiled (CPU, async-profiler loaded through jcmd) over the measured window
load() {
  local report=$1 servers=$2 gen; shift 2
  # shellcheck disable=SC2086
  timeout -k 10 $((dur_s + 300)) taskset -c "$GEN_CPU" java -cp "$JAR" chat.bench.Load fanout --attach \
      --sessions "$SESSIONS" --senders "$SENDERS" --window "$WINDOW" --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" \
      "$@" ${LOAD_OPTS:-} > "$report" 2> "$report.err" &
  gen=$!
  GEN_PID=$gen
  [ -n "${PROFILER:-}" ] && profile "$report" "$servers" "$gen"
  wait "$gen" || true
  GEN_PID=
  grep '^RESULT' "$report" || { echo "RESULT status=fail (see $report, $report.err)"; tail -5 "$report.err" >&2; }
}

# profile REPORT "PID:NODE ..." GENERATOR_PID: a CPU profile of each server over the measured window,
# from the generator's first progress line in it for DURATION less 3 s (the profiler stops itself:
# the connections closing after the window are not in it); writes REPORT-NODE.collapsed
profile() {
  local report=$1 servers=$2 gen=$3 s
  while kill -0 "$gen" 2> /dev/null && ! grep -q '\] measure' "$report.err" 2> /dev/null; do sleep 0.1; done
  kill -0 "$gen" 2> /dev/null || return 0
  for s in $servers; do
    # jcmd reads key=value itself: the agent's options go in quotes of their own
    taskset -c "$GEN_CPU" jcmd "${s%%:*}" JVMTI.agent_load "$PROFILER" \
        "\"start,event=cpu,interval=1ms,threads,timeout=$((dur_s > 4 ? dur_s - 4 : 1)),collapsed,file=${report%.txt}-${s#*:}.collapsed\"" \
        > /dev/null 2>&1 || true
  done
}

# run SCENARIO I: one run; appends its RESULT line to $OUT/SCENARIO.results
run() {
  local sc=$1 i=$2 dir="$WORK/$1-$2" report="$OUT/$1-$2.txt" a b hz1 hz2 name
  local try started=
  echo "($sc) run $i, $(date -u +%H:%M:%S) UTC, loadavg $(cut -d' ' -f1-3 /proc/loadavg), $(quiet)"
  for try in 1 2; do # a second try, with other ports, if the first startup fails (a port taken meanwhile)
    rm -rf "$dir"; mkdir -p "$dir/a" "$dir/b"
    name="chat-bench-$$-$sc-$i-$try"
    read -r hz1 hz2 <<< "$(freeports 2)"
    case $sc in
      a) start_node a "$dir/a" ;;
      b) start_node a "$dir/a" "$name" "$hz1" "127.0.0.1:$hz1" ;;
      c) CPU=$SENDER_CPU start_node a "$dir/a" "$name" "$hz1" "127.0.0.1:$hz1,127.0.0.1:$hz2" ;;
    esac
    a=$NODE_PID
    if ! await_node a "$dir/a" "$a" "$([ "$sc" = a ] || echo 1)"; then
      stop_nodes "$a"; continue
    fi
    if [ "$sc" = c ]; then
      local a_http=$NODE_HTTP a_tcp=$NODE_TCP
      start_node b "$dir/b" "$name" "$hz2" "127.0.0.1:$hz1,127.0.0.1:$hz2"; b=$NODE_PID
      if ! await_node b "$dir/b" "$b" 2; then
        stop_nodes "$b" "$a"; continue
      fi
    fi
    started=1; break
  done
  if [ -z "$started" ]; then
    echo "RESULT status=fail startup" | tee "$OUT/$sc-$i.result"; rm -rf "$dir"; return
  fi
  if [ "$sc" = c ]; then
    load "$report" "$a:a $b:b" --tcp-port "$NODE_TCP" --http-port "$NODE_HTTP" --server-pid "$b" \
        --sender-tcp-port "$a_tcp" --sender-server-pid "$a" > "$OUT/$sc-$i.result"
    stop_nodes "$b" "$a"
    cp "$dir/a/a.log" "$OUT/$sc-$i-a.log"; cp "$dir/b/b.log" "$OUT/$sc-$i-b.log"
  else
    load "$report" "$a:a" --tcp-port "$NODE_TCP" --http-port "$NODE_HTTP" --server-pid "$a" > "$OUT/$sc-$i.result"
    stop_nodes "$a"
    cp "$dir/a/a.log" "$OUT/$sc-$i.log"
  fi
  short < "$OUT/$sc-$i.result"
  rm -rf "$dir"
  sleep 2 # the next run does not start in the tail of this one
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
median() { sort -g | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]}'; }
commas() { awk '{ n = sprintf("%.0f", $1); s = ""; while (length(n) > 3) { s = "," substr(n, length(n) - 2) s; n = substr(n, 1, length(n) - 3) } print n s }'; }
short() {
  while read -r l; do
    echo "  $(field status <<< " $l") deliveries/s $(field deliveries_per_s <<< " $l" | commas)," \
         "p50 $(field p50_us <<< " $l") us, p99 $(field p99_us <<< " $l") us, lost $(field lost <<< " $l")," \
         "server CPU $(field srv_cpu <<< " $l")%$( [ -n "$(field srv2_cpu <<< " $l")" ] && echo " + $(field srv2_cpu <<< " $l")% (A)")," \
         "others $(field other_cpu <<< " $l")%"
  done
}

echo "cluster.sh: $SESSIONS sessions x $SENDERS senders, window $WINDOW, rate $([ "$RATE" = 0 ] && echo "as fast as the window allows" || echo "$RATE chats/s"), $DURATION (warm-up $WARMUP), $RUNS runs each;" \
     "servers on CPU $SERVER_CPU$([ "$SENDER_CPU" != "$SERVER_CPU" ] && echo " (node A in (c) on CPU $SENDER_CPU)"), generator on CPU $GEN_CPU; $(nproc) CPUs; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  server JVM: $JAVA_OPTS (+ Hazelcast flags in cluster runs); reports in $OUT"
for sc in a b c; do : > "$OUT/$sc.results"; : > "$OUT/$sc.discarded"; done
for i in $(seq 1 "$RUNS"); do
  for sc in $ONLY; do
    for try in $(seq 0 "$RETRIES"); do
      if [ $((SECONDS - BEGIN)) -ge "$MAX_SECONDS" ]; then
        echo "cluster.sh: out of time (MAX_SECONDS=$MAX_SECONDS): stopping here" >&2; break 3
      fi
      run "$sc" "$i"
      others=$(field other_cpu < "$OUT/$sc-$i.result")
      if [ -n "$others" ] && [ "$try" -lt "$RETRIES" ] && awk -v o="$others" -v m="$OTHERS_MAX" 'BEGIN { exit !(o > m) }'; then
        echo "  discarded: other processes used ${others}% of a core during the window (over OTHERS_MAX=$OTHERS_MAX): again"
        cat "$OUT/$sc-$i.result" >> "$OUT/$sc.discarded"
        continue
      fi
      cat "$OUT/$sc-$i.result" >> "$OUT/$sc.results"
      break
    done
  done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

label() {
  case $1 in
    a) echo "(a) one node, cluster off" ;;
    b) echo "(b) one node, cluster on" ;;
    c) echo "(c) A+B, senders A, receivers B" ;;
  esac
}
am=$(field deliveries_per_s < "$OUT/a.results" | median)
echo
echo "loadavg at the end: $LOAD_END; $((SECONDS - BEGIN)) s in all"
# server CPU per delivery: both nodes' CPU in (c); at a fixed RATE low enough for a pass per chat, every
# scenario delivers the same, and this is what the cluster costs, free of the spread of a
# window-bound rate between fresh servers
cpu_ns() { awk '{ c = 0; d = 0; for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "srv_cpu" || kv[1] == "srv2_cpu") c += kv[2];
  if (kv[1] == "deliveries_per_s") d = kv[2] } if (d > 0 && c > 0) printf "%.0f\n", c * 1e7 / d }'; }
printf '%-33s | %-38s | %-10s | %-6s | %-15s | %-12s | %-14s | %s\n' scenario "deliveries/s per run" median "/ (a)" "p50/p99 ms (med)" \
    "CPU ns/deliv" "others CPU %" lost
for sc in $ONLY; do
  f="$OUT/$sc.results"
  [ -s "$f" ] || continue
  runs=$(field deliveries_per_s < "$f" | commas | paste -sd/ - | sed 's|/| / |g')
  fails=$(grep -c 'status=fail' "$f" || true)
  discarded=$(grep -c '' "$OUT/$sc.discarded" || true)
  m=$(field deliveries_per_s < "$f" | median)
  ratio=$([ -n "$am" ] && [ -n "$m" ] && awk -v m="$m" -v a="$am" 'BEGIN { printf "%.2f", m / a }' || echo -)
  lat=$(awk -v p="$(field p50_us < "$f" | median)" -v q="$(field p99_us < "$f" | median)" 'BEGIN { printf "%.1f / %.1f", p / 1000, q / 1000 }')
  others=$(field other_cpu < "$f" | awk '{ printf "%s%.0f", (NR > 1 ? " / " : ""), $1 }')
  cpu=$(cpu_ns < "$f" | paste -sd/ -)
  printf '%-33s | %-38s | %-10s | %-6s | %-15s | %-12s | %-14s | %s\n' "$(label "$sc")" \
      "${runs:-none}$([ "$fails" -gt 0 ] && echo " ($fails failed)")$([ "$discarded" -gt 0 ] && echo " ($discarded discarded)")" "$(echo "${m:-0}" | commas)" "$ratio" "$lat" \
      "$(cpu_ns < "$f" | median) (${cpu:--})" "$others" "$(field lost < "$f" | paste -sd' ' -)"
done
if [ -n "$am" ]; then
  for sc in b c; do
    [ -s "$OUT/$sc.results" ] || continue
    pairs=$(paste <(field deliveries_per_s < "$OUT/a.results") <(field deliveries_per_s < "$OUT/$sc.results") \
      | awk 'NF == 2 && $1 > 0 { printf "%s%.2f", (n++ ? ", " : ""), $2 / $1 }')
    echo "($sc) / (a) run by run: $pairs"
  done
  bm=$(field deliveries_per_s < "$OUT/b.results" | median); cm=$(field deliveries_per_s < "$OUT/c.results" | median)
  if [ "$RATE" != 0 ]; then # every scenario delivers the rate: the targets are about RATE=0; compare the CPU
    ac=$(cpu_ns < "$OUT/a.results" | median)
    for sc in b c; do
      xc=$(cpu_ns < "$OUT/$sc.results" | median)
      [ -n "$ac" ] && [ -n "$xc" ] && awk -v x="$xc" -v a="$ac" -v s="$sc" \
          'BEGIN { printf "server CPU per delivery, (%s) against (a): %.2fx (at a fixed rate; the throughput targets need RATE=0)\n", s, x / a }'
    done
    bm=; cm=
  fi
  [ -n "$bm" ] && awk -v b="$bm" -v a="$am" 'BEGIN { l = (1 - b / a) * 100; printf "cluster of one against cluster off: %+.1f %% (%s; the target: lose no more than 10 %%)\n", -l, (l <= 10) ? "met" : "NOT met" }'
  [ -n "$cm" ] && awk -v c="$cm" -v a="$am" 'BEGIN { printf "cross-node against one node: %.2fx (%s; the target: at least 0.80x)\n", c / a, (c / a >= 0.8) ? "met" : "NOT met" }'
fi
