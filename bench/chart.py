#!/usr/bin/env python3
"""Draw a bench/run.sh results table as an SVG bar chart.

    python3 bench/chart.py TABLE.md CHART.svg    (or - for stdin / stdout)

One group of horizontal bars per workload, one bar per runner (bt-run and
the peers the run had), each the runner's median time as a ratio to
native, on a logarithmic axis with native (1x) marked; rows a runner got
wrong or failed are shown as such, not drawn. The table's own header lines
(CPU, date, rounds) become the caption, so a chart says where its numbers
come from. bench/run.sh calls this with -s FILE.svg.
"""

import math
import sys
from html import escape

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]


def parse(text):
    """(caption lines, runner names, [(workload, [ratio or str])])."""
    caption, runners, rows = [], None, []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("- "):
            caption.append(line[2:])
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if runners is None:
            # | workload | native | r1 | ratio | r2 | ratio | ...
            if len(cells) < 4 or cells[0] != "workload" or cells[1] != "native":
                raise ValueError("not a bench/run.sh table: " + line)
            runners = [cells[i] for i in range(2, len(cells), 2)]
            continue
        ratios = []
        for i in range(len(runners)):
            at = 3 + 2 * i
            v = cells[at] if at < len(cells) else "-"
            ratios.append(float(v[:-1]) if v.endswith("x") else (cells[at - 1] if v == "-" else v))
        rows.append((cells[0], ratios))
    if runners is None:
        raise ValueError("no results table found")
    return caption, runners, rows


def draw(caption, runners, rows):
    values = [v for _, rs in rows for v in rs if isinstance(v, float) and v > 0]
    lo = 10 ** math.floor(math.log10(min(values + [1.0])))
    # The axis ends at the first 1-2-5 step past the longest bar.
    top_v, hi = max(values + [1.0]) * 1.15, lo
    while hi < top_v:
        hi = hi * 2.5 if str(hi)[0] == "2" else hi * 2
    label_w, plot_w, right = 220, 560, 70
    bar_h, gap = 11, 9
    top = 40 + 16 * len(caption) + 18 * ((len(runners) + 3) // 4)
    group_h = bar_h * len(runners) + gap
    height = top + group_h * len(rows) + 40
    width = label_w + plot_w + right

    def x(v):
        return label_w + plot_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="10" y="22" font-size="15" font-weight="bold">'
        "Time as a ratio to native (lower is faster; log scale)</text>",
    ]
    y = 40
    for c in caption:
        out.append(f'<text x="10" y="{y}" fill="#444">{escape(c)}</text>')
        y += 16
    for i, r in enumerate(runners):
        lx, ly = 10 + 170 * (i % 4), y + 18 * (i // 4)
        out.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{COLOURS[i % len(COLOURS)]}"/>')
        out.append(f'<text x="{lx + 18}" y="{ly}">{escape(r)}</text>')
    # Grid: 1-2-5 ticks, native (1x) in black.
    ticks = []
    d = lo
    while d <= hi * 1.0001:
        ticks += [t for t in (d, 2 * d, 5 * d) if t <= hi * 1.0001]
        d *= 10
    bottom = top + group_h * len(rows)
    for t in ticks:
        colour = "#000" if abs(t - 1) < 1e-9 else "#ddd"
        out.append(f'<line x1="{x(t):.1f}" y1="{top - 4}" x2="{x(t):.1f}" y2="{bottom}" stroke="{colour}"/>')
        out.append(f'<text x="{x(t):.1f}" y="{bottom + 16}" text-anchor="middle">{t:g}x</text>')
    for k, (name, ratios) in enumerate(rows):
        gy = top + k * group_h
        out.append(
            f'<text x="{label_w - 8}" y="{gy + group_h / 2 + 2:.1f}" text-anchor="end">{escape(name)}</text>'
        )
        for i, v in enumerate(ratios):
            by = gy + i * bar_h
            colour = COLOURS[i % len(COLOURS)]
            if isinstance(v, float) and v > 0:
                x0, x1 = x(min(1.0, v)), x(max(1.0, v))
                out.append(
                    f'<rect x="{x0:.1f}" y="{by}" width="{max(x1 - x0, 1):.1f}" height="{bar_h - 1}" fill="{colour}"/>'
                )
                out.append(f'<text x="{x(max(1.0, v)) + 4:.1f}" y="{by + bar_h - 2}" font-size="10">{v:.2f}x</text>')
            else:
                out.append(
                    f'<text x="{x(1.0) + 4:.1f}" y="{by + bar_h - 2}" font-size="10" fill="{colour}">'
                    f"{escape(str(v))}</text>"
                )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 3:
        print("usage: chart.py TABLE.md|- CHART.svg|-", file=sys.stderr)
        return 2
    try:
        text = sys.stdin.read() if argv[1] == "-" else open(argv[1], encoding="utf-8").read()
        svg = draw(*parse(text))
    except (OSError, ValueError) as e:
        print(f"chart.py: {e}", file=sys.stderr)
        return 1
    if argv[2] == "-":
        sys.stdout.write(svg)
    else:
        with open(argv[2], "w", encoding="utf-8") as f:
            f.write(svg)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
