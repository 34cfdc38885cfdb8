#!/usr/bin/env bash
# Sets up whatever is missing, then runs every test: the lints (rustfmt,
# clippy for the server and the browser's wasm), unit and integration tests
# (cargo), a short bounded fuzzing run of the frame parser, then the
# browser end-to-end tests (Playwright driving Debian's Chromium against the
# server built by cargo-leptos). Ends with one line: "total: N passed, M
# failed".
#
# FUZZ_SECONDS (default 30) sets the length of the fuzzing run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --test
export PATH="$HOME/.cargo/bin:$ROOT/tools/node_modules/.bin:$PATH"
mkdir -p target

echo "== lints: rustfmt, and clippy for the server and for the browser's wasm"
lint_passed=0 lint_failed=0
for lint in "cargo fmt --check" \
    "cargo clippy --locked --features ssr,loadgen --tests --benches -- -D warnings" \
    "cargo clippy --locked --lib --no-default-features --features hydrate --target wasm32-unknown-unknown -- -D warnings"; do
  if $lint > target/lint.log 2>&1; then
    lint_passed=$((lint_passed + 1))
  else
    lint_failed=$((lint_failed + 1))
    echo "failed: $lint"; tail -n 40 target/lint.log
  fi
done

echo "== unit and integration tests"
cargo test --features ssr,loadgen --locked --no-fail-fast 2>&1 | tee target/cargo-test.log
read -r cargo_passed cargo_failed < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' target/cargo-test.log)

echo "== fuzzing the frame parser for ${FUZZ_SECONDS:-30} s"
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable compiler
# take them. Seeds: fuzz/seeds/frames; findings go to fuzz/artifacts.
fuzz_passed=0 fuzz_failed=0
mkdir -p fuzz/corpus/frames
if (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run frames corpus/frames seeds/frames -- \
      -max_total_time="${FUZZ_SECONDS:-30}" -print_final_stats=1) > target/fuzz.log 2>&1; then
  fuzz_passed=1
  grep -E "^Done [0-9]+ runs" target/fuzz.log || true
else
  fuzz_failed=1
  tail -n 40 target/fuzz.log
fi

echo "== browser end-to-end tests"
cargo leptos build
e2e_status=0
(cd end2end && npx playwright test) || e2e_status=$?
read -r e2e_passed e2e_failed < <(node -e '
  const { stats } = require(require("node:path").resolve(process.argv[1]));
  console.log(stats.expected, stats.unexpected + stats.flaky);
' end2end/test-results/results.json 2>/dev/null || echo "0 1")
if [ "$e2e_status" -ne 0 ] && [ "$e2e_failed" -eq 0 ]; then e2e_failed=1; fi

echo "lints: $lint_passed passed, $lint_failed failed"
echo "cargo: $cargo_passed passed, $cargo_failed failed"
echo "fuzz: $fuzz_passed passed, $fuzz_failed failed"
echo "end2end: $e2e_passed passed, $e2e_failed failed"
failed=$((lint_failed + cargo_failed + fuzz_failed + e2e_failed))
echo "total: $((lint_passed + cargo_passed + fuzz_passed + e2e_passed)) passed, $failed failed"
[ "$failed" -eq 0 ]
