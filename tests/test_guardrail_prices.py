"""Guardrail prices: scores pay for predicted latency and errors, and the prices are learned at looks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from memabrad.config import Config, load_config
from memabrad.learning.batch import best_columns, feature_matrix, predict_all
from memabrad.learning.frozen import FrozenScorer
from memabrad.learning.guardrail_prices import Prices, Repricer
from memabrad.learning.learner import RouterLearner
from memabrad.learning.progressive import ProgressiveEvidence
from memabrad.learning.router import Router
from memabrad.sim.helpdesk import ERROR_RATE, LATENCY_MS, HelpdeskWorkload
from memabrad.wire.trajectory import Trajectory

ROUTES = ["direct", "tool.web_search"]


def _router(prices: Prices | None = None) -> Router:
    """``tool.web_search`` earns more but takes 3 s; ``direct`` answers in 0.2 s."""
    r = Router()
    for i in range(60):
        x = r.featurizer.featurize({"input": f"question {i % 7} about prices", "task_type": "qa"})
        r.learn(x, "tool.web_search", propensity=0.5, reward=0.8, error=False, latency_ms=3000, group="qa")
        r.learn(x, "direct", propensity=0.5, reward=0.6, error=i % 10 == 0, latency_ms=200, group="qa")
    if prices is not None:
        r.prices = prices
    return r


def test_a_latency_price_turns_the_choice_to_the_fast_route_and_every_scorer_agrees() -> None:
    x = _router().featurizer.featurize({"input": "question 3 about prices", "task_type": "qa"})
    assert _router().best(x, ROUTES, "qa") == "tool.web_search"
    priced = _router(Prices(latency_per_s=0.2))
    assert priced.best(x, ROUTES, "qa") == "direct"
    assert FrozenScorer(priced).scores(x, ROUTES, "qa") == priced.scores(x, ROUTES, "qa")  # exactly
    batch = predict_all(priced, feature_matrix([x], 1 << priced.hash_bits), ROUTES, ["qa"])
    assert ROUTES[int(best_columns(batch["score"], np.ones((1, 2), dtype=bool))[0])] == "direct"
    assert batch["score"][0] == pytest.approx([priced.scores(x, ROUTES, "qa")[r] for r in ROUTES], abs=1e-9)


def test_prices_travel_with_the_model_and_an_unpriced_model_exports_as_before() -> None:
    assert "guardrail_prices" not in _router().export_state()
    priced = _router(Prices(0.2, 1.5))
    again = Router.from_state(json.loads(priced.to_bytes()))
    assert again.prices == Prices(0.2, 1.5) and priced.clone().prices == Prices(0.2, 1.5)


def _evidence(latency_delta_ms: float, error_delta: float, n: int = 1000,
              ev: ProgressiveEvidence | None = None, *, predicted_error_delta: float | None = None,
              error_noise: float = 0.01) -> ProgressiveEvidence:
    """``n`` more trajectories whose error-rate and latency deltas average as given (to ``ev`` if given);
    the outcome model predicts ``predicted_error_delta`` (default: the observed one); ``error_noise``: the
    spread of the observed error delta per trajectory."""
    ev = ev if ev is not None else ProgressiveEvidence()
    pred = error_delta if predicted_error_delta is None else predicted_error_delta
    for i in range(n):
        wiggle = 1.0 if i % 2 else -1.0
        ev.add((0.7, error_delta + error_noise * wiggle, 800.0 + latency_delta_ms + 50 * wiggle), (0.5, 0.0, 800.0),
               weight=1.0, unsupported=False, at=str(i), error_parts=(pred, error_noise ** 2))
    return ev


def test_prices_rise_over_the_aim_fall_under_it_and_stay_zero_without_pressure() -> None:
    rep = Repricer(error_allowance=0.02, latency_allowance_ms=250.0)
    p, spread = Prices(), 0.3
    ev = _evidence(400.0, 0.0)
    rep.look([("careful", p, spread, ev)])
    assert p.latency_per_s > 0 and p.error == 0.0
    high = p.latency_per_s
    rep.look([("careful", p, spread, _evidence(-300.0, 0.0, ev=ev))])  # judged on what came since the last look
    assert 0 <= p.latency_per_s < high
    calm = Prices()
    for _ in range(5):
        rep.look([("calm", calm, spread, _evidence(50.0, 0.002))])
    assert calm == Prices()  # the member ranks exactly as without prices


def test_the_error_price_steers_the_upper_end_of_predicted_errors_anchored_to_the_doubly_robust_level() -> None:
    """Errors the outcome model predicts lower than they are (a member ranking by predicted errors picks
    where they are predicted low) still raise the price; so does evidence too noisy to rule out a breach,
    though its estimate is harmless (the gate judges an upper bound); precise evidence whose upper end is
    under half the allowance moves nothing, over it raises the price; a price falls once the upper end
    is well under the aim."""
    rep, spread = Repricer(error_allowance=0.02, latency_allowance_ms=250.0), 0.3
    flattered = Prices()
    rep.look([("flattered", flattered, spread,
               _evidence(0.0, 0.03, 5000, predicted_error_delta=0.0, error_noise=0.3))])
    assert flattered.error > 0
    noisy = Prices()
    rep.look([("noisy", noisy, spread, _evidence(0.0, 0.0, predicted_error_delta=0.0, error_noise=1.0))])
    assert noisy.error > 0 and noisy.latency_per_s == 0.0
    under, over = Prices(), Prices()
    rep.look([("under", under, spread, _evidence(0.0, 0.006)), ("over", over, spread, _evidence(0.0, 0.016))])
    assert under == Prices() and over.error > 0
    high = over.error
    rep.look([("over", over, spread, _evidence(0.0, -0.01, 20000))])
    assert 0.0 <= over.error < high


def _cfg(**env: str) -> Config:
    return load_config(None, {f"MEMABRAD_{k}": v for k, v in env.items()})


def _learn(learner: RouterLearner, rows: list[Trajectory]) -> None:
    for t in rows:
        learner.observe(t)
        if learner.counters.since_evaluation >= 1000:
            learner.drop_shadow(learner.snapshot().sequence)


@pytest.fixture(scope="module")
def helpdesk() -> list[Trajectory]:
    return [Trajectory.model_validate(r) for r in HelpdeskWorkload(seed=3).generate(8000)]


def test_on_the_help_desk_the_priced_member_routes_faster_and_replays_identically(
        helpdesk: list[Trajectory]) -> None:
    """The help desk's best-reward routes are slow (ranking by reward alone is ~300 ms slower than the
    logging agent, beyond the 250 ms allowance, and more error-prone): the default portfolio's priced member
    learns a price and routes to faster, more reliable routes than it would unpriced; a learner restored mid-stream
    from its state reprices exactly as the uninterrupted one; the saved version carries the prices."""
    learner = RouterLearner.new("helpdesk", _cfg())
    _learn(learner, helpdesk[:4000])
    restored = RouterLearner.from_state(json.loads(json.dumps(learner.to_state())), _cfg())
    _learn(learner, helpdesk[4000:])
    _learn(restored, helpdesk[4000:])
    main, careful = learner.members()
    assert main.prices is None and careful.prices is not None and careful.prices.active
    assert restored.members()[1].prices == careful.prices
    saved = careful.frozen_router()
    assert Router.from_state(json.loads(saved.to_bytes())).prices == careful.prices

    def guardrails(r: Router) -> tuple[float, float]:
        """Exact mean error rate and latency of ``r``'s choices on the last 1,000 tasks."""
        tasks = [t.task for t in helpdesk[-1000:]]
        picks = [r.best(r.featurizer.featurize(task, learner.case_index.hint(task.input)), list(LATENCY_MS),
                        task.task_type) for task in tasks]
        return (sum(ERROR_RATE[p] for p in picks) / len(picks), sum(LATENCY_MS[p] for p in picks) / len(picks))

    unpriced = careful.frozen_router()
    unpriced.prices = Prices()
    (err, lat), (err0, lat0) = guardrails(saved), guardrails(unpriced)
    assert err < err0 - 0.005 and lat < lat0 - 100
