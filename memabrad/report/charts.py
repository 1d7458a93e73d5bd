"""The report's charts: reward of baseline and challenger per evaluation, and each gate against its threshold.

Both share one x axis (a band per evaluation, promotions and rollbacks marked), so a reader
can line a gate's failure up with the reward it guarded. The value formatting lives here too:
the page's tables print numbers and times exactly as the charts' tooltips do.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from memabrad.report.history import Estimate, EvaluationRecord, GateRecord, RouterHistory, VersionEvent
from memabrad.report.svg import COLORS, Plot

__all__ = ["fmt_estimate", "fmt_time", "fmt_value", "gate_chart", "reward_chart"]

_GATE_TITLES = {
    "reward_delta": ("Reward delta (challenger − baseline)", "≥"),
    "error_rate_delta": ("Error-rate delta", "≤"),
    "latency_delta_ms": ("Latency delta (ms)", "≤"),
    "task_count": ("Benchmark tasks", "≥"),
}


def fmt_value(v: float | None, digits: int = 3) -> str:
    """A number for a reader: ``digits`` decimals, whole thousands-separated numbers when large.

    >>> fmt_value(0.12345), fmt_value(1234.5), fmt_value(None)
    ('0.123', '1,234', '–')
    """
    if v is None:
        return "–"
    if abs(v) >= 1000 or (v == int(v) and abs(v) >= 10):
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def fmt_time(dt: datetime | None, seconds: bool = True) -> str:
    """A UTC timestamp (the page says all times are UTC), or a dash."""
    if dt is None:
        return "–"
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def fmt_estimate(e: Estimate | None) -> str:
    """``value [low, high]``, or the value alone when the estimator gives no interval.

    >>> fmt_estimate(Estimate(0.5, 0.4, 0.6))
    '0.500 [0.400, 0.600]'
    """
    if e is None:
        return "–"
    if e.ci_low is None or e.ci_high is None:
        return fmt_value(e.value)
    return f"{fmt_value(e.value)} [{fmt_value(e.ci_low)}, {fmt_value(e.ci_high)}]"


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


def _marks(plot: Plot, h: RouterHistory, evals: Sequence[EvaluationRecord]) -> None:
    """Promotions (green) and rollbacks (dark red) as vertical lines."""
    for i, e in enumerate(evals):
        if e.promoted:
            plot.vline(i, COLORS["promoted"], dash="2 3",
                       tooltip=f"promoted {e.version_id or ''} ({fmt_time(e.created_at)})")
    for xpos, r in _rollback_positions(h):
        plot.vline(xpos, COLORS["rollback"], label=f"rollback → {r.to_version or '?'}", dash="6 3",
                   tooltip=f"rollback {r.from_version} → {r.to_version} ({r.trigger or '?'}) {fmt_time(r.at)}"
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
    plot = Plot(_slots(h), lo - pad, hi + pad, bottom=60)
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
            plot.point(i, est.value, color, f"#{evals[i].sequence} {role} reward {fmt_estimate(est)}", dx=dx, r=r)
    _outcome_marks(plot, evals)
    return plot.svg(f"reward of baseline and challenger for router {h.router_id}")


def _outcome_marks(plot: Plot, evals: Sequence[EvaluationRecord]) -> None:
    """A row of symbols under the axis, one per evaluation, shaped and coloured by its outcome."""
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


def gate_chart(h: RouterHistory, name: str) -> str:
    """One gate: value (coloured by pass / fail / inconclusive, with its interval) against the threshold."""
    evals = h.evaluations
    recs: list[tuple[int, GateRecord]] = [(i, g) for i, e in enumerate(evals) if (g := e.gate(name)) is not None]
    values = [v for _, g in recs for v in (g.value, g.threshold, g.ci_low, g.ci_high) if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (hi - lo) * 0.1 or (abs(hi) * 0.1 or 0.05)
    floor = 0.0 if lo >= 0 else lo - pad  # counts never go below zero
    plot = Plot(_slots(h), max(floor, lo - pad), hi + pad, width=560, height=230, left=60, top=26, bottom=34)
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
            tip = g.reason or f"{name} {fmt_value(g.value)} {op} {fmt_value(g.threshold)}: {g.status}"
            plot.point(i, g.value, color, f"#{evals[i].sequence} {tip}", shape="square", r=r)
    return plot.svg(f"gate {name} for router {h.router_id}")
