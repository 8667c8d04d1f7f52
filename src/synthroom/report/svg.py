"""Small inline-SVG charts for the report: grouped bars, heatmaps with a colour legend, and
overlaid histograms. No dependency and no external reference; every label is escaped here.
"""

from __future__ import annotations

import math
from html import escape
from typing import Mapping, Sequence

# One palette for the whole report (also used by the CSS legend swatches).
COLORS = {"real": "#2f5d8a", "synthetic": "#e07b39", "holdout": "#4a4a4a", "train": "#c0392b"}
FONT = 11  # px, label size inside charts


def text(value: object) -> str:
    """Escape any text (column names and values come from user data)."""
    return escape(str(value), quote=True)


def short(label: str, width: int) -> str:
    """Cut a label to ``width`` characters with an ellipsis (the full label stays in a tooltip)."""
    return label if len(label) <= width else label[: max(1, width - 1)] + "…"


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg viewBox="0 0 {_num(width)} {_num(height)}" '
        f'width="{_num(width)}" height="{_num(height)}" role="img" aria-label="{text(label)}" '
        f'font-size="{FONT}">' + "".join(body) + "</svg>"
    )


def _nice_step(value: float, ticks: int = 4) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) so ``ticks`` steps reach ``value``."""
    if not value > 0 or not math.isfinite(value):
        return 0.25
    raw = value / ticks
    exp = 10 ** math.floor(math.log10(raw))
    return next(m * exp for m in (1, 2, 2.5, 5, 10) if m * exp >= raw * (1 - 1e-9))


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value``: a whole number of round steps."""
    step = _nice_step(value)
    return step * max(1, math.ceil(value / step - 1e-9)) if value > 0 and math.isfinite(value) else 1.0


def _y_axis(x0: float, y0: float, height: float, top: float, fmt, width: float) -> list[str]:
    step = _nice_step(top)
    out = []
    for i in range(int(round(top / step)) + 1):
        v = step * i
        y = y0 - height * v / top
        out.append(f'<line x1="{_num(x0)}" x2="{_num(x0 + width)}" y1="{_num(y)}" y2="{_num(y)}" class="grid"/>')
        out.append(f'<text x="{_num(x0 - 4)}" y="{_num(y + 4)}" text-anchor="end" class="tick">{text(fmt(v))}</text>')
    return out


def _percent(top: float):
    """Tick formatter for shares: as many decimals as the axis needs."""
    step = _nice_step(top)
    digits = max(0, -math.floor(math.log10(step * 100) + 1e-9)) if step > 0 else 0
    digits += 1 if round(step * 100, digits) != step * 100 else 0
    return lambda v: f"{v * 100:.{digits}f}%"


def _x_labels(labels: Sequence[str], x0: float, step: float, y: float, rotate: bool) -> list[str]:
    out = []
    width = 14 if rotate else max(3, int(step / 6.2))
    for i, label in enumerate(labels):
        x = x0 + step * (i + 0.5)
        shown = text(short(label, width))
        if rotate:
            out.append(
                f'<text transform="translate({_num(x + 3)},{_num(y)}) rotate(-45)" text-anchor="end" '
                f'class="tick"><title>{text(label)}</title>{shown}</text>'
            )
        else:
            out.append(
                f'<text x="{_num(x)}" y="{_num(y + 8)}" text-anchor="middle" class="tick">'
                f"<title>{text(label)}</title>{shown}</text>"
            )
    return out


