"""Render router histories as one self-contained HTML page: inline CSS, inline SVG charts, no scripts.

Per router: a summary, the reward of baseline and challenger with their intervals at each evaluation
(promotions and rollbacks marked), each gate's value against its threshold with pass / fail, the
decisions table and the version history from ``current.json``. Nothing is loaded from outside the
page (no fonts, scripts or images), so it can be mailed, archived or opened offline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from memabrad.report.history import GATE_ORDER, Estimate, EvaluationRecord, GateRecord, RouterHistory, VersionEvent

__all__ = ["COLORS", "nice_ticks", "render_report"]

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

_GATE_TITLES = {
    "reward_delta": ("Reward delta (challenger − baseline)", "≥"),
    "error_rate_delta": ("Error-rate delta", "≤"),
    "latency_delta_ms": ("Latency delta (ms)", "≤"),
    "task_count": ("Benchmark tasks", "≥"),
}
_OUTCOME_LABELS = {"promoted": "promoted", "rejected": "rejected", "inconclusive": "inconclusive",
                   "dry_run": "dry run"}

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #111827; background: #f9fafb; }
header.page { background: #111827; color: #f9fafb; padding: 18px 32px; }
header.page h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header.page p { margin: 0; color: #d1d5db; }
header.page code { color: #f9fafb; }
nav.routers { padding: 10px 32px; background: #fff; border-bottom: 1px solid #e5e7eb; }
nav.routers a { margin-right: 14px; color: #1d4ed8; text-decoration: none; }
main { padding: 8px 32px 40px; max-width: 1400px; }
section.router { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 18px 22px;
                 margin: 18px 0; }
section.router > h2 { margin: 0 0 12px; font-size: 20px; }
h3 { margin: 22px 0 6px; font-size: 15px; }
p.note { margin: 2px 0 8px; color: #4b5563; font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid #e5e7eb; border-radius: 6px; padding: 8px 12px; min-width: 150px; background: #f9fafb; }
.card .k { color: #6b7280; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.card .v { font-size: 16px; font-weight: 600; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
figure { margin: 0; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: #374151; }
svg text.title { font-size: 13px; font-weight: 600; fill: #111827; }
.gates { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 12px; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 6px 0 0; font-size: 12.5px; color: #374151; }
.legend span.sw { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px;
                  vertical-align: -2px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.chip { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: 12px; font-weight: 600;
        color: #fff; white-space: nowrap; }
.gate { display: inline-block; min-width: 18px; margin-right: 3px; padding: 0 4px; border-radius: 3px;
        font-size: 11.5px; font-weight: 600; color: #fff; text-align: center; }
ul.reasons { margin: 0; padding-left: 16px; color: #4b5563; }
td.nowrap { white-space: nowrap; }
td.reasons { min-width: 240px; }
td.rewards .k { color: #6b7280; font-size: 11.5px; margin-right: 4px; }
div.vs { color: #6b7280; font-size: 12px; margin-top: 2px; }
div.scroll { overflow-x: auto; }
td.reasons .mono { color: #6b7280; font-size: 11.5px; }
.empty { color: #6b7280; font-style: italic; }
.skipped { color: #9f1239; }
"""


# -- numbers -----------------------------------------------------------------------------------------


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


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "–"
    if abs(v) >= 1000 or (v == int(v) and abs(v) >= 10):
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def _tick_label(v: float, step: float) -> str:
    """A tick value with as many decimals as the step needs (``0.25`` steps get two)."""
    exponent = math.floor(math.log10(step))
    mantissa = round(step / 10 ** exponent, 6)
    decimals = max(0, min(6, -exponent + (1 if mantissa not in (1, 2, 5, 10) else 0)))
    return f"{v:,.{decimals}f}"


def _when(dt: datetime | None, seconds: bool = True) -> str:
    if dt is None:
        return "–"
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _ci(e: Estimate | None) -> str:
    if e is None:
        return "–"
    if e.ci_low is None or e.ci_high is None:
        return _fmt(e.value)
    return f"{_fmt(e.value)} [{_fmt(e.ci_low)}, {_fmt(e.ci_high)}]"


