"""A frozen router's choices, precomputed for speed: the baseline's side of the progressive evidence.

Every trajectory asks the active version which route it would have taken. ``Router.best``
looks each feature up in every route's own table (a dict lookup per feature per route);
for a router that no longer learns, the tables can be merged once into one sorted key
array and one dense (features x routes) reward-weight matrix, so a choice is one
``searchsorted``, one gather and one small matrix product, and the per-group constants
(group offset, pessimism term) are computed once per group.

Scores equal ``Router.scores`` up to floating-point summation order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from memabrad.learning.features import Features

if TYPE_CHECKING:
    from memabrad.learning.router import Router


class FrozenScorer:
    """``best`` of a router that will not learn again.

    >>> from memabrad.learning.router import Router
    >>> r = Router()
    >>> x = r.featurizer.featurize({"input": "latest gold price", "task_type": "qa"})
    >>> for i in range(30):
    ...     r.learn(x, "tool.web_search", propensity=0.5, reward=0.9, error=False, latency_ms=900, group="qa")
    ...     r.learn(x, "direct", propensity=0.5, reward=0.2, error=False, latency_ms=300, group="qa")
    >>> FrozenScorer(r).best(x, ["direct", "tool.web_search"], "qa") == r.best(x, ["direct", "tool.web_search"], "qa")
    True
    """

    def __init__(self, router: Router) -> None:
        trained = [(name, m) for name, m in sorted(router.routes.items()) if m.n]
        self.version_id = router.version_id
        self._router = router
        self._col = {name: j for j, (name, _) in enumerate(trained)}
        self._models = [m for _, m in trained]
        tables = [m.reward_table() for _, m in trained]
        self._keys = np.unique(np.fromiter((k for keys, _ in tables for k in keys), dtype=np.int64))
        w = np.zeros((len(self._keys), len(trained)))
        for j, (keys, weights) in enumerate(tables):
            w[np.searchsorted(self._keys, np.array(keys, dtype=np.int64)), j] = weights
        self._w = w
        self._lam_f = np.array([m.lambdas()[0][1] for _, m in trained])
        self._untrained = router.untrained_score()
        self._per_group: dict[str | None, np.ndarray] = {}

    def _constants(self, group: str | None) -> np.ndarray:
        """Per trained route: mean + lambda_g * group offset - pessimism * standard error."""
        c = self._per_group.get(group)
        if c is None:
            c = np.array([m.reward_constant(self._router.pessimism, group) for m in self._models])
            if len(self._per_group) < 4096:
                self._per_group[group] = c
        return c

    def scores(self, x: Features, candidates: Sequence[str], group: str | None = None) -> dict[str, float]:
        keys = np.fromiter(x.keys(), dtype=np.int64, count=len(x))
        vals = np.fromiter(x.values(), dtype=np.float64, count=len(x))
        n = len(self._keys)
        if n:
            pos = np.minimum(np.searchsorted(self._keys, keys), n - 1)
            hit = self._keys[pos] == keys
            f = vals[hit] @ self._w[pos[hit]]
        else:
            f = np.zeros(len(self._models))
        s = self._constants(group) + self._lam_f * f
        col = self._col
        return {r: float(s[col[r]]) if r in col else self._untrained for r in candidates}

    def best(self, x: Features, candidates: Sequence[str], group: str | None = None) -> str:
        """Highest score; ties go to the lexicographically smallest route name (as ``Router.best``)."""
        s = self.scores(x, candidates, group)
        return min(s, key=lambda r: (-s[r], r))
