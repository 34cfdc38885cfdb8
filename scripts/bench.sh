#!/usr/bin/env bash
# Regenerates the figures of docs/performance.md: builds what ships
# (scripts/release.sh: the site, the server built with its profile, and the
# load generator), starts the server on a free loopback port
# with the per-address and per-connection limits lifted (the generator is
# one address sending far beyond a human), and runs each scenario. Output:
# target/bench/*.txt, one file per scenario.
#
#   scripts/bench.sh                 every scenario
#   scripts/bench.sh small search    only the named ones
#   PIN=1 scripts/bench.sh versus-tail   servers on one core, the generator
#                                        on the other
#   RUNS=9 scripts/bench.sh versus-cpu   more alternating runs of each relay
#                                        in the versus and baseline scenarios
#                                        (3 by default)
#
# Scenarios: small (100 rooms x 2 at 1.25/s), large (9,000 rooms x 2 at
# 1.25/s), search (highest sustainable rate, 50 rooms x 2), idle (RSS per
# idle connection at 18,000 connections), fleet-small and fleet-search (as
# small and search, on two instances sharing rooms through a private Redis,
# each room's players on different instances, each instance with half the
# cores as worker threads; CPU and RSS are the sum of both instances and
# Redis), storm (10,000 sockets from one address opened
# at once against the default admission budget, with the generator's retry
# mode, while a canary battle plays: time until all are seated, the canary's
# latency during the storm against the same canary alone), history and
# fleet-history (the cost of room history on the hot path: the same fixed
# load with --history-len 200 and 0, alternating, three runs each; in
# process and over Redis), frozen (one instance over Redis, every room on it:
# the fan-out while Redis hangs, DEBUG SLEEP holding every connection open
# and answering nothing, against the same load while Redis is healthy,
# alternating, three runs each), page (transfer size of the page), and
# against the bare relay (tools/bare_relay.rs: forwards frames in a room and
# nothing else), alternating with it, three runs each (RUNS), reported as
# ratios of the medians: versus-cpu (server CPU per delivered frame at 40,000
# delivered frames/s), versus-tail (p99 and p99.9 fan-out at 18,000
# connections sending 1.25 frames/s, after a 3 s warm-up whose tail is
# reported apart; each run's per-second tail is in its .log), versus-idle
# (RSS per idle connection at 18,000 connections); solo-redis (one instance in process against one
# instance over a private Redis, 10,000 delivered frames/s, alternating);
# versus-fleet (the same load in process against two instances over a
# private Redis, each on half the cores, every frame crossing it: CPU per
# frame of the fleet);
# fleet-split (where the fleet's CPU goes: each instance's and Redis');
# publish-script (the instructions Redis runs per typing ping's script
# call);
# baseline-cpu and baseline-tail (the loads of versus-cpu and versus-tail
# on this build against an earlier one: BASELINE=<server binary>); profile
# (instructions per delivered frame under valgrind's callgrind, this build
# against the bare relay, with its 4 KiB read buffer and with 1 KiB as this
# server reads, and against BASELINE if set); cache-sim (the same relays'
# cache misses per delivered frame under valgrind's cachegrind, in the
# versus-tail shape at a lower rate).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --test
export PATH="$HOME/.cargo/bin:$ROOT/tools/node_modules/.bin:$PATH"
mkdir -p target/bench
RUNS=${RUNS:-3}

bash scripts/release.sh
SERVER=target/pgo/release/battle-status
# The bare relay reuses the plain release build's crates: leptos' crates read
# LEPTOS_OUTPUT_NAME (which cargo-leptos sets) when compiled, and without it
# they, this crate and then the server the next time were all rebuilt.
LEPTOS_OUTPUT_NAME=battle-status cargo build --release --features ssr --bin bare-relay
# PIN=1: the servers and Redis run on core 0 and the generator on core 1
# (taskset; each process's runtime then starts one worker), so that the
# generator's own work is not added to the fan-out of whichever relay takes
# more CPU. Without it both share the two cores.
if [ -n "${PIN:-}" ]; then
  ON_SERVER_CORE=(taskset -c 0)
  LOADGEN=(taskset -c 1 target/loadgen/release/loadgen)
