"""The evaluation runner: a stuck evaluation is abandoned after the timeout and writes nothing."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import anyio

from memabrad.config import Config
from memabrad.daemon.evaluator import EvaluationRunner
from memabrad.daemon.metrics import DaemonMetrics
from memabrad.learning.learner import RouterLearner
from memabrad.sim import Simulator
from memabrad.store.versions import RouterVersionStore
from memabrad.wire.parse import parse_trajectory


def _runner(tmp_path: Path, timeout_s: float) -> tuple[EvaluationRunner, list[Any], Config]:
    cfg = Config()
    cfg.store.base_dir = str(tmp_path)
    cfg.evaluation.timeout_s = timeout_s
    published: list[Any] = []

    async def publish(ev: Any) -> None:
        published.append(ev)

    return EvaluationRunner(cfg, DaemonMetrics(), publish), published, cfg


def _snapshot(cfg: Config):  # type: ignore[no-untyped-def]
    learner = RouterLearner.new("default", cfg)
    for row in Simulator(seed=3).generate(1500):
        learner.observe(parse_trajectory(json.dumps(row)))
    return learner.snapshot()


def test_a_stuck_evaluation_is_abandoned_and_writes_nothing(tmp_path: Path) -> None:
    runner, published, cfg = _runner(tmp_path, timeout_s=0.5)
    release = threading.Event()

    def stuck(snapshot: Any) -> Any:
        release.wait(30)
        raise RuntimeError("never used")

    runner._evaluate = stuck  # type: ignore[method-assign]
    snap = _snapshot(cfg)

    async def go() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(runner.run)
            runner.submit(("t", 0), snap)
            with anyio.fail_after(10):
                await runner.wait_partitions([("t", 0)])
            tg.cancel_scope.cancel()

    anyio.run(go)
    release.set()
    assert published == []
    assert runner.metrics.evaluation_timeouts.labels("default")._value.get() == 1
    store = RouterVersionStore(tmp_path, "default")
    assert store.list_reports() == [] and store.list_versions() == []


def test_an_evaluation_is_saved_before_its_event_is_published(tmp_path: Path) -> None:
    runner, published, cfg = _runner(tmp_path, timeout_s=60)
    store = RouterVersionStore(tmp_path, "default")
    seen_at_publish: list[bool] = []

    async def publish(ev: Any) -> None:
        seen_at_publish.append((store.reports_dir / f"{ev.report_id}.json").is_file())
        published.append(ev)

    runner.publish = publish
    snap = _snapshot(cfg)

    async def go() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(runner.run)
            runner.submit(("t", 0), snap)
            with anyio.fail_after(60):
                await runner.wait_partitions([("t", 0)])
            tg.cancel_scope.cancel()

    anyio.run(go)
    assert len(published) == 1 and seen_at_publish == [True]
    assert published[0].report_id == snap.report_id


def test_one_loaded_baseline_per_router_a_promotion_replaces_it(tmp_path: Path) -> None:
    """The runner keeps the baseline it loaded for the next look, and only the current one: a long run's
    promotions do not pile up models in memory."""
    runner, _, cfg = _runner(tmp_path, timeout_s=60)
    store = RouterVersionStore(tmp_path, "default")
    assert runner._baseline(store) == (None, False)  # nothing active: the logging agent
    router = _snapshot(cfg).challenger
    ids = []
    for k in range(2):
        meta = store.save_version(router.version_files(), report_id=f"rep-{k}")
        store.activate(meta.version_id, source="test")
        ids.append(meta.version_id)
        first, pinned = runner._baseline(store)
        again, _ = runner._baseline(store)
        assert first is again and first.version_id == meta.version_id and not pinned
    assert list(runner._baselines) == ["default"] and runner._baselines["default"][0] == ids[1]


def test_ingest_waits_while_too_many_looks_are_pending(tmp_path: Path) -> None:
    """Backpressure: ``wait_for_room`` holds ingest while MAX_PENDING looks are queued or running,
    lets it go as soon as one finishes, and never holds it past a stop request."""
    from memabrad.daemon.evaluator import MAX_PENDING, Job

    runner, _, cfg = _runner(tmp_path, timeout_s=5)
    snap = _snapshot(cfg)
    jobs = [Job(("t", 0), snap) for _ in range(MAX_PENDING)]
    runner._pending.extend(jobs)
    stop = threading.Event()
    passed: list[int] = []

    async def go() -> None:
        async def ingest() -> None:
            await runner.wait_for_room(stop)
            passed.append(len(runner._pending))

        async with anyio.create_task_group() as tg:
            tg.start_soon(ingest)
            await anyio.wait_all_tasks_blocked()
            assert passed == []  # full: ingest waits
            runner._pending.remove(jobs[0])
            jobs[0].done.set()
            with anyio.fail_after(5):
                while not passed:
                    await anyio.wait_all_tasks_blocked()
                    await anyio.sleep(0)
        assert passed == [MAX_PENDING - 1]

        runner._pending.append(Job(("t", 0), snap))  # full again; a stop request lets ingest go
        stop.set()
        with anyio.fail_after(5):
            await runner.wait_for_room(stop)

    anyio.run(go)
