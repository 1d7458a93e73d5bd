"""Runs evaluations off the event loop, one at a time, in the order they were triggered.

Sequential order keeps decisions deterministic: evaluation k+1 of a router resolves its
baseline only after evaluation k was applied, exactly as in an uninterrupted run.
The CPU work and the store writes run in a worker thread, so consumption and group
heartbeats go on. A job whose report already exists (a replay after a crash) is not
evaluated again: its saved outcome is completed (activation) and its event re-published.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from aiokafka.errors import KafkaError
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from memabrad.config import Config
from memabrad.daemon.metrics import GATE_NAMES, DaemonMetrics
from memabrad.daemon.partition import PartitionState
from memabrad.evaluation.benchmark import SuiteItem
from memabrad.evaluation.window_arrays import WindowArrays
from memabrad.learning.learner import RouterLearner
from memabrad.learning.router import ModelFormatError, Router
from memabrad.learning.snapshot import LearnerSnapshot
from memabrad.promotion.evaluation import Evaluation, apply_evaluation, evaluate
from memabrad.promotion.events import evaluation_event
from memabrad.promotion.policy import PolicySettings
from memabrad.promotion.portfolio import selector
from memabrad.promotion.report import TrainingReport
from memabrad.store.errors import StoreError, StoreWriteError, UnknownReportError
from memabrad.store.versions import RouterVersionStore
from memabrad.wire.events import RouterEventBase

log = logging.getLogger("memabrad.evaluator")
PartitionKey = tuple[str, int]
MAX_PENDING = 4
"""Looks queued or running at most before ingest waits (``wait_for_room``): each holds a frozen copy
of its challenger and window, and a daemon whose looks arrive faster than they are evaluated would
otherwise queue them without bound, scoring every trajectory against a pending look meanwhile."""


def _warm_frozen(snapshot: LearnerSnapshot) -> None:
    snapshot.frozen  # noqa: B018 - a cached property: computing it is the point
    snapshot.report_id  # noqa: B018 - the same: it fingerprints the whole model, off the loop


class Promotions(Protocol):
    """Told when an evaluation activated a new version (also when a replay completes one)."""

    async def promoted(self, report: TrainingReport) -> None: ...


@dataclass
class Job:
    partition: PartitionKey
    snapshot: LearnerSnapshot
    learner: RouterLearner | None = None
    """Told when its look is settled without a promotion (it stops scoring against that challenger)."""
    done: anyio.Event = field(default_factory=anyio.Event)


class EvaluationRunner:
    def __init__(
        self,
        cfg: Config,
        metrics: DaemonMetrics,
        publish: Callable[[RouterEventBase], Awaitable[None]],
        promotions: Promotions | None = None,
        suite: list[SuiteItem] | None = None,
    ) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.publish = publish
        self.promotions = promotions
        self.suite = suite or []
        self.settings = PolicySettings.from_config(cfg.promotion, cfg.evaluation)
        self.select = selector(self.settings, cfg.evaluation.confidence)
        self._send: MemoryObjectSendStream[Job]
        self._recv: MemoryObjectReceiveStream[Job]
        self._send, self._recv = anyio.create_memory_object_stream[Job](max_buffer_size=1_000)
        self._pending: list[Job] = []
        self._baselines: dict[str, tuple[str, Router]] = {}  # per router: (version id, its loaded model)
        self._arrays: dict[str, WindowArrays] = {}  # per router: its window as arrays since the last look
        self.last_evaluation: dict[str, dict[str, Any]] = {}
        self._stores: dict[str, RouterVersionStore] = {}

    def store(self, router_id: str) -> RouterVersionStore:
        """One store per router for the daemon's life: its version listing keeps the metas it parsed, so a
        promotion's idempotency check reads only versions it has not seen (a fresh store re-read them all)."""
        store = self._stores.get(router_id)
        if store is None:
            store = self._stores[router_id] = RouterVersionStore(self.cfg.store.base_dir, router_id)
        return store

    def evaluate(self, partition: PartitionKey, learner: RouterLearner) -> None:
        """Freeze the learner's next evaluation and queue it: the one way evaluations are started
        (threshold reached, or an admin ``evaluate_now``)."""
        self.submit(partition, learner.snapshot(self.select), learner)
        self.metrics.since_evaluation.labels(learner.router_id).set(0)

    def evaluate_now(self, state: PartitionState, router_id: str) -> bool:
        """An admin's ``evaluate_now``; False when the router has nothing to evaluate yet."""
        learner = state.learners.get(router_id)
        if learner is None or not len(learner.window):
            return False
        self.evaluate((state.topic, state.partition), learner)
        return True

    def submit(self, partition: PartitionKey, snapshot: LearnerSnapshot, learner: RouterLearner | None = None) -> None:
        # the learner scores against this look's challenger until its verdict (the shadow): build the
        # challenger's frozen scorer now, in a thread of its own, not when the job's turn comes
        threading.Thread(target=_warm_frozen, args=(snapshot,), name="frozen-scorer", daemon=True).start()
        job = Job(partition, snapshot, learner)
        self._pending.append(job)
        self._send.send_nowait(job)
        # the look's number, not its report id: that hashes the whole exported model, which is the
        # evaluator thread's work (tens of milliseconds the event loop must not spend)
        log.info("evaluation queued", extra={"router_id": snapshot.router_id, "look": snapshot.sequence})

    async def wait_partitions(self, partitions: Iterable[PartitionKey]) -> None:
        """Barrier for the checkpointer: every job of these partitions is finished."""
        keys = set(partitions)
        while True:
            waiting = [j for j in self._pending if j.partition in keys]
            if not waiting:
                return
            await waiting[0].done.wait()

    def pending_count(self) -> int:
        return len(self._pending)

    async def wait_for_room(self, stop: threading.Event) -> None:
        """Backpressure: return once fewer than ``MAX_PENDING`` looks are queued or running (or on stop).

        Ingest calls it between slices, without the state lock. Looks are still taken at the same
        record positions, so what is learned and decided does not depend on when ingest waited."""
        while len(self._pending) >= MAX_PENDING and not stop.is_set():
            with anyio.move_on_after(0.2):  # re-check the stop flag: SIGTERM must not wait on a slow look
                await self._pending[0].done.wait()

    def busy_partitions(self) -> set[PartitionKey]:
        """Partitions with an evaluation queued or running."""
        return {j.partition for j in self._pending}

    async def run(self) -> None:
        async with self._recv:
            async for job in self._recv:
                try:
                    await self._process_with_retry(job)
                finally:
                    self._pending.remove(job)
                    if job.learner is not None:  # a promotion adopted the shadow already
                        job.learner.drop_shadow(job.snapshot.sequence)
                    job.done.set()

    async def _process_with_retry(self, job: Job) -> None:
        """Disk and broker faults are retried with backoff (the job stays pending, so its partition is
        not checkpointed meanwhile); a corrupt baseline or model cannot get better and is skipped."""
        rid = job.snapshot.router_id
        failures = 0
        while True:
            try:
                await self._process(job)
                return
            except (StoreWriteError, OSError, KafkaError) as err:
                failures += 1
                backoff = min(30.0, 0.5 * 2 ** min(failures, 6))
                self.metrics.evaluation_failures.labels(rid, "retrying").inc()
                log.error("evaluation could not be saved or published; retrying", extra={
                    "router_id": rid, "report_id": job.snapshot.report_id, "error": str(err), "retry_in_s": backoff})
                await anyio.sleep(backoff)
            except (StoreError, ModelFormatError) as err:
                self.metrics.evaluation_failures.labels(rid, "skipped").inc()
                log.error("evaluation skipped: the baseline cannot be loaded", extra={
                    "router_id": rid, "report_id": job.snapshot.report_id, "error": str(err)})
                return

    # -- one job ----------------------------------------------------------------------

    def _baseline(self, store: RouterVersionStore) -> tuple[Router | None, bool]:
        current = store.get_current()
        active = current["version_id"] if current else None
        baseline_id = store.baseline_version_id()
        if baseline_id is None:
            return None, False
        kept = self._baselines.get(store.router_id)
        if kept is not None and kept[0] == baseline_id:
            router = kept[1]
        else:  # one loaded baseline per router: a promotion replaces it (each is megabytes of weights)
            router = Router.load(store.version_dir(baseline_id), case_index=False)
            router.reward_index()  # built once here; each look's copy copies it instead of rebuilding it
            self._baselines[store.router_id] = (baseline_id, router)
        return router, baseline_id != active

    def _evaluate(self, snapshot: LearnerSnapshot) -> Evaluation:
        """CPU work only; safe to abandon on timeout because it writes nothing."""
        store = self.store(snapshot.router_id)
        baseline, pinned = self._baseline(store)
        if baseline is not None:  # a copy per look: ranking caches its last task, and an evaluation abandoned
            baseline = baseline.clone()  # at its timeout may still be running beside the next one
        return evaluate(
            snapshot, baseline, self.settings, suite=self.suite, estimator=self.cfg.evaluation.estimator,
            confidence=self.cfg.evaluation.confidence, dry_run=self.cfg.promotion.dry_run,
            paused=store.promotions_paused(), baseline_pinned=pinned,
            arrays=self._arrays.setdefault(snapshot.router_id, WindowArrays()),
        )

    def _complete_saved(self, snapshot: LearnerSnapshot) -> TrainingReport | None:
        """The saved report of a replayed evaluation, with its activation finished if a crash cut it."""
        store = self.store(snapshot.router_id)
        try:
            report = TrainingReport.from_dict(store.load_report(snapshot.report_id))
        except UnknownReportError:
            return None
        if report.promoted and report.version_id:
            current = store.get_current() or {}
            activated = any(h.get("action") == "activate" and h.get("report_id") == report.report_id
                            for h in current.get("history", []))
            if not activated:
                store.activate(report.version_id, source="daemon", benchmark=None, report_id=report.report_id)
        return report

    async def _process(self, job: Job) -> None:
        snap = job.snapshot
        rid = snap.router_id
        started = time.perf_counter()
        report = await anyio.to_thread.run_sync(self._complete_saved, snap)
        if report is None:
            ev: Evaluation | None = None
            with anyio.move_on_after(self.cfg.evaluation.timeout_s):
                ev = await anyio.to_thread.run_sync(self._evaluate, snap, abandon_on_cancel=True)
            if ev is not None:
                store = self.store(rid)
                report = (await anyio.to_thread.run_sync(apply_evaluation, store, ev, "daemon")).report
        elapsed = time.perf_counter() - started
        if report is None:
            self.metrics.evaluation_timeouts.labels(rid).inc()
            log.error("evaluation timed out and was abandoned",
                      extra={"router_id": rid, "report_id": snap.report_id, "timeout_s": self.cfg.evaluation.timeout_s})
            return
        self.metrics.evaluation_duration.labels(rid).observe(elapsed)
        self.record(report)
        if report.promoted and self.promotions is not None:
            await self.promotions.promoted(report)
        await self.publish(evaluation_event(report))
        log.info("evaluation finished", extra={
            "router_id": rid, "report_id": report.report_id, "verdict": report.verdict,
            "outcome": report.outcome, "version_id": report.version_id, "seconds": round(elapsed, 3)})

    def record(self, report: TrainingReport) -> None:
        """Metrics and /status from a report."""
        rid = report.router_id
        m = self.metrics
        m.evaluations.labels(rid, report.outcome).inc()
        for name, gate in report.gates.items():
            if name not in GATE_NAMES and not name.startswith("slice"):
                continue
            if gate.get("value") is not None:
                m.gate_value.labels(rid, name).set(gate["value"])
            m.gate_threshold.labels(rid, name).set(gate["threshold"])
            m.gate_passed.labels(rid, name).set(1 if gate["passed"] else 0)
            bound = gate.get(gate.get("compared", "estimate"))
            if bound is not None:
                m.gate_bound.labels(rid, name).set(bound)
        bench = report.benchmark
        seq = bench.get("sequential")
        if seq is not None:
            m.evidence_trajectories.labels(rid).set(seq["trajectories"])
            m.evidence_looks.labels(rid).set(seq["looks"])
            m.evidence_alpha.labels(rid).set(seq["alpha"])
        for role in ("baseline", "challenger"):
            value = bench[role].get("reward")
            if value is not None:
                m.policy_reward.labels(rid, role).set(value)
        self.last_evaluation[rid] = {"report_id": report.report_id, "verdict": report.verdict,
                                     "outcome": report.outcome, "created_at": report.created_at,
                                     "version_id": report.version_id}