else
  ON_SERVER_CORE=()
  LOADGEN=(target/loadgen/release/loadgen)
fi

SERVERS_LOG=target/bench
source scripts/servers.sh

# start_fleet N: N instances over the private Redis ($redis_url), each with
# its share of the machine's cores as worker threads, as N instances sharing
# a machine are deployed (a container with that CPU quota gives the same:
# tokio sizes its pool by the CPUs a process may use); left at a worker per
# core of the machine, N instances run N times as many workers as cores,
# and wake each other's (docs/performance.md).
start_fleet() {
  local share=$(( $(nproc) / $1 ))
  for _ in $(seq 1 "$1"); do
    start_server BATTLE_REDIS_URL="$redis_url" TOKIO_WORKER_THREADS=$(( share > 0 ? share : 1 ))
  done
}

# start_bare: the bare relay on a free port, as start_server does.
start_bare() {
  launch target/release/bare-relay --addr 127.0.0.1:0
}

trap stop_servers EXIT

# scenario NAME INSTANCES LOADGEN-ARGS...: INSTANCES is 1 (rooms in
# process), or "redis:N" (N instances sharing rooms through Redis, each
# room's two players on different instances).
scenario() {
  local name=$1 instances=$2; shift 2
  echo "== $name ($instances): loadgen $*"
  case "$instances" in
    redis:*)
      start_redis
      start_fleet "${instances#redis:}" ;;
    *) start_server ;;
  esac
  local watched
  watched=$(IFS=,; echo "${pids[*]}${redis_pid:+,$redis_pid}")
  "${LOADGEN[@]}" --addr "$addrs" --server-pid "$watched" "$@" 2>&1 | grep -v '^\[shard' | tee "target/bench/$name.txt"
  stop_servers
}

# storm: the canary alone, then the canary during a storm of 10,000 sockets
# from one address (the per-address limits lifted, as join tokens would;
# the process's budget at its defaults: 1,000 new sockets a second, bursts
# of 2,000), which retries after each Retry-After.
storm() {
  local canary=(--rooms 1 --per-room 2 --rate 20 --duration 20 --idle 0)
  server_flags=("${FRAME_LIMITS[@]}" --max-connections-per-ip 100000
    --connections-per-ip-per-sec 100000 --connections-per-ip-burst 100000)
  start_server
  {
    echo "== storm: canary alone"
    "${LOADGEN[@]}" --addr "$addrs" "${canary[@]}" 2>&1 | grep -v '^\[shard'
    echo "== storm: canary during 10,000 sockets opened at once, with --retry"
    "${LOADGEN[@]}" --addr "$addrs" "${canary[@]}" > target/bench/storm-canary.txt 2>&1 &
    local canary_pid=$!
    sleep 2
    "${LOADGEN[@]}" --addr "$addrs" --server-pid "${pids[0]}" --rooms 5000 --per-room 2 --rate 0 \
      --duration 1 --idle 0 --ramp 100000 --retry 2>&1 | grep -v '^\[shard'
    wait "$canary_pid"
    echo "-- the canary, during the storm:"
    grep -v '^\[shard' target/bench/storm-canary.txt
  } | tee target/bench/storm.txt
  stop_servers
  server_flags=("${FRAME_LIMITS[@]}" "${ADMISSION_LIMITS[@]}")
}

# history NAME INSTANCES: the same fixed load with history on and off,
# alternating, three runs each.
history() {
  local name=$1 instances=$2 run len
  : > "target/bench/$name.txt"
  for run in 1 2 3; do
    for len in 200 0; do
      server_flags=("${FRAME_LIMITS[@]}" "${ADMISSION_LIMITS[@]}" --history-len "$len")
      scenario "$name-$len-$run" "$instances" --rooms 100 --per-room 2 --rate 25 --action-every 2 --duration 15
      { echo "== history $len, run $run"; cat "target/bench/$name-$len-$run.txt"; } >> "target/bench/$name.txt"
    done
  done
  server_flags=("${FRAME_LIMITS[@]}" "${ADMISSION_LIMITS[@]}")
}

