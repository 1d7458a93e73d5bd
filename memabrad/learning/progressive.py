"""Progressive evidence: every trajectory scores the challenger before the challenger learns it.

Vowpal Wabbit's progressive validation, made off-policy. For trajectory ``i`` the
challenger as it stood *before* learning ``i`` (call it ``pi_i``) picks a route; the
doubly robust influence value of that pick,

    phi_i = q(x, pi_i) + [logged route == pi_i] * (y - q(x, logged route)) / propensity,

has conditional mean ``V(pi_i)`` given the past, because ``pi_i`` and the outcome model
``q`` (the challenger's own heads, also as they stood before ``i``) are fixed by then and
the propensity is the logging policy's. The same holds for the baseline (the active
version, or the logging agent itself, whose value is the logged outcome). So the mean of
the paired differences ``phi_ch - phi_bl`` over the trajectories since the baseline was
activated is an unbiased running estimate of the average true advantage of the
challengers that were judged — with no trajectory wasted: training trajectories count
as evidence too, because each was scored before it was learned.

Only running moments are kept (``stats.Moments``), so a look costs nothing however
much evidence there is, the state fits in a checkpoint, and a replay after ``kill -9``
rebuilds the same sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from memabrad.learning.features import Features
from memabrad.learning.pick import best_route
from memabrad.stats.moments import Moments

if TYPE_CHECKING:
    from memabrad.learning.frozen import FrozenScorer
    from memabrad.learning.guardrail_prices import Prices
    from memabrad.learning.router import Router

METRICS = ("reward", "error_rate", "latency_ms")
RESTART_AT = frozenset(250 * 2**j for j in range(9))
"""Evidence sizes (trajectories since the baseline: 250, 500, 1,000, ... 64,000) after which a further
stream of evidence starts: it leaves out the challengers of the stretch before (an untrained
challenger judged at the start drags a running average for long). Counted in trajectories, not
looks, so the streams a decision may rest on do not depend on how often the daemon looks
(``evaluation.min_new_trajectories``). Each stream has its own share of alpha
(``evaluation.sequential``), so looking at all of them still spends alpha once."""


NOISE_PRIOR = 5.0
"""Pseudo-observations of the pooled residual noise behind each route's own (``unseen_variance``)."""
MAX_NOISE_ROUTES = 256
"""Routes whose noise is kept apart; the factors of any further ones stand on the pooled noise."""
_NO_NOISE = (0.0, 0.0, 0.0, 0.0, 0.0)

Unseen = tuple[tuple[str, float], ...]
"""Each of a pair's picks that is not the logged route, with its importance-variance factor (none where the
two picks agree); see ``ProgressiveEvidence.unseen_variance``."""


def _three() -> list[Moments]:
    return [Moments(), Moments(), Moments()]


