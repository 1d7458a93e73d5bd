"""One route's outcome model: reward, error and latency heads, learned one trajectory at a time.

Every head predicts ``mean + lambda_g * d_g + lambda_f * d_f``:

- ``mean`` is the route's running mean outcome, exact after any number of events (the error
  rate is smoothed by one pseudo-observation at 2%);
- ``d_g`` is the offset of the task's *group* (its ``task_type``): the route's running mean
  within the group, shrunk toward the route mean by ``GROUP_PRIOR`` pseudo-observations, minus
  the route mean. A router that only recognises the task family is often most of the gain;
  per-group means learn it from a few dozen events per group, whatever the text looks like;
- ``d_f`` is the contextual part: a linear model ``f(x)`` of the hashed task features fitted
  to what the group mean leaves (``y - mean - d_g``) by normalised AdaGrad: each coordinate's
  step is ``eta * g / sqrt(sum of its squared gradients)``, divided by the example's L1 norm.
  AdaGrad shrinks the step as a feature's evidence grows; the L1 division makes it independent
  of how many features a task has; in a router, residuals are measured in the outcome's spread
  (``outcome_scale.py``), so the outcomes' units do not matter either. ``eta`` is the share of
  a (one-spread) residual the first update on a fresh example removes (VW's default 0.5), not a
  per-workload knob; a step never moves the reward or latency prediction past its target (a
  smaller residual is removed whole: ``safe_step.within_residual``). The error head's ``f``
  lives on the logit scale. The reward weights of the
  task's standardised numbers are fitted by recursive least squares instead (``number_part.py``),
  and the rest steps on what that fit leaves;
- ``lambda_g, lambda_f`` in [0, 1] weigh the two parts by how much they have actually helped:
  the least-squares stacking weights of ``d_g`` and ``d_f`` against ``y - mean``, from
  *prequential* sums (each event is scored before it is learned). Where the groups or the
  features carry no signal, or are still noise, their weight stays near 0 and the route
  predicts its mean.

A task seen before carries the case index's hint (its best past route) among its features. A new task
carries none, and the model must serve those too: so on an event with a hint, every other feature is
stepped on the residual of the prediction *without* the hint's part, as though the task were new, and
only the hint's own feature on the residual of the whole prediction (what is left beyond the rest).
Stepped jointly, the hint explains repeated tasks so well that the other features stop learning from
them: where a pool of tasks recurs, a router then got *worse* on new tasks as its traffic grew
(``docs/benchmarks.md``, "A task's hint learns apart").

The reward head also carries a standard error, the prequential residual spread over the
root of the evidence behind the prediction, so a router can rank routes by a pessimistic
score and not chase a lucky few.

State is numpy arrays over the route's own compact feature columns (a dict maps hashed
feature ids to rows) plus a few sums, exported as plain data sorted by feature id, so an
exported model is a deterministic function of the events it learned. The arithmetic on those
arrays and sums (stacking, group offsets, the feature table) is in ``route_parts.py``.

>>> m = RouteModel()
>>> x = {1: 0.6, 2: 0.8}
>>> for _ in range(200):
...     _ = m.learn(x, reward=1.0, error=False, latency_s=0.5)
...     _ = m.learn({3: 1.0}, reward=0.0, error=True, latency_s=1.5)
>>> r, e, lat = m.predict(x)
>>> (round(r, 1), round(e, 1), round(lat, 1))
(1.0, 0.0, 0.5)
>>> RouteModel.from_state(m.to_state()).predict(x) == m.predict(x)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np
from river import base

from memabrad.learning.features import Features
from memabrad.learning.number_part import NumberPart
from memabrad.learning.route_parts import (
    ERR_PRIOR,
    ETA,
    GROUP_PRIOR,
    Triple,
    add_columns,
    add_to_group,
    apart_from_hint,
    group_offsets,
    group_reward_offset,
    known_rows,
    logit,
    residuals,
    rows_of,
    score_event,
    score_first,
    sigmoid,
    stack,
    stack_now,
    step_with_fit,
    with_prior,
)
from memabrad.learning.shared_part import SharedPart, SharedWeight
from memabrad.learning.stacking_pool import StackingPool


class RouteModel(base.Regressor):
    """The three heads of one route and the evidence behind them.

    A river regressor of the reward (``learn_one``/``predict_one``; the error, latency and group
    of an event are keyword arguments of ``learn_one``), checked by river's estimator checks.

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
        # per head, prequential sums for the stacking weights: [g*g, g*f, f*f, g*t, f*t] (t = y - mean)
        self.s_stack = [[0.0] * 5 for _ in range(3)]
        self._lambdas: list[tuple[float, float]] | None = None
        self._consts: dict[Any, Any] | None = None  # reward_constant's: by (pessimism, group); by group, parts
        self.history_correction = False  # a router sets it: a lone contextual part's weight by ``stack_now``
        self.s_res = [0.0, 0.0, 0.0]  # per head, prequential squared error of the blended prediction
        self.novel_n = 0.0  # events in ``s_stack``
        self.prior: list[list[float]] | None = None  # the other routes' stacking sums, scaled (stacking_pool.py)
        self.groups: dict[str, list[float]] = {}  # [events, reward weight, weighted reward, errors, latency]
        self._col: dict[int, int] = {}
        self._a = np.zeros((16, 6))  # a row per known feature: the heads' weights, then their AdaGrad sums
        self.number_part = NumberPart()  # the numbers' reward weights by least squares (number_part.py)
        self.shared_weight = SharedWeight()  # how much of the router's shared part it takes (shared_part.py)

    # -- the means ----------------------------------------------------------------------

    @property
    def error_rate(self) -> float:
        p, k = ERR_PRIOR
        return (self.errors + p * k) / (self.n + k)

    def lambdas(self) -> list[tuple[float, float]]:
        """Per head, the stacking weights (lambda_g, lambda_f) of the group and contextual parts
        (recomputed only after the sums changed: routing asks for them for every candidate)."""
        cached = self.__dict__.get("_lambdas")
        if cached is None:  # a lone contextual part (all tasks in one group) weighed at its error today
            now = self.__dict__.get("history_correction") and len(self.groups) <= 1 and self.w_sum > 0
            cached = self._lambdas = [stack_now(s, self.n, self.s_res[0] / self.w_sum) if now and h == 0
                                      else stack(s) for h, s in enumerate(with_prior(self.s_stack, self.prior))]
        return cached

    def _means(self) -> Triple:
        """The route's (reward, error rate, latency) means."""
        return self.reward_mean, self.error_rate, self.latency_mean

    def group_offsets(self, group: str | None) -> Triple:
        """The group's (reward, error, latency) offsets from the route means, shrunk by ``GROUP_PRIOR``
        (0 for a group the route has not learned)."""
        return group_offsets(self.groups.get(group or ""), self._means())

    def reward_se(self, group: str | None = None) -> float:
        """Standard error of the reward prediction: the prequential residual spread over the root of
        the evidence behind it (the group's share of it as far as the prediction leans on the group)."""
        if self.w_sum <= 0.0:
            return math.inf
        spread2 = self.s_res[0] / self.w_sum
        evidence = self.w_sum
        lam_g = self.lambdas()[0][0]
        if lam_g > 0.0:
            g = self.groups.get(group or "")
            evidence = (1.0 - lam_g) * self.w_sum + lam_g * ((g[1] if g is not None else 0.0) + GROUP_PRIOR)
        return math.sqrt(spread2 / max(1.0, evidence))

    # -- prediction ---------------------------------------------------------------------

    def _parts(self, f: Sequence[float], group: str | None) -> tuple[Triple, Triple]:
        """Per head, the group part d_g and the contextual part d_f of a prediction."""
        dr, de, dl = self.group_offsets(group)
        fr, fe, fl = f
        base_err = self.error_rate + de
        return (dr, de, dl), (fr, sigmoid(logit(base_err) + fe) - base_err, fl)

    def predict(self, x: Features, group: str | None = None,
                shared: SharedPart | None = None) -> tuple[float, float, float]:
        """(expected reward, error probability, latency in seconds) for features ``x`` of a task in ``group``
        (``shared``: the router's shared part, which the route learned with)."""
        idx, vals = known_rows(self._col, x)
        f = vals @ self._a[idx, :3]
        return self.predict_parts((f if shared is None else f + self.shared_weight.weigh(shared, x)).tolist(), group)

    def predict_parts(self, f: Sequence[float], group: str | None = None) -> tuple[float, float, float]:
        """``predict`` from the contextual parts ``f`` (per head, the weighted sum of the task's features)."""
        a_r, g1, a_e, e1, base_err, logit_base, a_l, l1 = _prediction_terms(self, group)
        fr, fe, fl = f
        e = a_e + e1 * (sigmoid(logit_base + fe) - base_err)
        return a_r + g1 * fr, min(1.0, max(0.0, e)), a_l + l1 * fl

    def reward_score(self, x: Features, pessimism: float, group: str | None = None) -> float:
        """Expected reward minus ``pessimism`` standard errors."""
        return self.reward_constant(pessimism, group) + self.lambdas()[0][1] * own_reward_part(self, x)

    def score_terms(self, pessimism: float, group: str | None = None) -> tuple[float, float]:
        """(``reward_constant``, the reward head's ``lambda_f``): the pessimistic score of a task is ``constant +
        lambda_f * f``, ``f`` its contextual reward part; cached values while current (routing asks per candidate)."""
        consts, lam = self._consts, self._lambdas
        c = consts.get((pessimism, group)) if consts is not None else None
        return (self.reward_constant(pessimism, group) if c is None else c), (lam or self.lambdas())[0][1]

    def head_table(self) -> tuple[list[int], np.ndarray]:
        """The features this route has learned and their contextual (reward, error, latency) weights, one
        row per feature (``RewardIndex`` merges the tables of a router's routes)."""
        rows = np.fromiter(self._col.values(), dtype=np.int64, count=len(self._col))
        return list(self._col), self._a[rows, :3]

    def reward_constant(self, pessimism: float, group: str | None = None) -> float:
        """The part of ``reward_score`` that does not depend on the task's features: kept per group until
        the route learns again (a trajectory teaches one route and is scored by all of them)."""
        cache = self.__dict__.get("_consts")
        if cache is None:
            cache = self._consts = {}
        c = cache.get((pessimism, group))
        if c is None:  # the group's (mean + lambda_g * offset, standard error), shared by every pessimism
            parts = cache.get(group)
            if parts is None:
                m = self.reward_mean
                parts = (m + self.lambdas()[0][0] * group_reward_offset(self.groups.get(group or ""), m),
                         self.reward_se(group))
            c = parts[0] - pessimism * parts[1]
            if len(cache) < 1024:
                cache[group], cache[(pessimism, group)] = parts, c
        return c

    # -- river's regressor protocol ---------------------------------------------------

    def learn_one(self, x: dict, y: float, *, error: bool = False, latency_s: float = 0.0,
                  w: float = 1.0, group: str | None = None, novel: bool = True) -> None:
        self.learn(x, reward=float(y), error=error, latency_s=latency_s, weight=w, group=group, novel=novel)

    def predict_one(self, x: dict, group: str | None = None) -> float:
        return self.predict(x, group)[0]

    @classmethod
    def _unit_test_params(cls) -> Any:
        yield {"eta": 0.5}
        yield {"eta": 0.1, "l2": 0.01}

    # -- learning -----------------------------------------------------------------------

    def learn(self, x: Features, *, reward: float, error: bool, latency_s: float, weight: float = 1.0,
              group: str | None = None, novel: bool = True, shared: SharedPart | None = None,
              steps: np.ndarray | None = None, prior: tuple[float, float] | None = None,
              pool: StackingPool | None = None, hint_key: int | None = None,
              numbers: AbstractSet[int] | None = None, eta: float | None = None) -> np.ndarray:
        """Score the event first (prequential evidence for the stacking weights and the standard error),
        then learn it: the means, the group's means and the contextual part. Returns the contextual weights
        of ``x``'s features after the update (a row per feature in ``x``'s order; with ``shared``, a stack
        of two such tables: the route's own, then the shared part's).

        ``novel``: False for a task this route learned before (``learned_routes.py``): it teaches every part but is
        no evidence for the stacking weights (a model that memorised a repeated prompt predicts it well, which says
        nothing about new ones). ``shared``: the router's ``SharedPart``; the contextual part is then ``own(x) + beta *
        shared(x)``, the shared part and ``beta`` fitted apart (``shared_part.py``). ``steps``: the outcomes' spreads,
        so their units do not change what is learned; ``prior``: the router's mean reward and latency (None before its
        first outcome); see ``outcome_scale.py``. ``pool``: the router's ``StackingPool``, which gets the event's
        stacking sums and gives the route its prior. ``hint_key``: see above. ``numbers``: ids of standardised numbers,
        their reward weights fitted by least squares (``number_part.py``; a fit moves numbers the task lacks too:
        ``number_weights``). ``eta``: this event's step share (None: the model's; ``outcome_noise.py``)."""
        self._consts = None
        idx, self._a = add_columns(self._col, self._a, x)
        vals = np.fromiter(x.values(), dtype=np.float64, count=len(idx))
        if shared is None:
            rows = both = self._a.take(idx, axis=0)
            f = (vals @ rows[:, :3]).tolist()
        else:  # own and shared rows stacked (the hint's part is in both; both tables' rows are returned)
            both = np.empty((2, len(idx), 6))
            rows = self._a.take(idx, axis=0, out=both[0])
            s_idx, s_rows = shared.rows(x, out=both[1])
            beta = self.shared_weight.beta  # the shared part's weight in the prediction, per head
            fs = vals @ s_rows[:, :3]
            f, fs = (vals @ rows[:, :3] + np.multiply(beta, fs)).tolist(), fs.tolist()
        dg, df = self._parts(f, group)
        y_err = 1.0 if error else 0.0
        means = self._means()
        lam = self.lambdas() if self.n else [(0.0, 0.0)] * 3
        ys = (reward, y_err, latency_s)
        if steps is None or self.n:
            score_event(self.s_stack, self.s_res, lam, ys, means, dg, df, (weight, 1.0, 1.0), novel,
                        None if pool is None else pool.sums)
            self.novel_n += novel
            if novel and pool is not None:
                pool.n += 1.0
            if novel or self.history_correction:  # a corrected weight moves with n and the groups too
                self._lambdas = None
        elif prior is not None:  # the route's first outcome, measured from the router's means
            score_first(self.s_res, weight, steps, y_err - means[1])
            means = (prior[0], means[1], prior[1])
        # gradients of the contextual models on what the group means leave
        # (squared loss; log loss on the logit scale for errors)
        targets = (reward - means[0] - dg[0], y_err, latency_s - means[2] - dg[2])
        logit_base = logit(means[1] + dg[1])
        resid = residuals(f, targets, logit_base, weight)
        hint = list(x).index(hint_key) if hint_key is not None and hint_key in x else None
        if hint is not None:  # the rest of the task learns as though it had no hint
            mix = None if shared is None else np.array([(1.0, 1.0, 1.0), beta])  # the parts' weights, per table
            resid = apart_from_hint(resid, hint, vals, both, f, targets, logit_base, weight, mix)
        fit = self.number_part.fit(list(x), vals, resid, weight, numbers) if numbers else None
        resid = resid if fit is None else fit.resid
        if shared is not None:  # the shared part and the route's beta learn the targets apart (``shared_part.py``)
            self.shared_weight.learn(fs, targets, logit_base, weight, steps)
            resid = shared.beside(resid, s_rows, vals, fs, targets, logit_base, weight, hint)
        lacked = step_with_fit(both, vals, resid, self.eta if eta is None else eta, self.l2, steps, fit)
        self._a[idx] = rows
        if lacked is not None:  # fitted numbers the task lacks: their weights are in the table only
            self._a[rows_of(self._col, self.number_part.keys)[0][lacked[0]], 0] -= lacked[1]
        if shared is not None:
            shared.store(s_idx, s_rows)
        # the means, after scoring
        self.n += 1
        self.w_sum += weight
        self.reward_mean += weight * (reward - self.reward_mean) / self.w_sum
        self.errors += y_err
        self.latency_mean += (latency_s - self.latency_mean) / self.n
        add_to_group(self.groups, group or "", weight, reward, y_err, latency_s)
        if pool is not None and pool.n != self.__dict__.get("_prior_at"):  # the pool changed: so did the prior
            self.prior, self._prior_at, self._lambdas = pool.prior_for(self.s_stack, self.novel_n), pool.n, None
        return both[..., :3]

    # -- state --------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        from memabrad.learning.route_state import route_to_state

        return route_to_state(self)

    @classmethod
    def from_state(cls, s: Mapping[str, Any], eta: float = ETA, l2: float = 0.0) -> RouteModel:
        from memabrad.learning.route_state import route_from_state

        return route_from_state(s, eta, l2)

    def copy(self) -> RouteModel:
        """A trained, independent twin (river's ``clone`` gives an untrained one)."""
        from memabrad.learning.route_state import copy_route

        return copy_route(self)


