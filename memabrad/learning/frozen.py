"""A frozen router's choices, precomputed for speed: the baseline's side of the progressive evidence.

Every trajectory asks the active version which route it would have taken. A router that no
longer learns can keep its per-route constants (mean, group offset, pessimism term) per
group once computed, and its reward weights in a ``RewardIndex`` copied from the router
(or built from its tables), so a choice is one gather, one small matrix product and a
sum per candidate. The contextual parts are the router's own, computed the same way, so the
choices equal ``Router.best`` on the same model exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from memabrad.learning.features import Features
from memabrad.learning.pick import best_route
from memabrad.learning.route_model import guardrail_penalty

if TYPE_CHECKING:
    from memabrad.learning.router import Router


class FrozenScorer:
    """``best`` of a router that will not learn again.

    >>> from memabrad.learning.router import Router
    >>> r = Router()
    >>> x = r.featurizer.featurize({"input": "latest gold price", "task_type": "qa"})
    >>> for i in range(30):
    ...     r.learn(x, "tool.web_search", propensity=0.5, reward=0.9, error=False, latency_ms=900, group="qa")
    ...     r.learn(x, "direct", propensity=0.5, reward=0.2, error=False, latency_ms=200, group="qa")
    >>> FrozenScorer(r).best(x, ["direct", "tool.web_search"], "qa") == r.best(x, ["direct", "tool.web_search"], "qa")
    True
    """

    def __init__(self, router: Router) -> None:
        self.version_id = router.version_id
        self._router = router
        self._index = router.reward_index().copy()
        self._col = self._index.col
        self._models = [router.routes[name] for name in self._index.routes]
        self._lam_f = [m.lambdas()[0][1] for m in self._models]
        self._untrained = router.untrained_score()
        self._per_group: dict[str | None, list[float]] = {}
        self._prices = router.prices.copy()

    def _constants(self, group: str | None) -> list[float]:
        """Per trained route: mean + lambda_g * group offset - pessimism * standard error."""
        c = self._per_group.get(group)
        if c is None:
            c = [m.reward_constant(self._router.pessimism, group) for m in self._models]
            if len(self._per_group) < 4096:
                self._per_group[group] = c
        return c

    def scores(self, x: Features, candidates: Sequence[str], group: str | None = None) -> dict[str, float]:
        """Each candidate's score, ``constant + lambda_f * contextual part``, in plain floats (the same two
        roundings numpy's element-wise multiply and add make, on the few candidates only)."""
        c, lam, f = self._constants(group), self._lam_f, self._index.contextual(x)
        col, untrained, prices, k = self._col, self._untrained, self._prices, len(self._models)
        priced = prices.active
        out: dict[str, float] = {}
        for r in candidates:
            j = col.get(r)
            if j is None:
                out[r] = untrained
                continue
            score = c[j] + lam[j] * f[j]
            if priced:  # as ``Router.scores``: the same penalty of the same predictions, subtracted after
                score -= guardrail_penalty(self._models[j], f[k + j], f[2 * k + j], group, prices.latency_per_s,
                                           prices.error)
            out[r] = score
        return out

    def best(self, x: Features, candidates: Sequence[str], group: str | None = None) -> str:
        """Highest score; ties go to the lexicographically smallest route name (as ``Router.best``)."""
        return best_route(self.scores(x, candidates, group))
