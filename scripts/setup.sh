#!/usr/bin/env bash
# Installs what building (and, with --test, testing) battle-status needs and
# is missing on this machine; skips what is already there at the right
# version. Safe to run again. Sourced by run.sh and test.sh.
#
#   scripts/setup.sh          the build toolchain
#   scripts/setup.sh --test   the build toolchain, clippy and rustfmt, cargo-fuzz,
#                             Chromium, Playwright
#                             and redis-server
#   scripts/setup.sh --release  the build toolchain, redis-server, and
#                             llvm-profdata of the compiler's LLVM (Debian's
#                             llvm-N) for the profile-guided build
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_LEPTOS_VERSION="0.3.10"
CARGO_FUZZ_VERSION="0.13.2"
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$ROOT/Cargo.lock")"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Release profile of the installed tools: no LTO, many codegen units. Halves
# the install time on a 2-core machine; the tools work the same.
fast_install() {
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 cargo install "$@"
}

# Installs the npm packages of $1 from its lockfile, unless that exact
# lockfile was installed already.
npm_ci() {
  local dir="$ROOT/$1" stamp="$ROOT/$1/node_modules/.installed-package-lock.json"
  if ! cmp -s "$dir/package-lock.json" "$stamp"; then
    say "installing $2"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$dir" --no-audit --no-fund
    cp "$dir/package-lock.json" "$stamp"
  fi
}

export PATH="$HOME/.cargo/bin:$ROOT/tools/node_modules/.bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(cargo leptos --version 2>/dev/null || true)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ]; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 10 minutes, once)"
  fast_install "cargo-leptos@$CARGO_LEPTOS_VERSION" --locked
fi

if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION, the version in Cargo.lock (about 7 minutes, once)"
  fast_install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# wasm-opt for release builds: npm's binaryen (Debian's is too old to
# produce a bundle that hydrates), pinned by tools/package-lock.json.
npm_ci tools "wasm-opt (npm binaryen)"

# install_debian COMMAND PACKAGE...: Debian's packages for the commands that
# are missing (pairs of a command and its package).
install_debian() {
  local missing=()
  while [ "$#" -gt 0 ]; do
    command -v "$1" >/dev/null || missing+=("$2")
    shift 2
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing Debian's ${missing[*]}"
    as_root apt-get update
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y --no-install-recommends "${missing[@]}"
  fi
}

if [ "${1:-}" = "--release" ]; then
  # The profile-guided build's training runs two instances over a private
  # Redis; its profile is merged by the llvm-profdata of the compiler's
  # own LLVM major (the raw profile's format follows it).
  llvm_major=$(rustc -vV | awk '/^LLVM version/ { split($3, v, "."); print v[1] }')
  install_debian redis-server redis-server "llvm-profdata-$llvm_major" "llvm-$llvm_major"
fi

if [ "${1:-}" = "--test" ]; then
  # The lints.
  for component in clippy rustfmt; do
    if ! rustup component list --installed | grep -q "^$component"; then
      say "adding the $component component"
      rustup component add "$component"
    fi
  done
  if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION (about 3 minutes, once)"
    fast_install "cargo-fuzz@$CARGO_FUZZ_VERSION" --locked
  fi
  # Debian's chromium for the browser tests, and redis-server for the
  # tests of instances sharing rooms (each test starts a private one).
  install_debian chromium chromium redis-server redis-server
  npm_ci end2end "Playwright (no browser download: the tests use Debian's chromium)"
fi