def bar_chart(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    marker: str | None = None,
    title: str = "",
    percent: bool = True,
    width: float = 440,
) -> str:
    """Grouped bars, one group per label; ``marker`` names a series drawn as a tick across each
    group instead of a bar (the holdout: what fresh real rows look like)."""
    bars = {k: v for k, v in series.items() if k != marker}
    n = max(len(labels), 1)
    rotate = n > 6 or max((len(s) for s in labels), default=0) * n * 6.2 > width - 50
    left, right, top_pad = 42.0, 8.0, 8.0
    if rotate:  # the first rotated label leans left, past the axis
        longest = max((len(short(s, 14)) for s in labels), default=0)
        left = max(left, 4.4 * longest - (width - left - right) / n / 2 + 4)
    bottom = 78.0 if rotate else 22.0
    plot_h = 130.0
    height = top_pad + plot_h + bottom
    plot_w = width - left - right
    step = plot_w / n
    peak = max((max(v, default=0.0) for v in series.values()), default=0.0)
    top = _nice_max(peak)
    fmt = _percent(top) if percent else (lambda v: f"{v:.3g}")
    y0 = top_pad + plot_h
    body = _y_axis(left, y0, plot_h, top, fmt, plot_w)
    bar_w = step * 0.8 / max(len(bars), 1)
    for i, label in enumerate(labels):
        gx = left + step * i + step * 0.1
        for j, (name, values) in enumerate(bars.items()):
            v = float(values[i])
            h = plot_h * min(v / top, 1.0)
            body.append(
                f'<rect x="{_num(gx + j * bar_w)}" y="{_num(y0 - h)}" width="{_num(max(bar_w - 1, 0.8))}" '
                f'height="{_num(h)}" fill="{COLORS.get(name, "#888")}"><title>{text(label)}: {text(name)} '
                f"{text(fmt(v) if not percent else f'{v:.2%}')}</title></rect>"
            )
        if marker is not None:
            v = float(series[marker][i])
            y = y0 - plot_h * min(v / top, 1.0)
            body.append(
                f'<line x1="{_num(gx - 1)}" x2="{_num(gx + step * 0.8 + 1)}" y1="{_num(y)}" y2="{_num(y)}" '
                f'stroke="{COLORS.get(marker, "#000")}" stroke-width="2"><title>{text(label)}: {text(marker)} '
                f"{text(f'{v:.2%}' if percent else fmt(v))}</title></line>"
            )
    body.append(f'<line x1="{_num(left)}" x2="{_num(left + plot_w)}" y1="{_num(y0)}" y2="{_num(y0)}" class="axis"/>')
    body += _x_labels(labels, left, step, y0 + 4, rotate)
    return _svg(width, height, body, title)


def _mix(c0: tuple[int, int, int], c1: tuple[int, int, int], t: float) -> str:
    t = min(max(t, 0.0), 1.0)
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(c0, c1))


_WHITE, _BLUE, _RED = (255, 255, 255), (33, 78, 140), (192, 57, 43)


def sequential(value: float) -> str:
    """White (0) to dark blue (1)."""
    return "#eeeeee" if not math.isfinite(value) else _mix(_WHITE, _BLUE, value)


def diverging(value: float, scale: float) -> str:
    """Blue (synthetic weaker) - white (0) - red (synthetic stronger), saturating at ``scale``."""
    if not math.isfinite(value):
        return "#eeeeee"
    return _mix(_WHITE, _RED if value > 0 else _BLUE, abs(value) / scale)


def heatmap(
    names: Sequence[str],
    matrix: Sequence[Sequence[float]],
    color,
    *,
    title: str = "",
    cell: float | None = None,
    fmt=lambda v: f"{v:.2f}",
) -> str:
    """A square matrix as coloured cells; column names on the left and (rotated) on top."""
    n = max(len(names), 1)
    cell = cell or max(10.0, min(34.0, 300.0 / n))
    label_w = min(130.0, 10 + 6.2 * max((len(short(s, 20)) for s in names), default=1))
    size = label_w + cell * n + 6
    pad = label_w * 0.55  # the rotated top labels lean right, past the last column
    body = []
    for i, name in enumerate(names):
        y = label_w + cell * (i + 0.5) + 4
        body.append(
            f'<text x="{_num(label_w - 4)}" y="{_num(y)}" text-anchor="end" class="tick">'
            f"<title>{text(name)}</title>{text(short(name, 20))}</text>"
        )
        x = label_w + cell * (i + 0.5) + 4
        body.append(
            f'<text transform="translate({_num(x)},{_num(label_w - 4)}) rotate(-60)" class="tick">'
            f"<title>{text(name)}</title>{text(short(name, 20))}</text>"
        )
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            v = float(v) if v is not None else float("nan")
            x, y = label_w + cell * j, label_w + cell * i
            body.append(
                f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(cell)}" height="{_num(cell)}" '
                f'fill="{color(v)}" class="cell"><title>{text(names[i])} × {text(names[j])}: '
                f"{text(fmt(v) if math.isfinite(v) else 'n/a')}</title></rect>"
            )
            if cell >= 26 and math.isfinite(v):
                body.append(
                    f'<text x="{_num(x + cell / 2)}" y="{_num(y + cell / 2 + 3.5)}" text-anchor="middle" '
                    f'font-size="9" class="{"light" if _is_dark(color(v)) else "dark"}">{text(fmt(v)[:5])}</text>'
                )
    return _svg(size + pad, size, body, title)