# frozen: 100 rooms of two on one instance over Redis; the sockets open,
# then (in the frozen runs) Redis is made to hang for 40 s, and 6 s later
# (past the detection) the players send for 15 s.
frozen() {
  local run state
  : > target/bench/frozen.txt
  for run in 1 2 3; do
    for state in healthy frozen; do
      start_redis
      start_server BATTLE_REDIS_URL="$redis_url"
      "${LOADGEN[@]}" --addr "$addrs" --server-pid "${pids[0]}" --rooms 100 --per-room 2 --rate 5 \
        --duration 15 --idle 8 > "target/bench/frozen-$state-$run.txt" 2>&1 &
      local loadgen_pid=$!
      sleep 2
      if [ "$state" = frozen ]; then
        redis-cli -p "$redis_port" DEBUG SLEEP 40 > /dev/null &
      fi
      wait "$loadgen_pid"
      { echo "== $state, run $run"; grep -v '^\[shard' "target/bench/frozen-$state-$run.txt"; } >> target/bench/frozen.txt
      # A sleeping Redis would take its SIGTERM only after the sleep.
      kill -9 "$redis_pid" 2>/dev/null || true
      stop_servers
    done
  done
  cat target/bench/frozen.txt
}

# versus NAME OTHER LOADGEN-ARGS...: the same load on this server in process
# ("ours") and on OTHER, alternating, $RUNS runs each; prints each run, the
# ratios of the medians (ours / OTHER), and in how many of the alternating
# pairs ours had the lower figure (runs a minute apart share the machine's
# moment more than medians of a whole set do). OTHER is "bare", the bare relay;
# "redis", this server alone over a private Redis (whose CPU counts with the
# server's); "fleet", two instances of this server over a private Redis,
# each on its share of the cores (start_fleet), each room's two players
# on different instances so that every frame crosses Redis (both
# instances' CPU and Redis' count); or "baseline", the
# server binary $BASELINE (an earlier build, to tell a change from the
# machine's noise).
versus() {
  local name=$1 other=$2 run relay base watched; shift 2
  for run in $(seq "$RUNS"); do
    for relay in ours "$other"; do
      case "$relay" in
        ours) start_server ;;
        bare) start_bare ;;
        redis) start_redis; start_server BATTLE_REDIS_URL="$redis_url" ;;
        fleet) start_redis; start_fleet 2 ;;
        baseline) server_bin=${BASELINE:?set BASELINE to a server binary} start_server ;;
      esac
      watched=$(IFS=,; echo "${pids[*]}${redis_pid:+,$redis_pid}")
      # Before any connection: the RSS of every process the generator sums.
      base=$(for pid in ${watched//,/ }; do awk '/VmRSS/ { print $2 }' "/proc/$pid/status"; done \
        | awk '{ total += $1 } END { print total }')
      "${LOADGEN[@]}" --addr "$addrs" --server-pid "$watched" --json "$@" 2> "target/bench/$name-$relay-$run.log" \
        | tail -n 1 | python3 -c 'import json, sys; d = json.load(sys.stdin); d["rss_base_kib"] = int(sys.argv[1]); print(json.dumps(d))' "$base" \
        > "target/bench/$name-$relay-$run.json"
      stop_servers
    done
  done
  python3 - "$name" "$other" "$RUNS" <<'PY' | tee "target/bench/$name.txt"
import json, statistics, sys
name, other, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
def runs(relay):
    return [json.load(open(f"target/bench/{name}-{relay}-{run}.json")) for run in range(1, count + 1)]
def figures(d):
    idle = (d["server_rss_idle_kib"] - d["rss_base_kib"]) / max(d["connections"], 1)
    cpu = d["server_cpu_percent"] / max(d["delivered_per_sec"], 1) * 1e6
    return {"cpu %/frame (x1e-6)": cpu, "cpu % of a core": d["server_cpu_percent"],
            "delivered/s": d["delivered_per_sec"], "loss %": d["loss_percent"],
            "p99 ms": d["p99_ms"], "p99.9 ms": d["p999_ms"], "KiB per idle connection": idle * 1.0,
            "warm-up p99 ms": d["warmup_p99_ms"], "warm-up p99.9 ms": d["warmup_p999_ms"]}
ours, bare = [list(map(figures, runs(r))) for r in ("ours", other)]
print(f"== {name}: this server in process vs {other}, {count} runs each, alternating")
for key in ours[0]:
    o = [f[key] for f in ours]; b = [f[key] for f in bare]
    mo, mb = statistics.median(o), statistics.median(b)
    ratio = f"{mo / mb:.2f}x" if mb else "-"
    lower = sum(x < y for x, y in zip(o, b))
    print(f"{key:>26}: ours {', '.join(f'{v:.3g}' for v in o)} (median {mo:.3g}); "
          f"{other} {', '.join(f'{v:.3g}' for v in b)} (median {mb:.3g}); ratio {ratio}; "
          f"ours lower in {lower} of {count} pairs")
# A generator behind its schedule measures itself: those runs' latencies
# say nothing of the relays.
behind = {r: sum(d["generator_behind"] for d in runs(r)) for r in ("ours", other)}
if any(behind.values()):
    print(f"the generator fell behind its schedule (over 1 % of its sends 10 ms late) in {behind['ours']} of "
          f"ours' runs and {behind[other]} of {other}'s: their latencies are the generator's limit, not the relays'")
PY
}

