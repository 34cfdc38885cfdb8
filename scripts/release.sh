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

SERVERS_LOG=$TRAIN
source scripts/servers.sh
trap stop_servers EXIT

# train: the training load on $SERVER, an instrumented server, whose
# instances write their profiles when they stop (SIGTERM, the graceful
# shutdown).
train() {
  local pages=(/ /battle/training /battle/training?role=spectator /healthz /readyz /nowhere)
  start_server
  for _ in $(seq 1 50); do
    for page in "${pages[@]}"; do
      curl -s -o /dev/null -H 'Accept-Encoding: br, gzip' "http://$addrs$page"
    done
  done
  for file in target/site/pkg/*; do
    curl -s -o /dev/null -H 'Accept-Encoding: br' "http://$addrs/pkg/${file##*/}"
  done
  target/loadgen/release/loadgen --addr "$addrs" --rooms 40 --per-room 4 --rate 150 --action-every 5 \
    --names --duration 10 > "$TRAIN/loadgen.log" 2>&1
  target/loadgen/release/loadgen --addr "$addrs" --rooms 2000 --per-room 2 --rate 1.25 --duration 10 \
    --ramp 3000 >> "$TRAIN/loadgen.log" 2>&1
  curl -s -o /dev/null "http://$addrs/metrics"
  stop_servers
  # Two instances sharing rooms through a private Redis: every frame
  # crosses it.
  start_redis
  start_server BATTLE_REDIS_URL="$redis_url" TOKIO_WORKER_THREADS=1
  start_server BATTLE_REDIS_URL="$redis_url" TOKIO_WORKER_THREADS=1
  target/loadgen/release/loadgen --addr "$addrs" --rooms 50 --per-room 3 --rate 40 --names --duration 10 \
    >> "$TRAIN/loadgen.log" 2>&1
  stop_servers
}

# The training runs again only for a new instrumented server.
stamp=$(sha256sum "$TRAIN/release/battle-status" | cut -c1-16)
if ! cmp -s <(echo "$stamp") "$TRAIN/trained-on" 2>/dev/null || [ ! -f "$TRAIN/battle-status.profdata" ]; then
  say "training the instrumented server"
  rm -rf "$PROFILES"
  LLVM_PROFILE_FILE="$PROFILES/%m_%p.profraw" SERVER=$TRAIN/release/battle-status train
  "llvm-profdata-$LLVM_MAJOR" merge -o "$TRAIN/battle-status.profdata" "$PROFILES"
  echo "$stamp" > "$TRAIN/trained-on"
fi

# The profile's content names it, so that a new profile rebuilds every
# crate with it (cargo tracks the flags, not the file's content).
profile=$ROOT/target/pgo/$(sha256sum "$TRAIN/battle-status.profdata" | cut -c1-16).profdata
mkdir -p target/pgo
[ -f "$profile" ] || cp "$TRAIN/battle-status.profdata" "$profile"
for old in target/pgo/*.profdata; do
  [ "$ROOT/$old" = "$profile" ] || rm "$old"
done
say "the server, built with its profile"
# The profile sorts functions into .text.hot and .text.unlikely; the linker
# (rust-lld) keeps them apart only when asked, so that hot code sits together.
CARGO_TARGET_DIR=target/pgo RUSTFLAGS="-Cprofile-use=$profile" cargo rustc --release --features ssr \
  --bin battle-status -- -Clink-arg=-Wl,-z,keep-text-section-prefix
# The pages name the site's content-hashed files from hash.txt beside the binary.
cp target/release/hash.txt target/pgo/release/hash.txt
say "built: LEPTOS_SITE_ROOT=target/site target/pgo/release/battle-status"
