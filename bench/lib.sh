# Shared by bench/run.sh and bench/startup.sh (sourced, not run): the
# binary under test, medians of recorded runs, and the table they print.
# The caller sets ROOT, RUNNERS, NAMES and WORK; each run of workload W
# under runner R appends microseconds, "wrong" or "fail" to $WORK/t.W.R.

# bench_bt_run TAG: BT_RUN, built (cargo build --release -p runtime) unless
# the caller named one; exits if it is not executable.
bench_bt_run() {
    if [ -z "${BT_RUN:-}" ]; then
        echo "$1: building bt-run (cargo build --release -p runtime)" >&2
        (cd "$ROOT" && cargo build --release -p runtime >&2)
        BT_RUN=$ROOT/target/release/bt-run
    fi
    [ -x "$BT_RUN" ] || { echo "$1: $BT_RUN is not executable" >&2; exit 1; }
}

# bench_median W R: the median microseconds, or "fail"/"wrong" if any run
# was.
bench_median() {
    local f="$WORK/t.$1.$2"
    if grep -q fail "$f"; then echo fail; elif grep -q wrong "$f"; then echo wrong; else
        sort -n "$f" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
    fi
}

# bench_table: the header and one row per workload (median and ratio to
# the first runner, native), as markdown.
bench_table() {
    local header="| workload                  |" rule="|---------------------------|" r w
    for ((r = 0; r < ${#RUNNERS[@]}; r++)); do
        header+=$(printf ' %10s |' "${RUNNERS[$r]}")
        rule+="-----------:|"
        if [ "$r" -gt 0 ]; then header+=$(printf ' %7s |' "ratio"); rule+="--------:|"; fi
    done
    echo "$header"
    echo "$rule"
    for ((w = 0; w < ${#NAMES[@]}; w++)); do
        local line native m
        line=$(printf '| %-25s |' "${NAMES[$w]}")
        native=$(bench_median "$w" 0)
        for ((r = 0; r < ${#RUNNERS[@]}; r++)); do
            m=$(bench_median "$w" "$r")
            if [[ $m =~ ^[0-9]+$ ]]; then
                line+=$(awk -v m="$m" 'BEGIN { printf " %9.3fs |", m / 1e6 }')
                [ "$r" -eq 0 ] || line+=$(awk -v m="$m" -v n="$native" 'BEGIN { printf " %6.2fx |", m / n }')
            else
                line+=$(printf ' %10s |' "$m")
                [ "$r" -eq 0 ] || line+=$(printf ' %7s |' "-")
            fi
        done
        echo "$line"
    done
}