# profile: instructions the server runs per delivered frame, counted by
# valgrind's callgrind (a count, not a time: the machine's other load does
# not move it), on this build, the bare relay, and BASELINE if set, under
# the same load (slow enough for a server under valgrind to keep up). Each
# relay also runs once with no load, and what it counts (start-up, shutdown)
# is taken off. The profiles stay in target/bench/callgrind.<relay>.out for
# callgrind_annotate.
profile() {
  local relay idle run loaded delivered
  local relays=(ours bare bare-1k ${BASELINE:+baseline})
  for relay in "${relays[@]}"; do
    idle=$(counted "$relay" idle)
    for run in 1 2 3; do
      loaded=$(counted "$relay" "$run" --rooms 50 --per-room 2 --rate 20 --duration 15)
      delivered=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["received"])' \
        "target/bench/profile-$relay.json")
      echo "$relay run $run: $loaded instructions loaded, $idle with no load," \
        "$delivered frames delivered: $(( (loaded - idle) / delivered )) a frame"
    done
  done | tee target/bench/profile.txt
  python3 - "${relays[@]}" <<'PY' | tee -a target/bench/profile.txt
import re, statistics, sys
runs = {}
for line in open("target/bench/profile.txt"):
    m = re.match(r"([\w-]+) run \d: .*: (\d+) a frame", line)
    if m:
        runs.setdefault(m[1], []).append(int(m[2]))
ours = statistics.median(runs["ours"])
for relay in sys.argv[1:]:
    median = statistics.median(runs[relay])
    print(f"{relay}: median {median:.0f} instructions a frame; ours / {relay} {ours / median:.3f}x")
PY
}

# counted RELAY RUN [LOADGEN-ARGS...]: the instructions RELAY ran under
# callgrind with the generator's LOADGEN-ARGS (none: no load).
counted() {
  valgrinded callgrind "$@" | awk '{ print $1 }'
}

