#!/usr/bin/env bash
# Soak test for signals and threads: loops the st_* guest programs (every
# variant) and real multi-threaded / signal-heavy workloads (python3 with
# threading, signals and subprocess; xz -T2; sort --parallel=2) under bt-run,
# comparing each run with a native run of the same command (stdout, stderr,
# exit status or death by signal). Counts runs, mismatches and timeouts and
# prints a summary; mismatching outputs are kept for inspection.
#
#   bash scripts/soak.sh                  # 10 minutes
#   bash scripts/soak.sh -t 180           # 3 minutes
#   SOAK_SECONDS=3600 bash scripts/soak.sh
#
# Options (environment variable in brackets):
#   -t SECONDS   how long to loop [SOAK_SECONDS, default 600]
#   -T SECONDS   timeout of one run [SOAK_RUN_TIMEOUT, default 60]
#   -k DIR       where to keep the outputs of mismatching runs [SOAK_KEEP, default a new /tmp dir]
#   -f REGEX     only workloads whose name matches (grep -E) [SOAK_FILTER]
#   -n           do not build (use existing bt-run and guests)
# bt-run is $BT_RUN or target/release/bt-run; the guests are $GUEST_DIR or
# the newest testsuite build output (built here with cargo unless -n).
# Needs: python3, xz-utils, coreutils, busybox-static (as the tests do).
# Exit status: 0 when every run matched, 1 on any mismatch or timeout.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

SECONDS_TOTAL=${SOAK_SECONDS:-600}
RUN_TIMEOUT=${SOAK_RUN_TIMEOUT:-60}
KEEP=${SOAK_KEEP:-}
FILTER=${SOAK_FILTER:-}
BUILD=1
while getopts "t:T:k:f:nh" opt; do
    case $opt in
    t) SECONDS_TOTAL=$OPTARG ;;
    T) RUN_TIMEOUT=$OPTARG ;;
    k) KEEP=$OPTARG ;;
    f) FILTER=$OPTARG ;;
    n) BUILD=0 ;;
    *) sed -n '2,24p' "$0"; exit 2 ;;
    esac
done

log() { printf '==> %s\n' "$*" >&2; }

if ((BUILD)); then
    log "building bt-run and the guest programs"
    cargo build --release -p runtime >&2 || exit 2
    cargo test --release -p testsuite --test signals_threads --no-run >&2 || exit 2
fi
BT=${BT_RUN:-$ROOT/target/release/bt-run}
[ -x "$BT" ] || { echo "bt-run not found at $BT (build it or set BT_RUN)" >&2; exit 2; }
if [ -z "${GUEST_DIR:-}" ]; then
    t=${CARGO_TARGET_DIR:-$ROOT/target}
    GUEST_DIR=$(ls -dt "$t"/release/build/testsuite-*/out/guests "$t"/*/release/build/testsuite-*/out/guests 2>/dev/null |
        while read -r d; do [ -e "$d/st_hammer.gcc" ] && { echo "$d"; break; }; done)
fi
[ -n "${GUEST_DIR:-}" ] && [ -e "$GUEST_DIR/st_hammer.gcc" ] ||
    { echo "guest programs not found (set GUEST_DIR or build the testsuite)" >&2; exit 2; }
for tool in /usr/bin/python3 /usr/bin/xz /usr/bin/sort /bin/busybox timeout; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (python3, xz-utils, coreutils, busybox-static)" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/bt-soak.XXXXXX)
[ -n "$KEEP" ] || KEEP=$WORK/mismatches
mkdir -p "$KEEP"
cleanup() { rm -rf "$WORK/run" "$WORK/input" "$WORK/input.xz" "$WORK/soak.py"; }
trap cleanup EXIT

# ---- inputs -------------------------------------------------------------------
awk 'BEGIN { x = 12345; split("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima", w, " ");
             for (i = 0; i < 100000; i++) { x = (x * 1103515245 + 12345) % 2147483648;
               printf "%s %s %d\n", w[1 + x % 12], w[1 + int(x / 12) % 12], x % 100000 } }' >"$WORK/input"
