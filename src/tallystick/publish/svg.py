"""Charts as inline SVG, drawn when the site is written: no script, no library, nothing to fetch.

Vega and Vega-Lite (which the dashboard ships) weigh about 800 kB minified, most of the
site's 1 MB budget; a bar chart and a line chart need only a few rectangles and paths.
Every text (labels come from untrusted clients) is escaped here; tooltips are SVG
``<title>`` elements holding the same protected numbers as the table beside the chart.
"""

from __future__ import annotations

from datetime import date
from html import escape

from tallystick.publish.cells import OTHER, Cell, Cells, percent

OTHER_SERIES = "\x00other"  # the "other" line's key, kept apart from a value named "other"

WIDTH = 640
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d")
OTHER_COLOUR = "#9a9a9a"
_LABEL_CHARS = 28
_LEGEND_CHARS = 18  # a legend column is a quarter of the width
_Y_TOPS = (0.04, 0.08, 0.2, 0.4, 0.6, 0.8, 1.0)  # each a multiple of 4 whole percent: the quarter lines are too


def _t(text: str) -> str:
    return escape(text, quote=True)


def _short(label: str, chars: int = _LABEL_CHARS) -> str:
    return label if len(label) <= chars else label[: chars - 1] + "…"


def name(series: str) -> str:
    return OTHER if series == OTHER_SERIES else series


def describe(cell: Cell, k: int) -> str:
    """A cell in words: ``fish: 42 % (about 120 users)``."""
    if cell.users is None or cell.share is None:
        return f"{cell.label}: fewer than {k} users"
    return f"{cell.label}: {percent(cell.share)} (about {cell.users:,} users)"


def _svg(height: int, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{_t(label)}">' + "".join(body) + "</svg>"
    )


def bars(cells: Cells, *, k: int, title: str) -> str:
    """Horizontal bars, one per cell, with the share written beside each."""
    row, left, right = 26, 190, 150
    span = WIDTH - left - right
    height = row * len(cells.cells) + 8
    top = max((c.share or 0.0 for c in cells.cells), default=0.0) or 1.0
    body = []
    for i, cell in enumerate(cells.cells):
        y = 4 + i * row
        words = _t(describe(cell, k))
        colour = OTHER_COLOUR if cell.other else PALETTE[0]
        body.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" class="label">{_t(_short(cell.label))}</text>'
        )
        if cell.share is None:
            body.append(f'<text x="{left}" y="{y + 17}" class="value"><title>{words}</title>fewer than {k}</text>')
            continue
        w = max(1.0, span * cell.share / top)
        share = _t(percent(cell.share, short=True))
        body.append(
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{colour}">'
            f"<title>{words}</title></rect>"
            f'<text x="{left + w + 6:.1f}" y="{y + 17}" class="value">{share}</text>'
        )
    return _svg(height, body, title)


def _is(cell: Cell, series: str) -> bool:
    return cell.other if series == OTHER_SERIES else cell.label == series and not cell.other


def lines(periods: list[tuple[date, Cells]], series: list[str], *, k: int, title: str) -> str:
    """One line per series over the periods; a period whose cell is not published leaves a gap."""
    top_pad, left, right, plot_h = 12, 48, 12, 220
    legend_rows = (len(series) + 3) // 4
    height = top_pad + plot_h + 30 + 20 * legend_rows
    span = WIDTH - left - right
    offsets = [(p - periods[0][0]).days for p, _ in periods]  # x by date: a withheld period leaves room
    n = max(1, offsets[-1] if offsets else 1)
    highest = max((c.share or 0.0 for _, cells in periods for c in cells.cells), default=0.0)
    ymax = next((top for top in _Y_TOPS if top >= highest), 1.0)
    colour = {s: OTHER_COLOUR if s == OTHER_SERIES else PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}

    def xy(i: int, share: float) -> str:
        return f"{left + span * offsets[i] / n:.1f},{top_pad + plot_h * (1 - share / ymax):.1f}"

    body = []
    for j in range(5):
        share = ymax * j / 4
        y = top_pad + plot_h * (1 - j / 4)
        body.append(
            f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{round(share * 100)} %</text>'
        )
    if periods:
        for i in sorted({0, len(periods) // 2, len(periods) - 1}):
            anchor = "start" if i == 0 else "end" if i == len(periods) - 1 else "middle"
            body.append(
                f'<text x="{left + span * offsets[i] / n:.1f}" y="{top_pad + plot_h + 18}" text-anchor="{anchor}" '
                f'class="tick">{periods[i][0].isoformat()}</text>'
            )
    for s in series:
        path, points, pen_down = [], [], False
        for i, (p, cells) in enumerate(periods):
            cell = next(
                (c for c in cells.cells if (c.other if s == OTHER_SERIES else c.label == s and not c.other)), None
            )
            if cell is None or cell.share is None:
                pen_down = False
                continue
            path.append(("L" if pen_down else "M") + xy(i, cell.share))
            points.append((i, p, cell))
            pen_down = True
        if not path:
            continue
        body.append(
            f'<path d="{" ".join(path)}" fill="none" stroke="{colour[s]}" stroke-width="2">'
            f"<title>{_t(name(s))}</title></path>"
        )
        if len(points) == 1 or len(periods) <= 60:
            body += [
                f'<circle cx="{xy(i, c.share or 0).split(",")[0]}" cy="{xy(i, c.share or 0).split(",")[1]}" r="2.5" '
                f'fill="{colour[s]}"><title>{p.isoformat()}: {_t(describe(c, k))}</title></circle>'
                for i, p, c in points
            ]
    for idx, s in enumerate(series):
        x = left + (idx % 4) * (span / 4)
        y = top_pad + plot_h + 36 + (idx // 4) * 20
        body.append(
            f'<rect x="{x:.1f}" y="{y - 10}" width="12" height="12" fill="{colour[s]}"/>'
            f'<text x="{x + 16:.1f}" y="{y}" class="label">{_t(_short(name(s), _LEGEND_CHARS))}</text>'
        )
    return _svg(height, body, title)
