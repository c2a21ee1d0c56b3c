#!/usr/bin/env python3
"""Attribute `perf record` samples of a run under `bt-run --perf-map[=insns]`
to the names bt-run wrote in /tmp/perf-PID.map (for perf versions that do
not read the map for bt-run's memfd-backed code cache themselves).

    perf record -e cpu-clock -o perf.data -- bt-run --perf-map=insns PROG...
    python3 scripts/perf-map-report.py [-i perf.data] [-n 30]

Prints the hottest symbols, then (with =insns) the share of each kind of
translated code: the mnemonic of each translated guest instruction, block
entry checks, exit stubs, and samples outside the cache (bt-run itself,
the kernel).
"""
import argparse
import bisect
import collections
import subprocess
import sys


def load_map(pid):
    spans = []
    try:
        with open(f"/tmp/perf-{pid}.map") as f:
            for line in f:
                parts = line.rstrip("\n").split(" ", 2)
                if len(parts) == 3:
                    spans.append((int(parts[0], 16), int(parts[1], 16), parts[2]))
    except OSError:
        pass
    spans.sort()
    # Later lines (after a cache flush) win: keep the last span per start.
    dedup = {}
    for s, n, name in spans:
        dedup[s] = (n, name)
    starts = sorted(dedup)
    return starts, [dedup[s] for s in starts]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-i", "--input", default="perf.data")
    ap.add_argument("-n", "--top", type=int, default=30)
    a = ap.parse_args()
    try:
        out = subprocess.run(["perf", "script", "-i", a.input, "-F", "pid,ip"], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"perf-map-report: cannot run perf script on {a.input}: {e}")
    maps = {}
    syms = collections.Counter()
    total = 0
    for line in out.splitlines():
        f = line.split()
        if len(f) < 2:
            continue
        pid, ip = int(f[0]), int(f[1], 16)
        if pid not in maps:
            maps[pid] = load_map(pid)
        starts, spans = maps[pid]
        i = bisect.bisect_right(starts, ip) - 1
        name = "(outside the code cache)"
        if i >= 0 and ip < starts[i] + spans[i][0]:
            name = spans[i][1]
        syms[name] += 1
        total += 1
    if not total:
        sys.exit("perf-map-report: no samples")
    print(f"{total} samples\n\nhottest symbols:")
    for name, n in syms.most_common(a.top):
        print(f"{100 * n / total:6.2f}%  {name}")
    kinds = collections.Counter()
    for name, n in syms.items():
        kind = name.rsplit(" ", 1)[-1] if "+0x" in name else name
        if name.endswith("[entry check]"):
            kind = "[entry check]"
        elif name.endswith("[exit stubs]"):
            kind = "[exit stubs]"
        kinds[kind] += n
    print("\nby kind:")
    for kind, n in kinds.most_common(a.top):
        print(f"{100 * n / total:6.2f}%  {kind}")


if __name__ == "__main__":
    main()
