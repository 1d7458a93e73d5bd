"""river's own estimator checks, run over the route model as over every river estimator."""

from __future__ import annotations

import copy

import pytest
from river import checks

from memabrad.learning.route_model import RouteModel


def _checks() -> list[tuple[str, object, dict]]:
    out = []
    for params in RouteModel._unit_test_params():
        model = RouteModel(**params)
        for check in checks.yield_checks(model):
            name = getattr(check, "__name__", None) or check.func.__name__  # type: ignore[attr-defined]
            out.append((f"{name}-{params}", check, params))
    return out


@pytest.mark.parametrize(("name", "check", "params"), _checks(), ids=[c[0] for c in _checks()])
def test_river_check(name: str, check: object, params: dict) -> None:
    """Each of river's checks raises AssertionError on a violation; returning means it held."""
    assert check(copy.deepcopy(RouteModel(**params))) is None  # type: ignore[operator]


def test_the_checks_cover_learning_cloning_and_state() -> None:
    names = {name.split("-")[0] for name, _, _ in _checks()}
    assert {"check_learn_one", "check_clone_is_independent", "check_pickling", "check_predict_one_pure",
            "check_emerging_features", "check_disappearing_features"} <= names