# -- SVG -----------------------------------------------------------------------------------------------


@dataclass
class _Plot:
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
                     f'{escape(_tick_label(t, step))}</text>')
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


def _x_labels(evals: Sequence[EvaluationRecord]) -> list[str]:
    return [f"#{e.sequence}" if e.sequence is not None else f"{i + 1}" for i, e in enumerate(evals)]


def _rollback_positions(h: RouterHistory) -> list[tuple[float, VersionEvent]]:
    """Each rollback's x: the boundary after the last evaluation made before it."""
    out = []
    for r in h.rollbacks:
        before = sum(1 for e in h.evaluations if r.at is None or (e.created_at is not None and e.created_at <= r.at))
        out.append((before - 0.5, r))
    return out


def _slots(h: RouterHistory) -> float:
    """Bands on the x axis: one per evaluation, plus a little room for a rollback after the last one."""
    n = len(h.evaluations)
    trailing = any(pos >= n - 0.5 for pos, _ in _rollback_positions(h))
    return n + (0.5 if trailing else 0.0)


def _marks(plot: _Plot, h: RouterHistory, evals: Sequence[EvaluationRecord]) -> None:
    """Promotions (green) and rollbacks (dark red) as vertical lines."""
    for i, e in enumerate(evals):
        if e.promoted:
            plot.vline(i, COLORS["promoted"], dash="2 3",
                       tooltip=f"promoted {e.version_id or ''} ({_when(e.created_at)})")
    for xpos, r in _rollback_positions(h):
        plot.vline(xpos, COLORS["rollback"], label=f"rollback → {r.to_version or '?'}", dash="6 3",
                   tooltip=f"rollback {r.from_version} → {r.to_version} ({r.trigger or '?'}) {_when(r.at)}"
                           f"{': ' + r.reason if r.reason else ''}")


