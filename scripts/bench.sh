#!/usr/bin/env bash
# Regenerates the figures of docs/performance.md: builds the optimised
# server and the load generator, starts the server on a free loopback port
# with the per-address and per-connection limits lifted (the generator is
# one address sending far beyond a human), and runs each scenario. Output:
# target/bench/*.txt, one file per scenario.
#
#   scripts/bench.sh                 every scenario
#   scripts/bench.sh small search    only the named ones
#
# Scenarios: small (100 rooms x 2 at 1.25/s), large (9,000 rooms x 2 at
# 1.25/s), search (highest sustainable rate, 50 rooms x 2), idle (RSS per
# idle connection at 18,000 connections), page (transfer size of the page).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$ROOT/tools/node_modules/.bin:$PATH"
mkdir -p target/bench

cargo leptos build --release --precompress
cargo build --release --features loadgen --bin loadgen
LOADGEN=target/release/loadgen

server_pid=""
start_server() {
  LEPTOS_SITE_ROOT=target/site RUST_LOG=warn,battle_status::server=info NO_COLOR=1 \
    target/release/battle-status --addr 127.0.0.1:0 \
      --max-connections-per-ip 100000 --connections-per-ip-per-sec 100000 --connections-per-ip-burst 100000 \
      --typing-per-sec 100000 --typing-burst 100000 --actions-per-sec 100000 --actions-burst 100000 \
      --excess-burst 100000 --queue-capacity 256 \
      > target/bench/server.log 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    addr=$(grep -o 'listening on http://[0-9.:]*' target/bench/server.log | sed 's|listening on http://||' || true)
    [ -n "$addr" ] && return
    sleep 0.1
  done
  echo "the server did not start" >&2; exit 1
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}
trap stop_server EXIT

scenario() {
  local name=$1; shift
  echo "== $name: loadgen $*"
  start_server
  "$LOADGEN" --addr "$addr" --server-pid "$server_pid" "$@" 2>&1 | grep -v '^\[shard' | tee "target/bench/$name.txt"
  stop_server
}

page() {
  echo "== page: transfer size of the battle page and time to a live page"
  bash scripts/setup.sh --test
  {
    for file in target/site/pkg/battle-status.wasm target/site/pkg/battle-status.js target/site/pkg/battle-status.css; do
      printf '%s: %s bytes raw, %s gzip, %s brotli (precompressed, as served)\n' "$(basename "$file")" \
        "$(wc -c < "$file")" "$(wc -c < "$file.gz")" "$(wc -c < "$file.br")"
    done
    start_server
    node end2end/hydration.mjs "http://$addr"
    stop_server
  } | tee target/bench/page.txt
}

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(small large search idle page)
for name in "${want[@]}"; do
  case "$name" in
    small) scenario small --rooms 100 --per-room 2 --rate 1.25 --duration 30 ;;
    large) scenario large --rooms 9000 --per-room 2 --rate 1.25 --duration 30 --ramp 3000 ;;
    search) scenario search --rooms 50 --per-room 2 --rate 100 --duration 5 --search ;;
    idle) scenario idle --rooms 9000 --per-room 2 --rate 0 --duration 1 --idle 5 --ramp 3000 ;;
    page) page ;;
    *) echo "unknown scenario $name" >&2; exit 2 ;;
  esac
done
