"""The offline cycle — the seed's ``run_online_learning_workflow`` — over trajectory files.

Reads JSON/JSONL trajectory files, skips ids already in the seen store, feeds the new
ones to the router's persisted learner (the same ``RouterLearner`` the daemon uses),
evaluates against the active or pinned baseline, and applies the decision through the
one promotion path. ``dry_run`` saves only the report.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memabrad.config import Config, load_config
from memabrad.evaluation.benchmark import load_suite
from memabrad.learning.case_index import CaseIndex
from memabrad.learning.features import TaskView
from memabrad.learning.learner import RouterLearner
from memabrad.learning.router import Router
from memabrad.learning.task_identity import case_query
from memabrad.learning.window import is_holdout
from memabrad.promotion.evaluation import apply_evaluation, build_report, evaluate
from memabrad.promotion.policy import PolicySettings
from memabrad.promotion.portfolio import selector
from memabrad.store.atomic import atomic_write_json, read_json
from memabrad.store.seen import SeenTrajectoryStore
from memabrad.store.versions import RouterVersionStore, UnknownVersionError
from memabrad.wire.parse import InvalidTrajectory, parse_trajectory
from memabrad.wire.trajectory import Trajectory

LEARNER_STATE_FILE = "learner-state.json"
MAX_LISTED_ERRORS = 20


class CycleInputError(ValueError):
    """Bad trajectory files or arguments; the message names the file, line and field."""


@dataclass(frozen=True)
class SourceRecord:
    origin: str  # "path:line"
    trajectory: Trajectory


def trajectory_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise CycleInputError(f"trajectories directory {directory} does not exist")
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in (".json", ".jsonl"))


def _records(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line, raw JSON) for each trajectory in a JSONL file, or in a JSON object/array file."""
    data = path.read_bytes()
    if path.suffix == ".json":
        stripped = data.lstrip()
        if stripped.startswith(b"["):
            try:
                items = json.loads(data)
            except ValueError as err:
                raise CycleInputError(f"{path}: not valid JSON: {err}") from None
            for i, item in enumerate(items, 1):
                yield i, json.dumps(item).encode("utf-8")
            return
        if stripped.startswith(b"{") and b"\n{" not in stripped:
            yield 1, data
            return
    for n, line in enumerate(data.split(b"\n"), 1):
        if line.strip():
            yield n, line


def read_trajectories(directory: Path, max_bytes: int = 1_048_576) -> list[SourceRecord]:
    """Parse every file; any invalid record stops the cycle with a list of what is wrong."""
    out: list[SourceRecord] = []
    errors: list[str] = []
    for path in trajectory_files(directory):
        for line, raw in _records(path):
            try:
                out.append(SourceRecord(f"{path}:{line}", parse_trajectory(raw, max_bytes=max_bytes)))
            except InvalidTrajectory as err:
                where = f" ({err.field})" if err.field else ""
                errors.append(f"{path}:{line}{where}: {err.reason}")
    if errors:
        listed = "\n  ".join(errors[:MAX_LISTED_ERRORS])
        more = f"\n  ... and {len(errors) - MAX_LISTED_ERRORS} more" if len(errors) > MAX_LISTED_ERRORS else ""
        raise CycleInputError(f"{len(errors)} invalid trajectory record(s), nothing changed:\n  {listed}{more}")
    return out


def _load_learner(router_dir: Path, router_id: str, cfg: Config) -> RouterLearner:
    path = router_dir / LEARNER_STATE_FILE
    if path.is_file():
        return RouterLearner.from_state(read_json(path), cfg)
    return RouterLearner.new(router_id, cfg)