@dataclass
class ProgressiveEvidence:
    """Running moments of challenger, baseline and paired-difference influence values, per metric.

    ``baseline_version_id`` names what the challenger is compared with (None: the logging
    agent); the evidence restarts whenever that changes.

    >>> ev = ProgressiveEvidence()
    >>> ev.add((0.9, 0.0, 500.0), (0.5, 0.0, 700.0), weight=2.0, unsupported=False, at="t1")
    >>> ev.add((0.7, 1.0, 400.0), (0.6, 0.0, 600.0), weight=0.0, unsupported=False, at="t2")
    >>> (ev.n, round(ev.delta[0].mean, 3), ev.delta[2].mean, ev.matches)
    (2, 0.25, -200.0, 1)
    """

    baseline_version_id: str | None = None
    challenger: list[Moments] = field(default_factory=_three)
    baseline: list[Moments] = field(default_factory=_three)
    delta: list[Moments] = field(default_factory=_three)
    weight_sum: float = 0.0
    weight_sq: float = 0.0
    max_weight: float = 0.0
    matches: int = 0
    unsupported: int = 0
    unsupported_routes: list[str] = field(default_factory=list)
    looks: int = 0
    first_at: str | None = None
    last_at: str | None = None
    error_smooth: Moments = field(default_factory=Moments)
    error_noise: float = 0.0
    unseen: float = 0.0
    """Sum of each trajectory's importance-variance factor, see ``unseen_variance``."""
    residual_sq: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    """Per metric, the sum of squared residuals of the outcome model at the logged route."""
    noise: dict[str, list[float]] = field(default_factory=dict)
    """Per route: [its picks' factors (part of ``unseen``), times logged, per metric the squared residuals
    when logged]; see ``unseen_variance``. Empty in checkpoints written before: the pooled noise then."""
    restarts: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """(looks taken by then, this evidence's state) at each size of ``RESTART_AT`` reached (checkpoints
    written before that rule hold states taken at looks 1, 2, 4, ...: streams just as valid)."""
    start_look: int = 0
    """For a stream cut out by ``streams``: the looks taken before it starts (0 also for the whole evidence)."""
    start_n: int = 0
    """For a stream cut out by ``streams``: the trajectories of the evidence before it starts (0: the whole)."""

    @property
    def n(self) -> int:
        return self.delta[0].n

    def add(self, phi_ch: tuple[float, float, float], phi_bl: tuple[float, float, float], *, weight: float,
            unsupported: bool, at: str, route: str | None = None, error_parts: tuple[float, float] | None = None,
            unseen: Unseen = (), residual_sq: tuple[float, float, float] | None = None,
            logged: str | None = None) -> None:
        """One trajectory's influence values; ``weight``: the challenger's importance weight
        (1/propensity where it picked the logged route, else 0); ``error_parts``: see ``error_variance``;
        ``unseen`` (``Scored.unseen``), ``residual_sq`` and the ``logged`` route: see ``unseen_variance``."""
        if error_parts is not None:
            self.error_smooth.add(error_parts[0])
            self.error_noise += error_parts[1]
        if residual_sq is not None:
            r = self.residual_sq
            r[0] += residual_sq[0]
            r[1] += residual_sq[1]
            r[2] += residual_sq[2]
            c = self._noise_of(logged) if logged is not None else None
            if c is not None:
                c[1] += 1.0
                c[2] += residual_sq[0]
                c[3] += residual_sq[1]
                c[4] += residual_sq[2]
            for pick, factor in unseen:
                self.unseen += factor
                c = self._noise_of(pick)
                if c is not None:
                    c[0] += factor
        for m in range(3):
            self.challenger[m].add(phi_ch[m])
            self.baseline[m].add(phi_bl[m])
            self.delta[m].add(phi_ch[m] - phi_bl[m])
        if weight > 0.0:
            self.weight_sum += weight
            self.weight_sq += weight * weight
            self.matches += 1
            if weight > self.max_weight:
                self.max_weight = weight
        if unsupported:
            self.unsupported += 1
            if route is not None and route not in self.unsupported_routes and len(self.unsupported_routes) < 20:
                self.unsupported_routes.append(route)
        if self.first_at is None:
            self.first_at = at
        self.last_at = at
        if self.delta[0].n in RESTART_AT:  # without the baseline's name: a stream takes it from the whole
            state = self._core_state()
            del state["baseline_version_id"]
            self.restarts.append((self.looks, state))

    def _noise_of(self, route: str) -> list[float] | None:
        """``route``'s sums in ``noise``, new if there is room (None: past ``MAX_NOISE_ROUTES``)."""
        c = self.noise.get(route)
        if c is None and len(self.noise) < MAX_NOISE_ROUTES:
            c = self.noise[route] = list(_NO_NOISE)
        return c

    def error_variance(self) -> float:
        """Model-based variance of the error-rate difference, for a floor under the sample variance.

        An error is a coin flip, and the influence of a rare flip that lands on an importance
        weight of 20 is 20: until a few such flips have been seen, the sample variance is far too
        small and an interval built on it too narrow. Each trajectory's difference is
        ``c + s * (y - q)`` with ``q`` the predicted error probability of the logged route, so its
        variance is ``Var(c) + E[s^2 q (1 - q)]``: smooth in what is predicted, blind to which
        coins happened to land. NaN before two trajectories."""
        n = self.error_smooth.n
        if n < 2:
            return float("nan")
        return self.error_smooth.variance + self.error_noise / n

    def unseen_variance(self, metric: int) -> float:
        """A variance floor under the paired difference of ``metric`` that does not wait for rare matches.

        Where a policy picks a route the agent rarely logs, the difference's variance is the outcome's
        noise times about 1/propensity of that route, but the sample variance only learns so once the
        agent happens to log it (once in ~120 trajectories at 5 % exploration over six routes); until
        then an interval is confidently wrong. Each trajectory whose logged route is not the pick says
        something at once: the pick's propensity was at most ``1 - p`` (``p`` the logged one), so the
        pick's part of the variance on that task is at least ``p / (1 - p)`` times the noise. Each
        trajectory adds that factor for each of the pair's picks that is not the logged route, unless
        the two picks agree (``unseen``), times the pick's noise (below). In expectation their product is
        at most the variance the sample variance has not seen yet (on a task where the pick has
        propensity ``mu``, at most ``(1 - mu)^2 / mu`` of the ``(1 - mu) / mu`` the pick adds), so an
        interval on the larger of it and the sample variance stays valid and is honest early. NaN before
        two trajectories or without the parts.

        The noise is the *pick's*: a route's mean squared residual over the trajectories that logged it,
        shrunk toward the pooled one by ``NOISE_PRIOR`` pseudo-observations and never below it. Routes'
        noise differs (a slow tool's latency varies far more than a fast answer's, and a rarely logged
        route is the one its outcome model knows least), and the rare routes a challenger picks are the
        ones the pooled mean hardly sees. Before any such route is logged its noise is the pooled one."""
        n = self.n
        if n < 2 or self.unseen <= 0.0:
            return float("nan")
        pooled = self.residual_sq[metric] / n
        rest, total = self.unseen, 0.0
        for factor, logged, *sq in self.noise.values():
            if factor > 0.0:
                rest -= factor
                total += factor * max(pooled, (sq[metric] + NOISE_PRIOR * pooled) / (logged + NOISE_PRIOR))
        return (total + max(rest, 0.0) * pooled) / n

    @property
    def effective_sample_size(self) -> float:
        """Kish's effective sample size of the challenger's importance weights."""
        return self.weight_sum * self.weight_sum / self.weight_sq if self.weight_sq > 0 else 0.0

    def mark_look(self) -> None:
        """Count one more look."""
        self.looks += 1

    def streams(self) -> list[ProgressiveEvidence]:
        """The whole evidence, then one stream per restart: the evidence since that restart."""
        core = replace(self, restarts=[])
        return [core] + [core._since(look, ProgressiveEvidence.from_state(state)) for look, state in self.restarts]

    def _since(self, look: int, earlier: ProgressiveEvidence) -> ProgressiveEvidence:
        """What was added after ``earlier`` (this evidence's copy, taken after ``look`` looks); the largest weight is
        the whole evidence's (an upper bound: it only makes the health check stricter)."""
        def minus(a: list[Moments], b: list[Moments]) -> list[Moments]:
            return [x.minus(y) for x, y in zip(a, b, strict=True)]
        return ProgressiveEvidence(
            baseline_version_id=self.baseline_version_id,
            challenger=minus(self.challenger, earlier.challenger),
            baseline=minus(self.baseline, earlier.baseline),
            delta=minus(self.delta, earlier.delta),
            weight_sum=self.weight_sum - earlier.weight_sum, weight_sq=self.weight_sq - earlier.weight_sq,
            max_weight=self.max_weight, matches=self.matches - earlier.matches,
            unsupported=self.unsupported - earlier.unsupported, unsupported_routes=list(self.unsupported_routes),
            looks=self.looks - look, first_at=None, last_at=self.last_at,
            error_smooth=self.error_smooth.minus(earlier.error_smooth),
            error_noise=self.error_noise - earlier.error_noise, start_look=look, start_n=earlier.n,
            unseen=self.unseen - earlier.unseen,
            residual_sq=[a - b for a, b in zip(self.residual_sq, earlier.residual_sq, strict=True)],
            noise={r: [a - b for a, b in zip(c, earlier.noise.get(r, _NO_NOISE), strict=True)]
                   for r, c in self.noise.items()},
        )

    def copy(self) -> ProgressiveEvidence:
        return ProgressiveEvidence.from_state(self.to_state())

    def to_state(self) -> dict[str, Any]:
        state = self._core_state()
        if self.restarts:
            state["restarts"] = [[look, s] for look, s in self.restarts]
        return state

    def _core_state(self) -> dict[str, Any]:
        return {
            "baseline_version_id": self.baseline_version_id,
            "challenger": [m.to_state() for m in self.challenger],
            "baseline": [m.to_state() for m in self.baseline],
            "delta": [m.to_state() for m in self.delta],
            "weights": [self.weight_sum, self.weight_sq, self.max_weight, self.matches],
            "unsupported": [self.unsupported, list(self.unsupported_routes)],
            "looks": self.looks,
            "span": [self.first_at, self.last_at],
            "error_model": [self.error_smooth.to_state(), self.error_noise],
            "unseen": [self.unseen, *self.residual_sq],
            "noise": {r: list(c) for r, c in sorted(self.noise.items())},
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> ProgressiveEvidence:
        ws, wq, wmax, matches = s["weights"]
        return cls(
            baseline_version_id=s.get("baseline_version_id"),
            challenger=[Moments.from_state(m) for m in s["challenger"]],
            baseline=[Moments.from_state(m) for m in s["baseline"]],
            delta=[Moments.from_state(m) for m in s["delta"]],
            weight_sum=float(ws), weight_sq=float(wq), max_weight=float(wmax), matches=int(matches),
            unsupported=int(s["unsupported"][0]), unsupported_routes=list(s["unsupported"][1]),
            looks=int(s["looks"]), first_at=s["span"][0], last_at=s["span"][1],
            error_smooth=Moments.from_state(s["error_model"][0]) if "error_model" in s else Moments(),
            error_noise=float(s["error_model"][1]) if "error_model" in s else 0.0,
            unseen=float(s["unseen"][0]) if "unseen" in s else 0.0,  # saved before the floor: none
            residual_sq=[float(v) for v in s["unseen"][1:]] if "unseen" in s else [0.0, 0.0, 0.0],
            noise={str(r): [float(v) for v in c] for r, c in s.get("noise", {}).items()},  # before: pooled
            restarts=[(int(look), dict(state)) for look, state in s.get("restarts", [])],
        )


@dataclass(slots=True)
class Scored:
    """One trajectory's progressive score: both policies' influence values and the challenger's pick;
    ``shadow``: the same against a second baseline (phi, error parts), when one was asked for.
    (Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, twice per trajectory.)"""

    phi_challenger: tuple[float, float, float]
    phi_baseline: tuple[float, float, float]
    choice: str
    weight: float
    unsupported: bool
    error_parts: tuple[float, float]
    unseen: Unseen
    residual_sq: tuple[float, float, float]
    shadow: tuple[tuple[float, float, float], tuple[float, float], Unseen] | None = None


def score_trajectory(challenger: Router, baseline: Router | FrozenScorer | None, x: Features, x_baseline: Features,
                     candidates: Sequence[str], route: str, propensity: float, outcome: tuple[float, float, float],
                     group: str | None, shadow: Router | FrozenScorer | None = None,
                     x_shadow: Features | None = None, *, pessimism: float | None = None,
                     picks: tuple[str | None, str | None] | None = None, prices: Prices | None = None) -> Scored:
    """Doubly robust influence values of ``challenger`` and ``baseline`` (None: the logging agent) on one
    logged trajectory, with the challenger's heads as the outcome model. Call it *before* the challenger
    learns the trajectory; ``x_baseline`` is the task featurised as the baseline featurises. ``shadow``: a
    second baseline scored the same way (the challenger of a look whose verdict is pending).
    ``pessimism``: rank the challenger's candidates with this instead of its own (a portfolio member
    sharing the model); ``picks``: the baseline's and the shadow's choices when the caller has them
    already (the same for every member of a portfolio); ``prices``: the member's guardrail prices.

    Straight-line code, no closures: it runs once per member per trajectory."""
    choice = best_route(challenger.scores(x, candidates, group, pessimism, prices))
    w = 1.0 / propensity
    # importance-variance factor of a pick other than the logged route (``ProgressiveEvidence.unseen_variance``):
    # its propensity is at most 1 - propensity
    other = propensity / (1.0 - propensity) if propensity < 1.0 else 0.0
    predict = challenger.predict_outcome
    o = predict(x, route, group)
    ql = (o.reward, o.error_rate, o.latency_ms)
    # phi(route): the logged outcome's correction of the prediction
    q_err_l = ql[1]
    phi_route = (ql[0] + (outcome[0] - ql[0]) * w, q_err_l + (outcome[1] - q_err_l) * w,
                 ql[2] + (outcome[2] - ql[2]) * w)
    residual_sq = ((outcome[0] - ql[0]) ** 2, (outcome[1] - q_err_l) ** 2, (outcome[2] - ql[2]) ** 2)
    f_ch: Unseen
    if choice == route:
        phi_ch, q_choice_err, s_ch, f_ch = phi_route, q_err_l, w, ()
    else:
        o = predict(x, choice, group)
        phi_ch, q_choice_err, s_ch, f_ch = (o.reward, o.error_rate, o.latency_ms), o.error_rate, 0.0, ((choice, other),)
    bpick, spick = picks if picks is not None else (None, None)

    def against(b: Router | FrozenScorer | None, xb: Features, known: str | None
                ) -> tuple[tuple[float, float, float], tuple[float, float], Unseen]:
        """The baseline's influence values, the error-variance parts and the importance-variance factor of
        the paired difference."""
        if b is None:
            s_coef = s_ch - 1.0
            return outcome, (q_choice_err - q_err_l, s_coef * s_coef * q_err_l * (1.0 - q_err_l)), f_ch
        pick = known if known is not None else b.best(xb, candidates, group)
        if pick == choice:
            return phi_ch, (0.0, 0.0), ()
        if pick == route:
            phi_bl, q_err, s_pick, pair = phi_route, q_err_l, w, f_ch
        else:
            p = predict(x, pick, group)
            phi_bl, q_err, s_pick, pair = (p.reward, p.error_rate, p.latency_ms), p.error_rate, 0.0, (
                *f_ch, (pick, other))
        s_coef = s_ch - s_pick
        return phi_bl, (q_choice_err - q_err, s_coef * s_coef * q_err_l * (1.0 - q_err_l)), pair

    phi_bl, parts, unseen = against(baseline, x_baseline, bpick)
    model = challenger.routes.get(choice)
    unsupported = choice != route and (model is None or not model.n)
    return Scored(phi_ch, phi_bl, choice, s_ch, unsupported, parts, unseen, residual_sq,
                  against(shadow, x_shadow if x_shadow is not None else x, spick) if shadow is not None else None)
