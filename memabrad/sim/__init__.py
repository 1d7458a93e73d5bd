"""Seeded workload simulator with known true policy values (for tests, the demo and benchmarks).

>>> sim = Simulator(seed=1)
>>> [t["trajectory_id"] for t in sim.generate(2)]
['default-s1-00000000', 'default-s1-00000001']
"""

from memabrad.sim.generator import ContextStream, Simulator, write_jsonl
from memabrad.sim.policies import (
    EpsilonGreedyLogger,
    Policy,
    TypeOnlyPolicy,
    fixed_policy,
    oracle_policy,
    type_only_policy,
)
from memabrad.sim.value import PolicyValue, true_value, true_value_of_logging, true_value_on
from memabrad.sim.world import (
    DEFAULT_ROUTES,
    TASK_TYPES,
    Context,
    ExpectedOutcome,
    World,
    default_world,
    expected_outcome_for_task,
)

__all__ = [
    "DEFAULT_ROUTES",
    "TASK_TYPES",
    "Context",
    "ContextStream",
    "EpsilonGreedyLogger",
    "ExpectedOutcome",
    "Policy",
    "PolicyValue",
    "Simulator",
    "TypeOnlyPolicy",
    "World",
    "default_world",
    "expected_outcome_for_task",
    "fixed_policy",
    "oracle_policy",
    "true_value",
    "true_value_of_logging",
    "true_value_on",
    "type_only_policy",
    "write_jsonl",
]