xz -T2 -3 --block-size=262144 -k -c "$WORK/input" >"$WORK/input.xz"
cat >"$WORK/soak.py" <<'EOF'
import os, signal, subprocess, sys, threading, time
lock = threading.Lock()
total = 0
def work(k):
    global total
    for i in range(2000):
        with lock:
            total += k
ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print("threads total", total)
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
os.kill(os.getpid(), signal.SIGUSR1)
main_id = threading.get_ident()
t = threading.Thread(target=lambda: signal.pthread_kill(main_id, signal.SIGUSR1))
t.start(); t.join()
time.sleep(0.01)
print("handled", len(got))
ticks = []
signal.signal(signal.SIGALRM, lambda s, f: ticks.append(1))
signal.setitimer(signal.ITIMER_REAL, 0.005, 0.005)
time.sleep(0.1)
signal.setitimer(signal.ITIMER_REAL, 0)
print("ticks during sleep", len(ticks) > 0)
r = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True)
print("child", r.stdout.strip(), r.returncode)
p = subprocess.Popen(["/bin/busybox", "sleep", "30"])
p.send_signal(signal.SIGTERM)
print("terminated child", p.wait())
EOF

# ---- workloads: "name<TAB>command" (run in a fresh directory holding input and input.xz)
WORKLOADS=()
add() { WORKLOADS+=("$1"$'\t'"$2"); }
for v in gcc musl pie dyn; do
    g=$GUEST_DIR
    add "st_hammer.$v" "$g/st_hammer.$v"
    for m in compute read restart threads rt; do add "st_storm.$v.$m" "$g/st_storm.$v $m"; done
    for m in longjmp skip altstack threadstack int3 int3default; do add "st_faults.$v.$m" "$g/st_faults.$v $m"; done
    for m in fault raise async "fault sse" "async sse"; do add "st_vector.$v.${m// /-}" "$g/st_vector.$v $m"; done
    add "st_children.$v" "$g/st_children.$v"
    for m in kill mask fatal fatalterm fatalabort; do add "st_threadsig.$v.$m" "$g/st_threadsig.$v $m"; done
    for m in mainexit exitgroup exitthread lastexit; do add "st_exit.$v.$m" "$g/st_exit.$v $m"; done
    [ "$v" = musl ] || add "st_exit.$v.threadexit" "$g/st_exit.$v threadexit"
    for m in order suspend waitinfo eintr; do add "st_wait.$v.$m" "$g/st_wait.$v $m"; done
    add "st_flags.$v" "$g/st_flags.$v"
done
add python "/usr/bin/python3 $WORK/soak.py"
add xz-compress "/usr/bin/xz -T2 -3 --block-size=262144 -c input"
add xz-decompress "/usr/bin/xz -T2 -dc input.xz"
add sort-parallel "/usr/bin/sort --parallel=2 -S 1M -T . input"
add sort-parallel-numeric "/usr/bin/sort --parallel=2 -k3,3n -s input"
if [ -n "$FILTER" ]; then
    kept=()
    for w in "${WORKLOADS[@]}"; do grep -Eq -- "$FILTER" <<<"${w%%$'\t'*}" && kept+=("$w"); done
    WORKLOADS=("${kept[@]}")
