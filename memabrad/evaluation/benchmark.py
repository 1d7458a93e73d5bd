"""The benchmark set: the held-out window (``learning.window``) plus a static suite.

The hold-out rule, logged items and window live with the learner that fills them; they
are re-exported here for callers that think of them as benchmark data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memabrad.learning.window import BenchmarkWindow, LoggedItem, holdout_bucket, is_holdout

__all__ = ["BenchmarkWindow", "LoggedItem", "SuiteFormatError", "SuiteItem", "SuiteOutcome", "holdout_bucket",
           "is_holdout", "load_suite"]


@dataclass(frozen=True, slots=True)
class SuiteOutcome:
    reward: float
    error: bool
    latency_ms: float


@dataclass(frozen=True, slots=True)
class SuiteItem:
    """A static benchmark task with an observed outcome for every candidate route."""

    task: dict[str, Any]
    candidates: tuple[str, ...]
    outcomes: dict[str, SuiteOutcome]

    @property
    def task_type(self) -> str | None:
        return self.task.get("task_type")


class SuiteFormatError(ValueError):
    """A suite line that cannot be used; the message names the file and line."""


def load_suite(path: str | Path) -> list[SuiteItem]:
    """Read a JSONL suite: ``{"task": {...}, "candidates": [...], "outcomes": {route: {...}}}``."""
    items: list[SuiteItem] = []
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise SuiteFormatError(f"{p}: cannot read suite: {err}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            task = dict(raw["task"])
            if not isinstance(task.get("input"), str):
                raise ValueError("task.input must be a string")
            cands = tuple(raw.get("candidates") or raw["outcomes"].keys())
            outcomes = {
                r: SuiteOutcome(float(o["reward"]), bool(o["error"]), float(o["latency_ms"]))
                for r, o in raw["outcomes"].items()
            }
            missing = [c for c in cands if c not in outcomes]
            if missing:
                raise ValueError(f"no outcome for candidate(s) {missing}")
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise SuiteFormatError(f"{p}:{n}: bad suite entry: {err}") from None
        items.append(SuiteItem(task, cands, outcomes))
    return items
