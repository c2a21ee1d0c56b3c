#!/usr/bin/env bash
# Install bt-run, its man page and its bash, zsh and fish completions, all
# generated from the command line's one definition (`bt-run --generate`).
#
#   bash scripts/install.sh                 # into /usr/local
#   bash scripts/install.sh --prefix ~/.local
#   DESTDIR=/tmp/stage bash scripts/install.sh --prefix /usr    # staged, for packaging
#
# BT_RUN=path/to/bt-run installs that binary instead of building one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

prefix=/usr/local
while (($#)); do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) prefix="${1#--prefix=}"; shift ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (--prefix DIR)" >&2; exit 2 ;;
    esac
done

bin="${BT_RUN:-}"
if [ -z "$bin" ]; then
    cargo build --release -p runtime
    bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
    bin="$bin/x86_64-unknown-linux-gnu/release/bt-run"
fi
[ -x "$bin" ] || { echo "install.sh: no bt-run binary at $bin" >&2; exit 1; }

root="${DESTDIR:-}$prefix"
put() { # put DEST MODE COMMAND...: COMMAND's output becomes DEST
    local dest="$1" mode="$2"; shift 2
    mkdir -p "$(dirname "$dest")"
    "$@" > "$dest.tmp"
    chmod "$mode" "$dest.tmp"
    mv -f "$dest.tmp" "$dest"
    echo "installed $dest"
}
put "$root/bin/bt-run" 755 cat "$bin"
put "$root/share/man/man1/bt-run.1" 644 "$bin" --generate man
put "$root/share/bash-completion/completions/bt-run" 644 "$bin" --generate complete-bash
put "$root/share/zsh/site-functions/_bt-run" 644 "$bin" --generate complete-zsh
put "$root/share/fish/vendor_completions.d/bt-run.fish" 644 "$bin" --generate complete-fish