fi
((${#WORKLOADS[@]})) || { echo "no workload matches '$FILTER'" >&2; exit 2; }

ENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C TZ=UTC TERM=dumb)

# run DIR OUTPREFIX COMMAND...: status in $OUTPREFIX.status ("timeout" when killed by the timeout)
run() {
    local dir=$1 out=$2 t0 t1
    shift 2
    t0=$(date +%s%N)
    # (the outer redirection silences bash's "Killed" / "Segmentation fault" notices)
    { (cd "$dir" && ulimit -c 0 && exec timeout -s KILL "$RUN_TIMEOUT" "${ENV[@]}" "$@") \
        >"$out.stdout" 2>"$out.stderr" </dev/null; } 2>/dev/null
    local st=$?
    t1=$(date +%s%N)
    # killed by timeout's SIGKILL (not by a SIGKILL of its own) once the time was up
    if ((st == 137 && (t1 - t0) / 1000000000 >= RUN_TIMEOUT)); then st=timeout; fi
    echo "$st" >"$out.status"
    echo $(((t1 - t0) / 1000000)) >"$out.ms"
}

declare -A RUNS=() BAD=() SLOW=()
total=0 mismatches=0 timeouts=0
start=$(date +%s)
deadline=$((start + SECONDS_TOTAL))
log "soaking for ${SECONDS_TOTAL}s: ${#WORKLOADS[@]} workloads, bt-run $BT, guests $GUEST_DIR"
log "outputs of mismatching runs go to $KEEP"
round=0
while (($(date +%s) < deadline)); do
    round=$((round + 1))
    # a different order every round
    mapfile -t order < <(printf '%s\n' "${!WORKLOADS[@]}" | shuf)
    for i in "${order[@]}"; do
        (($(date +%s) < deadline)) || break
        name=${WORKLOADS[$i]%%$'\t'*}
        read -r -a argv <<<"${WORKLOADS[$i]#*$'\t'}"
        rm -rf "$WORK/run" && mkdir -p "$WORK/run/native" "$WORK/run/bt"
        for d in native bt; do cp "$WORK/input" "$WORK/input.xz" "$WORK/run/$d/"; done
        run "$WORK/run/native" "$WORK/run/n" "${argv[@]}"
        run "$WORK/run/bt" "$WORK/run/b" "$BT" "${argv[@]}"
        total=$((total + 1))
        RUNS[$name]=$((${RUNS[$name]:-0} + 1))
        nst=$(cat "$WORK/run/n.status") bst=$(cat "$WORK/run/b.status")
        if [ "$bst" = timeout ]; then
            timeouts=$((timeouts + 1))
            SLOW[$name]=$((${SLOW[$name]:-0} + 1))
        fi
        if [ "$nst" != "$bst" ] || ! cmp -s "$WORK/run/n.stdout" "$WORK/run/b.stdout" ||
            ! cmp -s "$WORK/run/n.stderr" "$WORK/run/b.stderr"; then
            mismatches=$((mismatches + 1))
            BAD[$name]=$((${BAD[$name]:-0} + 1))
            k="$KEEP/$name.$round"
            mkdir -p "$k"
            cp "$WORK/run/"[nb].* "$k/"
            printf '%s\n' "${argv[*]}" >"$k/command"
            printf '  MISMATCH %-28s native %s (%s ms), bt-run %s (%s ms) -> %s\n' "$name" "$nst" \
                "$(cat "$WORK/run/n.ms")" "$bst" "$(cat "$WORK/run/b.ms")" "$k" >&2
        fi
    done
    log "round $round done: $total runs, $mismatches mismatches, $((deadline - $(date +%s)))s left"
done

elapsed=$(($(date +%s) - start))
echo
echo "soak summary: ${elapsed}s, $round rounds, $total runs, $mismatches mismatches ($timeouts bt-run timeouts)"
printf '  %-34s %6s %10s %8s\n' workload runs mismatches timeouts
for w in "${WORKLOADS[@]}"; do
    name=${w%%$'\t'*}
    [ -n "${RUNS[$name]:-}" ] || continue
    printf '  %-34s %6d %10d %8d\n' "$name" "${RUNS[$name]}" "${BAD[$name]:-0}" "${SLOW[$name]:-0}"
done
if ((mismatches)); then
    echo "mismatching outputs kept in $KEEP"
    [ "$KEEP" = "$WORK/mismatches" ] || rm -rf "$WORK"
    exit 1
fi
rmdir "$KEEP" 2>/dev/null
rm -rf "$WORK"
echo "$total passed, 0 failed"
exit 0
