"""The benchmark window as arrays, carried from one look to the next.

A look compares challenger and baseline on the hold-out window (up to ``window_size``
items). Turning those items into arrays — a sparse feature matrix, outcome columns, the
candidate mask — cost more than scoring them, and the daemon repeated it for every item at
every look although an item never changes once it is held out: between two looks only the
items that arrived were new and the oldest had left. ``WindowArrays`` keeps the last look's
arrays and converts only the new items; the baseline's choices are kept the same way, per
baseline version (a saved version never changes). The arrays are exactly those a fresh
conversion gives (``tests/test_window_arrays.py``), so the estimates are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import vstack

from memabrad.evaluation.benchmark import LoggedItem
from memabrad.learning.batch import best_columns, feature_matrix, predict_all
from memabrad.learning.router import Router


@dataclass(frozen=True)
class LoggedBatch:
    """Logged items as arrays, shared by every policy evaluated on them."""

    X: Any  # (n, dim) CSR feature matrix
    routes: list[str]  # sorted: column order (``best_columns`` breaks ties as ``Router.best`` does)
    allowed: np.ndarray  # (n, routes): candidate mask
    logged: np.ndarray  # (n,): column of the logged route
    y: dict[str, np.ndarray]
    p: np.ndarray
    imputed: np.ndarray  # (n,) bool: propensity imputed
    groups: list[str | None]  # what the route models group each item by (``LoggedItem.group``)
    types: list[str | None]  # each item's task type (the report's slices)

    def __len__(self) -> int:
        return len(self.p)

    @classmethod
    def of(cls, items: Sequence[LoggedItem], dim: int, routes: list[str] | None = None) -> LoggedBatch:
        """``routes``: the columns to use (every route of ``items`` must be among them); default: theirs."""
        n = len(items)
        if routes is None:
            routes = routes_of(items)
        col = {r: j for j, r in enumerate(routes)}
        allowed = np.zeros((n, len(routes)), dtype=bool)
        for k, i in enumerate(items):
            allowed[k, [col[r] for r in i.candidates]] = True
        return cls(
            X=feature_matrix([i.x for i in items], dim),
            routes=routes,
            allowed=allowed,
            logged=np.fromiter((col[i.route] for i in items), dtype=np.int64, count=n),
            y={
                "reward": np.fromiter((i.reward for i in items), float, n),
                "error_rate": np.fromiter((1.0 if i.error else 0.0 for i in items), float, n),
                "latency_ms": np.fromiter((i.latency_ms for i in items), float, n),
            },
            p=np.fromiter((i.propensity for i in items), float, n),
            imputed=np.fromiter((i.imputed for i in items), bool, n),
            groups=[i.group for i in items],
            types=[i.task_type for i in items],
        )

    def tail(self, start: int) -> LoggedBatch:
        """Rows ``start:`` (the items still in the window)."""
        return LoggedBatch(self.X[start:], self.routes, self.allowed[start:], self.logged[start:],
                           {m: v[start:] for m, v in self.y.items()}, self.p[start:], self.imputed[start:],
                           self.groups[start:], self.types[start:])

    def append(self, other: LoggedBatch) -> LoggedBatch:
        """These rows, then ``other``'s (same columns)."""
        return LoggedBatch(vstack([self.X, other.X], format="csr"), self.routes,
                           np.concatenate([self.allowed, other.allowed]), np.concatenate([self.logged, other.logged]),
                           {m: np.concatenate([v, other.y[m]]) for m, v in self.y.items()},
                           np.concatenate([self.p, other.p]), np.concatenate([self.imputed, other.imputed]),
                           self.groups + other.groups, self.types + other.types)

    def choose(self, router: Router) -> np.ndarray:
        """Column of each item's route under ``router`` (its greedy choice among the candidates)."""
        return best_columns(predict_all(router, self.X, self.routes, self.groups)["score"], self.allowed)


def routes_of(items: Sequence[LoggedItem]) -> list[str]:
    return sorted({r for i in items for r in i.candidates} | {i.route for i in items})


def _overlap(old: Sequence[LoggedItem], new: Sequence[LoggedItem]) -> int | None:
    """Where ``new`` starts in ``old`` when ``new`` is ``old`` minus a prefix plus a suffix (by identity), else None."""
    if not old or not new:
        return None
    first = new[0]
    start = next((k for k, item in enumerate(old) if item is first), None)
    if start is None or len(old) - start > len(new):
        return None
    if all(a is b for a, b in zip(old[start:], new, strict=False)):
        return start
    return None


@dataclass(frozen=True)
class _Kept:
    items: tuple[LoggedItem, ...]
    dim: int
    batch: LoggedBatch
    baseline_id: str | None = None
    baseline_cols: np.ndarray | None = None


class WindowArrays:
    """The last look's window as arrays; one per router, owned by whoever runs its evaluations.

    Thread-safe by construction: each look reads the kept state once and replaces it whole, so an
    abandoned evaluation still running beside the next one costs a conversion, never a wrong row."""

    def __init__(self) -> None:
        self._kept: _Kept | None = None

    def batch(self, items: Sequence[LoggedItem], dim: int) -> LoggedBatch:
        """The arrays of ``items`` (a window snapshot), converting only items the last look did not have."""
        kept = self._kept
        start = _overlap(kept.items, items) if kept is not None and kept.dim == dim else None
        if kept is not None and start is not None:
            new = items[len(kept.items) - start:]
            routes = routes_of(new)
            if set(routes) <= set(kept.batch.routes):
                batch = kept.batch.tail(start)
                if new:
                    batch = batch.append(LoggedBatch.of(new, dim, kept.batch.routes))
                cols = kept.baseline_cols[start:] if kept.baseline_cols is not None else None
                self._kept = _Kept(tuple(items), dim, batch, kept.baseline_id, cols)
                return batch
        batch = LoggedBatch.of(items, dim)
        self._kept = _Kept(tuple(items), dim, batch)
        return batch

    def baseline_choices(self, batch: LoggedBatch, baseline: Router) -> np.ndarray:
        """``batch.choose(baseline)``, reusing the kept rows' choices when ``baseline`` is the same saved version."""
        kept = self._kept
        vid = baseline.version_id
        if (vid is not None and kept is not None and kept.batch is batch and kept.baseline_id == vid
                and kept.baseline_cols is not None):
            done = len(kept.baseline_cols)
            if done == len(batch):
                return kept.baseline_cols
            cols = np.concatenate([kept.baseline_cols, batch.tail(done).choose(baseline)])
        else:
            cols = batch.choose(baseline)
        if kept is not None and kept.batch is batch and vid is not None:
            self._kept = _Kept(kept.items, kept.dim, batch, vid, cols)
        return cols
