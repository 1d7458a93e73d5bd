"""SVG primitives for the report's charts: round axis ticks and a plot that emits SVG markup as text.

Text, not a plotting library: the page must stay self-contained and byte-stable for the same
history, so every element is formatted here with fixed precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["COLORS", "Plot", "nice_ticks", "tick_label"]

COLORS = {
    "baseline": "#2563eb",
    "challenger": "#ea580c",
    "pass": "#16a34a",
    "fail": "#dc2626",
    "inconclusive": "#d97706",
    "promoted": "#16a34a",
    "rejected": "#dc2626",
    "dry_run": "#6b7280",
    "rollback": "#9f1239",
    "threshold": "#111827",
    "grid": "#e5e7eb",
    "axis": "#6b7280",
}
"""Chart colours (also used by the screenshot test to find the charts' pixels)."""


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [lo, hi].

    >>> nice_ticks(0.41, 0.69)
    [0.4, 0.5, 0.6, 0.7]
    >>> nice_ticks(-0.06, 0.06)
    [-0.075, -0.05, -0.025, 0.0, 0.025, 0.05, 0.075]
    >>> nice_ticks(3.0, 3.0)
    [2.0, 2.5, 3.0, 3.5, 4.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi < lo:
        lo, hi = hi, lo
    if hi - lo < 1e-12:
        pad = abs(lo) * 0.25 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, count)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    return [round(k * step, 10) + 0.0 for k in range(first, last + 1)]


def tick_label(v: float, step: float) -> str:
    """A tick value with as many decimals as the step needs (``0.25`` steps get two).

    >>> tick_label(0.25, 0.25), tick_label(1500.0, 500.0)
    ('0.25', '1,500')
    """
    exponent = math.floor(math.log10(step))
    mantissa = round(step / 10 ** exponent, 6)
    decimals = max(0, min(6, -exponent + (1 if mantissa not in (1, 2, 5, 10) else 0)))
    return f"{v:,.{decimals}f}"


@dataclass
class Plot:
    """An ordinal x axis (one band per evaluation) and a linear y axis inside an SVG of fixed size."""

    n: float
    lo: float
    hi: float
    width: int = 1100
    height: int = 300
    left: int = 64
    right: int = 16
    top: int = 28
    bottom: int = 46

    def __post_init__(self) -> None:
        self.ticks = nice_ticks(self.lo, self.hi)
        self.lo, self.hi = min(self.ticks[0], self.lo), max(self.ticks[-1], self.hi)
        self.parts: list[str] = []

    @property
    def plot_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        return self.height - self.top - self.bottom

    @property
    def band(self) -> float:
        """Width of one evaluation's band in pixels."""
        return self.plot_w / max(1, self.n)

    @property
    def dense(self) -> bool:
        """Too many evaluations for whiskers and symbols: draw ribbons and small marks instead."""
        return self.band < 12

    def marker(self, largest: float) -> float:
        """A marker size that fits the band."""
        return max(1.5, min(largest, self.band * 0.3))

    def x(self, i: float) -> float:
        """Centre of band ``i`` (fractional ``i`` for boundaries: ``k - 0.5`` is the left edge of band k)."""
        return self.left + (i + 0.5) * self.plot_w / max(1, self.n)

    def y(self, v: float) -> float:
        span = (self.hi - self.lo) or 1.0
        return self.top + (self.hi - v) / span * self.plot_h

    def add(self, s: str) -> None:
        self.parts.append(s)

    def frame(self, title: str, x_labels: Sequence[str]) -> None:
        """Title, y grid with tick labels, x labels (thinned to fit)."""
        step = self.ticks[1] - self.ticks[0] if len(self.ticks) > 1 else 1.0
        self.add(f'<text class="title" x="{self.left}" y="16">{escape(title)}</text>')
        for t in self.ticks:
            yy = self.y(t)
            self.add(f'<line x1="{self.left}" x2="{self.width - self.right}" y1="{yy:.1f}" y2="{yy:.1f}" '
                     f'stroke="{COLORS["grid"]}" stroke-width="1"/>')
            self.add(f'<text x="{self.left - 6}" y="{yy + 3.5:.1f}" text-anchor="end">'
                     f'{escape(tick_label(t, step))}</text>')
        base = self.top + self.plot_h
        self.add(f'<line x1="{self.left}" x2="{self.width - self.right}" y1="{base}" y2="{base}" '
                 f'stroke="{COLORS["axis"]}" stroke-width="1"/>')
        every = max(1, math.ceil(len(x_labels) / max(1, self.plot_w // 56)))
        last = len(x_labels) - 1
        for i, label in enumerate(x_labels):
            if i != last and (i % every or last - i < every * 0.75):  # the last label always, none crowding it
                continue
            self.add(f'<text x="{self.x(i):.1f}" y="{base + 15}" text-anchor="middle">{escape(label)}</text>')

    def vline(self, i: float, color: str, label: str | None = None, dash: str = "", tooltip: str = "") -> None:
        xx = self.x(i)
        d = f' stroke-dasharray="{dash}"' if dash else ""
        tip = f"<title>{escape(tooltip)}</title>" if tooltip else ""
        self.add(f'<g><line x1="{xx:.1f}" x2="{xx:.1f}" y1="{self.top}" y2="{self.top + self.plot_h}" '
                 f'stroke="{color}" stroke-width="1.5"{d}/>{tip}</g>')
        if label:
            right = xx > self.left + self.plot_w * 0.6  # labels near the right edge go to the line's left
            anchor = ' text-anchor="end"' if right else ""
            self.add(f'<text x="{xx - 3 if right else xx + 3:.1f}" y="{self.top + 10}"{anchor} '
                     f'style="fill:{color}">{escape(label)}</text>')

    def polyline(self, pts: Sequence[tuple[float, float]], color: str, width: float = 1.5, dash: str = "") -> None:
        if len(pts) < 2:
            return
        d = f' stroke-dasharray="{dash}"' if dash else ""
        path = " ".join(f"{self.x(i):.1f},{self.y(v):.1f}" for i, v in pts)
        self.add(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="{width}"{d}/>')

    def ribbon(self, rows: Sequence[tuple[float, float, float]], color: str, opacity: float = 0.18) -> None:
        """A shaded band through (i, low, high) rows: intervals when there are too many for whiskers."""
        if len(rows) < 2:
            return
        upper = " ".join(f"{self.x(i):.1f},{self.y(hi):.1f}" for i, _, hi in rows)
        lower = " ".join(f"{self.x(i):.1f},{self.y(lo):.1f}" for i, lo, _ in reversed(rows))
        self.add(f'<polygon points="{upper} {lower}" fill="{color}" fill-opacity="{opacity}" stroke="none"/>')

    def whisker(self, i: float, lo: float, hi: float, color: str, dx: float = 0.0) -> None:
        xx = self.x(i) + dx
        y1, y2 = self.y(lo), self.y(hi)
        cap = 4
        self.add(f'<path d="M{xx:.1f},{y1:.1f}V{y2:.1f}M{xx - cap:.1f},{y1:.1f}h{2 * cap}M{xx - cap:.1f},{y2:.1f}'
                 f'h{2 * cap}" stroke="{color}" stroke-width="1.5" fill="none"/>')

    def point(self, i: float, v: float, color: str, tooltip: str, dx: float = 0.0, shape: str = "circle",
              r: float = 4.0) -> None:
        xx, yy = self.x(i) + dx, self.y(v)
        tip = f"<title>{escape(tooltip)}</title>"
        if shape == "square":
            self.add(f'<rect x="{xx - r:.1f}" y="{yy - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}" '
                     f'fill="{color}">{tip}</rect>')
        elif shape == "ring":
            self.add(f'<circle cx="{xx:.1f}" cy="{yy:.1f}" r="{r:.1f}" fill="#fff" stroke="{color}" '
                     f'stroke-width="2">{tip}</circle>')
        else:
            self.add(f'<circle cx="{xx:.1f}" cy="{yy:.1f}" r="{r:.1f}" fill="{color}">{tip}</circle>')

    def svg(self, label: str) -> str:
        return (f'<svg viewBox="0 0 {self.width} {self.height}" width="{self.width}" height="{self.height}" '
                f'role="img" aria-label="{escape(label)}">' + "".join(self.parts) + "</svg>")
