"""A route model's saved state (``RouteModel.to_state``), and a route read back from it or from a
``memabrad.router/v1`` model's, converted exactly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memabrad.learning.number_part import NumberPart
from memabrad.learning.route_model import RouteModel
from memabrad.learning.route_parts import ETA, errors_for_rate, sigmoid, table_from_state, table_from_v1, table_state
from memabrad.learning.shared_part import SharedWeight


def route_to_state(m: RouteModel) -> dict[str, Any]:
    """``RouteModel.to_state``: the route as plain data, its table packed (``route_parts.table_state``)."""
    return {
        "n": m.n, "w_sum": m.w_sum, "reward_mean": m.reward_mean, "errors": m.errors,
        "latency_mean": m.latency_mean, "s_stack": [list(v) for v in m.s_stack],
        "s_res": list(m.s_res), "groups": {k: list(v) for k, v in sorted(m.groups.items())},
        "novel_n": m.novel_n, **({} if m.prior is None else {"prior": [list(h) for h in m.prior]}),
        **({"number_part": m.number_part.to_state()} if len(m.number_part) else {}),
        "shared_weight": m.shared_weight.to_state(),
        **table_state(m._col, m._a),
    }


def route_from_state(s: Mapping[str, Any], eta: float = ETA, l2: float = 0.0) -> RouteModel:
    """A route from ``RouteModel.to_state``'s output."""
    m = RouteModel(eta, l2)
    m.n, m.w_sum, m.reward_mean = int(s["n"]), float(s["w_sum"]), float(s["reward_mean"])
    m.errors, m.latency_mean = float(s["errors"]), float(s["latency_mean"])
    m.s_stack, m.s_res = [[float(v) for v in row] for row in s["s_stack"]], [float(v) for v in s["s_res"]]
    m._lambdas = m._consts = None
    m.groups = {str(k): [float(v) for v in row] for k, row in s["groups"].items()}
    m.novel_n = float(s.get("novel_n", s["n"]))  # saved before it was counted: at most every event
    m.prior = [[float(v) for v in h] for h in s["prior"]] if "prior" in s else None
    m._col, m._a = table_from_state(s)
    m.number_part = NumberPart.from_state(s["number_part"]) if "number_part" in s else NumberPart()
    m.shared_weight = SharedWeight.from_state(s.get("shared_weight"))
    return m


def route_from_v1(s: Mapping[str, Any], eta: float = ETA, l2: float = 0.0) -> RouteModel:
    """A route of a ``memabrad.router/v1`` model (river SGD heads: intercept + weights), converted
    exactly: the intercepts become the means, the weights the contextual parts with weight 1 and
    no groups; its standard error is unknown (0: no pessimism), as v1 had none."""
    m = RouteModel(eta, l2)
    m.n = int(s["n"])
    m.w_sum = float(m.n)
    m.reward_mean = float(s["reward"]["intercept"])
    m.errors = errors_for_rate(sigmoid(float(s["error"]["intercept"])), m.n)
    m.latency_mean = float(s["latency"]["intercept"])
    m.s_stack = [[0.0, 0.0, 1.0, 0.0, 1.0] for _ in range(3)]  # lambda_g = 0, lambda_f = 1
    m._lambdas = m._consts = None
    m._col, m._a = table_from_v1(s)
    return m


def copy_route(m: RouteModel) -> RouteModel:
    """``RouteModel.copy``: a trained, independent twin."""
    twin = RouteModel(m.eta, m.l2)
    twin.__dict__.update(m.__dict__)
    twin.s_stack = [list(v) for v in m.s_stack]
    twin._lambdas = twin._consts = None
    twin.s_res = list(m.s_res)
    twin.prior = None if m.prior is None else [list(h) for h in m.prior]
    twin.groups = {k: list(v) for k, v in m.groups.items()}
    twin._col = dict(m._col)
    twin._a = m._a.copy()
    twin.number_part = m.number_part.copy()
    twin.shared_weight = m.shared_weight.copy()
    return twin
