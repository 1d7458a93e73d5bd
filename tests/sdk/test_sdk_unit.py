"""SDK pieces that need no broker: validation before sending, honest propensities, store following, case lookup."""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from polling import until, wait_until

from memabrad.learning.case_index import CaseIndex
from memabrad.learning.router import Router
from memabrad.sdk import (
    CaseLookup,
    InvalidTrajectory,
    ProducerNotRunning,
    RouterFollower,
    SyncTrajectoryProducer,
    TrajectoryProducer,
    encode_trajectory,
    make_trajectory,
)
from memabrad.sim import Simulator, fixed_policy
from memabrad.store.versions import RouterVersionStore
from memabrad.wire import parse_trajectory

ROUTER = "unit"


def _valid() -> dict[str, Any]:
    return make_trajectory({"input": "what is the latest gold price", "task_type": "qa"}, ["direct", "tool.web_search"],
                           {"route": "tool.web_search", "propensity": 0.9, "router_version": "20261125-170000"},
                           {"reward": 0.8, "error": False, "latency_ms": 900.0}, router_id=ROUTER)


def _broken(change: str) -> dict[str, Any]:
    t = _valid()
    if change == "route":
        t["decision"]["route"] = "not-a-candidate"
    elif change == "nan":
        t["outcome"]["reward"] = math.nan
    elif change == "missing":
        del t["trajectory_id"]
    elif change == "propensity":
        t["decision"]["propensity"] = 0.0
    elif change == "time":
        t["occurred_at"] = "yesterday"
    return t


@pytest.mark.parametrize(("change", "field"), [
    ("route", "decision.route"), ("nan", "outcome.reward"), ("missing", "trajectory_id"),
    ("propensity", "decision.propensity"), ("time", "occurred_at"),
])
def test_invalid_trajectory_is_refused_before_anything_is_sent(change: str, field: str) -> None:
    producer = TrajectoryProducer("127.0.0.1:1")  # never started: validation must come first
    with pytest.raises(InvalidTrajectory) as err:
        producer.send_nowait(_broken(change))
    assert err.value.field == field
    with pytest.raises(ProducerNotRunning):
        producer.send_nowait(_valid())
    assert producer.sent == 0 and producer.in_flight == 0


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b'{"schema_version": 2}', "x" * 2_000_000])
def test_invalid_bytes_are_refused_by_the_daemons_parser(raw: bytes | str) -> None:
    with pytest.raises(InvalidTrajectory):
        encode_trajectory(raw)
    sync = SyncTrajectoryProducer("127.0.0.1:1")
    with pytest.raises(InvalidTrajectory):
        sync.send(raw)
    assert sync.sent == 0


def test_encoded_bytes_parse_back_to_the_same_trajectory() -> None:
    t = _valid()
    enc = encode_trajectory(t)
    parsed = parse_trajectory(enc.value)
    assert enc.key == ROUTER.encode() and parsed.router_id == ROUTER
    assert parsed.to_json_dict() == parse_trajectory(encode_trajectory(parsed).value).to_json_dict()
    assert encode_trajectory(enc.value).value == enc.value  # bytes are sent unchanged


# -- follower without Kafka -----------------------------------------------------------------


def _trained_router(n: int = 1500, seed: int = 3) -> Router:
    router = Router()
    for t in Simulator(seed=seed).generate(n):
        x = router.featurizer.featurize(t["task"])
        d, o = t["decision"], t["outcome"]
        router.learn(x, d["route"], propensity=d["propensity"], reward=o["reward"], error=o["error"],
                     latency_ms=o["latency_ms"])
    return router


def _save(store: RouterVersionStore, router: Router, report_id: str, activate: bool = True) -> str:
    meta = store.save_version(router.version_files(), report_id=report_id)
    if activate:
        store.activate(meta.version_id, source="test")
    return meta.version_id


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("store")
    return base, _save(RouterVersionStore(base, ROUTER), _trained_router(), "r-1")


