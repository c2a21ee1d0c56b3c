#!/usr/bin/env bash
# The full test command: installs what the tests need (Debian 12, as root),
# builds bt-run and runs every test in the workspace. Exits non-zero on any failure.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -- NAME    # extra arguments go to the test binaries (e.g. a test name filter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '\n==> %s\n' "$*"; }

# --- system packages -------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
have_pkg busybox-static || missing+=(busybox-static)
command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
have_pkg libc6-dev || missing+=(libc6-dev)
# Real programs compared by the tests (strace is the oracle for --trace;
# strace and gdb also run under bt-run as tracers).
for pkg in python3 perl g++ git make xz-utils bzip2 file tar gzip findutils coreutils diffutils strace gdb; do
    have_pkg "$pkg" || missing+=("$pkg")
done
# The man page is rendered by man, the completions loaded by each shell.
for pkg in man-db zsh fish; do
    have_pkg "$pkg" || missing+=("$pkg")
done
# A JVM (JIT code, implicit null checks by SIGSEGV, many threads).
command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
# CPython's own regression tests, run natively and under bt-run.
have_pkg libpython3.11-testsuite || missing+=(libpython3.11-testsuite)
# A JavaScript engine with its own JIT and worker threads.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
        SUDO=(sudo -E)
    fi
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
if [ ! -x /bin/busybox ]; then
    echo "/bin/busybox is missing even though busybox-static is installed" >&2
    exit 1
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo (the Rust toolchain) is required" >&2; exit 1; }

# --- format and lints -------------------------------------------------------
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null 2>&1 || { echo "cargo fmt and cargo clippy are required (rustup component add rustfmt clippy)" >&2; exit 1; }
    log "rustup component add rustfmt clippy"
    rustup component add rustfmt clippy
fi
log "cargo fmt --check"
cargo fmt --all --check
cargo fmt --all --check --manifest-path fuzz/Cargo.toml
log "cargo clippy -D warnings"
cargo clippy --release --workspace --all-targets -- -D warnings
cargo clippy --release --all-targets --manifest-path fuzz/Cargo.toml -- -D warnings

# --- build and test ---------------------------------------------------------
log "cargo build --release -p runtime"
cargo build --release -p runtime

# The tests use target/release/bt-run unless BT_RUN says otherwise.
log "cargo test --release --workspace --no-fail-fast"
cargo test --release --workspace --no-fail-fast "$@"

# The program tests again with isolation forced on (`--isolate` in front of
# every bt-run they start): the seccomp backstop must change no output.
log "BT_TEST_ISOLATE=1 cargo test --release -p testsuite --no-fail-fast"
BT_TEST_ISOLATE=1 cargo test --release -p testsuite --no-fail-fast "$@"

log "all tests passed"
