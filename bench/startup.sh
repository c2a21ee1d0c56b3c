#!/usr/bin/env bash
# Start-up and process creation: short programs started many times, fork
# loops, and a small parallel build, timed natively and under bt-run (and
# another build of bt-run with BASE_RUN, for A/B comparisons). Runs are
# interleaved (each round runs every workload under every runner); the
# median wall time of N rounds is reported with its ratio to native, as a
# markdown table. A run whose output or exit status differs from native is
# shown as "wrong". Not part of the test command.
#
# Usage: bash bench/startup.sh [-n ROUNDS] [-o FILE.md] [WORKLOAD_REGEX]
#   BT_RUN=/path/to/bt-run overrides the binary (default: builds target/release/bt-run).
#   BASE_RUN=/path/to/bt-run adds another build as runner `base`.
#   ISOLATE=1 adds `bt-run --isolate` as a runner.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=5
OUTFILE=""
while getopts "n:o:h" opt; do
    case $opt in
        n) ROUNDS=$OPTARG ;;
        o) OUTFILE=$OPTARG ;;
        *) sed -n '2,13p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
FILTER=${1:-.}

for tool in gcc make bash /bin/busybox /usr/bin/python3 timeout; do
    command -v "$tool" >/dev/null 2>&1 || { echo "startup: $tool is required" >&2; exit 1; }
done
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_bt_run startup

WORK=$(mktemp -d /tmp/bt-startup.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# A small C project: 24 translation units and a program linking them.
mkdir "$WORK/proj"
for i in $(seq 1 24); do
    cat > "$WORK/proj/u$i.c" <<EOF
#include <stdio.h>
#include <string.h>
struct rec$i { int k; char name[16]; double w; };
static int cmp$i(const struct rec$i *a, const struct rec$i *b) { return a->k - b->k + (int)(a->w - b->w); }
long unit$i(long x) {
    struct rec$i r[8];
    for (int j = 0; j < 8; j++) { r[j].k = (int)(x * $i + j); snprintf(r[j].name, sizeof r[j].name, "n%d", j); r[j].w = j / 3.0; }
    long s = 0;
    for (int j = 1; j < 8; j++) s += cmp$i(&r[j - 1], &r[j]) + (long)strlen(r[j].name);
    return s + x;
}
EOF
done
{
    for i in $(seq 1 24); do echo "long unit$i(long);"; done
    echo '#include <stdio.h>'
    echo 'int main(void) { long x = 1;'
    for i in $(seq 1 24); do echo "x = unit$i(x);"; done
    echo 'printf("%ld\n", x); return 0; }'
} > "$WORK/proj/main.c"
cat > "$WORK/proj/Makefile" <<'EOF'
OBJS = $(patsubst %.c,%.o,$(wildcard *.c))
prog: $(OBJS)
	$(CC) -o $@ $(OBJS)
%.o: %.c
	$(CC) -O1 -c -o $@ $<
EOF

PYFORK='import os
for i in range(300):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print("done")'

NAMES=() CMDS=()
add() { if [[ $1 =~ $FILTER ]]; then NAMES+=("$1"); CMDS+=("$2"); fi; }
# @RUN@ is where the runner's prefix goes.
add "/bin/true x20"            'for i in $(seq 20); do @RUN@ /bin/true; done'
add "busybox true x20"         'for i in $(seq 20); do @RUN@ /bin/busybox true; done'
add "python3 -c pass x10"      'for i in $(seq 10); do @RUN@ /usr/bin/python3 -c pass; done'
add "python3 300 forks"        "@RUN@ /usr/bin/python3 -c '$PYFORK'"
add "bash 300 \$(...)"         "@RUN@ bash -c 'i=0; while [ \$i -lt 300 ]; do x=\$(echo \$i); i=\$((i + 1)); done; echo \$x'"
add "busybox sh 200 execs"     "@RUN@ /bin/busybox sh -c 'for i in \$(seq 200); do /bin/true; done; echo ok'"
add "make -j2, 25 C files"     "cd $WORK/proj && rm -f *.o prog && @RUN@ make -s -j2 CC=gcc >/dev/null && ./prog"
((${#NAMES[@]})) || { echo "startup: no workload matches '$FILTER'" >&2; exit 2; }

RUNNERS=(native bt-run) PREFIX=("" "$BT_RUN")
if [ "${ISOLATE:-0}" = 1 ]; then RUNNERS+=(isolate); PREFIX+=("$BT_RUN --isolate"); fi
if [ -n "${BASE_RUN:-}" ]; then
    [ -x "$BASE_RUN" ] || { echo "startup: BASE_RUN=$BASE_RUN is not executable" >&2; exit 1; }
    RUNNERS+=(base); PREFIX+=("$BASE_RUN")
fi

# run W R: times workload W under runner R, records microseconds or "wrong".
run() {
    local w=$1 r=$2 out="$WORK/out.$1.$2" start end status=0
    local cmd=${CMDS[$w]//@RUN@/${PREFIX[$r]}}
    start=$(date +%s%N)
    timeout -s KILL 600 bash -c "$cmd" > "$out" 2> "$out.err" || status=$?
    end=$(date +%s%N)
    if [ "$r" -eq 0 ]; then
        echo "$status" > "$WORK/status.$w"
        if [ "$status" -ne 0 ]; then echo "startup: native run of '${NAMES[$w]}' failed ($status)" >&2; exit 1; fi
    fi
    if [ "$status" -ne "$(cat "$WORK/status.$w")" ] || ! cmp -s "$out" "$WORK/out.$w.0"; then
        echo wrong >> "$WORK/t.$w.$r"
    else
        echo $(((end - start) / 1000)) >> "$WORK/t.$w.$r"
    fi
    [ "$r" -eq 0 ] || rm -f "$out"
}

for ((round = 1; round <= ROUNDS; round++)); do
    echo "startup: round $round/$ROUNDS" >&2
    for ((w = 0; w < ${#NAMES[@]}; w++)); do
        for ((r = 0; r < ${#RUNNERS[@]}; r++)); do run "$w" "$r"; done
    done
done

report() {
    echo "# bt-run start-up and process creation"
    echo
    echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //') ($(nproc) cores)"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); kernel $(uname -r)"
    echo "- Median wall time of $ROUNDS interleaved runs; ratio = time / native time."
    echo
    bench_table
}

if [ -n "$OUTFILE" ]; then report | tee "$OUTFILE"; else report; fi
