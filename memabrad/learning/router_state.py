"""A router from its exported state (``Router.from_state``), and an independent copy (``Router.clone``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memabrad.learning.guardrail_prices import Prices
from memabrad.learning.number_scales import NumberScales
from memabrad.learning.outcome_noise import OutcomeNoise
from memabrad.learning.outcome_scale import OutcomeScale
from memabrad.learning.route_model import ETA
from memabrad.learning.route_state import route_from_state, route_from_v1
from memabrad.learning.router import MODEL_FORMAT, MODEL_FORMAT_V1, PESSIMISM, ModelFormatError, Router
from memabrad.learning.shared_part import SharedPart
from memabrad.learning.stacking_pool import StackingPool
from memabrad.learning.text_groups import TextGroups


def router_from_state(state: Mapping[str, Any], version_id: str | None = None) -> Router:
    """A router from ``export_state``'s output (or a ``memabrad.router/v1`` model)."""
    fmt = state.get("format") if isinstance(state, Mapping) else None
    if fmt not in (MODEL_FORMAT, MODEL_FORMAT_V1):
        raise ModelFormatError(f"not a {MODEL_FORMAT} model")
    try:
        router = Router(
            hash_bits=int(state["hash_bits"]),
            learning_rate=float(state["learning_rate"]) if fmt == MODEL_FORMAT else ETA,
            l2=float(state["l2"]),
            max_importance_weight=float(state["max_importance_weight"]),
            pessimism=float(state.get("pessimism", PESSIMISM)),
            version_id=version_id,
            reward_sum=float(state["reward_sum"]),
            reward_sq=float(state.get("reward_sq", 0.0)),
            reward_n=int(state["reward_n"]),
            features_version=int(state.get("features_version", 1)),
            shared=SharedPart.from_state(state["shared"]) if "shared" in state else None,
            prices=Prices.from_state(state),
            text_groups=TextGroups.from_state(state.get("text_groups")),
            scale=OutcomeScale.from_state(state.get("outcome_scale")),
            history_correction=state.get("stacking_history") == "harmonic",  # a model saved before: as it was
            numbers=NumberScales.from_state(state.get("number_scales")),
            number_fit=state.get("number_fit") == "least_squares",  # a model saved before: AdaGrad, as it was
            noise=OutcomeNoise.from_state(state.get("outcome_noise")),  # a model saved before: None, steps as it did
        )
        load = route_from_state if fmt == MODEL_FORMAT else route_from_v1
        for name, data in state["routes"].items():
            router.routes[str(name)] = model = load(data, router.learning_rate, router.l2)
            model.history_correction = router.history_correction
        # a model saved before the routes' evidence was pooled: the pool of its routes' sums from here on
        router.pool = StackingPool.from_state(state.get("stacking_pool"), router.routes.values())
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise ModelFormatError(f"malformed router model: {err!r}") from None
    return router


def clone_router(r: Router) -> Router:
    """``Router.clone``."""
    twin = Router(r.hash_bits, r.learning_rate, r.l2, r.max_importance_weight, r.pessimism, r.version_id,
                  {name: m.copy() for name, m in r.routes.items()}, r.reward_sum, r.reward_sq, r.reward_n,
                  r.case_index, r.features_version, None if r.shared is None else r.shared.copy(), r.prices.copy(),
                  r.text_groups.prototypes(), r.scale.copy(), r.history_correction,
                  r.pool.copy(), r.numbers.copy(), r.number_fit, None if r.noise is None else r.noise.copy())
    twin._index = r._index.copy() if r._index is not None else None
    return twin
