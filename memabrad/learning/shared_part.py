"""The contextual part every route of a router shares, learned from every trajectory.

A route's contextual part is fitted on the trajectories where that route was taken. Under a
skewed logging policy most routes get a few percent of the traffic, too little to learn, say,
which tasks of a family are hard, although the one well-explored route learns it quickly and
it is much the same for every route (a hard task is hard for every model). So each route's
contextual prediction is ``shared(x) + own(x)``: both linear in the task's features, fitted
jointly on the same residual, the shared weights by every trajectory, a route's own weights by
its trajectories only (multi-task learning as in Evgeniou & Pontil 2004; Vowpal Wabbit's
``cb_adf`` learns shared features next to per-action ones the same way). A rarely taken route
starts from what all routes have in common and learns how it differs; the route's stacking
weight of the contextual part still judges the sum prequentially, so where sharing does not
help it is weighed down with the rest.

Same table layout and AdaGrad step as a route's own part (``route_parts.py``), exported as
plain data sorted by feature id.

>>> sp = SharedPart()
>>> idx, rows = sp.rows({5: 1.0, 9: 0.5})
>>> rows[:, :3] += 0.25
>>> sp.store(idx, rows)
>>> sp.part({5: 2.0, 7: 1.0})
[0.5, 0.5, 0.5]
>>> SharedPart.from_state(sp.to_state()).part({5: 2.0}) == sp.part({5: 2.0})
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from memabrad.learning.features import Features
from memabrad.learning.route_parts import add_columns, known_rows, table_from_state, table_state


class SharedPart:
    """Rows: features; columns: the three heads' shared weights, then their AdaGrad sums of squares."""

    __slots__ = ("_a", "_col")

    def __init__(self) -> None:
        self._col: dict[int, int] = {}
        self._a = np.zeros((16, 6))

    def __len__(self) -> int:
        return len(self._col)

    def rows(self, x: Features, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The row numbers of ``x``'s features (new ones added) and a copy of those rows (into ``out`` if
        given), to update and ``store``."""
        idx, self._a = add_columns(self._col, self._a, x)
        return idx, self._a.take(idx, axis=0, out=out)

    def store(self, idx: np.ndarray, rows: np.ndarray) -> None:
        self._a[idx] = rows

    def part(self, x: Features) -> list[float]:
        """Per head, the weighted sum of ``x``'s known features."""
        idx, vals = known_rows(self._col, x)
        return (vals @ self._a[idx, :3]).tolist()

    def head_table(self) -> tuple[list[int], np.ndarray]:
        """Known features and their (reward, error, latency) weights, a row per feature."""
        rows = np.fromiter(self._col.values(), dtype=np.int64, count=len(self._col))
        return list(self._col), self._a[rows, :3]

    def to_state(self) -> dict[str, Any]:
        return table_state(self._col, self._a)

    @classmethod
    def from_state(cls, s: Mapping[str, Any]) -> SharedPart:
        sp = cls()
        sp._col, sp._a = table_from_state(s)
        return sp

    def copy(self) -> SharedPart:
        twin = SharedPart()
        twin._col = dict(self._col)
        twin._a = self._a.copy()
        return twin
