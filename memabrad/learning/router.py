"""The contextual-bandit router: one set of river regressors per route.

Each route has three heads fitted on the trajectories where that route was taken:
reward (importance weighted by the clipped inverse propensity, so the fit targets the
whole context distribution rather than the logging policy's), error probability and
latency. Routing uses the reward head; the error and latency heads are the outcome
models of the doubly robust estimator.

The learnable state exports to plain JSON (no pickle), so a version saved by one
process loads in another and makes identical choices.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from river import linear_model, optim
from river.utils import VectorDict

from memabrad.learning.features import Features, Featurizer, Hint, TaskView, as_candidates

MODEL_FILE = "model.json"
MODEL_FORMAT = "memabrad.router/v1"
_HEADS = ("reward", "error", "latency")


class ModelFormatError(ValueError):
    """A model file that is not a memabrad router model."""


def _new_head(kind: str, lr: float, l2: float) -> linear_model.LinearRegression:
    if kind == "error":
        return linear_model.LogisticRegression(
            optimizer=optim.SGD(lr=lr), l2=l2, intercept_lr=lr, clip_gradient=1e6
        )
    return linear_model.LinearRegression(
        optimizer=optim.SGD(lr=lr), l2=l2, intercept_lr=lr, clip_gradient=1e6
    )


def _export_head(model: Any) -> dict[str, Any]:
    weights = {str(k): v for k, v in sorted(model._weights.items()) if v != 0.0}
    return {"intercept": model.intercept, "weights": weights}


def _import_head(model: Any, data: Mapping[str, Any]) -> None:
    model.intercept = float(data["intercept"])
    model._weights = VectorDict({int(k): float(v) for k, v in data["weights"].items()})


@dataclass
class RouteModel:
    """The three heads of one route and how many trajectories trained them."""

    reward: Any
    error: Any
    latency: Any
    n: int = 0

    @classmethod
    def new(cls, lr: float, l2: float) -> RouteModel:
        return cls(*(_new_head(h, lr, l2) for h in _HEADS))


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


@dataclass
class Router:
    """Per-route river regressors over hashed task features.

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
    learning_rate: float = 0.05
    l2: float = 0.0
    max_importance_weight: float = 1.0
    version_id: str | None = None
    routes: dict[str, RouteModel] = field(default_factory=dict)
    reward_sum: float = 0.0
    reward_n: int = 0
    case_index: Any = None  # optional CaseIndex, for hints when serving

    def __post_init__(self) -> None:
        self.featurizer = Featurizer(self.hash_bits)

    @classmethod
    def from_config(cls, cfg: Any) -> Router:
        """Build an untrained router from a ``RouterConfig``."""
        return cls(
            hash_bits=cfg.hash_bits,
            learning_rate=cfg.learning_rate,
            l2=cfg.l2,
            max_importance_weight=cfg.max_importance_weight,
        )

    # -- learning ---------------------------------------------------------------------

    def _route(self, route: str) -> RouteModel:
        model = self.routes.get(route)
        if model is None:
            model = self.routes[route] = RouteModel.new(self.learning_rate, self.l2)
        return model

    def learn(
        self,
        x: Features,
        route: str,
        *,
        propensity: float,
        reward: float,
        error: bool,
        latency_ms: float,
    ) -> None:
        """Learn one logged trajectory (features, the route taken, and what happened)."""
        model = self._route(route)
        w = min(1.0 / propensity, self.max_importance_weight)
        model.reward.learn_one(x, reward, w=w)
        model.error.learn_one(x, bool(error))
        model.latency.learn_one(x, latency_ms / 1000.0)
        model.n += 1
        self.reward_sum += reward
        self.reward_n += 1

    # -- prediction -------------------------------------------------------------------

    @property
    def prior_reward(self) -> float:
        """Score of a route never trained: the mean reward seen, so it neither wins nor loses by default."""
        return self.reward_sum / self.reward_n if self.reward_n else 0.0

    def scores(self, x: Features, candidates: Sequence[str]) -> dict[str, float]:
        prior = self.prior_reward
        out: dict[str, float] = {}
        for route in candidates:
            model = self.routes.get(route)
            out[route] = model.reward.predict_one(x) if model is not None and model.n else prior
        return out

    def best(self, x: Features, candidates: Sequence[str]) -> str:
        """Highest score; ties go to the lexicographically smallest route name."""
        s = self.scores(x, candidates)
        return min(s, key=lambda r: (-s[r], r))

    def predict_outcome(self, x: Features, route: str) -> OutcomePrediction:
        model = self.routes.get(route)
        if model is None or not model.n:
            return OutcomePrediction(self.prior_reward, 0.0, 0.0)
        err = model.error.predict_proba_one(x).get(True, 0.0)
        return OutcomePrediction(
            model.reward.predict_one(x), float(err), max(0.0, model.latency.predict_one(x) * 1000.0)
        )

    def hint_for(self, task: Any) -> Hint | None:
        if self.case_index is None:
            return None
        return self.case_index.hint(TaskView.of(task).input)

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
        x = self.featurizer.featurize(task, hint)
        scores = self.scores(x, cands)
        greedy = min(scores, key=lambda r: (-scores[r], r))
        k = len(cands)
        route = greedy
        if epsilon > 0.0:
            rng = rng if rng is not None else random.Random()
            if rng.random() < epsilon:
                route = cands[int(rng.random() * k) % k]
        explore = epsilon / k
        propensity = (1.0 - epsilon) + explore if route == greedy else explore
        return Decision(route, propensity, scores, self.version_id, hint)

    # -- state ------------------------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "hash_bits": self.hash_bits,
            "learning_rate": self.learning_rate,
            "l2": self.l2,
            "max_importance_weight": self.max_importance_weight,
            "reward_sum": self.reward_sum,
            "reward_n": self.reward_n,
            "routes": {
                name: {"n": m.n, **{h: _export_head(getattr(m, h)) for h in _HEADS}}
                for name, m in sorted(self.routes.items())
            },
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], version_id: str | None = None) -> Router:
        if not isinstance(state, Mapping) or state.get("format") != MODEL_FORMAT:
            raise ModelFormatError(f"not a {MODEL_FORMAT} model")
        try:
            router = cls(
                hash_bits=int(state["hash_bits"]),
                learning_rate=float(state["learning_rate"]),
                l2=float(state["l2"]),
                max_importance_weight=float(state["max_importance_weight"]),
                version_id=version_id,
                reward_sum=float(state["reward_sum"]),
                reward_n=int(state["reward_n"]),
            )
            for name, data in state["routes"].items():
                model = router._route(str(name))
                model.n = int(data["n"])
                for h in _HEADS:
                    _import_head(getattr(model, h), data[h])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ModelFormatError(f"malformed router model: {err!r}") from None
        return router

    def clone(self) -> Router:
        """An independent copy (evaluate clones, never the live model)."""
        twin = Router.from_state(self.export_state(), self.version_id)
        twin.case_index = self.case_index
        return twin

    def to_bytes(self) -> bytes:
        return json.dumps(self.export_state(), sort_keys=True, separators=(",", ":")).encode("utf-8")

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
        """Load a saved version, verifying its sha256 against ``meta.json``.

        The router's case index (``<router_dir>/case-index.json`` beside the versions)
        is attached when present, so serving sees the same hints as training did.
        """
        from memabrad.learning.case_index import CaseIndex
        from memabrad.store.versions import verify_version_dir

        vdir = Path(version_dir)
        meta, files = verify_version_dir(vdir)
        if MODEL_FILE not in files:
            raise ModelFormatError(f"{vdir}: version has no {MODEL_FILE}")
        router = cls.from_bytes(files[MODEL_FILE], version_id=meta.version_id)
        if case_index is None:
            index_path = vdir.parent.parent.parent / "case-index.json"
            if index_path.is_file():
                case_index = CaseIndex.load(index_path)
        router.case_index = case_index
        return router
