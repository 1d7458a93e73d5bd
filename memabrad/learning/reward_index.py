"""The contextual weights of all of a router's trained routes in one table.

Ranking the candidates of a task reads the same features from every route, and the doubly
robust score then predicts the outcome of two of them. With one table per route that is a
dictionary lookup per feature *per route*; here it is one lookup per feature and one
matrix-vector product for all routes and heads: one row per feature any route has learned;
columns: the reward weights of every trained route in sorted name order, then their error
weights, then their latency weights (a route that never saw a feature weighs 0 on it); last,
the router's shared part (``shared_part.py``), which every route's contextual part adds, weighed
by the route's ``beta`` of each head (kept beside the table, one per route and head).

The live router keeps its index current as it learns (``set`` after each update);
``FrozenScorer`` holds a copy. Both compute a task's contextual parts by the same product
over the same gathered rows, so a frozen copy makes exactly the choices the router made
at the moment it was copied, bit for bit; an index rebuilt from exported tables (after a
restore) gathers the same rows and computes the same numbers.

>>> import numpy as np
>>> ix = RewardIndex()
>>> ix.set("b", {1: 1.0, 2: 0.5}, np.array([[0.2, 0.0, 0.0], [0.4, 0.0, 1.0]]))
>>> ix.set("a", {2: 1.0}, np.array([[1.0, 0.5, 0.0]]))
>>> ix.routes, ix.contextual({1: 1.0, 2: 2.0, 9: 5.0})
(['a', 'b'], [2.0, 1.0, 1.0, 0.0, 0.0, 2.0])
>>> ix.set("a", {1: 1.0}, np.array([[0.0, 0.0, 0.0]]), shared=np.array([[0.5, 0.0, 0.0]]))
>>> ix.contextual({1: 1.0, 2: 2.0})  # the shared 0.5 on feature 1 added to both routes' reward
[2.5, 1.5, 1.0, 0.0, 0.0, 2.0]
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from scipy.sparse import csr_matrix

from memabrad.learning.features import Features
from memabrad.learning.route_parts import add_columns, known_rows

if TYPE_CHECKING:
    from memabrad.learning.route_model import RouteModel
    from memabrad.learning.shared_part import SharedPart

_MIN_ROWS = 64


class RewardIndex:
    """Rows: features; columns: the reward, error and latency weights of the trained routes (sorted by
    name): route ``j``'s heads are columns ``j``, ``K + j`` and ``2K + j`` of ``K`` routes; the shared
    part's three heads are the last three columns."""

    __slots__ = ("_beta", "_last", "_rows", "_w", "routes", "col")

    def __init__(self, routes: list[str] | None = None) -> None:
        self.routes: list[str] = sorted(routes or [])
        self.col: dict[str, int] = {r: j for j, r in enumerate(self.routes)}
        self._rows: dict[int, int] = {}
        self._w = np.zeros((_MIN_ROWS, 3 * len(self.routes) + 3))
        self._beta = [1.0] * (3 * len(self.routes))  # per column of a route's head, its weight on the shared part
        self._last: tuple[Features, np.ndarray] | None = None  # the features last ranked and their rows

    @classmethod
    def of(cls, models: Mapping[str, RouteModel], shared: SharedPart | None = None) -> RewardIndex:
        """The index of a router's routes (those that have learned something) and its shared part."""
        trained = sorted(name for name, m in models.items() if m.n)
        ix = cls(trained)
        tables = [models[name].head_table() for name in trained]
        k = len(trained)
        cols = [[j, k + j, 2 * k + j] for j in range(k)]
        if shared is not None:
            tables.append(shared.head_table())
            cols.append([3 * k, 3 * k + 1, 3 * k + 2])
            ix._beta = [models[name].shared_weight.beta[h] for h in range(3) for name in trained]
        keys = np.unique(np.fromiter((key for ks, _ in tables for key in ks), dtype=np.int64))
        ix._rows = dict(zip(keys.tolist(), range(len(keys)), strict=True))
        w = np.zeros((max(_MIN_ROWS, len(keys)), 3 * k + 3))
        for (ks, weights), c in zip(tables, cols, strict=True):
            w[np.searchsorted(keys, np.array(ks, dtype=np.int64))[:, None], c] = weights
        ix._w = w
        return ix

    def __len__(self) -> int:
        return len(self._rows)

    def _column(self, route: str) -> int:
        j = self.col.get(route)
        if j is None:
            j = bisect.bisect(self.routes, route)
            k = len(self.routes)
            self.routes.insert(j, route)
            self._w = np.insert(self._w, [j, k + j, 2 * k + j], 0.0, axis=1)
            for c in (2 * k + j, k + j, j):
                self._beta.insert(c, 1.0)
            self.col = {r: i for i, r in enumerate(self.routes)}
        return j

    def set(self, route: str, x: Features, weights: np.ndarray, shared: np.ndarray | None = None,
            beta: list[float] | None = None) -> None:
        """Route ``route``'s (reward, error, latency) weights on ``x``'s features, one row per feature in
        ``x``'s order (after it learned ``x``); ``shared``: the shared part's, likewise; ``beta``: the
        route's weights on the shared part."""
        j = self._column(route)
        k = len(self.routes)
        last = self._last
        if last is not None and last[0] is x:  # ranked just before it was learned: rows known already
            idx = last[1]
        else:
            idx, self._w = add_columns(self._rows, self._w, x)
        self._last = None
        # columns j, K + j, 2K + j: a strided view, so a 1-D row assignment (a 2-D fancy one is twice as slow)
        self._w[:, j : 3 * k : k][idx] = weights
        if shared is not None:
            self._w[:, 3 * k :][idx] = shared
        if beta is not None:
            self._beta[j], self._beta[k + j], self._beta[2 * k + j] = beta

    def contextual(self, x: Features) -> list[float]:
        """Per head and route (the column order), the weighted sum of ``x``'s known features, the shared
        part's included. A list: its few numbers are read one by one, and adding the shared part in
        Python costs less than the numpy reshapes it replaces (the same additions, the same floats).

        When all of them are known, their rows are kept with ``x`` for a ``set`` on the same features
        (rows are only ever added, so they stay valid until then)."""
        idx, vals = known_rows(self._rows, x)  # a feature no route has learned weighs 0: left out
        self._last = (x, idx) if len(idx) == len(x) else None
        p = (vals @ self._w.take(idx, axis=0)).tolist()
        k = len(self.routes)
        sr, se, sl = p[3 * k :]
        b = self._beta
        return ([v + c * sr for v, c in zip(p[:k], b[:k], strict=True)]
                + [v + c * se for v, c in zip(p[k : 2 * k], b[k : 2 * k], strict=True)]
                + [v + c * sl for v, c in zip(p[2 * k : 3 * k], b[2 * k :], strict=True)])

    def contextual_rows(self, X: csr_matrix) -> np.ndarray:
        """``contextual`` for every row of the CSR feature matrix ``X`` at once: (n, 3K), the shared part
        added. Only the features some route has learned are kept (a column map as wide as ``X``: a
        gather, several times faster than a binary search per entry), so one sparse product over this
        table's few thousand rows replaces per-route products with weight vectors as wide as the hashed
        feature space."""
        n = X.shape[0]
        k = len(self.routes)
        if not self._rows:
            return np.zeros((n, 3 * k))
        colmap = np.full(X.shape[1], -1, dtype=np.int64)
        colmap[np.fromiter(self._rows, dtype=np.int64, count=len(self._rows))] = np.fromiter(
            self._rows.values(), dtype=np.int64, count=len(self._rows))
        mapped = colmap[X.indices]
        hit = mapped >= 0
        kept = np.concatenate(([0], np.cumsum(hit)))[X.indptr]
        known = csr_matrix((X.data[hit], mapped[hit], kept), shape=(n, len(self._w)))
        p = np.asarray(known @ self._w)
        out = p[:, : 3 * k]
        beta = np.array(self._beta)
        for h in range(3):
            out[:, h * k : (h + 1) * k] += p[:, 3 * k + h : 3 * k + h + 1] * beta[h * k : (h + 1) * k]
        return out

    def copy(self) -> RewardIndex:
        """An independent copy (no shared arrays)."""
        twin = RewardIndex.__new__(RewardIndex)
        twin.routes = list(self.routes)
        twin.col = dict(self.col)
        twin._rows = dict(self._rows)
        twin._w = self._w[: max(_MIN_ROWS, len(self._rows))].copy()
        twin._beta = list(self._beta)
        twin._last = None
        return twin
