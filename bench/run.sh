#!/usr/bin/env bash
# bt-run benchmarks: CPU-bound workloads timed natively, under bt-run, and
# (when installed) under qemu-x86_64 and valgrind --tool=none, and under
# DynamoRIO when DRRUN names a drrun built locally. Runs are
# interleaved (each round runs every workload under every runner), the median
# wall time of N rounds is reported with its ratio to native, as a markdown
# table. A run whose output or exit status differs from native is shown as
# "wrong", one that fails or exceeds the time limit as "fail".
# bt-run's translated code starts at another place in its cache in each
# round (`--code-offset` 0, 16, 32, 48, then again), so its medians are
# over code placements as well as runs: where hot code lands relative to
# cache lines moves some rows by as much as 2x (docs/design.md, "Where code
# lands"). Not part of the test command.
#
# Usage: bash bench/run.sh [-n ROUNDS] [-t TIMEOUT_SECS] [-o FILE.md] [-s FILE.svg] [WORKLOAD_REGEX]
#   -s FILE.svg also draws the table as a bar chart (bench/chart.py).
#   BT_RUN=/path/to/bt-run overrides the binary (default: builds target/release/bt-run).
#   DRRUN=/path/to/bin64/drrun adds DynamoRIO (`drrun -- CMD`) as a runner.
#   ISOLATE=1 adds `bt-run --isolate` (the seccomp backstop) as a runner.
#   BASE_RUN=/path/to/bt-run adds another build (say, before a change) as
#   runner `base` (and `base-isolate` with ISOLATE=1), for A/B comparisons.
#   NO_PEERS=1 leaves out qemu-x86_64 and valgrind.
# The last row is the geometric mean of each runner's ratios over the CPU rows.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=5
# python3 hashes strings with a random seed per run, which moves its loop's
# dict lookups (0.39-0.49 s natively over seeds): one seed for every run.
export PYTHONHASHSEED=0
LIMIT=600
OUTFILE=""
SVGFILE=""
while getopts "n:t:o:s:h" opt; do
    case $opt in
        n) ROUNDS=$OPTARG ;;
        t) LIMIT=$OPTARG ;;
        o) OUTFILE=$OPTARG ;;
        s) SVGFILE=$OPTARG ;;
        *) sed -n '2,23p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
FILTER=${1:-.}

for tool in gcc g++ /bin/busybox timeout /usr/bin/python3 sqlite3 perl xz gzip sha256sum dd; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool is required" >&2; exit 1; }
done
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_bt_run bench

