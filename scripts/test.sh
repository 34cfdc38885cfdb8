#!/usr/bin/env bash
# Sets up whatever is missing, then runs every test: unit and integration
# tests (cargo), then the browser end-to-end tests (Playwright driving
# Debian's Chromium against the server built by cargo-leptos). Ends with one
# line: "total: N passed, M failed".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --test
export PATH="$HOME/.cargo/bin:$ROOT/tools/node_modules/.bin:$PATH"
mkdir -p target

echo "== unit and integration tests"
cargo test --features ssr --locked 2>&1 | tee target/cargo-test.log
read -r cargo_passed cargo_failed < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' target/cargo-test.log)

echo "== browser end-to-end tests"
cargo leptos build
e2e_status=0
(cd end2end && npx playwright test) || e2e_status=$?
read -r e2e_passed e2e_failed < <(node -e '
  const { stats } = require(require("node:path").resolve(process.argv[1]));
  console.log(stats.expected, stats.unexpected + stats.flaky);
' end2end/test-results/results.json 2>/dev/null || echo "0 1")
if [ "$e2e_status" -ne 0 ] && [ "$e2e_failed" -eq 0 ]; then e2e_failed=1; fi

echo "cargo: $cargo_passed passed, $cargo_failed failed"
echo "end2end: $e2e_passed passed, $e2e_failed failed"
echo "total: $((cargo_passed + e2e_passed)) passed, $((cargo_failed + e2e_failed)) failed"
[ "$((cargo_failed + e2e_failed))" -eq 0 ]
