#!/usr/bin/env bash
# System-call costs under bt-run, side by side with native, as a markdown
# table (medians of ROUNDS interleaved runs). Not part of the test command.
#
#   getpid loop          raw syscall(SYS_getpid): native vs bt-run, where the
#                        gate answers in-process (ns per call, speed-up)
#   getpid, --no-inline  the same loop forwarded to the kernel: ns added per
#                        forwarded call
#   getppid / read 0     cheap calls bt-run always forwards: ns added per call
#   rt_sigprocmask       a call the gate answers from the virtual mask
#   --isolate            getppid, read 0 and dd again under isolation's
#                        seccomp filter (the cost of the backstop)
#   dd bs=1 count=1M     /bin/dd, 2M tiny read/write calls: native, under
#                        bt-run, under `bt-run --trace -o FILE` and under
#                        `strace -o FILE`
#
# Loop timings are taken by the benchmark program itself around its loop
# (clock_gettime, which is the vDSO natively and translated vDSO code under
# bt-run), so start-up and translation are not counted; dd is timed wall
# clock, start-up included.
#
# Usage: bash bench/syscalls.sh [-n ROUNDS] [-d DD_ROUNDS] [-o FILE.md]
#   BT_RUN=/path/to/bt-run overrides the binary (default: builds target/release/bt-run).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=5
DD_ROUNDS=3
OUTFILE=""
while getopts "n:d:o:h" opt; do
    case $opt in
        n) ROUNDS=$OPTARG ;;
        d) DD_ROUNDS=$OPTARG ;;
        o) OUTFILE=$OPTARG ;;
        *) sed -n '2,24p' "$0"; exit 2 ;;
    esac
done

command -v gcc >/dev/null 2>&1 || { echo "bench: gcc is required" >&2; exit 1; }
if ! command -v strace >/dev/null 2>&1; then
    echo "bench: installing strace" >&2
    SUDO=()
    [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends strace >&2 ||
        { echo "bench: strace is required (apt-get install -y strace)" >&2; exit 1; }
fi
DD=$(command -v dd)
if [ -z "${BT_RUN:-}" ]; then
    echo "bench: building bt-run (cargo build --release -p runtime)" >&2
    (cd "$ROOT" && cargo build --release -p runtime >&2)
    # The newest of the places cargo may have put it (an explicit build
    # target in .cargo/config.toml moves it under target/<triple>/).
    TDIR=${CARGO_TARGET_DIR:-$ROOT/target}
    BT_RUN=$(ls -t "$TDIR"/x86_64-unknown-linux-gnu/release/bt-run "$TDIR"/release/bt-run 2>/dev/null | head -1)
    [ -n "$BT_RUN" ] || { echo "bench: no bt-run under $TDIR after the build" >&2; exit 1; }
fi
[ -x "$BT_RUN" ] || { echo "bench: $BT_RUN is not executable" >&2; exit 1; }

WORK=$(mktemp -d /tmp/bt-bench-sys.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cat >"$WORK/loop.c" <<'EOF'
/* loop MODE N: N calls of one system call; prints "ns_per_call check". */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    const char *mode = argv[1];
    long n = atol(argv[2]), bad = 0;
    char buf[1];
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    long first = strcmp(mode, "getpid") == 0 ? syscall(SYS_getpid) : syscall(SYS_getppid);
    double t0 = now();
    if (strcmp(mode, "getpid") == 0) {
        for (long i = 0; i < n; i++) bad += syscall(SYS_getpid) != first;
    } else if (strcmp(mode, "getppid") == 0) {
        for (long i = 0; i < n; i++) bad += syscall(SYS_getppid) != first;
    } else if (strcmp(mode, "read0") == 0) {
        for (long i = 0; i < n; i++) bad += syscall(SYS_read, 0, buf, 0) != 0;
    } else if (strcmp(mode, "sigprocmask") == 0) {
        for (long i = 0; i < n; i++) bad += syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 8) != 0;
    } else {
        return 2;
    }
    double t1 = now();
    printf("%.2f %s\n", (t1 - t0) / n, bad ? "WRONG" : "ok");
    return bad != 0;
}
EOF
gcc -static -O2 -o "$WORK/loop" "$WORK/loop.c"

median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# run_loop NAME MODE N [bt-run options...]; NAME "native" runs without bt-run.
run_loop() {
    local name=$1 mode=$2 n=$3
    shift 3
    local out
    if [ "$name" = native ]; then
        out=$("$WORK/loop" "$mode" "$n" </dev/null) || true
    else
        out=$("$BT_RUN" "$@" "$WORK/loop" "$mode" "$n" </dev/null) || true
    fi
    case $out in
        *" ok") echo "${out% ok}" >>"$WORK/$name.$mode" ;;
        *) echo "bench: $name $mode gave '$out'" >&2; exit 1 ;;
    esac
}

