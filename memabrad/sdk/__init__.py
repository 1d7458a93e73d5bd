"""The agent's half of memabrad: route with the active router, emit what happened.

An agent closes the learning loop with three objects:

- ``RouterFollower`` serves the daemon's active router version and hot-swaps it when the
  daemon promotes or rolls back (``choose(task, candidates)`` -> route + propensity);
- ``TrajectoryProducer`` (or ``SyncTrajectoryProducer``) validates and publishes the
  resulting trajectories, built with ``make_trajectory``;
- ``CaseLookup`` answers "have we seen this task, and what worked best?" from the
  daemon's persisted case index.

See ``docs/integrating.md`` for the minimal code and ``examples/agent_loop.py`` for the
whole loop against a real daemon.
"""

from memabrad.learning.case_index import Case, Match
from memabrad.learning.router import Decision
from memabrad.sdk.cases import CaseLookup
from memabrad.sdk.follower import FallbackPolicy, LoadFailure, RouterFollower, Swap
from memabrad.sdk.producer import (
    DeliveryError,
    DeliveryFailure,
    ProducerFull,
    ProducerNotRunning,
    SyncTrajectoryProducer,
    TrajectoryProducer,
)
from memabrad.sdk.trajectory import EncodedTrajectory, TrajectoryLike, encode_trajectory, make_trajectory
from memabrad.wire.parse import InvalidTrajectory

__all__ = [
    "Case",
    "CaseLookup",
    "Decision",
    "DeliveryError",
    "DeliveryFailure",
    "EncodedTrajectory",
    "FallbackPolicy",
    "InvalidTrajectory",
    "LoadFailure",
    "Match",
    "ProducerFull",
    "ProducerNotRunning",
    "RouterFollower",
    "Swap",
    "SyncTrajectoryProducer",
    "TrajectoryLike",
    "TrajectoryProducer",
    "encode_trajectory",
    "make_trajectory",
]