def test_propensities_are_those_of_the_exploration(trained_store: tuple[Path, str]) -> None:
    base, version = trained_store
    eps = 0.3
    follower = RouterFollower(base, ROUTER, epsilon=eps, rng=11)
    assert follower.load_active() == version
    sim = Simulator(seed=99)
    # Every single decision reports exactly the probability of the route it returned.
    for t in sim.generate(300):
        d = follower.choose(t["task"], t["candidates"])
        probs = follower.probabilities(t["task"], t["candidates"])
        k = len(t["candidates"])
        greedy = follower.choose(t["task"], t["candidates"], epsilon=0.0).route
        assert d.router_version == version
        assert d.propensity == pytest.approx((1 - eps) + eps / k if d.route == greedy else eps / k, abs=1e-12)
        assert d.propensity == pytest.approx(probs[d.route], abs=1e-12)
        assert sum(probs.values()) == pytest.approx(1.0)
        emitted = parse_trajectory(encode_trajectory(follower.make_trajectory(t["task"], t["candidates"], d,
                                                                              (0.5, False, 10.0))).value)
        assert emitted.decision.propensity == pytest.approx(d.propensity, abs=1e-12)
        assert emitted.decision.router_version == version and emitted.router_id == ROUTER
    # And the routes are drawn with those probabilities.
    task, candidates = sim.generate(1)[0]["task"], ["direct", "memory.episodic", "memory.semantic",
                                                     "tool.web_search", "tool.code", "clarify"]
    n = 20_000
    counts = Counter(follower.choose(task, candidates).route for _ in range(n))
    for route, p in follower.probabilities(task, candidates).items():
        sigma = math.sqrt(p * (1 - p) / n)
        assert abs(counts[route] / n - p) < 5 * sigma, (route, counts[route] / n, p)


def test_seeded_exploration_is_reproducible(trained_store: tuple[Path, str]) -> None:
    base, _ = trained_store
    rows = Simulator(seed=5).generate(200)
    runs = []
    for _ in range(2):
        f = RouterFollower(base, ROUTER, epsilon=0.5, rng=random.Random(7))
        f.load_active()
        runs.append([(d.route, d.propensity) for d in (f.choose(t["task"], t["candidates"]) for t in rows)])
    assert runs[0] == runs[1]


def test_an_untrained_router_serves_until_a_version_exists(tmp_path: Path) -> None:
    follower = RouterFollower(tmp_path, ROUTER, epsilon=0.2, rng=1)
    assert follower.load_active() is None and follower.version_id is None
    d = follower.choose({"input": "hello"}, ["a", "b", "c", "d"])
    assert d.router_version is None and d.propensity in (pytest.approx(0.85), pytest.approx(0.05))


def test_the_apps_own_rule_serves_until_the_first_version(trained_store: tuple[Path, str], tmp_path: Path) -> None:
    eps = 0.25
    follower = RouterFollower(tmp_path, ROUTER, epsilon=eps, rng=3, fallback=fixed_policy)
    assert follower.load_active() is None
    n, rows = 0, Simulator(seed=8).generate(2000)
    for t in rows:
        d = follower.choose(t["task"], t["candidates"])
        greedy = fixed_policy(t["task"], t["candidates"])
        k = len(t["candidates"])
        assert d.router_version is None
        assert d.propensity == pytest.approx((1 - eps) + eps / k if d.route == greedy else eps / k, abs=1e-12)
        assert follower.probabilities(t["task"], t["candidates"])[d.route] == pytest.approx(d.propensity)
        n += d.route == greedy
    assert abs(n / len(rows) - (1 - eps) - eps / 6) < 0.05  # mostly 6 candidates, some 3-5
    with pytest.raises(ValueError, match="not a candidate"):
        RouterFollower(tmp_path, ROUTER, fallback=lambda task, cands: "nope").choose({"input": "x"}, ["a"])
    base, version = trained_store
    trained = RouterFollower(base, ROUTER, fallback=fixed_policy)
    trained.load_active()
    assert trained.choose(rows[0]["task"], rows[0]["candidates"]).router_version == version  # the version takes over


