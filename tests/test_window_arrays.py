"""The window arrays kept between looks are exactly a fresh conversion, and so are the estimates."""

from __future__ import annotations

import json

import numpy as np

from memabrad.config import load_config
from memabrad.evaluation.benchmark import LoggedItem
from memabrad.evaluation.compare import compare
from memabrad.evaluation.window_arrays import LoggedBatch, WindowArrays
from memabrad.learning.learner import RouterLearner
from memabrad.learning.window import BenchmarkWindow
from memabrad.sim import Simulator
from memabrad.wire.parse import parse_trajectory

DIM = 1 << 18


def _item(i: int, routes: tuple[str, ...] = ("a", "b", "c")) -> LoggedItem:
    rng = np.random.default_rng(i)
    x = {int(k): float(v) for k, v in zip(rng.integers(0, DIM, 5), rng.random(5), strict=True)}
    return LoggedItem(f"t{i}", x, routes, routes[i % len(routes)], 0.2 + 0.1 * (i % 3), i % 7 == 0,
                      float(rng.random()), bool(i % 11 == 0), 100.0 + i, f"type{i % 4}" if i % 5 else None)


def _same(a: LoggedBatch, b: LoggedBatch) -> None:
    assert a.routes == b.routes and a.groups == b.groups
    assert a.X.shape == b.X.shape and (a.X != b.X).nnz == 0
    for name in ("allowed", "logged", "p", "imputed"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for m in a.y:
        assert np.array_equal(a.y[m], b.y[m]), m


def test_kept_arrays_equal_a_fresh_conversion_as_the_window_slides() -> None:
    window = BenchmarkWindow(50)
    arrays = WindowArrays()
    i = 0
    for step in (30, 15, 40, 0, 7, 60, 3):  # fills, overflows, nothing new, more than the window at once
        for _ in range(step):
            window.append(_item(i))
            i += 1
        items = window.snapshot()
        _same(arrays.batch(items, DIM), LoggedBatch.of(items, DIM))


def test_a_new_route_or_a_restored_window_converts_afresh() -> None:
    window = BenchmarkWindow(20)
    window.extend(_item(i) for i in range(20))
    arrays = WindowArrays()
    arrays.batch(window.snapshot(), DIM)
    window.extend(_item(i, ("a", "b", "c", "d")) for i in range(20, 25))  # route "d" is new: columns change
    items = window.snapshot()
    _same(arrays.batch(items, DIM), LoggedBatch.of(items, DIM))
    restored = BenchmarkWindow.from_state(json.loads(json.dumps(window.to_state())))  # equal items, new objects
    items = restored.snapshot()
    _same(arrays.batch(items, DIM), LoggedBatch.of(items, DIM))


def test_estimates_are_unchanged_look_after_look() -> None:
    """Five looks of a learning router against a saved baseline and against the logging policy: the
    benchmark with kept arrays (and kept baseline choices) is the one computed from scratch."""
    cfg = load_config(None)
    cfg.evaluation.window_size = 600
    learner = RouterLearner.new("sim", cfg)
    learner.set_baseline(None)
    rows = Simulator(seed=4, router_id="sim").iter_generate(6000)
    baseline = None
    arrays = WindowArrays()
    for look in range(5):
        for _ in range(1200):
            learner.observe(parse_trajectory(json.dumps(next(rows)).encode()))
        snap = learner.snapshot()
        learner.drop_shadow(snap.sequence)
        for base in (None, baseline):
            kept = compare(snap.challenger, base, snap.window, arrays=arrays)
            fresh = compare(snap.challenger, base, snap.window)
            assert kept.to_dict() == fresh.to_dict(), look
        if look == 1:
            baseline = snap.challenger.clone()
            baseline.version_id = "sim-v1"