def reward_chart(h: RouterHistory) -> str:
    """Baseline and challenger reward with intervals per evaluation, outcomes along the bottom."""
    evals = h.evaluations
    values: list[float] = []
    for e in evals:
        for est in (e.baseline, e.challenger):
            if est is not None:
                values += [v for v in (est.value, est.ci_low, est.ci_high) if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (hi - lo) * 0.08 or 0.05
    plot = _Plot(_slots(h), lo - pad, hi + pad, bottom=60)
    plot.frame(f"Estimated reward at each evaluation ({h.interval_label()})", _x_labels(evals))
    _marks(plot, h, evals)
    off = 0.0 if plot.dense else min(6.0, plot.band / 6)
    r = plot.marker(4.0)
    for role, dx in (("baseline", -off), ("challenger", off)):
        color = COLORS[role]
        ests = [(i, est) for i, e in enumerate(evals) if (est := getattr(e, role)) is not None]
        bounded = [(i, est.ci_low, est.ci_high) for i, est in ests
                   if est.ci_low is not None and est.ci_high is not None]
        if plot.dense:
            plot.ribbon(bounded, color)
        else:
            for i, lo_, hi_ in bounded:
                plot.whisker(i, lo_, hi_, color, dx=dx)
        plot.polyline([(i, est.value) for i, est in ests], color, width=1.5)
        for i, est in ests:
            plot.point(i, est.value, color, f"#{evals[i].sequence} {role} reward {_ci(est)}", dx=dx, r=r)
    base = plot.top + plot.plot_h
    plot.add(f'<text x="{plot.left - 6}" y="{base + 36}" text-anchor="end">decision</text>')
    for i, e in enumerate(evals):
        color = COLORS.get(e.outcome, COLORS["dry_run"])
        xx, yy = plot.x(i), base + 32
        tip = f"<title>{escape(f'#{e.sequence} {e.outcome}: ' + '; '.join(e.reasons))}</title>"
        if plot.dense:  # one coloured tick per evaluation
            w = max(1.0, plot.band * 0.8)
            plot.add(f'<rect x="{xx - w / 2:.1f}" y="{yy - 6:.1f}" width="{w:.1f}" height="12" fill="{color}">'
                     f"{tip}</rect>")
        elif e.outcome == "promoted":
            plot.add(f'<path d="M{xx:.1f},{yy - 6:.1f}l6,11h-12z" fill="{color}">{tip}</path>')
        elif e.outcome == "rejected":
            plot.add(f'<path d="M{xx - 5:.1f},{yy - 5:.1f}l10,10m0,-10l-10,10" stroke="{color}" stroke-width="2.5">'
                     f'{tip}</path>')
        elif e.outcome == "inconclusive":
            plot.add(f'<circle cx="{xx:.1f}" cy="{yy:.1f}" r="5" fill="#fff" stroke="{color}" stroke-width="2">'
                     f'{tip}</circle>')
        else:
            plot.add(f'<path d="M{xx:.1f},{yy - 6:.1f}l6,6l-6,6l-6,-6z" fill="{color}">{tip}</path>')
    return plot.svg(f"reward of baseline and challenger for router {h.router_id}")


def gate_chart(h: RouterHistory, name: str) -> str:
    """One gate: value (coloured by pass / fail / inconclusive, with its interval) against the threshold."""
    evals = h.evaluations
    recs: list[tuple[int, GateRecord]] = [(i, g) for i, e in enumerate(evals) if (g := e.gate(name)) is not None]
    values = [v for _, g in recs for v in (g.value, g.threshold, g.ci_low, g.ci_high) if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (hi - lo) * 0.1 or (abs(hi) * 0.1 or 0.05)
    floor = 0.0 if lo >= 0 else lo - pad  # counts never go below zero
    plot = _Plot(_slots(h), max(floor, lo - pad), hi + pad, width=560, height=230, left=60, top=26, bottom=34)
    title, op = _GATE_TITLES.get(name, (name, "vs"))
    plot.frame(f"{title}: value {op} threshold", _x_labels(evals))
    _marks(plot, h, evals)
    # threshold as a step line (it changes only when the configuration does)
    steps = [(i, g.threshold) for i, g in recs if g.threshold is not None]
    if steps:
        pts: list[tuple[float, float]] = []
        for k, (i, t) in enumerate(steps):
            if k and t != pts[-1][1]:
                pts.append((i - 0.5, pts[-1][1]))
                pts.append((i - 0.5, t))
            elif not k:
                pts.append((i - 0.5, t))
            pts.append((i + 0.5, t))
        plot.polyline(pts, COLORS["threshold"], width=1.5, dash="6 4")
    plot.polyline([(i, g.value) for i, g in recs if g.value is not None], "#9ca3af", width=1)
    if plot.dense:
        plot.ribbon([(i, g.ci_low, g.ci_high) for i, g in recs if g.ci_low is not None and g.ci_high is not None],
                    "#6b7280", opacity=0.15)
    r = plot.marker(4.5)
    for i, g in recs:
        color = COLORS.get(g.status, COLORS["fail"] if not g.passed else COLORS["pass"])
        if g.ci_low is not None and g.ci_high is not None and not plot.dense:
            plot.whisker(i, g.ci_low, g.ci_high, color)
        if g.value is not None:
            tip = g.reason or f"{name} {_fmt(g.value)} {op} {_fmt(g.threshold)}: {g.status}"
            plot.point(i, g.value, color, f"#{evals[i].sequence} {tip}", shape="square", r=r)
    return plot.svg(f"gate {name} for router {h.router_id}")


# -- HTML ------------------------------------------------------------------------------------------------


def _chip(text: str, color: str) -> str:
    return f'<span class="chip" style="background:{color}">{escape(text)}</span>'


def _gate_badges(e: EvaluationRecord) -> str:
    out = []
    for g in e.gates:
        symbol = {"pass": "✓", "fail": "✗", "inconclusive": "?"}.get(g.status, "✓" if g.passed else "✗")
        color = COLORS.get(g.status, COLORS["pass"] if g.passed else COLORS["fail"])
        tip = g.reason or f"{g.name}: {g.status}"
        out.append(f'<span class="gate" style="background:{color}" title="{escape(tip)}">{symbol}</span>')
    return "".join(out)


def _legend(items: Iterable[tuple[str, str]]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><span class="sw" style="background:{c}"></span>{escape(t)}</span>' for t, c in items) + "</div>"


def _summary(h: RouterHistory) -> str:
    counts = h.outcome_counts()
    last = h.evaluations[-1] if h.evaluations else None
    breakdown = ", ".join(f"{counts[k]} {_OUTCOME_LABELS.get(k, k)}" for k in sorted(counts)) or "none"
    cards = [
        ("Active version", f'<span class="mono">{escape(h.active_version or "none (logging policy)")}</span>'),
        ("Evaluations", f"{len(h.evaluations)} <small>({escape(breakdown)})</small>"),
        ("Promotions", str(len(h.promotions))),
        ("Rollbacks", str(len(h.rollbacks))),
        ("Saved versions", str(len(h.versions))),
        ("Last evaluation", "–" if last is None else
         f"{escape(_when(last.created_at, seconds=False))} "
         f"{_chip(_OUTCOME_LABELS.get(last.outcome, last.outcome), COLORS.get(last.outcome, COLORS['dry_run']))}"),
    ]
    inner = "".join(f'<div class="card"><div class="k">{escape(k)}</div><div class="v">{v}</div></div>'
                    for k, v in cards)
    return f'<div class="cards">{inner}</div>'


def _decisions_table(h: RouterHistory) -> str:
    rows = []
    for e in reversed(h.evaluations):
        color = COLORS.get(e.outcome, COLORS["dry_run"])
        items = "".join(f"<li>{escape(r)}</li>" for r in e.reasons)
        reasons = f'<ul class="reasons">{items}</ul>' if items else ""
        promoted = f'<div>→ <span class="mono">{escape(e.version_id)}</span></div>' if e.promoted and e.version_id \
            else ""
        rewards = "".join(f'<div><span class="k">{k}</span> {escape(_ci(v))}</div>'
                          for k, v in (("baseline", e.baseline), ("challenger", e.challenger), ("Δ", e.reward_delta)))
        rows.append(
            "<tr>"
            f'<td class="num">{escape(str(e.sequence) if e.sequence is not None else "")}</td>'
            f"<td>{escape(_when(e.created_at))}</td>"
            f"<td>{_chip(_OUTCOME_LABELS.get(e.outcome, e.outcome), color)}{promoted}"
            f'<div class="vs">vs <span class="mono">{escape(e.baseline_version_id or "logging policy")}</span></div>'
            "</td>"
            f'<td class="nowrap">{_gate_badges(e)}</td>'
            f'<td class="num rewards">{rewards}</td>'
            f'<td class="num">{escape(str(e.task_count) if e.task_count is not None else "–")}</td>'
            f'<td class="reasons">{reasons}<div class="mono">{escape(e.report_id)}</div></td>'
            "</tr>")
    names = ", ".join(g.name for g in h.evaluations[-1].gates) if h.evaluations else ""
    head = ("<tr><th>#</th><th>time (UTC)</th><th>decision (vs baseline)</th>"
            f'<th title="{escape(names)}">gates</th><th>reward [{escape(h.interval_label()[:-1])}]</th><th>tasks</th>'
            "<th>reasons / report</th></tr>")
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'


def _versions_table(h: RouterHistory) -> str:
    if not h.events:
        return '<p class="empty">No version has been activated yet.</p>'
    rows = []
    for ev in reversed(h.events):
        if ev.is_rollback:
            kind = _chip("rollback", COLORS["rollback"])
            how = f"{ev.trigger or '?'}" + (f" by {ev.requested_by}" if ev.requested_by else "")
            why = ev.reason or ""
        else:
            kind = _chip("promotion" if ev.action == "activate" else ev.action, COLORS["promoted"])
            how = ev.source or ""
            why = f"report {ev.report_id}" if ev.report_id else ""
        rows.append(
            "<tr>"
            f"<td>{escape(_when(ev.at))}</td><td>{kind}</td>"
            f'<td class="mono">{escape(ev.from_version or "–")} → {escape(ev.to_version or "–")}</td>'
            f"<td>{escape(how)}</td><td>{escape(why)}</td>"
            "</tr>")
    head = "<tr><th>time (UTC)</th><th>change</th><th>from → to</th><th>by</th><th>why</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _router_section(h: RouterHistory) -> str:
    parts = [f'<section class="router" id="router-{escape(h.router_id)}">',
             f"<h2>Router <span class=\"mono\">{escape(h.router_id)}</span></h2>", _summary(h)]
    if h.skipped:
        parts.append('<p class="skipped">Not shown (unreadable): ' + "; ".join(escape(s) for s in h.skipped) + "</p>")
    if not h.evaluations:
        parts.append('<p class="empty">No evaluations yet.</p>')
    else:
        parts += [
            "<h3>Reward: baseline vs challenger</h3>",
            '<p class="note">Each evaluation estimates the reward of the baseline (the active or pinned version, or '
            "the logging policy before the first promotion) and of the challenger on held-out trajectories. Dotted "
            "green lines mark promotions, dashed red lines rollbacks.</p>",
            f"<figure>{reward_chart(h)}</figure>",
            _legend([("baseline", COLORS["baseline"]), ("challenger", COLORS["challenger"]),
                     ("promoted ▲", COLORS["promoted"]), ("rejected ✗", COLORS["rejected"]),
                     ("inconclusive ○", COLORS["inconclusive"]), ("dry run ◆", COLORS["dry_run"]),
                     ("rollback", COLORS["rollback"])]),
            "<h3>Gates: value against threshold</h3>",
            '<p class="note">Squares are the gate values (point estimates) with their intervals; the dashed line is '
            "the threshold. In statistical mode a gate compares the interval bound, so a point on the right side of "
            "the threshold can still fail or be inconclusive.</p>",
        ]
        names = [n for n in GATE_ORDER if any(e.gate(n) for e in h.evaluations)]
        names += sorted({g.name for e in h.evaluations for g in e.gates} - set(names))
        parts.append('<div class="gates">' + "".join(f"<figure>{gate_chart(h, n)}</figure>" for n in names) + "</div>")
        parts.append(_legend([("pass", COLORS["pass"]), ("fail", COLORS["fail"]),
                              ("inconclusive", COLORS["inconclusive"]), ("threshold", COLORS["threshold"])]))
        parts += ["<h3>Decisions (newest first)</h3>", _decisions_table(h)]
    parts += ["<h3>Version history (current.json)</h3>", _versions_table(h), "</section>"]
    return "".join(parts)


def render_report(histories: Sequence[RouterHistory], *, base_dir: str | None = None,
                  generated_at: datetime | None = None, title: str = "memabrad evaluation history") -> str:
    """The whole page."""
    when = (generated_at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    source = f" from <code>{escape(base_dir)}</code>" if base_dir else ""
    nav = "".join(f'<a href="#router-{escape(h.router_id)}">{escape(h.router_id)}</a>' for h in histories)
    body = "".join(_router_section(h) for h in histories) or '<p class="empty">No routers found.</p>'
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
            f'<header class="page"><h1>{escape(title)}</h1>'
            f"<p>{len(histories)} router{'s' if len(histories) != 1 else ''}{source}; generated {when}. "
            "All times UTC.</p></header>"
            f'<nav class="routers">{nav}</nav><main>{body}</main></body></html>\n')