def run_online_learning_workflow(
    base_dir: str | Path | None = None,
    trajectories_dir: str | Path | None = None,
    *,
    router_id: str = "default",
    min_new_trajectories: int | None = None,
    seen_trajectory_store: str | Path | None = None,
    dry_run: bool | None = None,
    baseline_version: str | None = None,
    case_index_path: str | Path | None = None,
    rebuild_case_index: bool = False,
    config: Config | None = None,
) -> dict[str, Any]:
    """Run one online-learning cycle and return its result (the training report, or why none was made)."""
    cfg = config or load_config(None)
    base = Path(base_dir if base_dir is not None else cfg.store.base_dir)
    store = RouterVersionStore(base, router_id)
    router_dir = base / router_id
    traj_dir = Path(trajectories_dir) if trajectories_dir is not None else base / "trajectories"
    threshold = min_new_trajectories if min_new_trajectories is not None else cfg.evaluation.min_new_trajectories
    if threshold < 0:
        raise CycleInputError("--min-new-trajectories must be >= 0")
    seen = SeenTrajectoryStore(Path(seen_trajectory_store) if seen_trajectory_store
                               else router_dir / "seen-trajectories.json")
    seen.load()
    is_dry = cfg.promotion.dry_run if dry_run is None else dry_run
    index_path = Path(case_index_path) if case_index_path else router_dir / "case-index.json"

    baseline: Router | None = None
    baseline_id = store.baseline_version_id(baseline_version)
    if baseline_version is not None and not store.has_version(baseline_version):
        raise CycleInputError(f"--baseline-version {baseline_version}: no such version in {store.versions_dir}")

    records = read_trajectories(traj_dir, cfg.kafka.max_message_bytes)
    other = sum(1 for r in records if r.trajectory.router_id != router_id)
    fresh: list[Trajectory] = []
    batch_ids: set[str] = set()
    for r in records:
        t = r.trajectory
        if t.router_id != router_id or t.trajectory_id in seen or t.trajectory_id in batch_ids:
            continue
        batch_ids.add(t.trajectory_id)
        fresh.append(t)

    base_result: dict[str, Any] = {
        "router_id": router_id,
        "trajectories_read": len(records),
        "other_router_trajectories": other,
        "new_trajectories": len(fresh),
        "already_seen": len(records) - other - len(fresh),
        "min_new_trajectories": threshold,
    }
    if len(fresh) < threshold or not fresh:
        if rebuild_case_index and not is_dry:
            build_case_index([r.trajectory for r in records if r.trajectory.router_id == router_id],
                             cfg).save(index_path)
            base_result["case_index_rebuilt"] = str(index_path)
        return {**base_result, "status": "skipped",
                "reason": f"{len(fresh)} new trajectories < min_new_trajectories {threshold}; nothing changed"}

    learner = _load_learner(router_dir, router_id, cfg)
    if case_index_path and index_path.is_file():
        learner.case_index = CaseIndex.load(index_path, capacity=cfg.case_index.capacity,
                                            similarity_threshold=cfg.case_index.similarity_threshold)
    if baseline_id is not None:
        try:
            baseline = Router.load(store.version_dir(baseline_id), case_index=learner.case_index)
        except UnknownVersionError as err:
            raise CycleInputError(str(err)) from None
    learner.set_baseline(baseline)
    for t in fresh:
        learner.observe(t)
    settings = PolicySettings.from_config(cfg.promotion, cfg.evaluation)
    snapshot = learner.snapshot(selector(settings, cfg.evaluation.confidence))
    suite = load_suite(cfg.evaluation.suite_path) if cfg.evaluation.suite_path else ()
    ev = evaluate(
        snapshot, baseline, settings, suite=suite,
        estimator=cfg.evaluation.estimator, confidence=cfg.evaluation.confidence, dry_run=is_dry,
        paused=store.promotions_paused(), baseline_pinned=baseline_id is not None and baseline_id !=
        (store.get_current() or {}).get("version_id"),
    )
    if ev.decision.action == "dry_run":
        report = build_report(ev, version_id=None,
                              previous_version_id=(store.get_current() or {}).get("version_id")).to_dict()
        store.save_report(report)
        return {**base_result, "status": "evaluated", **report}

    applied = apply_evaluation(store, ev, "cycle")
    if rebuild_case_index:
        learner.case_index = build_case_index([r.trajectory for r in records if r.trajectory.router_id == router_id],
                                              cfg)
    learner.case_index.save(index_path)
    if index_path != router_dir / "case-index.json":
        learner.case_index.save(router_dir / "case-index.json")
    atomic_write_json(router_dir / LEARNER_STATE_FILE, learner.to_state())
    seen.add_many(t.trajectory_id for t in fresh)
    seen.save()
    return {**base_result, "status": "evaluated", **applied.report.to_dict()}


def build_case_index(trajectories: list[Trajectory], cfg: Config) -> CaseIndex:
    """A fresh case index over the given trajectories (``--rebuild-case-index``)."""
    idx = CaseIndex(cfg.case_index.capacity, cfg.case_index.similarity_threshold)
    for t in trajectories:
        key, hashes = case_query(TaskView.of(t.task))  # as the learner keys it: the text and the task's fields
        idx.add(t.task.input, trajectory_id=t.trajectory_id, route=t.decision.route, reward=t.outcome.reward,
                error=t.outcome.error, latency_ms=t.outcome.latency_ms, task_type=t.task.task_type,
                occurred_at=t.occurred_at.isoformat(), hashes=hashes, key=key,
                learned=not is_holdout(t.trajectory_id, cfg.evaluation.holdout_fraction))
    return idx