def _prediction_terms(m: RouteModel, group: str | None) -> tuple[float, ...]:
    """What ``predict_parts`` needs besides the contextual parts, per group, kept with ``reward_constant``'s
    values until the route learns again: routing and the doubly robust scores predict every candidate
    of every trajectory, and only the route that learned changes. The same floats as computed inline:
    ``mean + lambda_g * offset`` for reward and latency, ``error rate + lambda_g * offset`` and the
    error head's base rate and its logit, and the three ``lambda_f``."""
    cache = m.__dict__.get("_consts")
    if cache is None:
        cache = m._consts = {}
    key = ("predict", group)
    terms = cache.get(key)
    if terms is None:
        dr, de, dl = m.group_offsets(group)
        base_err = m.error_rate + de
        (g0, g1), (e0, e1), (l0, l1) = m.lambdas()
        terms = (m.reward_mean + g0 * dr, g1, m.error_rate + e0 * de, e1, base_err, logit(base_err),
                 m.latency_mean + l0 * dl, l1)
        if len(cache) < 1024:
            cache[key] = terms
    return terms


def number_weights(m: RouteModel) -> tuple[dict[int, float], np.ndarray]:
    """The features the route's ``number_part`` fits (as a feature dict, for ``RewardIndex.set``) and their
    (reward, error, latency) weights, a row per feature: a fit moves weights of numbers the task lacked."""
    return dict.fromkeys(m.number_part.keys, 1.0), m._a[rows_of(m._col, m.number_part.keys)[0], :3]


def own_reward_part(m: RouteModel, x: Features) -> float:
    """The route's own contextual reward part of ``x`` (without the router's shared part): what
    ``reward_score`` adds to its constant, and what the stacking probes weigh apart from the shared part."""
    idx, vals = known_rows(m._col, x)
    return float(vals @ m._a[idx, 0])


def guardrail_penalty(m: RouteModel, fe: float, fl: float, group: str | None, latency_per_s: float,
                      error_price: float) -> float:
    """``Prices.penalty`` of the route's predicted error probability and latency, from its error and latency
    contextual parts ``fe``, ``fl``: the same floats as ``predict_parts`` and the penalty give, without
    the prediction objects (a priced ranking asks it of every candidate of every trajectory, twice)."""
    _, _, a_e, e1, base_err, logit_base, a_l, l1 = _prediction_terms(m, group)
    err = min(1.0, max(0.0, a_e + e1 * (sigmoid(logit_base + fe) - base_err)))
    return latency_per_s * max(0.0, (a_l + l1 * fl) * 1000.0) / 1000.0 + error_price * err
