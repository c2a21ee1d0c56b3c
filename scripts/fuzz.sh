#!/usr/bin/env bash
# cargo-fuzz (libFuzzer) targets for bt-run, on the stable toolchain.
#
#   bash scripts/fuzz.sh run TARGET [SECONDS]   # fuzz one target (default 600 s)
#   bash scripts/fuzz.sh cmin TARGET            # minimize fuzz/corpus/TARGET in place
#   bash scripts/fuzz.sh replay [TARGET]        # replay the corpora on stable (no nightly flags)
#   bash scripts/fuzz.sh list
#
# Targets: translate (translator::translate::translate_block + oracle),
#          elf_loader (runtime::loader::elf::LoadPlan::parse + oracle),
#          trace_args (syscall_inline::trace::format_* + policy parsers).
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer, sancov); on a stable
# toolchain they are unlocked with RUSTC_BOOTSTRAP=1, which this script sets:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET
# Install cargo-fuzz once with `cargo install cargo-fuzz`.
#
# One fuzzer at a time, one job (-jobs=1): the machine has 2 cores and other
# builds run too. Set FUZZ_ARGS for extra libFuzzer flags. Inputs that hit
# already-reported bugs (oracle::known_issue) are skipped unless
# BT_FUZZ_SKIP_KNOWN=0, so a long run keeps looking for new ones.
# Crashes land in fuzz/artifacts/TARGET/: keep the input in fuzz/open/TARGET/
# while its bug is open (see fuzz/open/README.md), then in fuzz/corpus/TARGET/
# once fixed, so the replay test keeps checking it.
set -euo pipefail
self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
export RUSTC_BOOTSTRAP=1
export BT_FUZZ_SKIP_KNOWN=${BT_FUZZ_SKIP_KNOWN:-1}

cmd=${1:-help}
target=${2:-}

need_cargo_fuzz() {
    cargo fuzz --version >/dev/null 2>&1 || {
        echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
        exit 1
    }
}

case "$cmd" in
    list)
        need_cargo_fuzz
        cargo fuzz list
        ;;
    run)
        need_cargo_fuzz
        [ -n "$target" ] || { echo "usage: $0 run TARGET [SECONDS]" >&2; exit 2; }
        secs=${3:-600}
        mkdir -p "corpus/$target"
        # shellcheck disable=SC2086
        cargo fuzz run -O "$target" "corpus/$target" -- \
            -jobs=1 -workers=1 -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048 \
            -print_final_stats=1 ${FUZZ_ARGS:-}
        echo "output of the fuzzing job: fuzz/fuzz-0.log"
        ;;
    cmin)
        need_cargo_fuzz
        [ -n "$target" ] || { echo "usage: $0 cmin TARGET" >&2; exit 2; }
        # cmin drops inputs that crash: keep the named reproducers aside.
        keep=$(mktemp -d)
        cp corpus/"$target"/crash-* "$keep"/ 2>/dev/null || true
        rm -f corpus/"$target"/crash-*
        # Edge coverage only, smallest covering set: keeps corpora at a few
        # hundred files. Inputs hitting known bugs must not crash the merge.
        BT_FUZZ_SKIP_KNOWN=1 cargo fuzz cmin -O "$target" "corpus/$target" -- -set_cover_merge=1 -use_counters=0
        cp "$keep"/* corpus/"$target"/ 2>/dev/null || true
        rm -rf "$keep"
        if [ "$target" = translate ]; then
            (cd .. && cargo test --release -p testsuite --test equivalence -- \
                --ignored --exact fuzz_corpus_prune_known_issues --nocapture)
        fi
        ls corpus/"$target" | wc -l
        ;;
    replay)
        cd ..
        filter=fuzz_corpus
        [ -n "$target" ] && filter="fuzz_corpus_$target"
        cargo test --release -p testsuite --test equivalence -- "$filter" --nocapture
        ;;
    *)
        sed -n '2,24p' "$self"
        ;;
esac
