"""The reward weights of a route's standardised numbers, fitted by recursive least squares.

A number in ``task.features`` reaches a route's contextual part as one standardised term (``z:``,
``number_scales.py``) beside its knots. An embedding, a pixel grid, a row of measurements: these
terms are dense and correlated, and a first-order step (AdaGrad, the rest of the contextual part)
moves along correlated coordinates slowly. Fitted offline by least squares, the same terms route
as well as Vowpal Wabbit does on such data; stepped by AdaGrad, the router stayed far under it
(``docs/benchmarks.md``, "Numbers fitted by least squares").

So the reward head's weights of those terms take the exact recursive-least-squares step: a ridge
fit (a penalty ``RIDGE`` on each weight toward 0) of everything the event's other parts leave, kept
current one event at a time through ``P``, the inverse of the terms' regularised Gram matrix. It
has no step size, and the terms' units do not matter. After the step the event's residual is
``1 / (1 + w z'Pz)`` of what it was, and the rest of the contextual part steps on that remainder.
The error head (log loss) and the latency head keep their AdaGrad steps on these terms.

Bounded: at most ``MAX_TERMS`` terms per route (the first met; later ones keep AdaGrad), so ``P``
holds at most 128 x 128 floats and an event costs two products with it.

>>> part = NumberPart()
>>> rng = np.random.default_rng(0)
>>> truth = np.array([0.5, -1.0, 2.0])
>>> w = np.zeros(3)
>>> for _ in range(200):
...     z = rng.normal(size=3)
...     gain, _ = part.step([11, 12, 13], z, 1.0)
...     w -= gain * (float(z @ w) - float(z @ truth))  # the residual times the gain, as RouteModel.learn does
>>> np.round(w, 1).tolist()  # the ridge fit of 200 noiseless events: a hair toward 0
[0.5, -1.0, 2.0]
>>> NumberPart.from_state(part.to_state()).p.tolist() == part.p.tolist()
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, NamedTuple

import numpy as np

from memabrad.store.packed import pack, unpack

MAX_TERMS = 128  # numbers fitted this way per route: P is MAX_TERMS^2 floats
RIDGE = 1.0  # prior precision of each term: one event carrying only it at the largest value a unit-norm vector allows


class Fit(NamedTuple):
    """One event's least-squares step, for ``route_parts.step_with_fit``."""

    resid: np.ndarray
    """The residuals the rest of the contextual part steps on: the reward's lowered by what the fit moved."""
    at: np.ndarray
    """Where the fitted numbers the task carries are among its features."""
    change: np.ndarray
    """Their reward weights' change."""
    lacked: tuple[np.ndarray, np.ndarray] | None
    """The fitted numbers the task lacks (a mask over ``NumberPart.keys``' order) and their weights' change."""


class NumberPart:
    """``keys``: the fitted terms' feature ids in the order first met; ``p``: the inverse regularised Gram
    matrix over them."""

    __slots__ = ("keys", "p")

    def __init__(self) -> None:
        self.keys: dict[int, int] = {}
        self.p = np.zeros((0, 0))

    def __len__(self) -> int:
        return len(self.keys)

    def step(self, keys: Sequence[int], values: np.ndarray, weight: float) -> tuple[np.ndarray, float]:
        """Take in one event's terms (``keys``, ``values``; importance ``weight``). Returns the gain, one
        entry per fitted term in ``self.keys``' order, and ``w z'Pz``: the weights move by ``-gain * r``
        for the event's (weighted) residual ``r``, which then shrinks by ``1 / (1 + w z'Pz)``. Terms past
        ``MAX_TERMS`` are left out (not in ``self.keys``)."""
        pos = self.keys
        new = [k for k in keys if k not in pos][: MAX_TERMS - len(pos)]
        if new:
            d0 = len(pos)
            pos.update(zip(new, range(d0, d0 + len(new)), strict=True))
            grown = np.zeros((len(pos), len(pos)))
            grown[:d0, :d0] = self.p
            grown[d0:, d0:] = np.eye(len(new)) / RIDGE
            self.p = grown
        if len(keys) == len(pos) and list(pos) == list(keys):  # the common case: the same numbers every time
            z = values
        else:
            z = np.zeros(len(pos))
            for k, v in zip(keys, values.tolist(), strict=True):
                j = pos.get(k)
                if j is not None:
                    z[j] = v
        pz = self.p @ z
        s = weight * float(z @ pz)
        gain = pz / (1.0 + s)
        self.p -= np.multiply.outer(weight * gain, pz)  # np.outer's products, without its Python wrapper
        return gain, s

    def fit(self, keys: Sequence[int], vals: np.ndarray, resid: np.ndarray, weight: float,
            numbers: AbstractSet[int]) -> Fit | None:
        """``RouteModel.learn``'s step on one event, features ``keys`` with values ``vals``, per-head residuals
        ``resid`` (shape (3,), or a row per feature for a hinted event); ``numbers``: which features are
        standardised numbers. None where no feature is one."""
        at_x = {k: i for i, k in enumerate(keys) if k in numbers}
        if not at_x:
            return None
        gain, s = self.step(list(at_x), vals[list(at_x.values())], weight)
        r = float(resid[0] if resid.ndim == 1 else resid[next(iter(at_x.values())), 0])  # hinted: without the hint
        left = resid.copy()
        left[..., 0] -= r * s / (1.0 + s)  # the prediction moved by the fit: that residual falls to r / (1 + s)
        change = gain * r
        at = [at_x.get(k, -1) for k in self.keys]
        if -1 not in at:
            return Fit(left, np.array(at), change, None)
        at_all = np.array(at)
        lacked = at_all < 0
        return Fit(left, at_all[~lacked], change[~lacked], (lacked, change[lacked]))

    def to_state(self) -> dict[str, Any]:
        return {"keys": pack(np.fromiter(self.keys, dtype=np.int64, count=len(self.keys)), "<i8"),
                "p": pack(self.p, "<f8")}

    @classmethod
    def from_state(cls, s: Mapping[str, Any]) -> NumberPart:
        part = cls()
        keys = unpack(s["keys"], "<i8").tolist()
        part.keys = dict(zip(keys, range(len(keys)), strict=True))
        part.p = unpack(s["p"], "<f8").reshape(len(keys), len(keys))
        return part

    def copy(self) -> NumberPart:
        twin = NumberPart()
        twin.keys = dict(self.keys)
        twin.p = self.p.copy()
        return twin