async def test_store_polling_follows_current_json_and_refuses_corrupt_versions(tmp_path: Path) -> None:
    store = RouterVersionStore(tmp_path, ROUTER)
    v1 = _save(store, _trained_router(300, seed=1), "r-1")
    follower = RouterFollower(tmp_path, ROUTER, poll_interval_s=0.05)
    await follower.start()
    try:
        assert follower.version_id == v1 and follower.swaps[-1].cause == "start"
        v2 = _save(store, _trained_router(300, seed=2), "r-2")
        assert await follower.wait_for_version(v2, timeout=5) == v2
        assert follower.swaps[-1].cause == "store" and follower.swaps[-1].previous_version_id == v1
        # Tamper with v1, then make current.json point at it (as a rollback done behind our back would).
        model = store.version_dir(v1) / "model.json"
        model.write_bytes(model.read_bytes().replace(b'"reward_n":', b'"reward_n": ', 1))
        current = store.get_current()
        assert current is not None
        store.current_path.write_text(json.dumps({**current, "version_id": v1}), encoding="utf-8")
        await until(lambda: follower.load_failures, 5.0, "the corrupt version to be tried")
        assert follower.version_id == v2  # still serving the good one
        assert "sha256" in (follower.last_error or "") and follower.failures[-1].version_id == v1
        await asyncio.sleep(0.3)  # several polls: a refused version is not retried on every poll
        assert follower.load_failures == 1
    finally:
        await follower.stop()


def test_a_sync_app_runs_the_follower_in_a_thread(tmp_path: Path) -> None:
    store = RouterVersionStore(tmp_path, ROUTER)
    v1 = _save(store, _trained_router(300, seed=1), "r-1")
    follower = RouterFollower(tmp_path, ROUTER, poll_interval_s=0.05).start_in_thread()
    try:
        assert follower.version_id == v1
        v2 = _save(store, _trained_router(300, seed=2), "r-2")
        wait_until(lambda: follower.version_id == v2, 5.0, "the follower thread to load v2", interval=0.01)
        assert follower.choose({"input": "hello"}, ["a", "b"]).router_version == v2
    finally:
        follower.stop_in_thread()
    assert not any(t.name.startswith("memabrad-sdk-follower") for t in threading.enumerate())


# -- case lookup ------------------------------------------------------------------------------


def test_case_lookup_reloads_when_the_daemon_rewrites_the_index(tmp_path: Path) -> None:
    lookup = CaseLookup(tmp_path, ROUTER, check_interval_s=0)
    assert lookup.lookup("latest gold price?") is None and len(lookup) == 0
    path = RouterVersionStore(tmp_path, ROUTER).case_index_path
    idx = CaseIndex()
    idx.add("Latest gold price?", trajectory_id="t1", route="tool.web_search", reward=0.7, error=False,
            latency_ms=800)
    idx.save(path)
    m = lookup.lookup("latest gold price?")
    assert m is not None and m.case.route == "tool.web_search" and m.similarity == pytest.approx(1.0)
    assert lookup.best_route("please latest gold price?") in (None, "tool.web_search")  # near duplicate or unseen
    idx.add("Latest gold price?", trajectory_id="t2", route="direct", reward=0.95, error=False, latency_ms=300)
    idx.save(path)
    assert lookup.best_route("Latest gold price?") == "direct" and lookup.loads == 2
    path.write_text("{not json", encoding="utf-8")
    assert lookup.best_route("Latest gold price?") == "direct"  # the broken file is refused, the old index kept
    assert lookup.load_failures == 1 and "CorruptFileError" in (lookup.last_error or "")
