"""A hand-written SVG grouped bar chart (no plotting dependency)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

COLORS = {
    "raw": "#9e9e9e",
    "microasgi": "#d62728",
    "starlette": "#1f77b4",
    "blacksheep": "#2ca02c",
    "falcon": "#ff7f0e",
}
_FALLBACK = ("#9467bd", "#8c564b", "#e377c2", "#17becf")

WIDTH = 820
LABEL_W = 250
VALUE_W = 60
BAR_H = 11
GAP = 14
TOP = 58


def grouped_bars(
    title: str,
    groups: Sequence[tuple[str, Mapping[str, float | None]]],
    series: Sequence[str],
    axis_label: str,
    max_value: float | None = None,
    digits: int = 2,
) -> str:
    """Horizontal bars, one group per label and one bar per series; None draws "n/a".

    Each bar is labelled with its value, with ``digits`` decimals.
    """
    colors = {
        name: COLORS.get(name, _FALLBACK[i % len(_FALLBACK)]) for i, name in enumerate(series)
    }
    values = [v for _, row in groups for v in row.values() if v is not None]
    top = max_value if max_value is not None else max(values, default=1.0)
    top = top or 1.0
    plot_w = WIDTH - LABEL_W - VALUE_W
    group_h = len(series) * BAR_H + GAP
    height = TOP + len(groups) * group_h + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="14" '
        f'font-weight="bold">{escape(title)}</text>',
    ]
    x = LABEL_W
    for name in series:  # legend
        out.append(f'<rect x="{x}" y="30" width="10" height="10" fill="{colors[name]}"/>')
        out.append(f'<text x="{x + 14}" y="39">{escape(name)}</text>')
        x += 14 + 8 * len(name) + 16
    for tick in range(5):  # vertical grid
        fraction = tick / 4
        gx = LABEL_W + plot_w * fraction
        out.append(
            f'<line x1="{gx:.1f}" y1="{TOP - 4}" x2="{gx:.1f}" y2="{height - 34}" '
            'stroke="#dddddd"/>'
        )
        out.append(
            f'<text x="{gx:.1f}" y="{height - 22}" text-anchor="middle">{top * fraction:.2g}</text>'
        )
    out.append(
        f'<text x="{LABEL_W + plot_w / 2}" y="{height - 6}" text-anchor="middle">'
        f"{escape(axis_label)}</text>"
    )
    y = TOP
    for label, row in groups:
        out.append(
            f'<text x="{LABEL_W - 8}" y="{y + len(series) * BAR_H / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        for i, name in enumerate(series):
            by = y + i * BAR_H
            value = row.get(name)
            if value is None:
                out.append(f'<text x="{LABEL_W + 4}" y="{by + 9}" fill="#777777">n/a</text>')
                continue
            w = plot_w * min(value, top) / top
            out.append(
                f'<rect x="{LABEL_W}" y="{by}" width="{w:.1f}" height="{BAR_H - 2}" '
                f'fill="{colors[name]}"><title>{escape(name)}: {value:.3g}</title></rect>'
            )
            out.append(f'<text x="{LABEL_W + w + 4:.1f}" y="{by + 9}">{value:.{digits}f}</text>')
        y += group_h
    out.append("</svg>")
    return "\n".join(out)