def _is_dark(hex_color: str) -> bool:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b < 140


def legend(color, lo: float, hi: float, *, label: str, steps: int = 40, width: float = 220) -> str:
    """A colour bar from ``lo`` to ``hi`` with its end and middle values."""
    w = (width - 20) / steps
    body = [
        f'<rect x="{_num(10 + i * w)}" y="4" width="{_num(w + 0.5)}" height="12" '
        f'fill="{color(lo + (hi - lo) * (i + 0.5) / steps)}"/>'
        for i in range(steps)
    ]
    for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        v = lo + (hi - lo) * frac
        body.append(
            f'<text x="{_num(10 + frac * (width - 20))}" y="30" text-anchor="{anchor}" class="tick">'
            f"{text(f'{v:+.2f}' if lo < 0 else f'{v:.2f}')}</text>"
        )
    body.append(f'<text x="{_num(width / 2)}" y="44" text-anchor="middle" class="tick">{text(label)}</text>')
    return _svg(width, 48, body, label)


def histogram(
    edges: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    title: str = "",
    x_label: str = "",
    width: float = 520,
) -> str:
    """Overlaid step histograms (shares per bin) over shared ``edges``."""
    left, right, top_pad, bottom, plot_h = 46.0, 18.0, 8.0, 40.0, 160.0
    plot_w = width - left - right
    lo, hi = float(edges[0]), float(edges[-1])
    span = (hi - lo) or 1.0
    totals = {k: sum(v) or 1.0 for k, v in series.items()}
    shares = {k: [c / totals[k] for c in v] for k, v in series.items()}
    top = _nice_max(max((max(v, default=0) for v in shares.values()), default=0.0))
    y0 = top_pad + plot_h
    body = _y_axis(left, y0, plot_h, top, _percent(top), plot_w)

    def sx(v: float) -> float:
        return left + plot_w * (v - lo) / span

    for name, values in shares.items():
        pts = [f"{_num(sx(lo))},{_num(y0)}"]
        for i, v in enumerate(values):
            y = y0 - plot_h * min(v / top, 1.0)
            pts += [f"{_num(sx(edges[i]))},{_num(y)}", f"{_num(sx(edges[i + 1]))},{_num(y)}"]
        pts.append(f"{_num(sx(hi))},{_num(y0)}")
        c = COLORS.get(name, "#888")
        body.append(
            f'<polygon points="{" ".join(pts)}" fill="{c}" fill-opacity="0.18" stroke="{c}" '
            f'stroke-width="1.6"><title>{text(name)} rows</title></polygon>'
        )
    body.append(f'<line x1="{_num(left)}" x2="{_num(left + plot_w)}" y1="{_num(y0)}" y2="{_num(y0)}" class="axis"/>')
    step = _nice_step(span, 5)
    for i in range(math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) + 1):
        v = i * step
        body.append(
            f'<text x="{_num(sx(v))}" y="{_num(y0 + 14)}" text-anchor="middle" class="tick">{text(f"{v:.3g}")}</text>'
        )
    body.append(
        f'<text x="{_num(left + plot_w / 2)}" y="{_num(y0 + 32)}" text-anchor="middle" '
        f'class="tick">{text(x_label)}</text>'
    )
    return _svg(width, top_pad + plot_h + bottom, body, title)
