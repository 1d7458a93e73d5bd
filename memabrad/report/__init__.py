"""The evaluation-history report: ``memabrad report`` (a self-contained HTML page per store).

:mod:`memabrad.report.history` reads the store (training reports, ``current.json``) into plain data;
:mod:`memabrad.report.html` renders it with inline CSS and SVG charts.
"""

from memabrad.report.history import (
    Estimate,
    EvaluationRecord,
    GateRecord,
    RouterHistory,
    VersionEvent,
    build_histories,
    discover_routers,
    router_history,
)
from memabrad.report.html import render_report

__all__ = [
    "Estimate",
    "EvaluationRecord",
    "GateRecord",
    "RouterHistory",
    "VersionEvent",
    "build_histories",
    "discover_routers",
    "render_report",
    "router_history",
]
