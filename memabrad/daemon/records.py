"""The per-record step: what one trajectory record does to its partition's state.

Pure and synchronous: it parses, dedupes, learns and watches the router's guard, and
reports what happened as an ``Outcome``. Everything with I/O (dead letters, the guard's
rollback, queuing an evaluation, metrics) is the caller's, so this step can be tested,
timed and reasoned about on its own, and replays after a crash take exactly the same
steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from memabrad.config import Config
from memabrad.daemon.admin import router_of_key
from memabrad.daemon.partition import UNKNOWN_ROUTER, PartitionState
from memabrad.learning.learner import RouterLearner
from memabrad.promotion.guard import GuardSettings, GuardTrip
from memabrad.wire.ids import dedupe_key, trajectory_digest
from memabrad.wire.parse import InvalidTrajectory, parse_trajectory
from memabrad.wire.trajectory import Trajectory

Result = Literal["accepted", "duplicate", "invalid"]  # the values of the trajectories metric's ``result`` label
ACCEPTED: Final = "accepted"
DUPLICATE: Final = "duplicate"
INVALID: Final = "invalid"


@dataclass(slots=True)
class Outcome:
    """What one record did. ``invalid``: dead-letter it for this reason. ``trip``: the router's
    guard fired. ``evaluate``: the router reached its evaluation threshold (snapshot due).
    (Not frozen: a frozen dataclass costs a microsecond more per record to build.)"""

    router_id: str
    result: Result
    learner: RouterLearner | None = None
    invalid: InvalidTrajectory | None = None
    trip: GuardTrip | None = None
    evaluate: bool = False


def parse(value: bytes | None, max_bytes: int) -> Trajectory | InvalidTrajectory:
    """A trajectory, or why the record is not one (returned, not raised: it is an outcome)."""
    try:
        return parse_trajectory(value if value is not None else b"", max_bytes=max_bytes)
    except InvalidTrajectory as err:
        return err


class RecordStep:
    """Applies one parsed record to a partition state; the router's learner must exist already
    (the caller adopts a new router first, so it learns with its baseline from the start)."""

    def __init__(self, cfg: Config) -> None:
        self.min_new = cfg.evaluation.min_new_trajectories
        self.guard_settings = GuardSettings.from_config(cfg.guard, cfg.promotion)

    def apply(self, state: PartitionState, record: Trajectory | InvalidTrajectory, key: bytes | None) -> Outcome:
        """``key``: the record's Kafka key, which names the router an invalid record is counted for."""
        if isinstance(record, InvalidTrajectory):
            rid = state.count_invalid(router_of_key(key) if key else UNKNOWN_ROUTER)
            return Outcome(rid, INVALID, invalid=record)
        t = record
        rid = t.router_id
        learner = state.learners[rid]
        digest = trajectory_digest(t.trajectory_id)
        h = dedupe_key(digest)
        if state.dedupe.contains_hash(h):
            learner.counters.duplicates += 1
            return Outcome(rid, DUPLICATE, learner)
        learner.observe(t, digest)
        state.dedupe.add_hash(h)
        trip = None
        guard = state.guards.get(rid)
        if guard is not None and guard.armed:
            o, d = t.outcome, t.decision
            trip = guard.observe(d.router_version, o.reward, o.error, o.latency_ms, self.guard_settings,
                                 propensity=d.propensity, n_candidates=len(t.candidates))
        return Outcome(rid, ACCEPTED, learner, None, trip, learner.counters.since_evaluation >= self.min_new)
