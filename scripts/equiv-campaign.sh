#!/usr/bin/env bash
# A long equivalence campaign: generated instruction sequences run natively
# and under bt-run (testsuite/tests/equivalence.rs, test equivalence_campaign),
# split over parallel test processes with different seeds. Unlike the normal
# test it does not stop at the first divergence: every divergence is shrunk
# and saved as a corpus case (*.case) with a report (*.txt).
#
#   bash scripts/equiv-campaign.sh [N]        # N cases in total (default 100000)
#
# Environment:
#   EQUIV_JOBS=2          parallel processes (default 2: this machine has 2 cores)
#   EQUIV_SEED=S          base seed (job i uses S+i; default: the time)
#   EQUIV_OUT=DIR         where cases and logs go (default target/equiv-campaign/<date>)
#   EQUIV_CLASSES=a,b     restrict to some classes (alu shift muldiv bitops string
#                         stack lea riprel indirect loop x87 sse avx avx512 fsbase)
#   EQUIV_BT_ARGS="..."   extra bt-run arguments for every case
#   EQUIV_FAR=0           never add --far-cache (default: a quarter of the cases)
#   EQUIV_MAX_PER_KIND=3  divergences saved per kind (class, statuses, first field)
#   EQUIV_SKIP_KNOWN=0    also run cases that hit already-reported bugs (default: skip
#                         them, see known_issue in testsuite/tests/equivalence.rs)
#   BT_RUN=path           the bt-run binary (default target/release/bt-run)
#
# A saved case becomes a regression test by copying it to testsuite/equiv-corpus/.
# Exit status: 0 if no divergence, 1 otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${1:-${EQUIV_CASES:-100000}}
JOBS=${EQUIV_JOBS:-2}
SEED=${EQUIV_SEED:-$(date +%s)}
OUT=${EQUIV_OUT:-target/equiv-campaign/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

echo "==> building bt-run and the equivalence test"
if [ -z "${BT_RUN:-}" ]; then
    cargo build --release -p runtime
fi
BIN=$(cargo test --release -p testsuite --test equivalence --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
    echo "cannot find the equivalence test binary" >&2
    exit 2
fi

echo "==> $N cases in $JOBS processes, seeds $SEED..$((SEED + JOBS - 1)), output $OUT"
pids=()
for ((i = 0; i < JOBS; i++)); do
    n=$((N / JOBS + (i < N % JOBS ? 1 : 0)))
    EQUIV_CASES=$n EQUIV_SEED=$((SEED + i)) EQUIV_OUT="$OUT" \
        "$BIN" --ignored --exact equivalence_campaign --nocapture --test-threads=1 >"$OUT/job$i.log" 2>&1 &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do
    wait "$p" || status=1
done

echo
echo "==> cases per class (all jobs)"
printf "%-10s %8s %9s %7s %7s %9s\n" class cases native-ok sigfpe other diverged
cat "$OUT"/summary-*.txt 2>/dev/null | awk '
    /^class / { inside = 1; next }
    /^total / { inside = 0; next }
    inside && NF == 6 { for (i = 2; i <= 6; i++) sum[$1, i] += $i; seen[$1] = 1 }
    END {
        for (c in seen) {
            printf "%-10s %8d %9d %7d %7d %9d\n", c, sum[c,2], sum[c,3], sum[c,4], sum[c,5], sum[c,6]
            for (i = 2; i <= 6; i++) total[i] += sum[c,i]
        }
        printf "~total     %8d %9d %7d %7d %9d\n", total[2], total[3], total[4], total[5], total[6]
    }' | sort | sed "s/^~total /total  /"
grep -ho "([0-9]* skipped as known issues)" "$OUT"/summary-*.txt 2>/dev/null || true
missing=0
for ((i = 0; i < JOBS; i++)); do
    grep -q "^seed " "$OUT/job$i.log" || { echo "job $i did not finish, see $OUT/job$i.log" >&2; missing=1; }
done

echo
echo "==> divergences"
grep -h "^DIVERGENCE" "$OUT"/job*.log || echo "none"
awk 'FNR == 1 { on = 0 } /^divergence kinds:/ { on = 1; next } on && NF { print }' "$OUT"/summary-*.txt 2>/dev/null || true
echo
echo "logs, summaries and shrunk cases: $OUT"
if ((missing)); then
    exit 2
fi
exit $status
