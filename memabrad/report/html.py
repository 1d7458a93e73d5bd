"""Render router histories as one self-contained HTML page: inline CSS, inline SVG charts, no scripts.

Per router: a summary, the reward of baseline and challenger with their intervals at each evaluation
(promotions and rollbacks marked), each gate's value against its threshold with pass / fail, the
decisions table and the version history from ``current.json``. Nothing is loaded from outside the
page (no fonts, scripts or images), so it can be mailed, archived or opened offline.

The charts are drawn by :mod:`memabrad.report.charts` on the primitives of :mod:`memabrad.report.svg`;
``COLORS`` and ``nice_ticks`` are re-exported here, where callers have always found them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape

from memabrad.report.charts import fmt_estimate, fmt_time, gate_chart, reward_chart
from memabrad.report.history import GATE_ORDER, EvaluationRecord, RouterHistory
from memabrad.report.svg import COLORS, nice_ticks

__all__ = ["COLORS", "gate_chart", "nice_ticks", "render_report", "reward_chart"]

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
         f"{escape(fmt_time(last.created_at, seconds=False))} "
         f"{_chip(_OUTCOME_LABELS.get(last.outcome, last.outcome), COLORS.get(last.outcome, COLORS['dry_run']))}"),
    ]
    inner = "".join(f'<div class="card"><div class="k">{escape(k)}</div><div class="v">{v}</div></div>'
                    for k, v in cards)
    return f'<div class="cards">{inner}</div>'


def _evidence(e: EvaluationRecord) -> str:
    """What the intervals are (progressive evidence: alpha and looks), under the task count."""
    note = e.evidence_note
    return f'<div class="vs">{escape(note)}</div>' if note else ""


def _decisions_table(h: RouterHistory) -> str:
    rows = []
    for e in reversed(h.evaluations):
        color = COLORS.get(e.outcome, COLORS["dry_run"])
        items = "".join(f"<li>{escape(r)}</li>" for r in e.reasons)
        reasons = f'<ul class="reasons">{items}</ul>' if items else ""
        promoted = f'<div>→ <span class="mono">{escape(e.version_id)}</span></div>' if e.promoted and e.version_id \
            else ""
        rewards = "".join(f'<div><span class="k">{k}</span> {escape(fmt_estimate(v))}</div>'
                          for k, v in (("baseline", e.baseline), ("challenger", e.challenger), ("Δ", e.reward_delta)))
        rows.append(
            "<tr>"
            f'<td class="num">{escape(str(e.sequence) if e.sequence is not None else "")}</td>'
            f"<td>{escape(fmt_time(e.created_at))}</td>"
            f"<td>{_chip(_OUTCOME_LABELS.get(e.outcome, e.outcome), color)}{promoted}"
            f'<div class="vs">vs <span class="mono">{escape(e.baseline_version_id or "logging policy")}</span></div>'
            "</td>"
            f'<td class="nowrap">{_gate_badges(e)}</td>'
            f'<td class="num rewards">{rewards}</td>'
            f'<td class="num">{escape(str(e.task_count) if e.task_count is not None else "–")}'
            f'{_evidence(e)}</td>'
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
            f"<td>{escape(fmt_time(ev.at))}</td><td>{kind}</td>"
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
