#!/usr/bin/env bash
# Times the real-program corpus of testsuite/tests/programs.rs (ls, bash,
# python3, perl, gcc, g++, git, tar/gzip, xz, bzip2/file, find/sort/uniq,
# coreutils, make, the dynamic loader, ...) natively and under bt-run, each
# workload in a fresh directory prepared exactly as the tests prepare it.
# Rounds are interleaved (native, then bt-run, workload by workload); prints
# the median wall time of each workload and of the whole corpus (the sum over
# workloads of one round, median over rounds) as a markdown table, plus any
# run whose bt-run outcome differed from native. Not part of the test command.
#
# Usage: bash bench/corpus.sh [-n ROUNDS] [WORKLOAD_SUBSTRING]
#   BT_RUN=/path/to/bt-run overrides the binary (default: target/release/bt-run, built first).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=3
while getopts "n:h" opt; do
    case $opt in
        n) ROUNDS=$OPTARG ;;
        *) sed -n '2,13p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
cd "$ROOT"
if [ -z "${BT_RUN:-}" ]; then
    echo "corpus: building bt-run (cargo build --release -p runtime)" >&2
    cargo build --release -p runtime >&2
fi
BT_CORPUS_ROUNDS=$ROUNDS BT_CORPUS_FILTER=${1:-} \
    cargo test --release -p testsuite --test programs -- \
    --ignored --exact corpus_timing --nocapture --test-threads=1