N_GETPID=10000000
N_OTHER=2000000
echo "bench: $ROUNDS rounds of the loops" >&2
for ((r = 1; r <= ROUNDS; r++)); do
    run_loop native getpid $N_GETPID
    run_loop bt getpid $N_GETPID
    run_loop noinline getpid $N_GETPID --no-inline
    for m in getppid read0 sigprocmask; do
        run_loop native $m $N_OTHER
        run_loop bt $m $N_OTHER
    done
    for m in getppid read0; do
        run_loop iso $m $N_OTHER --isolate
    done
done
med() { median <"$WORK/$1.$2"; }

now_ns() { date +%s%N; }
# time_dd NAME CMD...: wall seconds of one run appended to $WORK/dd.NAME
time_dd() {
    local name=$1
    shift
    local t0 t1
    t0=$(now_ns)
    "$@" if=/dev/zero of=/dev/null bs=1 count=1000000 2>/dev/null </dev/null ||
        { echo "bench: dd under $name failed" >&2; exit 1; }
    t1=$(now_ns)
    echo "$(( (t1 - t0) / 1000 ))" | awk '{printf "%.3f\n", $1 / 1e6}' >>"$WORK/dd.$name"
}
echo "bench: $DD_ROUNDS rounds of dd" >&2
for ((r = 1; r <= DD_ROUNDS; r++)); do
    time_dd native "$DD"
    time_dd plain "$BT_RUN" "$DD"
    time_dd iso "$BT_RUN" --isolate "$DD"
    rm -f "$WORK/bt.trace" "$WORK/strace.trace"
    time_dd bt "$BT_RUN" --trace -o "$WORK/bt.trace" "$DD"
    time_dd strace strace -o "$WORK/strace.trace" "$DD"
done
BT_LINES=$(wc -l <"$WORK/bt.trace")
ST_LINES=$(wc -l <"$WORK/strace.trace")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f ns/call", b - a }'; }

{
    echo "bt-run system-call benchmark ($BT_RUN): $(date -u +%Y-%m-%d), $(uname -r), $(nproc) CPUs, load $(cut -d" " -f1-3 /proc/loadavg), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); median of $ROUNDS runs (dd: $DD_ROUNDS)"
    echo
    echo "| loop (calls) | native ns/call | bt-run ns/call | bt-run vs native |"
    echo "|---|---:|---:|---|"
    n=$(med native getpid); b=$(med bt getpid); ni=$(med noinline getpid)
    echo "| getpid, answered in-process ($N_GETPID) | $n | $b | $(ratio "$n" "$b")x faster |"
    echo "| getpid, \`--no-inline\` (forwarded) ($N_GETPID) | $n | $ni | $(added "$n" "$ni") |"
    n=$(med native getppid); b=$(med bt getppid)
    echo "| getppid, forwarded ($N_OTHER) | $n | $b | $(added "$n" "$b") |"
    i=$(med iso getppid)
    echo "| getppid, forwarded, \`--isolate\` ($N_OTHER) | $n | $i | $(added "$n" "$i") |"
    n=$(med native read0); b=$(med bt read0)
    echo "| read of 0 bytes, forwarded ($N_OTHER) | $n | $b | $(added "$n" "$b") |"
    i=$(med iso read0)
    echo "| read of 0 bytes, forwarded, \`--isolate\` ($N_OTHER) | $n | $i | $(added "$n" "$i") |"
    n=$(med native sigprocmask); b=$(med bt sigprocmask)
    echo "| rt_sigprocmask, answered in the gate ($N_OTHER) | $n | $b | $(ratio "$b" "$n")x native ($(added "$n" "$b")) |"
    echo
    echo "| \`dd if=/dev/zero of=/dev/null bs=1 count=1000000\` | wall s | vs native | trace lines |"
    echo "|---|---:|---:|---:|"
    n=$(median <"$WORK/dd.native"); p=$(median <"$WORK/dd.plain"); b=$(median <"$WORK/dd.bt"); s=$(median <"$WORK/dd.strace")
    echo "| native | $n | 1.00x | |"
    echo "| \`bt-run\` | $p | $(ratio "$p" "$n")x | |"
    i=$(median <"$WORK/dd.iso")
    echo "| \`bt-run --isolate\` | $i | $(ratio "$i" "$n")x | |"
    echo "| \`bt-run --trace -o FILE\` | $b | $(ratio "$b" "$n")x | $BT_LINES |"
    echo "| \`strace -o FILE\` | $s | $(ratio "$s" "$n")x | $ST_LINES |"
} | tee ${OUTFILE:+"$OUTFILE"}
