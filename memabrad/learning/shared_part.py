"""The contextual part every route of a router shares, learned from every trajectory.

A route's contextual part is fitted on the trajectories where that route was taken. Under a
skewed logging policy most routes get a few percent of the traffic, too little to learn, say,
which tasks of a family are hard, although the one well-explored route learns it quickly and
it is often much the same for every route (a hard task is hard for every model). So each route's
contextual prediction is ``own(x) + beta * shared(x)``, both parts linear in the task's features
(multi-task learning as in Evgeniou & Pontil 2004; Vowpal Wabbit's ``cb_adf`` learns shared
features next to per-action ones):

- the shared weights are fitted by every trajectory, on their own, to what its route's means
  leave: a pooled model of how a task's outcome differs from its route's usual;
- ``beta`` (per route and head, ``SharedWeight``) is how far the route's outcomes follow the
  shared part: one coefficient fitted on all of the route's events, so a rarely taken route
  learns it from a few dozen. It starts at 0 and is earned. Where the premise fails (a general
  model and tools, each tool right exactly where the model is weak) a tool's outcomes do not
  follow the shared part, its beta stays near 0, and its own weights need not unlearn the
  shared part feature by feature from its few events;
- the route's own weights step on the residual of the whole prediction.

The route's stacking weight of the contextual part still judges the sum prequentially.

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
from memabrad.learning.route_parts import (
    Triple,
    add_columns,
    apart_from_hint,
    known_rows,
    residuals,
    table_from_state,
    table_state,
)

BETA_START = 0.0  # a route starts without the shared part and earns it
BETA_PRIOR = 1.0  # the weight's prior precision: one event whose shared part is one outcome spread, at beta 1


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

    def beside(self, own: np.ndarray, rows: np.ndarray, vals: np.ndarray, f: list[float], targets: Triple,
               logit_base: float, weight: float, hint: int | None) -> np.ndarray:
        """The residuals to step a route's own rows and this part's ``rows`` (``rows``' output) on together: the
        route's ``own``, and this part's alone (its prediction ``f`` of the task ``vals``) against the route's
        ``targets`` (what the route's means leave), a hinted task's other features apart from the hint as the
        route's own are. Stacked (tables, 1 or features, 3) for ``route_parts.step_with_fit``."""
        resid = residuals(f, targets, logit_base, weight)
        if hint is None:
            return np.stack((own, resid))[:, None, :]
        return np.stack((own, apart_from_hint(resid, hint, vals, rows, f, targets, logit_base, weight)))

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


class SharedWeight:
    """A route's weights ``beta`` (per head, in [0, 1]) on the router's shared part: how far the route's outcomes
    follow it. Per head, the least-squares coefficient of what the route's means leave (its ``targets``) on
    the shared part, shrunk toward its start by ``BETA_PRIOR``, updated by a projected Newton step per event:
    the precision is ``BETA_PRIOR + the events' curvatures`` (recursive least squares of one coefficient).

    Fitted to the targets, not to what the route's own part leaves: the route that most of the traffic takes
    teaches the shared part and its own part the same thing, and on what its own part leaves the shared part
    looks useless (tried: that route's beta fell to 0 within a few thousand events).

    Residuals and the shared part are measured in the outcomes' spreads (``outcome_scale.py``; the error head's
    on its logit scale), so ``BETA_PRIOR`` means the same in any units.

    >>> follows, opposes = SharedWeight(), SharedWeight()
    >>> for _ in range(50):  # reward targets that follow the shared part, and ones that are its opposite
    ...     follows.learn([0.5, 0.0, 0.0], (0.5, 0.0, 0.0), 0.0, 1.0, None)
    ...     opposes.learn([0.5, 0.0, 0.0], (-0.5, 0.0, 0.0), 0.0, 1.0, None)
    >>> round(follows.beta[0], 2), opposes.beta[0]
    (0.93, 0.0)
    """

    __slots__ = ("beta", "precision")

    def __init__(self, beta: list[float] | None = None, precision: list[float] | None = None) -> None:
        self.beta = [BETA_START] * 3 if beta is None else beta
        self.precision = [BETA_PRIOR] * 3 if precision is None else precision

    def learn(self, shared: list[float], targets: Triple, logit_base: float, weight: float,
              steps: np.ndarray | None) -> None:
        """One step per head on an event of the route: ``shared``, the task's shared part; ``targets``, ``logit_base``
        and ``weight`` as the route's own part learns them (``residuals``). The curvature of each head's loss in the
        prediction: the reward's weight, p(1-p) for the error head's log loss, 1."""
        beta, precision = self.beta, self.precision
        resid = residuals([b * v for b, v in zip(beta, shared, strict=True)], targets, logit_base, weight).tolist()
        p = resid[1] + targets[1]
        curvature = (weight, p * (1.0 - p), 1.0)
        spreads = (1.0, 1.0, 1.0) if steps is None else (float(steps[0]), 1.0, float(steps[2]))
        for h in range(3):
            s = spreads[h]
            if not s > 0.0:
                continue
            v = shared[h] / s
            precision[h] += curvature[h] * v * v
            beta[h] = min(1.0, max(0.0, beta[h] - resid[h] / s * v / precision[h]))

    def weigh(self, shared: SharedPart, x: Features) -> np.ndarray:
        """Per head, the ``shared`` part of the task ``x`` as this route takes it."""
        return np.array(self.beta) * shared.part(x)

    def to_state(self) -> list[float]:
        return [*self.beta, *self.precision]

    @classmethod
    def from_state(cls, s: list[float] | None) -> SharedWeight:
        """From ``to_state``; None (a model saved before routes weighed the shared part): weight 1, no evidence."""
        if s is None:
            return cls([1.0] * 3)
        return cls([float(v) for v in s[:3]], [float(v) for v in s[3:]])

    def copy(self) -> SharedWeight:
        return SharedWeight(list(self.beta), list(self.precision))