# valgrinded TOOL RELAY RUN [LOADGEN-ARGS...]: starts RELAY under valgrind's
# TOOL (callgrind; or cachegrind, simulating this machine's caches of one
# core: 32 KiB of instructions, 32 KiB of data, 1 MiB of L2 as the last
# level), runs the generator with LOADGEN-ARGS (none: no load), stops it,
# and prints the totals the tool counted (callgrind: instructions;
# cachegrind: Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw).
valgrinded() {
  local tool=$1 relay=$2 run=$3 out bin; shift 3
  out="target/bench/$tool.$relay.$run.out"
  local grind=(valgrind --tool="$tool" --"$tool"-out-file="$out")
  if [ "$tool" = cachegrind ]; then
    grind+=(--cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 --LL=1048576,16,64)
  fi
  case "$relay" in
    ours) bin=$SERVER ;;
    bare | bare-1k) bin=target/release/bare-relay ;;
    baseline) bin=$BASELINE ;;
  esac
  if [ "$relay" = bare ]; then
    launch "${grind[@]}" "$bin" --addr 127.0.0.1:0
  elif [ "$relay" = bare-1k ]; then
    launch "${grind[@]}" "$bin" --addr 127.0.0.1:0 --read-buffer-bytes 1024
  else
    launch env LEPTOS_SITE_ROOT=target/site RUST_LOG=warn,battle_status::server=info NO_COLOR=1 \
      "${grind[@]}" "$bin" --addr 127.0.0.1:0 "${server_flags[@]}"
  fi
  if [ $# -gt 0 ]; then
    "${LOADGEN[@]}" --addr "$addrs" --json "$@" 2> /dev/null | tail -n 1 > "target/bench/profile-$relay.json"
  fi
  stop_servers
  awk '/^(summary|totals):/ { $1 = ""; totals = $0 } END { print totals }' "$out"
}

# cache-sim: where a frame's time goes besides its instructions, in the
# versus-tail shape (18,000 connections; 0.05 frames/s each, about what a
# relay keeps up with under cachegrind): each relay (and BASELINE if set)
# with no frames once, then loaded three times; per delivered frame, the
# loaded run's counts less the idle one's: instructions, first-level
# misses (instructions, data reads), last-level misses (reads, writes). A
# first-level miss costs about a dozen cycles, a last-level read about a
# hundred (writes wait in the store buffer).
cache_sim() {
  local relay idle run loaded delivered
  local relays=(ours bare ${BASELINE:+baseline})
  local shape=(--rooms 9000 --per-room 2 --duration 40 --ramp 150)
  for relay in "${relays[@]}"; do
    idle=$(valgrinded cachegrind "$relay" idle "${shape[@]}" --rate 0)
    for run in 1 2 3; do
      loaded=$(valgrinded cachegrind "$relay" "$run" "${shape[@]}" --rate 0.05)
      delivered=$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["received"], "of", r["expected"])' \
        "target/bench/profile-$relay.json")
      echo "$relay run $run: delivered $delivered; loaded$loaded; idle$idle"
    done
  done | tee target/bench/cache-sim.txt
  python3 - "${relays[@]}" <<'PY' | tee -a target/bench/cache-sim.txt
import re, statistics, sys
names = ["instructions", "I1 misses", "LL instruction misses", "data reads", "D1 read misses",
         "LL read misses", "data writes", "D1 write misses", "LL write misses"]
shown = ["instructions", "I1 misses", "D1 read misses", "LL read misses", "LL write misses"]
runs = {}
for line in open("target/bench/cache-sim.txt"):
    m = re.match(r"([\w-]+) run \d: delivered (\d+) of \d+; loaded([\d ]+); idle([\d ]+)", line)
    if m:
        loaded, idle = (list(map(int, m[i].split())) for i in (3, 4))
        frame = {n: (l - i) / int(m[2]) for n, l, i in zip(names, loaded, idle)}
        runs.setdefault(m[1], []).append(frame)
median = {r: {n: statistics.median(f[n] for f in runs[r]) for n in shown} for r in runs}
for relay in sys.argv[1:]:
    figures = ", ".join(f"{n} {median[relay][n]:.1f}" for n in shown)
    print(f"{relay}, medians a delivered frame: {figures}")
for relay in sys.argv[2:]:
    ratios = ", ".join(f"{n} {median['ours'][n] / median[relay][n]:.2f}x" for n in shown)
    print(f"ours / {relay}: {ratios}")
PY
}