WORK=$(mktemp -d /tmp/bt-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# --- programs and inputs ----------------------------------------------------
for src in "$ROOT"/testsuite/guests/bench_*.c; do
    name=$(basename "$src" .c)
    gcc -static -O2 -o "$WORK/$name" "$src" -lm
done
g++ -static -O2 -o "$WORK/vcall" "$ROOT/bench/vcall.cpp"
cat > "$WORK/db.sql" <<'SQLEOF'
CREATE TABLE a(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
CREATE TABLE b(id INTEGER PRIMARY KEY, k INTEGER, w REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)
  INSERT INTO a SELECT x, x * 7 % 1000, 'v' || x FROM c;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)
  INSERT INTO b SELECT x, x * 13 % 1000, x / 3.0 FROM c;
CREATE INDEX ak ON a(k);
CREATE INDEX bk ON b(k);
SELECT count(*), sum(b.w) FROM a JOIN b ON a.k = b.k WHERE a.id % 50 = 0;
SELECT k, count(*), max(v) FROM a GROUP BY k ORDER BY 2 DESC, 1 LIMIT 5;
SQLEOF
cat > "$WORK/gen.c" <<'CEOF'
/* gen BYTES: deterministic pseudo-random text (words and numbers), BYTES long. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    static const char *w[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
                              "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa"};
    long want = argc > 1 ? atol(argv[1]) : 1000000, n = 0;
    uint64_t x = 88172645463325252ULL;
    while (n < want) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        n += printf("%s %s %llu\n", w[x & 15], w[(x >> 4) & 15], (unsigned long long)(x >> 24) % 1000000007ULL);
    }
    return 0;
}
CEOF
gcc -O2 -o "$WORK/gen" "$WORK/gen.c"
"$WORK/gen" 50000000 > "$WORK/data50"
"$WORK/gen" 20000000 > "$WORK/data20"
"$WORK/gen" 14000000 > "$WORK/tmp" && head -n 500000 "$WORK/tmp" > "$WORK/lines500k" && rm "$WORK/tmp"
head -c 8000000 "$WORK/data20" > "$WORK/data8"
head -c 2000000 "$WORK/data20" > "$WORK/data2"

BB=/bin/busybox
NAMES=() CMDS=()
add() { if [[ $1 =~ $FILTER ]]; then NAMES+=("$1"); CMDS+=("$2"); fi; }
add "busybox sha256sum 50 MB" "$BB sha256sum $WORK/data50"
add "busybox gzip -c 20 MB"   "$BB gzip -c $WORK/data20"
add "busybox awk loop"        "$BB awk 'BEGIN { s = 0; for (i = 0; i < 1000000; i++) s += i % 7; print s }'"
add "busybox sh arithmetic"   "$BB sh -c 'i=0; s=0; while [ \$i -lt 300000 ]; do s=\$((s + i * i % 13)); i=\$((i + 1)); done; echo \$s'"
add "busybox sort 500k lines" "$BB sort $WORK/lines500k"
add "C fib(40)"               "$WORK/bench_fib 40"
add "C qsort 2M ints"         "$WORK/bench_qsort 2000000"
add "C nbody 5M steps"        "$WORK/bench_nbody 5000000"
add "C interpreter, switch"   "$WORK/bench_interp switch 20000000"
add "C interpreter, goto"     "$WORK/bench_interp goto 20000000"
add "C++ virtual calls 100M"  "$WORK/vcall 100000000"
add "python3 loop 5M"         "/usr/bin/python3 -c 's = 0
for i in range(5000000): s += i * i % 7
print(s)'"
add "sqlite3 :memory: join"   "sqlite3 :memory: < $WORK/db.sql"
add "perl regex loop"         "perl -e 'my \$s = \"abc123def456gh7\" x 8; my \$n = 0; for (1 .. 200000) { \$n++ while \$s =~ /(\\d+)/g } print \"\$n\\n\"'"
add "xz -9 2 MB"              "xz -9 -c $WORK/data2 | cksum"
add "gzip -9 8 MB"            "gzip -9 -c $WORK/data8 | cksum"
add "sha256sum 50 MB"         "sha256sum $WORK/data50"
add "dd bs=1 2.5M"            "dd if=/dev/zero of=/dev/null bs=1 count=2500000"
((${#NAMES[@]})) || { echo "bench: no workload matches '$FILTER'" >&2; exit 2; }

RUNNERS=(native bt-run) PREFIX=("" "$BT_RUN --code-offset @OFFSET@")
if [ "${ISOLATE:-0}" = 1 ]; then RUNNERS+=(isolate); PREFIX+=("$BT_RUN --code-offset @OFFSET@ --isolate"); fi
if [ -n "${BASE_RUN:-}" ]; then
    # Another build (before a change), interleaved with this one's runs.
    [ -x "$BASE_RUN" ] || { echo "bench: BASE_RUN=$BASE_RUN is not executable" >&2; exit 1; }
    RUNNERS+=(base); PREFIX+=("$BASE_RUN --code-offset @OFFSET@")
    if [ "${ISOLATE:-0}" = 1 ]; then RUNNERS+=(base-isolate); PREFIX+=("$BASE_RUN --code-offset @OFFSET@ --isolate"); fi
fi
if [ "${NO_PEERS:-0}" != 1 ]; then
    if command -v qemu-x86_64 >/dev/null 2>&1; then RUNNERS+=(qemu); PREFIX+=("qemu-x86_64"); fi
    if command -v valgrind >/dev/null 2>&1; then RUNNERS+=(valgrind); PREFIX+=("valgrind --tool=none -q"); fi
fi
if [ -n "${DRRUN:-}" ]; then
    [ -x "$DRRUN" ] || { echo "bench: DRRUN=$DRRUN is not executable" >&2; exit 1; }
    RUNNERS+=(drrun); PREFIX+=("$DRRUN --")
fi

# --- measurements -------------------------------------------------------------
# run W R ROUND: times workload W under runner R in round ROUND, records
# microseconds or "wrong"/"fail".
run() {
    local w=$1 r=$2 out="$WORK/out.$1.$2" rec="$WORK/t.$1.$2"
    local start end status=0 prefix=${PREFIX[$2]//@OFFSET@/$(((($3 - 1) % 4) * 16))}
    start=$(date +%s%N)
    timeout -s KILL "$LIMIT" bash -c "$prefix ${CMDS[$w]}" > "$out" 2> "$out.err" || status=$?
    end=$(date +%s%N)
    if [ "$r" -eq 0 ]; then
        echo "$status" > "$WORK/status.$w"
        if [ "$status" -ne 0 ]; then echo "bench: native run of '${NAMES[$w]}' failed ($status)" >&2; exit 1; fi
    fi
    if [ "$status" -eq 137 ] || { [ "$status" -ne 0 ] && [ "$status" -ne "$(cat "$WORK/status.$w")" ]; }; then
        echo fail >> "$rec"
    elif ! cmp -s "$out" "$WORK/out.$w.0"; then
        echo wrong >> "$rec"
    else
        echo $(((end - start) / 1000)) >> "$rec" # microseconds
    fi
    rm -f "$out.err"
    [ "$r" -eq 0 ] || rm -f "$out"
}

for ((round = 1; round <= ROUNDS; round++)); do
    echo "bench: round $round/$ROUNDS" >&2
    for ((w = 0; w < ${#NAMES[@]}; w++)); do
        for ((r = 0; r < ${#RUNNERS[@]}; r++)); do run "$w" "$r" "$round"; done
    done
done

report() {
    echo "# bt-run benchmarks"
    echo
    echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //') ($(nproc) cores)"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); kernel $(uname -r)"
    echo "- Median wall time of $ROUNDS interleaved runs (bt-run's at code offsets 0, 16, 32, 48 in turn); ratio = time / native time."
    echo
    bench_table
    # Geometric mean of the ratios (rows every runner ran right).
    local line
    line=$(printf '| %-25s |' "geomean")
    for ((r = 0; r < ${#RUNNERS[@]}; r++)); do
        if [ "$r" -eq 0 ]; then line+=$(printf ' %10s |' ""); continue; fi
        local logs="" m native
        for ((w = 0; w < ${#NAMES[@]}; w++)); do
            m=$(bench_median "$w" "$r"); native=$(bench_median "$w" 0)
            [[ $m =~ ^[0-9]+$ ]] && logs+="$m $native"$'\n'
        done
        line+=$(printf '%s' "$logs" | awk 'NF == 2 { s += log($1 / $2); n++ } END { if (n) printf " %10s | %6.2fx |", "", exp(s / n); else printf " %10s | %7s |", "", "-" }')
    done
    echo "$line"
}

if [ -n "$OUTFILE" ]; then report | tee "$OUTFILE"; else report; fi | tee "$WORK/table.md"
if [ -n "$SVGFILE" ]; then
    python3 "$ROOT/bench/chart.py" "$WORK/table.md" "$SVGFILE" && echo "bench: chart in $SVGFILE" >&2
fi
