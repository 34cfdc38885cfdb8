#!/usr/bin/env bash
# Sets up whatever is missing, then builds and serves battle-status on
# http://127.0.0.1:3000 with the in-process broker.
#
#   scripts/run.sh         optimised build (what players get)
#   scripts/run.sh watch   dev build that rebuilds and reloads on every save
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$ROOT/tools/node_modules/.bin:$PATH"

case "${1:-}" in
  watch) exec cargo leptos watch ;;
  "") exec cargo leptos serve --release --precompress ;;
  *) echo "usage: scripts/run.sh [watch]" >&2; exit 2 ;;
esac