# fleet-split: the versus-fleet load on two instances over a private Redis
# (each room's players on different instances), three runs, alternating
# with the server binary $BASELINE if set: each process's CPU ticks
# (utime+stime from /proc, 10 ms) over the generator's run, and Redis'
# figures for the publish script (INFO commandstats, reset before it).
fleet_split() {
  local run bin one two redis
  for run in 1 2 3; do
    for bin in $SERVER ${BASELINE:-}; do
      start_redis
      server_bin=$bin start_fleet 2
      redis-cli -p "$redis_port" CONFIG RESETSTAT > /dev/null
      one=$(cpu_ticks "${pids[0]}"); two=$(cpu_ticks "${pids[1]}"); redis=$(cpu_ticks "$redis_pid")
      "${LOADGEN[@]}" --addr "$addrs" --rooms 50 --per-room 2 --rate 50 --duration 15 > /dev/null 2>&1
      echo "$bin run $run: CPU ticks instance 1 $(( $(cpu_ticks "${pids[0]}") - one ))," \
        "instance 2 $(( $(cpu_ticks "${pids[1]}") - two )), Redis $(( $(cpu_ticks "$redis_pid") - redis ))"
      redis-cli -p "$redis_port" INFO commandstats | grep -E '^cmdstat_(evalsha|publish|hincrby|hset|hget|hexists|pexpire):' \
        | sed 's/,rejected_calls.*//; s/^/  /'
      stop_servers
    done
  done | tee target/bench/fleet-split.txt
}

# cpu_ticks PID: the CPU time PID has used, user and kernel, in 10 ms ticks.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# publish-script: the instructions Redis runs for one typing ping's script
# call (scripts/publish.lua, with the arguments an instance sends, a room
# hash shaped like a real one and two subscribed instances), counted by
# valgrind's callgrind: the count for 15,000 calls less the count for
# 5,000, over 10,000. Three runs, alternating with the script in the file
# $BASELINE_SCRIPT if set (an earlier version, to compare in one run).
publish_script() {
  local run script
  for run in 1 2 3; do
    for script in src/server/backplane/redis/scripts/publish.lua ${BASELINE_SCRIPT:-}; do
      echo "$script run $run: $(( ($(script_calls "$script" 15000) - $(script_calls "$script" 5000)) / 10000 )) instructions a call"
    done
  done | tee target/bench/publish-script.txt
}

# script_calls SCRIPT N: the instructions a redis-server under callgrind
# runs, from its start to its shutdown, with N calls of SCRIPT.
script_calls() {
  local script=$1 calls=$2 sha subscribers=() out=target/bench/callgrind.redis.out
  local frame='{"type":"typing","clientId":"c-123456","ts":1733450000000,"from":"m0-abcdefgh","seq":0}'
  start_redis valgrind --tool=callgrind --callgrind-out-file="$out"
  redis-cli -p "$redis_port" HSET battle:room:r v 3 seq 0 n:c1 A n:c2 B roster \
    '{"members":[{"id":"m0-abcdefgh","name":"Player 0"},{"id":"m1-abcdefgh","name":"Player 1"}]}' > /dev/null
  for _ in 1 2; do
    redis-cli -p "$redis_port" SUBSCRIBE battle:room:r > /dev/null 2>&1 &
    subscribers+=($!)
  done
  sha=$(redis-cli -p "$redis_port" SCRIPT LOAD "$(cat "$script")")
  redis-benchmark -p "$redis_port" -n "$calls" -c 1 -q EVALSHA "$sha" 2 battle:room:r battle:log:r \
    t:m0 1733450000000 "$frame" 60000 0 1733450000000 200 A-17 A battle:node: "" > /dev/null
  stop_servers
  wait "${subscribers[@]}" 2> /dev/null || true
  awk '/^(summary|totals):/ { ir = $2 } END { print ir }' "$out"
}

page() {
  echo "== page: transfer size of the battle page and time to a live page"
  {
    # Content-hashed names (hash-files): battle-status.<hash>.wasm and so on.
    for file in target/site/pkg/battle-status.*.wasm target/site/pkg/battle-status.*.js target/site/pkg/battle-status.*.css; do
      printf '%s: %s bytes raw, %s gzip, %s brotli (precompressed, as served)\n' "$(basename "$file")" \
        "$(wc -c < "$file")" "$(wc -c < "$file.gz")" "$(wc -c < "$file.br")"
    done
    start_server
    node end2end/hydration.mjs "http://$addrs"
    lighthouse "http://$addrs/battle/lighthouse-$$"
    stop_servers
  } | tee target/bench/page.txt
}

