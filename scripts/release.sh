#!/usr/bin/env bash
# Builds what a production deployment runs: the site (cargo leptos build
# --release --precompress, as scripts/run.sh) and the server built with
# profile-guided optimisation (PGO), which spends about 10 % less CPU per
# frame than the plain release build (docs/performance.md).
#
#   scripts/release.sh   then: LEPTOS_SITE_ROOT=target/site target/pgo/release/battle-status
#
# How: an instrumented server (target/pgo-train) serves a training load
# (pages, rooms of players and spectators with names, thousands of
# connections, and two instances sharing rooms through a private Redis) and
# writes its profile; llvm-profdata (Debian's llvm-N, N the compiler's LLVM
# major) merges it; the server is built again with it (target/pgo). The
# training runs again only when the instrumented server changed. A first run
# takes about 25 minutes on a 2-core machine, later ones a few minutes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --release
export PATH="$HOME/.cargo/bin:$ROOT/tools/node_modules/.bin:$PATH"
say() { printf '\033[1m[release]\033[0m %s\n' "$*"; }

TRAIN=target/pgo-train
PROFILES=$ROOT/$TRAIN/profiles
LLVM_MAJOR=$(rustc -vV | awk '/^LLVM version/ { split($3, v, "."); print v[1] }')
# The server's crates are built as cargo-leptos builds them (leptos reads
# LEPTOS_OUTPUT_NAME when compiled).
export LEPTOS_OUTPUT_NAME=battle-status

say "the site, and a plain release build"
cargo leptos build --release --precompress
say "the load generator, and an instrumented server"
# The generator builds this crate with other features, in a target directory
# of its own: the library (a cdylib too) keeps one build whatever its
# features, so the generator's and the server's replaced each other.
CARGO_TARGET_DIR=target/loadgen cargo build --release --features loadgen --bin loadgen
# The build's own proc macros and build scripts are instrumented too: their
# profiles go aside, not into the working directory.
LLVM_PROFILE_FILE="$ROOT/$TRAIN/build-profiles/%m_%p.profraw" CARGO_TARGET_DIR=$TRAIN \
  RUSTFLAGS=-Cprofile-generate cargo build --release --features ssr --bin battle-status

# launch LOG ENV=VALUE...: an instrumented server on a free port, with the
# per-connection and admission limits lifted (the generator is one address
# sending far beyond a human); sets $addr once its /readyz answers 200.
launch() {
  local log=$1; shift
  addr=""
  env "$@" LLVM_PROFILE_FILE="$PROFILES/%m_%p.profraw" LEPTOS_SITE_ROOT=target/site \
    RUST_LOG=warn,battle_status::server=info NO_COLOR=1 "$TRAIN/release/battle-status" --addr 127.0.0.1:0 \
    --typing-per-sec 100000 --typing-burst 100000 --actions-per-sec 100000 --actions-burst 100000 \
    --excess-burst 100000 --queue-capacity 256 --max-connections-per-ip 100000 \
    --connections-per-ip-per-sec 100000 --connections-per-ip-burst 100000 \
    --connections-per-sec 100000 --connections-burst 100000 > "$log" 2>&1 &
  servers+=($!)
  for _ in $(seq 1 600); do
    addr=$(grep -o 'listening on http://[0-9.:]*' "$log" | sed 's|listening on http://||' || true)
    if [ -n "$addr" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/readyz")" = 200 ]; then
      return
    fi
    sleep 0.1
  done
  echo "the instrumented server did not become ready (see $log)" >&2
  exit 1
}

# stop: SIGTERM, the servers' graceful shutdown, which writes their profiles.
servers=()
stop() {
  for pid in "${servers[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  servers=()
}
trap stop EXIT

train() {
  local a port redis pages=(/ /battle/training /battle/training?role=spectator /healthz /readyz /nowhere)
  rm -rf "$PROFILES"
  launch "$TRAIN/server.log"
  for _ in $(seq 1 50); do
    for page in "${pages[@]}"; do
      curl -s -o /dev/null -H 'Accept-Encoding: br, gzip' "http://$addr$page"
    done
  done
  for file in target/site/pkg/*; do
    curl -s -o /dev/null -H 'Accept-Encoding: br' "http://$addr/pkg/${file##*/}"
  done
  target/loadgen/release/loadgen --addr "$addr" --rooms 40 --per-room 4 --rate 150 --action-every 5 \
    --names --duration 10 > "$TRAIN/loadgen.log" 2>&1
  target/loadgen/release/loadgen --addr "$addr" --rooms 2000 --per-room 2 --rate 1.25 --duration 10 \
    --ramp 3000 >> "$TRAIN/loadgen.log" 2>&1
  curl -s -o /dev/null "http://$addr/metrics"
  stop
  # Two instances sharing rooms through a private Redis: every frame
  # crosses it.
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no > "$TRAIN/redis.log" 2>&1 &
  redis=$!
  until redis-cli -p "$port" ping > /dev/null 2>&1; do sleep 0.1; done
  launch "$TRAIN/server-a.log" BATTLE_REDIS_URL="redis://127.0.0.1:$port/" TOKIO_WORKER_THREADS=1
  a=$addr
  launch "$TRAIN/server-b.log" BATTLE_REDIS_URL="redis://127.0.0.1:$port/" TOKIO_WORKER_THREADS=1
  target/loadgen/release/loadgen --addr "$a,$addr" --rooms 50 --per-room 3 --rate 40 --names --duration 10 >> "$TRAIN/loadgen.log" 2>&1
  stop
  kill "$redis"
  wait "$redis" 2>/dev/null || true
  "llvm-profdata-$LLVM_MAJOR" merge -o "$TRAIN/battle-status.profdata" "$PROFILES"
}

# The training runs again only for a new instrumented server.
stamp=$(sha256sum "$TRAIN/release/battle-status" | cut -c1-16)
if ! cmp -s <(echo "$stamp") "$TRAIN/trained-on" 2>/dev/null || [ ! -f "$TRAIN/battle-status.profdata" ]; then
  say "training the instrumented server"
  train
  echo "$stamp" > "$TRAIN/trained-on"
fi

# The profile's content names it, so that a new profile rebuilds every
# crate with it (cargo tracks the flags, not the file's content).
profile=$ROOT/target/pgo/$(sha256sum "$TRAIN/battle-status.profdata" | cut -c1-16).profdata
mkdir -p target/pgo
[ -f "$profile" ] || cp "$TRAIN/battle-status.profdata" "$profile"
say "the server, built with its profile"
# The profile sorts functions into .text.hot and .text.unlikely; the linker
# (rust-lld) keeps them apart only when asked, so that hot code sits together.
CARGO_TARGET_DIR=target/pgo RUSTFLAGS="-Cprofile-use=$profile" cargo rustc --release --features ssr \
  --bin battle-status -- -Clink-arg=-Wl,-z,keep-text-section-prefix
# The pages name the site's content-hashed files from hash.txt beside the binary.
cp target/release/hash.txt target/pgo/release/hash.txt
say "built: LEPTOS_SITE_ROOT=target/site target/pgo/release/battle-status"
