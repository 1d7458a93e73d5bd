"""Checkpoint generations: round trip, corrupt newest falls back, retention, commit order."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from memabrad.config import Config
from memabrad.daemon.checkpoint import Checkpointer, CheckpointStore
from memabrad.daemon.partition import PartitionState
from memabrad.sim import Simulator
from memabrad.wire.parse import parse_trajectory


def _state(cfg: Config, n: int) -> PartitionState:
    st = PartitionState.empty("traj", 0, cfg)
    for i, row in enumerate(Simulator(seed=5).generate(n)):
        t = parse_trajectory(json.dumps(row))
        st.learner(t.router_id, cfg).observe(t)
        st.dedupe.add(t.trajectory_id)
        st.next_offset = i + 1
    st.count_invalid("default")
    st.admin_offsets[0] = 7
    st.remember_request("r-1")
    return st


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    c = Config()
    c.store.base_dir = str(tmp_path)
    return c


def test_round_trip_restores_everything(cfg: Config, tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "g", keep=3)
    st = _state(cfg, 300)
    store.write(st)
    back = store.restore("traj", 0, cfg)
    assert back.path is not None and not back.skipped
    r = back.state
    assert r.next_offset == 300
    assert r.admin_offsets == {0: 7}
    assert "r-1" in r.request_ids
    assert r.invalid_by_router == {"default": 1}
    assert "default-s5-00000042" in r.dedupe
    a, b = st.learners["default"], r.learners["default"]
    assert a.challenger.fingerprint() == b.challenger.fingerprint()
    assert a.counters == b.counters
    assert len(a.window) == len(b.window)
    assert len(a.case_index) == len(b.case_index)


def test_corrupt_newest_generation_falls_back_to_previous(cfg: Config, tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "g", keep=3)
    st = _state(cfg, 50)
    store.write(st)
    st.next_offset = 99
    newest = store.write(st)
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    back = store.restore("traj", 0, cfg)
    assert back.state.next_offset == 50
    assert len(back.skipped) == 1 and str(newest) in back.skipped[0]


def test_keeps_only_the_configured_generations(cfg: Config, tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "g", keep=2)
    st = _state(cfg, 10)
    for _ in range(5):
        store.write(st)
    assert [n for n, _ in store.generations("traj", 0)] == [4, 5]


def test_no_checkpoint_gives_an_empty_state(cfg: Config, tmp_path: Path) -> None:
    back = CheckpointStore(tmp_path, "g").restore("traj", 3, cfg)
    assert back.path is None and back.state.next_offset is None and not back.state.learners


def test_commit_happens_only_after_flush_evaluations_and_durable_write(cfg: Config, tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "g")
    calls: list[str] = []

    async def flush() -> None:
        calls.append("flush")

    async def wait(states: object) -> None:
        calls.append("evaluations")

    async def commit(offsets: dict[tuple[str, int], int]) -> None:
        assert store.generations("traj", 0), "checkpoint must be on disk before the commit"
        calls.append(f"commit {offsets}")

    st = _state(cfg, 20)
    st.records_since_checkpoint = 20
    cp = Checkpointer(store, flush, wait, commit)
    committed = anyio.run(cp.checkpoint, [st], "test")
    assert calls == ["flush", "evaluations", "commit {('traj', 0): 20}"]
    assert committed == {("traj", 0): 20}
    assert st.records_since_checkpoint == 0


def test_failed_write_commits_nothing(cfg: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = CheckpointStore(tmp_path, "g")
    committed: list[object] = []

    async def nothing(*_: object) -> None:
        return None

    async def commit(offsets: object) -> None:
        committed.append(offsets)

    def broken(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "write_payload", broken)
    st = _state(cfg, 5)
    st.records_since_checkpoint = 5
    with pytest.raises(OSError):
        anyio.run(Checkpointer(store, nothing, nothing, commit).checkpoint, [st], "test")
    assert committed == []