# lighthouse URL: Lighthouse's scores of URL in Debian's Chromium, as a
# phone (its default: a mid-range phone on a slow 4G link, simulated) and as
# a desktop. Lighthouse is pinned by tools/lighthouse/package-lock.json.
lighthouse() {
  local url=$1 form attempt
  npm ci --prefix tools/lighthouse --no-audit --no-fund > /dev/null
  for form in mobile desktop; do
    # Lighthouse now and then fails to record a trace (NO_NAVSTART): try again.
    for attempt in 1 2 3; do
      if CHROME_PATH=/usr/bin/chromium tools/lighthouse/node_modules/.bin/lighthouse "$url" --quiet \
        --chrome-flags="--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync --no-first-run" \
        --only-categories=performance,accessibility,best-practices,seo \
        $([ "$form" = desktop ] && echo --preset=desktop) \
        --output=json --output-path="target/bench/lighthouse-$form.json"; then
        break
      fi
      echo "lighthouse $form: attempt $attempt failed" >&2
      [ "$attempt" = 3 ] && return 1
    done
    python3 - "$form" <<'PY'
import json, sys
form = sys.argv[1]
report = json.load(open(f"target/bench/lighthouse-{form}.json"))
scores = {c["title"]: round(c["score"] * 100) for c in report["categories"].values()}
print(f"lighthouse {form}: " + ", ".join(f"{name} {score}" for name, score in scores.items()))
for audit in report["audits"].values():
    if audit.get("score") is not None and audit["score"] < 0.9 and audit.get("scoreDisplayMode") in ("binary", "numeric", "metricSavings"):
        print(f"  {audit['id']}: {audit['score']} {audit.get('displayValue', '')}")
PY
  done
}

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(small large search idle fleet-small fleet-search storm history fleet-history frozen page versus-cpu versus-tail versus-idle solo-redis versus-fleet fleet-split publish-script profile cache-sim)
for name in "${want[@]}"; do
  case "$name" in
    small) scenario small 1 --rooms 100 --per-room 2 --rate 1.25 --duration 30 ;;
    large) scenario large 1 --rooms 9000 --per-room 2 --rate 1.25 --duration 30 --ramp 3000 ;;
    search) scenario search 1 --rooms 50 --per-room 2 --rate 100 --duration 5 --search ;;
    idle) scenario idle 1 --rooms 9000 --per-room 2 --rate 0 --duration 1 --idle 5 --ramp 3000 ;;
    fleet-small) scenario fleet-small redis:2 --rooms 100 --per-room 2 --rate 1.25 --duration 30 ;;
    fleet-search) scenario fleet-search redis:2 --rooms 50 --per-room 2 --rate 100 --duration 5 --search ;;
    storm) storm ;;
    history) history history 1 ;;
    fleet-history) history fleet-history redis:2 ;;
    frozen) frozen ;;
    page) page ;;
    fleet-split) fleet_split ;;
    publish-script) publish_script ;;
    versus-cpu) versus versus-cpu bare --rooms 50 --per-room 2 --rate 200 --duration 15 ;;
    versus-tail) versus versus-tail bare --rooms 9000 --per-room 2 --rate 1.25 --duration 30 --ramp 3000 --warmup 3 ;;
    versus-idle) versus versus-idle bare --rooms 9000 --per-room 2 --rate 0 --duration 1 --idle 5 --ramp 3000 ;;
    baseline-cpu) versus baseline-cpu baseline --rooms 50 --per-room 2 --rate 200 --duration 15 ;;
    baseline-tail) versus baseline-tail baseline --rooms 9000 --per-room 2 --rate 1.25 --duration 30 --ramp 3000 --warmup 3 ;;
    solo-redis) versus solo-redis redis --rooms 50 --per-room 2 --rate 50 --duration 15 ;;
    versus-fleet) versus versus-fleet fleet --rooms 50 --per-room 2 --rate 50 --duration 15 ;;
    profile) profile ;;
    cache-sim) cache_sim ;;
    *) echo "unknown scenario $name" >&2; exit 2 ;;
  esac
done
