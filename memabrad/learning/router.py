"""The contextual-bandit router: one outcome model per route over hashed task features.

Each route has a ``RouteModel`` (``learning/route_model.py``) fitted on the trajectories
where that route was taken: reward, error probability and latency, each its route's mean
plus a shrunk contextual part. Routing ranks candidates by a *pessimistic* reward score,
the prediction minus ``pessimism`` standard errors, so a route with little evidence does
not win on a lucky streak (the winner's curse of an argmax over noisy estimates). The
error and latency heads are the outcome models of the doubly robust estimator.

The learnable state exports to plain JSON (no pickle), so a version saved by one
process loads in another and makes identical choices. Models saved in the earlier
``memabrad.router/v1`` format (river SGD heads) load with the same predictions.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memabrad.learning.features import (
    FEATURES_VERSION,
    Features,
    Featurizer,
    Hint,
    TaskView,
    as_candidates,
    text_hashes,
)
from memabrad.learning.guardrail_prices import Prices
from memabrad.learning.number_scales import NumberScales
from memabrad.learning.outcome_noise import OutcomeNoise
from memabrad.learning.outcome_scale import OutcomeScale
from memabrad.learning.pick import best_route, explore
from memabrad.learning.reward_index import RewardIndex
from memabrad.learning.route_model import ETA, RouteModel, guardrail_penalty, number_weights
from memabrad.learning.shared_part import SharedPart
from memabrad.learning.stacking_pool import StackingPool
from memabrad.learning.text_groups import TextGroups
from memabrad.store.chunked_json import dumps_chunked

MODEL_FILE = "model.json"
MODEL_FORMAT = "memabrad.router/v2"
MODEL_FORMAT_V1 = "memabrad.router/v1"
PESSIMISM = 1.0


class ModelFormatError(ValueError):
    """A model file that is not a memabrad router model."""


@dataclass(frozen=True)
class Decision:
    """What the router chose, with the probability it chose it (for honest logging)."""

    route: str
    propensity: float
    scores: dict[str, float]
    router_version: str | None
    hint: Hint | None = None


@dataclass(frozen=True)
class OutcomePrediction:
    reward: float
    error_rate: float
    latency_ms: float


def predict_route(model: RouteModel, f: Sequence[float], j: int, k: int, group: str | None) -> OutcomePrediction:
    """Route ``j``'s outcome from the contextual parts ``f`` of all ``k`` routes (reward, error and latency
    heads, in that order), as ``Router.predict_outcome`` and ``FrozenScorer`` both predict it."""
    reward, err, latency_s = model.predict_parts((f[j], f[k + j], f[2 * k + j]), group)
    return OutcomePrediction(reward, float(err), max(0.0, latency_s * 1000.0))


@dataclass
class Router:
    """Per-route outcome models over hashed task features.

    >>> r = Router()
    >>> x = r.featurizer.featurize({"input": "what is the latest gold price"})
    >>> for _ in range(50):
    ...     r.learn(x, "tool.web_search", propensity=0.5, reward=1.0, error=False, latency_ms=900)
    ...     r.learn(x, "direct", propensity=0.5, reward=0.1, error=False, latency_ms=200)
    >>> r.best(x, ["direct", "tool.web_search"])
    'tool.web_search'
    >>> Router.from_state(r.export_state()).best(x, ["direct", "tool.web_search"])
    'tool.web_search'
    """

    hash_bits: int = 18
    learning_rate: float = ETA
    l2: float = 0.0
    max_importance_weight: float = 1.0
    pessimism: float = PESSIMISM
    version_id: str | None = None
    routes: dict[str, RouteModel] = field(default_factory=dict)
    reward_sum: float = 0.0
    reward_sq: float = 0.0
    reward_n: int = 0
    case_index: Any = None  # optional CaseIndex, for hints when serving
    features_version: int = FEATURES_VERSION
    shared: SharedPart | None = field(default_factory=SharedPart)  # the routes' shared part, None: off
    prices: Prices = field(default_factory=Prices)  # on predicted latency and errors (learning/guardrail_prices.py)
    text_groups: TextGroups = field(default_factory=TextGroups)  # groups of untyped tasks (learning/text_groups.py)
    scale: OutcomeScale = field(default_factory=OutcomeScale)  # what a residual is measured in (outcome_scale.py)
    history_correction: bool = True  # stacking weights of a lone contextual part at today's error (route_parts.py)
    pool: StackingPool = field(default_factory=StackingPool)  # the routes' stacking sums (stacking_pool.py)
    numbers: NumberScales = field(default_factory=NumberScales)  # the numbers' scales (number_scales.py)
    number_fit: bool = True  # the numbers' reward weights by recursive least squares (number_part.py)
    noise: OutcomeNoise | None = field(default_factory=OutcomeNoise)  # sizes new tasks' steps (outcome_noise.py)

    def __post_init__(self) -> None:
        self.featurizer = Featurizer(self.hash_bits, self.features_version, self.numbers)
        self._index: RewardIndex | None = None  # built at the first ranking, then kept current by learn
        self._last: tuple[Features, list[float]] | None = None  # the last task's contextual parts, until learn
        self._preds: dict[tuple[str, str | None], OutcomePrediction] = {}  # and its outcome predictions

    def _contextual(self, x: Features) -> list[float]:
        """``x``'s contextual parts per head and route, kept with its predictions until ``learn``."""
        if self._last is None or self._last[0] is not x:
            self._last, self._preds = (x, self.reward_index().contextual(x)), {}
        return self._last[1]

    def reward_index(self) -> RewardIndex:
        """The routes' contextual reward weights in one table (see ``learning/reward_index.py``)."""
        ix = self._index
        if ix is None:
            ix = self._index = RewardIndex.of(self.routes, self.shared)
        return ix

    @classmethod
    def from_config(cls, cfg: Any) -> Router:
        """Build an untrained router from a ``RouterConfig``."""
        return cls(hash_bits=cfg.hash_bits, learning_rate=cfg.learning_rate, l2=cfg.l2,
                   max_importance_weight=cfg.max_importance_weight, pessimism=cfg.pessimism,
                   shared=SharedPart() if cfg.shared_context else None)

    # -- learning ---------------------------------------------------------------------

    def _route(self, route: str) -> RouteModel:
        model = self.routes.get(route)
        if model is None:
            model = self.routes[route] = RouteModel(self.learning_rate, self.l2)
            model.history_correction = self.history_correction
        return model

    def learn(self, x: Features, route: str, *, propensity: float, reward: float, error: bool, latency_ms: float,
              group: str | None = None, novel: bool = True, hint_key: int | None = None,
              previous_reward: float | None = None) -> None:
        """Learn one logged trajectory (features, the route taken, what happened; ``group``: its task_type;
        ``novel``, ``hint_key``: whether ``route`` has not learned it yet, its hint's feature; ``RouteModel.learn``;
        ``previous_reward``: ``route``'s reward the last time it learned this task: the noise, ``outcome_noise.py``)."""
        w, model, noise = min(1.0 / propensity, self.max_importance_weight), self._route(route), self.noise
        eta = None if noise is None else noise.step(model.eta, propensity, self.scale.reward.variance, novel, reward,
                                                    previous_reward)
        weights = model.learn(x, reward=reward, error=bool(error), latency_s=latency_ms / 1000.0,
                              weight=w, group=group, novel=novel, shared=self.shared, hint_key=hint_key,
                              steps=self.scale.steps(), prior=self.scale.means(), pool=self.pool,
                              numbers=self.featurizer.number_keys() if self.number_fit else None, eta=eta)
        if self._index is not None:
            if self.shared is None:
                self._index.set(route, x, weights)
            else:  # the route's own weights and the shared part's
                self._index.set(route, x, weights[0], weights[1], model.shared_weight.beta)
            if len(model.number_part) and not model.number_part.keys.keys() <= x.keys():
                self._index.set(route, *number_weights(model))  # a fit moved numbers the task lacks
        self._last = None
        self.reward_sum += reward
        self.reward_sq += reward * reward
        self.reward_n += 1
        self.scale.add(reward, latency_ms / 1000.0)

    # -- prediction -------------------------------------------------------------------

    @property
    def prior_reward(self) -> float:
        """Prediction for a route never trained: the mean reward seen."""
        return self.reward_sum / self.reward_n if self.reward_n else 0.0

    @property
    def prior_se(self) -> float:
        """Uncertainty of a route never trained: the spread of all rewards seen (one observation's worth)."""
        if self.reward_n < 2:
            return 0.0
        mean = self.prior_reward
        return math.sqrt(max(0.0, self.reward_sq / self.reward_n - mean * mean))

    def untrained_score(self) -> float:
        return self.prior_reward - self.pessimism * self.prior_se

    def scores(self, x: Features, candidates: Sequence[str], group: str | None = None,
               pessimism: float | None = None, prices: Prices | None = None) -> dict[str, float]:
        """Each candidate's pessimistic score for a task of ``group`` (its task_type): expected reward
        minus ``pessimism`` standard errors, minus its guardrail ``prices`` (both the router's unless given)."""
        f = self._contextual(x)
        ix = self.reward_index()
        col, n = ix.col, len(ix.routes)
        routes = self.routes
        out: dict[str, float] = {}
        k = self.pessimism if pessimism is None else pessimism
        pr = self.prices if prices is None else prices
        priced = pr.active
        untrained = None
        for route in candidates:
            j = col.get(route)
            if j is None:
                if untrained is None:
                    untrained = self.prior_reward - k * self.prior_se
                out[route] = untrained
            else:
                m = routes[route]
                c, lam_f = m.score_terms(k, group)
                out[route] = c + lam_f * f[j]
                if priced and m.n:  # as ``predict_outcome`` and ``Prices.penalty`` (an untrained route: 0)
                    out[route] -= guardrail_penalty(m, f[n + j], f[2 * n + j], group, pr.latency_per_s, pr.error)
        return out

    def best(self, x: Features, candidates: Sequence[str], group: str | None = None) -> str:
        """Highest score; ties go to the lexicographically smallest route name."""
        return best_route(self.scores(x, candidates, group))

    def predict_outcome(self, x: Features, route: str, group: str | None = None) -> OutcomePrediction:
        model = self.routes.get(route)
        if model is None or not model.n:
            return OutcomePrediction(self.prior_reward, 0.0, 0.0)
        f = self._contextual(x)
        got = self._preds.get((route, group))  # portfolio members sharing this model ask again
        if got is None:
            ix = self.reward_index()
            got = self._preds[(route, group)] = predict_route(model, f, ix.col[route], len(ix.routes), group)
        return got

    def group_of(self, task_type: str | None, hashes: list[int]) -> str | None:
        """A task's group: its ``task_type``, else the text group of its input's ``text_hashes``."""
        return task_type or self.text_groups.match(hashes)

    def task_features(self, task: Any, hint: Hint | None = None) -> tuple[Features, str | None]:
        """A task's features (with the case-index ``hint``) and its group, as ranking takes them."""
        view = TaskView.of(task)
        hashes = text_hashes(view.input, self.featurizer.version)
        return self.featurizer.featurize(view, hint, hashes), self.group_of(view.task_type, hashes)

    def hint_for(self, task: Any) -> Hint | None:
        return None if self.case_index is None else self.case_index.hint_of(TaskView.of(task))

    def choose(
        self,
        task: Any,
        candidates: Sequence[str],
        epsilon: float = 0.0,
        rng: random.Random | Any | None = None,
    ) -> Decision:
        """Pick a route for ``task``; with ``epsilon`` > 0, explore and report the true propensity."""
        cands = as_candidates(candidates)
        if not cands:
            raise ValueError("candidates must not be empty")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError("epsilon must be within [0, 1]")
        hint = self.hint_for(task)
        x, group = self.task_features(task, hint)
        scores = self.scores(x, cands, group)
        route, propensity = explore(best_route(scores), cands, epsilon, rng)
        return Decision(route, propensity, scores, self.version_id, hint)

    # -- state ------------------------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "hash_bits": self.hash_bits,
            "features_version": self.features_version,
            "learning_rate": self.learning_rate,
            "l2": self.l2,
            "max_importance_weight": self.max_importance_weight,
            "pessimism": self.pessimism,
            "reward_sum": self.reward_sum,
            "reward_sq": self.reward_sq,
            "reward_n": self.reward_n,
            "routes": {name: m.to_state() for name, m in sorted(self.routes.items())},
            **({} if self.shared is None else {"shared": self.shared.to_state()}),
            **self.prices.to_state(),
            **({"text_groups": self.text_groups.to_state(seeds=False)} if len(self.text_groups) else {}),
            **({"outcome_scale": self.scale.to_state()} if self.scale.reward.n else {}),
            **({} if self.noise is None else {"outcome_noise": self.noise.to_state()}),
            **({"stacking_history": "harmonic"} if self.history_correction else {}),
            "stacking_pool": self.pool.to_state(),
            **({"number_scales": self.numbers.to_state()} if self.features_version >= 5 else {}),
            **({"number_fit": "least_squares"} if self.number_fit else {}),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], version_id: str | None = None) -> Router:
        from memabrad.learning.router_state import router_from_state
        return router_from_state(state, version_id)

    def clone(self) -> Router:
        """An independent copy (no shared arrays; the text groups without seeds: only learning makes groups)."""
        from memabrad.learning.router_state import clone_router
        return clone_router(self)

    def to_bytes(self) -> bytes:
        """Compact JSON with sorted keys, encoded a slice at a time: a large model encoded in one call
        would hold the GIL (and the daemon's event loop) for tens of milliseconds."""
        return dumps_chunked(self.export_state())

    @classmethod
    def from_bytes(cls, data: bytes, version_id: str | None = None) -> Router:
        try:
            state = json.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            raise ModelFormatError(f"model data is not JSON: {err}") from None
        return cls.from_state(state, version_id)

    def fingerprint(self) -> str:
        """sha256 of the exported model; equal fingerprints mean identical choices."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def version_files(self) -> dict[str, bytes]:
        return {MODEL_FILE: self.to_bytes()}

    @classmethod
    def load(cls, version_dir: str | Path, *, case_index: Any = None) -> Router:
        """Load a saved version, verifying its sha256 against ``meta.json`` (see ``load_version``)."""
        return load_version(version_dir, case_index=case_index)


def share_numbers(router: Router, numbers: NumberScales) -> None:
    """``router`` reads, and saves, ``numbers`` from now on (a portfolio member's are the main challenger's)."""
    router.numbers = numbers
    if router.featurizer.numbers is not None:  # a model of features version 5 or later
        router.featurizer.numbers = numbers


def same_features(a: Router, b: Router) -> bool:
    """Whether ``a`` and ``b`` featurise every task alike (then a baseline reuses the challenger's features):
    the same features version and hash size and, from version 5, the same fixed number scales."""
    fa, fb = a.featurizer, b.featurizer
    if fa.version != fb.version or fa.hash_bits != fb.hash_bits:
        return False
    na, nb = fa.numbers, fb.numbers
    return na is nb or na is None or nb is None or na.frozen == nb.frozen


class SameFeatures:
    """``same_features(baseline, challenger)`` for every trajectory scored, computed again only when either
    router is another one or the challenger fixed another number's scale (fixed scales never change, so
    their count tells): comparing two routers' scales costs O(names), and the answer changes a few times a run."""

    def __init__(self) -> None:
        self._last: tuple[Router, Router, int, bool] | None = None

    def __call__(self, baseline: Router, challenger: Router) -> bool:
        n, last = len(challenger.numbers), self._last
        if last is None or last[0] is not baseline or last[1] is not challenger or last[2] != n:
            last = self._last = (baseline, challenger, n, same_features(baseline, challenger))
        return last[3]


def load_version(version_dir: str | Path, *, case_index: Any = None) -> Router:
    """Load a saved version, verifying its sha256 against ``meta.json``.

    ``case_index``: which case index the router hints from. None: the router's own
    (``<router_dir>/case-index.json`` beside the versions) when present, so serving sees the same
    hints as training did; a ``CaseIndex``: that one (a client that has one loaded already); False:
    none (an evaluation scores features already computed with hints; reading and rebuilding a
    20,000-task index for it was most of a promotion's cost on the evaluator thread).
    """
    from memabrad.learning.case_index import CaseIndex
    from memabrad.store.versions import verify_version_dir

    vdir = Path(version_dir)
    meta, files = verify_version_dir(vdir)
    if MODEL_FILE not in files:
        raise ModelFormatError(f"{vdir}: version has no {MODEL_FILE}")
    router = Router.from_bytes(files[MODEL_FILE], version_id=meta.version_id)
    if case_index is None:
        index_path = vdir.parent.parent.parent / "case-index.json"
        if index_path.is_file():
            case_index = CaseIndex.load(index_path)
    router.case_index = None if case_index is False else case_index
    return router
