"""One route's outcome model: reward, error and latency heads, learned one trajectory at a time.

Every head predicts ``mean + lambda * f(x)``:

- ``mean`` is the route's running mean outcome (the error head's lives on the logit scale
  and is smoothed toward 1/2 by half a pseudo-observation), exact after any number of events;
- ``f(x)`` is a linear model of the hashed task features fitted to the residual ``y - mean``
  by normalised AdaGrad: each coordinate's step is ``eta * g / sqrt(sum of its squared
  gradients)``, divided by the example's L1 norm. AdaGrad makes the step size independent
  of the outcome's scale and shrinks it as a feature's evidence grows; the L1 division makes
  it independent of how many features a task has. ``eta`` is the fraction of the residual
  the first update on a fresh example moves (VW's default 0.5), not a per-workload knob;
- ``lambda`` in [0, 1] shrinks the contextual part toward the mean by how much it has
  actually helped: the least-squares weight of ``f`` against the residual, computed from
  *prequential* sums (each event scored before it is learned). Where the features carry no
  signal (or the model is still noise), lambda stays near 0 and the route predicts its mean.

The reward head also carries a standard error, the prequential residual spread over
sqrt(n), so a router can rank routes by a pessimistic score and not chase a lucky few.

State is numpy arrays over the route's own compact feature columns (a dict maps hashed
feature ids to columns), exported as plain data sorted by feature id, so an exported
model is a deterministic function of the events it learned.

>>> m = RouteModel()
>>> x = {1: 0.6, 2: 0.8}
>>> for _ in range(200):
...     m.learn(x, reward=1.0, error=False, latency_s=0.5)
...     m.learn({3: 1.0}, reward=0.0, error=True, latency_s=1.5)
>>> r, e, lat = m.predict(x)
>>> (round(r, 1), round(e, 1), round(lat, 1))
(1.0, 0.0, 0.5)
>>> RouteModel.from_state(m.to_state()).predict(x) == m.predict(x)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from river import base

from memabrad.learning.features import Features

HEADS = ("reward", "error", "latency")
ETA = 0.5
_TINY = 1e-12
_ERR_PRIOR = 0.5  # pseudo-observations pulling a route's error rate toward 1/2 (Jeffreys)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


class RouteModel(base.Regressor):
    """The three heads of one route and the evidence behind them.

    A river regressor of the reward (``learn_one``/``predict_one``; the error and latency of
    an event are keyword arguments of ``learn_one``), checked by river's estimator checks.

    Parameters
    ----------
    eta
        Normalised AdaGrad step: the share of a residual the first update on a fresh example removes.
    l2
        L2 regularisation of the contextual parts.

    """

    def __init__(self, eta: float = ETA, l2: float = 0.0) -> None:
        self.eta = eta
        self.l2 = l2
        self.n = 0
        self.w_sum = 0.0  # sum of the reward head's sample weights
        self.reward_mean = 0.0
        self.errors = 0.0
        self.latency_mean = 0.0
        # prequential sums per head: sum w*d*(y-mean), sum w*d*d, sum w*(y-pred)^2 (d = f's contribution)
        self.s_dy = [0.0, 0.0, 0.0]
        self.s_dd = [0.0, 0.0, 0.0]
        self.s_res = [0.0, 0.0, 0.0]
        self._col: dict[int, int] = {}
        # one row per known feature: the three heads' weights, then their AdaGrad sums of squares
        self._a = np.zeros((16, 6))

    # -- the means ----------------------------------------------------------------------

    @property
    def error_rate(self) -> float:
        return (self.errors + _ERR_PRIOR) / (self.n + 2 * _ERR_PRIOR)

    def lambdas(self) -> tuple[float, float, float]:
        out = []
        for dy, dd in zip(self.s_dy, self.s_dd, strict=True):
            out.append(min(1.0, max(0.0, dy / dd)) if dd > _TINY else 0.0)
        return out[0], out[1], out[2]

    def reward_se(self) -> float:
        """Standard error of the reward prediction: prequential residual spread over sqrt(n)."""
        if self.w_sum <= 0.0:
            return math.inf
        return math.sqrt(self.s_res[0] / self.w_sum / max(1.0, self.w_sum))

    # -- prediction ---------------------------------------------------------------------

    def _known(self, x: Features) -> tuple[np.ndarray, np.ndarray]:
        """(rows, values) of the features of ``x`` this route has learned; unknown features weigh 0."""
        col = self._col
        cols = [col.get(k) for k in x]
        vals = np.fromiter(x.values(), dtype=np.float64, count=len(cols))
        if None in cols:
            keep = [c is not None for c in cols]
            return np.array([c for c in cols if c is not None], dtype=np.int64), vals[np.array(keep, dtype=bool)]
        return np.array(cols, dtype=np.int64), vals

    def _raw(self, x: Features) -> np.ndarray:
        """The contributions f(x) of the three heads."""
        idx, vals = self._known(x)
        return vals @ self._a[idx, :3]

    def predict(self, x: Features) -> tuple[float, float, float]:
        """(expected reward, error probability, latency in seconds) for features ``x``."""
        return self._blend(self._raw(x))

    def _blend(self, f: np.ndarray) -> tuple[float, float, float]:
        lr, le, ll = self.lambdas()
        fr, fe, fl = f.tolist()
        m_err = self.error_rate
        reward = self.reward_mean + lr * fr
        error = m_err + le * (_sigmoid(_logit(m_err) + fe) - m_err)
        latency = self.latency_mean + ll * fl
        return reward, error, latency

    def reward_score(self, x: Features, pessimism: float) -> float:
        """Expected reward minus ``pessimism`` standard errors."""
        idx, vals = self._known(x)
        lr = self.lambdas()[0]
        return self.reward_mean + lr * float(vals @ self._a[idx, 0]) - pessimism * self.reward_se()

    # -- river's regressor protocol ---------------------------------------------------

    def learn_one(self, x: dict, y: float, *, error: bool = False, latency_s: float = 0.0,  # type: ignore[override]
                  w: float = 1.0) -> None:
        self.learn(x, reward=float(y), error=error, latency_s=latency_s, weight=w)

    def predict_one(self, x: dict) -> float:  # type: ignore[override]
        return self.predict(x)[0]

    @classmethod
    def _unit_test_params(cls) -> Any:
        yield {"eta": 0.5}
        yield {"eta": 0.1, "l2": 0.01}

    # -- learning -----------------------------------------------------------------------

    def _columns(self, x: Features) -> np.ndarray:
        col = self._col
        cols = [col.get(k) for k in x]
        if None in cols:
            for i, k in enumerate(x):
                if cols[i] is None:
                    cols[i] = col[k] = len(col)
            if len(col) > len(self._a):
                grown = np.zeros((max(len(col), 2 * len(self._a)), 6))
                grown[: len(self._a)] = self._a
                self._a = grown
        return np.array(cols, dtype=np.int64)

    def learn(self, x: Features, *, reward: float, error: bool, latency_s: float, weight: float = 1.0) -> None:
        """Score the event first (prequential evidence for lambda and the standard error), then learn it."""
        idx = self._columns(x)
        vals = np.fromiter(x.values(), dtype=np.float64, count=len(idx))
        rows = self._a[idx]
        fr, fe, fl = (vals @ rows[:, :3]).tolist()
        y_err = 1.0 if error else 0.0
        # prequential: what the model would have said before seeing this event
        m_err = self.error_rate
        p_err = _sigmoid(_logit(m_err) + fe)
        d = (fr, p_err - m_err, fl)
        target = (reward - self.reward_mean, y_err - m_err, latency_s - self.latency_mean)
        if self.n:
            lr, le, ll = self.lambdas()
            blended = (self.reward_mean + lr * fr, m_err + le * d[1], self.latency_mean + ll * fl)
        else:
            blended = (self.reward_mean, m_err, self.latency_mean)
        ys = (reward, y_err, latency_s)
        wts = (weight, 1.0, 1.0)
        s_dy, s_dd, s_res = self.s_dy, self.s_dd, self.s_res
        for h in range(3):
            s_dy[h] += wts[h] * d[h] * target[h]
            s_dd[h] += wts[h] * d[h] * d[h]
            r = ys[h] - blended[h]
            s_res[h] += wts[h] * r * r
        # gradients of the residual models (squared loss; log loss on the logit scale for errors)
        grad = vals[:, None] * np.array([(fr - target[0]) * weight, p_err - y_err, fl - target[2]])
        if self.l2:
            grad += self.l2 * rows[:, :3]
        sq = rows[:, 3:]
        sq += grad * grad
        l1 = float(np.abs(vals).sum()) or 1.0
        rows[:, :3] -= (self.eta / l1) * grad / np.sqrt(sq + _TINY)
        self._a[idx] = rows
        # the means, after scoring
        self.n += 1
        self.w_sum += weight
        self.reward_mean += weight * (reward - self.reward_mean) / self.w_sum
        self.errors += y_err
        self.latency_mean += (latency_s - self.latency_mean) / self.n

    # -- dense views (batch prediction) --------------------------------------------------

    def dense_weights(self, dim: int) -> np.ndarray:
        """The heads' weights as a (3, dim) array over the hashed feature space."""
        out = np.zeros((3, dim))
        if self._col:
            keys = np.fromiter(self._col.keys(), dtype=np.int64, count=len(self._col))
            cols = np.fromiter(self._col.values(), dtype=np.int64, count=len(self._col))
            out[:, keys] = self._a[cols, :3].T
        return out

    # -- state --------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        keys = sorted(self._col)
        rows = self._a[[self._col[k] for k in keys]]
        w, g = rows[:, :3].T, rows[:, 3:].T
        return {
            "n": self.n, "w_sum": self.w_sum, "reward_mean": self.reward_mean, "errors": self.errors,
            "latency_mean": self.latency_mean, "s_dy": list(self.s_dy), "s_dd": list(self.s_dd),
            "s_res": list(self.s_res), "keys": keys,
            "weights": {h: w[i].tolist() for i, h in enumerate(HEADS)},
            "adagrad": {h: g[i].tolist() for i, h in enumerate(HEADS)},
        }

    @classmethod
    def from_state(cls, s: Mapping[str, Any], eta: float = ETA, l2: float = 0.0) -> RouteModel:
        m = cls(eta, l2)
        m.n = int(s["n"])
        m.w_sum = float(s["w_sum"])
        m.reward_mean = float(s["reward_mean"])
        m.errors = float(s["errors"])
        m.latency_mean = float(s["latency_mean"])
        m.s_dy = [float(v) for v in s["s_dy"]]
        m.s_dd = [float(v) for v in s["s_dd"]]
        m.s_res = [float(v) for v in s["s_res"]]
        keys = [int(k) for k in s["keys"]]
        m._col = {k: i for i, k in enumerate(keys)}
        m._a = np.zeros((max(16, len(keys)), 6))
        for i, h in enumerate(HEADS):
            m._a[: len(keys), i] = np.asarray(s["weights"][h], dtype=np.float64)
            m._a[: len(keys), 3 + i] = np.asarray(s["adagrad"][h], dtype=np.float64)
        return m

    @classmethod
    def from_v1(cls, s: Mapping[str, Any], eta: float = ETA, l2: float = 0.0) -> RouteModel:
        """A route of a ``memabrad.router/v1`` model (river SGD heads: intercept + weights), converted
        exactly: the intercepts become the means, the weights the contextual parts with lambda 1;
        its standard error is unknown (0: no pessimism), as v1 had none."""
        m = cls(eta, l2)
        m.n = int(s["n"])
        m.w_sum = float(m.n)
        m.reward_mean = float(s["reward"]["intercept"])
        p_err = min(1 - 1e-9, max(1e-9, _sigmoid(float(s["error"]["intercept"]))))
        m.errors = p_err * (m.n + 2 * _ERR_PRIOR) - _ERR_PRIOR
        m.latency_mean = float(s["latency"]["intercept"])
        m.s_dy = [1.0, 1.0, 1.0]
        m.s_dd = [1.0, 1.0, 1.0]
        keys = sorted({int(k) for h in HEADS for k in s[h]["weights"]})
        m._col = {k: i for i, k in enumerate(keys)}
        m._a = np.zeros((max(16, len(keys)), 6))
        for i, h in enumerate(HEADS):
            for k, v in s[h]["weights"].items():
                m._a[m._col[int(k)], i] = float(v)
        return m

    def copy(self) -> RouteModel:
        """A trained, independent twin (river's ``clone`` gives an untrained one)."""
        twin = RouteModel(self.eta, self.l2)
        twin.__dict__.update({k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()})
        twin._col = dict(self._col)
        twin._a = self._a.copy()
        return twin
