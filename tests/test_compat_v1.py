"""Files written before the learner changed (router model v1, partition checkpoint v1) still load.

The fixtures were written by the earlier code (river SGD heads): a model trained on 1,500
simulated trajectories, the partition checkpoint of the same learner, and the routes that
model chose for 60 further tasks. A daemon upgraded in place must restore the checkpoint,
and a stored version must keep making the very same choices.
"""

from __future__ import annotations

import json
from pathlib import Path

from memabrad.config import Config
from memabrad.daemon.checkpoint import CheckpointStore
from memabrad.learning.router import MODEL_FORMAT, Router

FIXTURES = Path(__file__).parent / "fixtures"


def _expected() -> dict:
    return json.loads((FIXTURES / "v1-expected.json").read_text())


def test_a_v1_model_loads_and_makes_the_same_choices() -> None:
    exp = _expected()
    router = Router.from_bytes((FIXTURES / "router-v1.json").read_bytes())
    choices = [router.best(router.featurizer.featurize(t["task"]), t["candidates"]) for t in exp["tasks"]]
    assert choices == exp["choices"]
    assert router.export_state()["format"] == MODEL_FORMAT  # re-saved in the current format


def test_a_v1_checkpoint_restores_and_keeps_learning() -> None:
    exp = _expected()
    cfg = Config()
    state = CheckpointStore.read(FIXTURES / exp["checkpoint"], cfg)
    learner = state.learners["default"]
    assert state.next_offset == 1500
    assert {k: getattr(learner.counters, k) for k in exp["counters"]} == exp["counters"]
    assert len(learner.case_index) == exp["case_index_len"]
    assert "default-s7-00000000" in state.dedupe
    router = learner.challenger
    choices = [router.best(router.featurizer.featurize(t["task"]), t["candidates"]) for t in exp["tasks"]]
    assert choices == exp["choices"]
    x = router.featurizer.featurize(exp["tasks"][0]["task"])
    router.learn(x, "direct", propensity=0.5, reward=1.0, error=False, latency_ms=100.0)  # keeps learning
    assert router.routes["direct"].n > 0
