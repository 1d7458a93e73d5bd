"""Tests for memabrad.store: versions, current.json audit trail, locks, atomic writes."""

from __future__ import annotations

import errno
import hashlib
import json
import multiprocessing
import os
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import pytest

from memabrad.store import (
    CorruptFileError,
    CorruptVersionError,
    RouterVersionStore,
    SeenTrajectoryStore,
    StoreBusyError,
    StoreLock,
    StoreWriteError,
    UnknownReportError,
    UnknownVersionError,
    VersionMeta,
    atomic_write_bytes,
    atomic_write_json,
    model_sha256,
    read_json,
)

T0 = datetime(2026, 11, 25, 17, 0, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand, so timestamps are predictable."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def store(tmp_path: Path, clock: FakeClock) -> RouterVersionStore:
    return RouterVersionStore(tmp_path / "artifacts", "default", clock=clock)


def _save(
    store: RouterVersionStore,
    payload: bytes,
    *,
    at: datetime | None = None,
    report_id: str = "r-1",
    idempotency_key: str | None = None,
) -> VersionMeta:
    return store.save_version(
        {"model.json": payload}, report_id=report_id, created_at=at, idempotency_key=idempotency_key
    )


def _temp_leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".tmp-") or p.name.endswith(".tmp")]


# -- versions ---------------------------------------------------------------


def test_save_and_load_round_trip(store: RouterVersionStore) -> None:
    files = {"model.json": b'{"w": [1, 2, 3]}', "vocab.txt": b"a\nb\n"}
    meta = store.save_version(files, report_id="rep-1", created_at=T0, extra={"train": {"n": 10}})

    assert meta.version_id == "20261125-170000"
    assert meta.created_at == "2026-11-25T17:00:00Z"
    assert meta.router_id == "default"
    assert store.load_version_files(meta.version_id) == files
    assert store.has_version(meta.version_id)
    assert store.version_dir(meta.version_id) == store.router_dir / "router-versions/versions/20261125-170000"

    on_disk = json.loads((store.version_dir(meta.version_id) / "meta.json").read_text())
    assert on_disk == meta.to_dict()
    assert on_disk["report_id"] == "rep-1"
    assert on_disk["train"] == {"n": 10}
    assert store.get_version(meta.version_id) == meta
    assert _temp_leftovers(store.router_dir) == []


def test_meta_sha256_definition(store: RouterVersionStore) -> None:
    single = _save(store, b"weights", at=T0)
    assert single.files == {"model.json": hashlib.sha256(b"weights").hexdigest()}
    assert single.sha256 == hashlib.sha256(b"weights").hexdigest()

    multi = store.save_version({"b.bin": b"B", "a.bin": b"A"}, report_id="r", created_at=T0)
    ha, hb = hashlib.sha256(b"A").hexdigest(), hashlib.sha256(b"B").hexdigest()
    expected = hashlib.sha256(f"a.bin\0{ha}\nb.bin\0{hb}\n".encode()).hexdigest()
    assert multi.sha256 == expected == model_sha256(multi.files)


def test_tampered_file_is_refused_naming_the_file(store: RouterVersionStore) -> None:
    meta = _save(store, b"0123456789", at=T0)
    model = store.version_dir(meta.version_id) / "model.json"
    data = bytearray(model.read_bytes())
    data[3] ^= 0x01
    model.write_bytes(bytes(data))

    with pytest.raises(CorruptVersionError) as info:
        store.load_version_files(meta.version_id)
    assert str(model) in str(info.value)
    assert "sha256 mismatch" in str(info.value)
    assert info.value.path == model


def test_truncated_or_missing_model_file_is_refused(store: RouterVersionStore) -> None:
    meta = _save(store, b"0123456789", at=T0)
    model = store.version_dir(meta.version_id) / "model.json"
    model.write_bytes(b"01234")
    with pytest.raises(CorruptVersionError, match="model.json"):
        store.verify_version(meta.version_id)
    model.unlink()
    with pytest.raises(CorruptVersionError, match="missing"):
        store.load_version_files(meta.version_id)


def test_truncated_meta_json_gives_clear_error_and_listing_survives(store: RouterVersionStore) -> None:
    good = _save(store, b"good", at=T0)
    bad = _save(store, b"bad", at=T0 + timedelta(seconds=1))
    meta_path = store.version_dir(bad.version_id) / "meta.json"
    meta_path.write_bytes(meta_path.read_bytes()[:20])

    with pytest.raises(CorruptVersionError) as info:
        store.load_version_files(bad.version_id)
    assert str(meta_path) in str(info.value)
    assert "invalid JSON" in str(info.value)

    listed = store.list_versions()
    assert [m.version_id for m in listed] == [bad.version_id, good.version_id]
    assert listed[0].corrupt and "meta.json" in listed[0].corrupt
    assert listed[1].corrupt is None
    assert listed[0].to_dict()["corrupt"] == listed[0].corrupt


def test_meta_pointing_outside_the_version_dir_is_refused(store: RouterVersionStore) -> None:
    meta = _save(store, b"x", at=T0)
    meta_path = store.version_dir(meta.version_id) / "meta.json"
    raw = json.loads(meta_path.read_text())
    raw["files"] = {"../../current.json": raw["files"]["model.json"]}
    meta_path.write_text(json.dumps(raw))
    with pytest.raises(CorruptVersionError, match="invalid model file name"):
        store.load_version_files(meta.version_id)


def test_unknown_version(store: RouterVersionStore) -> None:
    with pytest.raises(UnknownVersionError, match="20200101-000000"):
        store.load_version_files("20200101-000000")
    for bad in ("../default", "", "latest"):
        assert not store.has_version(bad)
        with pytest.raises(UnknownVersionError):
            store.get_version(bad)


def test_version_ids_sort_by_time_with_suffixes(store: RouterVersionStore) -> None:
    ids = [_save(store, str(i).encode(), at=T0).version_id for i in range(11)]
    assert ids[:3] == ["20261125-170000", "20261125-170000-2", "20261125-170000-3"]
    assert ids[-1] == "20261125-170000-11"
    later = _save(store, b"later", at=T0 + timedelta(seconds=1)).version_id
    earlier = _save(store, b"earlier", at=T0 - timedelta(days=1)).version_id
    assert later == "20261125-170001"
    assert earlier == "20261124-170000"
    listed = [m.version_id for m in store.list_versions()]
    # "-10"/"-11" sort after "-9" numerically, not as strings.
    assert listed == [later, *reversed(ids), earlier]


def test_created_at_must_have_a_zone(store: RouterVersionStore) -> None:
    with pytest.raises(ValueError, match="time zone"):
        _save(store, b"x", at=datetime(2026, 1, 1))


def test_idempotency_key_returns_existing_version(store: RouterVersionStore, clock: FakeClock) -> None:
    first = _save(store, b"v1", idempotency_key="eval-7")
    clock.tick(5)
    again = _save(store, b"v1-rerun", idempotency_key="eval-7")
    assert again == first
    assert again.idempotency_key == "eval-7"
    other = _save(store, b"v2", idempotency_key="eval-8")
    assert other.version_id != first.version_id
    assert len(store.list_versions()) == 2
    assert store.find_by_idempotency_key("eval-7") == first


def test_list_versions_newest_first(store: RouterVersionStore) -> None:
    assert store.list_versions() == []
    b = _save(store, b"b", at=T0 + timedelta(hours=1))
    a = _save(store, b"a", at=T0)
    c = _save(store, b"c", at=T0 + timedelta(hours=2))
    assert [m.version_id for m in store.list_versions()] == [c.version_id, b.version_id, a.version_id]


def test_bad_inputs_are_refused(store: RouterVersionStore) -> None:
    with pytest.raises(ValueError):
        store.save_version({}, report_id="r")
    with pytest.raises(ValueError, match="meta.json"):
        store.save_version({"meta.json": b"x"}, report_id="r")
    with pytest.raises(ValueError, match="file name"):
        store.save_version({"../x": b"x"}, report_id="r")
    with pytest.raises(ValueError, match="reserved"):
        store.save_version({"m": b"x"}, report_id="r", extra={"sha256": "no"})
    with pytest.raises(ValueError, match="NaN|Out of range"):
        store.save_version({"m": b"x"}, report_id="r", extra={"score": float("nan")})
    with pytest.raises(ValueError):
        RouterVersionStore("x", "../etc")
    assert store.list_versions() == []
    assert _temp_leftovers(store.router_dir) == []


def test_crash_leftover_temp_dir_is_ignored_and_cleaned(store: RouterVersionStore) -> None:
    store.versions_dir.mkdir(parents=True)
    leftover = store.versions_dir / ".tmp-20261125-170000-99-abcd"
    leftover.mkdir()
    (leftover / "model.json").write_bytes(b"half")
    assert store.list_versions() == []
    _save(store, b"x", at=T0)
    assert not leftover.exists()
    assert [m.version_id for m in store.list_versions()] == ["20261125-170000"]


def test_save_version_disk_full_leaves_nothing(
    store: RouterVersionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(StoreWriteError, match="ENOSPC"):
        _save(store, b"x", at=T0)
    monkeypatch.undo()
    assert store.list_versions() == []
    assert list(store.versions_dir.iterdir()) == []


# -- current.json -----------------------------------------------------------


def test_activate_and_rollback_audit_trail(store: RouterVersionStore, clock: FakeClock) -> None:
    assert store.get_current() is None
    v1 = _save(store, b"v1", report_id="rep-1")
    bench = {"task_count": 200, "baseline": {"reward": 0.5}, "challenger": {"reward": 0.6}}
    cur = store.activate(v1.version_id, source="promotion", benchmark=bench, report_id="rep-1")
    assert cur["version_id"] == v1.version_id
    assert cur["prior_version_id"] is None
    assert cur["rollback_from"] is None and cur["rolled_back_at"] is None
    assert cur["benchmark_summary"] == bench
    assert store.get_current() == cur

    clock.tick(60)
    v2 = _save(store, b"v2", report_id="rep-2")
    store.activate(v2.version_id, source="daemon", benchmark=None)
    assert store.get_current()["report_id"] == "rep-2"  # defaults to the version's own

    clock.tick(60)
    rolled = store.rollback(
        v1.version_id,
        trigger="admin",
        request_id="r-42",
        requested_by="oncall@example.com",
        reason="reward dropped",
    )
    assert rolled == store.get_current()
    assert rolled["version_id"] == v1.version_id
    assert rolled["prior_version_id"] == v2.version_id
    assert rolled["rollback_from"] == v2.version_id
    assert rolled["rolled_back_at"] == "2026-11-25T17:02:00Z"
    assert rolled["promotion_source"] == "rollback"
    assert rolled["report_id"] == "rep-1"
    assert [h["action"] for h in rolled["history"]] == ["activate", "activate", "rollback"]
    assert rolled["history"][1] == {
        "action": "activate",
        "from": v1.version_id,
        "to": v2.version_id,
        "at": "2026-11-25T17:01:00Z",
        "source": "daemon",
        "report_id": "rep-2",
    }
    assert rolled["history"][-1] == {
        "action": "rollback",
        "from": v2.version_id,
        "to": v1.version_id,
        "at": "2026-11-25T17:02:00Z",
        "trigger": "admin",
        "request_id": "r-42",
        "requested_by": "oncall@example.com",
        "reason": "reward dropped",
    }

    clock.tick(60)
    again = store.activate(v2.version_id, source="promotion")
    assert again["rollback_from"] is None and again["rolled_back_at"] is None
    assert len(again["history"]) == 4


def test_activate_replay_is_a_no_op(store: RouterVersionStore, clock: FakeClock) -> None:
    v1 = _save(store, b"v1", report_id="rep-1")
    first = store.activate(v1.version_id, source="daemon", report_id="rep-1")
    before = store.current_path.read_bytes()
    clock.tick(10)
    assert store.activate(v1.version_id, source="daemon", report_id="rep-1") == first
    assert store.current_path.read_bytes() == before


def test_unknown_rollback_changes_nothing(store: RouterVersionStore, clock: FakeClock) -> None:
    v1 = _save(store, b"v1")
    store.activate(v1.version_id, source="promotion")
    before = store.current_path.read_bytes()
    clock.tick()
    for bad in ("20000101-000000", "../../etc", "nope"):
        with pytest.raises(UnknownVersionError):
            store.rollback(bad)
    assert store.current_path.read_bytes() == before


def test_unknown_rollback_on_empty_store_creates_nothing(tmp_path: Path) -> None:
    store = RouterVersionStore(tmp_path / "artifacts")
    with pytest.raises(UnknownVersionError):
        store.rollback("20000101-000000", require_no_daemon=True)
    assert not (tmp_path / "artifacts").exists()


def test_rollback_to_corrupt_version_changes_nothing(store: RouterVersionStore, clock: FakeClock) -> None:
    v1 = _save(store, b"v1")
    clock.tick()
    v2 = _save(store, b"v2")
    store.activate(v2.version_id, source="promotion")
    before = store.current_path.read_bytes()
    (store.version_dir(v1.version_id) / "model.json").write_bytes(b"v!")
    with pytest.raises(CorruptVersionError, match="model.json"):
        store.rollback(v1.version_id)
    assert store.current_path.read_bytes() == before


def test_corrupt_current_json_is_named(store: RouterVersionStore) -> None:
    store.current_path.parent.mkdir(parents=True)
    store.current_path.write_bytes(b'{"version_id": "2026')
    with pytest.raises(CorruptFileError) as info:
        store.get_current()
    assert str(store.current_path) in str(info.value)


def test_daemon_lock_refuses_cli_rollback(store: RouterVersionStore) -> None:
    v1 = _save(store, b"v1")
    store.activate(v1.version_id, source="promotion")
    before = store.current_path.read_bytes()
    daemon = store.daemon_lock().acquire(blocking=False)
    try:
        with pytest.raises(StoreBusyError) as info:
            store.rollback(v1.version_id, require_no_daemon=True)
        assert str(os.getpid()) in str(info.value)
        assert "daemon.lock" in str(info.value)
        assert store.current_path.read_bytes() == before
        # The daemon itself may still roll back.
        assert store.rollback(v1.version_id, trigger="admin")["promotion_source"] == "rollback"
    finally:
        daemon.release()
    assert store.rollback(v1.version_id, require_no_daemon=True)["version_id"] == v1.version_id


def _hold_lock(path: str, ready: EventType, done: EventType) -> None:
    lock = StoreLock(path, purpose="memabrad daemon").acquire(blocking=False)
    ready.set()
    done.wait(30)
    lock.release()


def test_daemon_lock_held_by_another_process(store: RouterVersionStore) -> None:
    v1 = _save(store, b"v1")
    ctx = multiprocessing.get_context("fork")
    ready, done = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(store.daemon_lock_path), ready, done))
    proc.start()
    try:
        assert ready.wait(30)
        with pytest.raises(StoreBusyError) as info:
            store.rollback(v1.version_id, require_no_daemon=True)
        assert f"pid {proc.pid}" in str(info.value)
        assert "memabrad daemon" in str(info.value)
    finally:
        done.set()
        proc.join(30)
    assert proc.exitcode == 0
    store.rollback(v1.version_id, require_no_daemon=True)


# -- pinned baseline --------------------------------------------------------


def test_pin_and_unpin_baseline(store: RouterVersionStore, clock: FakeClock) -> None:
    assert store.baseline_version_id() is None
    v1 = _save(store, b"v1")
    clock.tick()
    v2 = _save(store, b"v2")
    store.activate(v2.version_id, source="promotion")
    assert store.pinned_baseline() is None
    assert store.baseline_version_id() == v2.version_id

    pinned = store.pin_baseline(v1.version_id)
    assert pinned["version_id"] == v1.version_id
    assert store.pinned_baseline() == v1.version_id
    assert store.baseline_version_id() == v1.version_id
    assert store.baseline_version_id(v2.version_id) == v2.version_id
    with pytest.raises(UnknownVersionError):
        store.baseline_version_id("20000101-000000")
    with pytest.raises(UnknownVersionError):
        store.pin_baseline("20000101-000000")
    assert store.pinned_baseline() == v1.version_id

    assert store.unpin_baseline() == v1.version_id
    assert store.pinned_baseline() is None
    assert store.unpin_baseline() is None
    assert store.baseline_version_id() == v2.version_id


# -- reports ----------------------------------------------------------------


def test_reports_save_load_list(store: RouterVersionStore) -> None:
    assert store.list_reports() == [] and store.last_report() is None
    r1 = {"report_id": "rep-1", "created_at": "2026-11-25T17:00:00Z", "verdict": "reject"}
    r2 = {"report_id": "rep-2", "created_at": "2026-11-25T18:00:00+00:00", "verdict": "promote"}
    r3 = {"report_id": "rep-0", "created_at": "2026-11-25T18:00:00Z", "verdict": "inconclusive"}
    for r in (r1, r2, r3):
        path = store.save_report(r)
        assert path == store.reports_dir / f"{r['report_id']}.json"
    assert store.load_report("rep-1") == r1
    assert [r["report_id"] for r in store.list_reports()] == ["rep-2", "rep-0", "rep-1"]
    assert store.last_report() == r2

    store.save_report({**r1, "verdict": "promote"})  # idempotent overwrite
    assert store.load_report("rep-1")["verdict"] == "promote"
    assert len(store.list_reports()) == 3

    with pytest.raises(UnknownReportError):
        store.load_report("missing")
    with pytest.raises(ValueError):
        store.save_report({"verdict": "x"})
    with pytest.raises(ValueError):
        store.save_report({"report_id": "../evil"})

    (store.reports_dir / "rep-9.json").write_bytes(b"{")
    listed = store.list_reports()
    assert listed[-1]["report_id"] == "rep-9" and "rep-9.json" in listed[-1]["corrupt"]
    assert store.last_report() == r2
    assert _temp_leftovers(store.router_dir) == []


# -- atomic writes ----------------------------------------------------------


def test_atomic_write_json_deterministic_and_clean(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.json"
    atomic_write_json(path, {"b": 1, "a": [1, 2], "é": "ü"})
    assert path.read_bytes() == '{"a":[1,2],"b":1,"é":"ü"}\n'.encode()
    assert read_json(path) == {"a": [1, 2], "b": 1, "é": "ü"}
    atomic_write_bytes(path, b"[]")
    assert read_json(path) == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]


@pytest.mark.parametrize("content", [b"", b'{"ids": [1, 2', b"\xff\xfe"])
def test_read_json_corrupt_names_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError) as info:
        read_json(path)
    assert str(path) in str(info.value)
    assert info.value.path == path


def test_read_json_missing_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "nope.json")


@pytest.mark.parametrize("target", ["fsync", "replace"])
def test_atomic_write_failure_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    fresh = tmp_path / "fresh.json"
    existing = tmp_path / "existing.json"
    atomic_write_json(existing, {"old": True})

    def no_space(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, target, no_space)
    for path in (fresh, existing):
        with pytest.raises(StoreWriteError) as info:
            atomic_write_json(path, {"new": True})
        assert str(path) in str(info.value) and "ENOSPC" in str(info.value)
    monkeypatch.undo()
    assert not fresh.exists()
    assert read_json(existing) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.json"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_atomic_write_read_only_dir(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(StoreWriteError, match="ro"):
            atomic_write_json(ro / "x.json", {})
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


# -- locks ------------------------------------------------------------------


def test_store_lock_busy_reentrant_and_released(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first = StoreLock(path, purpose="test holder")
    with first:
        with first:  # re-entrant within one instance
            assert first.held
        assert first.held
        second = StoreLock(path)
        with pytest.raises(StoreBusyError) as info:
            second.acquire(blocking=False)
        assert f"pid {os.getpid()}" in str(info.value) and "test holder" in str(info.value)
        assert str(path) in str(info.value)
    assert not first.held
    with StoreLock(path).acquire(blocking=False) as again:
        assert again.held
    with pytest.raises(RuntimeError):
        first.release()


# -- concurrency ------------------------------------------------------------


def _writer(base_dir: str, worker: int, count: int) -> None:
    store = RouterVersionStore(base_dir, "default")
    for i in range(count):
        meta = store.save_version(
            {"model.json": f"{worker}-{i}".encode()}, report_id=f"w{worker}-{i}", extra={"worker": worker}
        )
        store.activate(meta.version_id, source="cycle")
        store.save_report({"report_id": f"w{worker}-{i}", "created_at": meta.created_at})


def test_concurrent_writers_keep_store_consistent(tmp_path: Path) -> None:
    base = tmp_path / "artifacts"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(base), w, 20)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]

    store = RouterVersionStore(base, "default")
    versions = store.list_versions()
    assert len(versions) == 40
    assert len({m.version_id for m in versions}) == 40
    payloads = set()
    for meta in versions:
        assert meta.corrupt is None
        payloads.add(store.load_version_files(meta.version_id)["model.json"])
    assert payloads == {f"{w}-{i}".encode() for w in range(2) for i in range(20)}
    current = store.get_current()
    assert current is not None and len(current["history"]) == 40
    assert len(store.list_reports()) == 40
    assert _temp_leftovers(base) == []


# -- seen trajectories ------------------------------------------------------


def test_seen_trajectory_store(tmp_path: Path) -> None:
    path = tmp_path / "seen-trajectories.json"
    seen = SeenTrajectoryStore(path)
    assert "a" not in seen and len(seen) == 0
    assert seen.add_many(["b", "a", "a"]) == 2
    assert seen.add_many(["a", "c"]) == 1
    seen.save()
    assert json.loads(path.read_text()) == {"ids": ["a", "b", "c"]}
    again = SeenTrajectoryStore(path).load()
    assert "c" in again and again.ids == frozenset({"a", "b", "c"})

    path.write_text('{"ids": "oops"}')
    with pytest.raises(CorruptFileError, match="seen-trajectories.json"):
        SeenTrajectoryStore(path).load()


def test_listing_parses_only_new_or_changed_metas(store: RouterVersionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every promotion lists the versions (its idempotency check): a listing reads a meta.json once,
    then again only when the file changed, so its cost does not grow with every version ever saved."""
    import shutil

    a = _save(store, b"a", at=T0)
    b = _save(store, b"b", at=T0 + timedelta(seconds=1))
    store.list_versions()
    archive = store._versions
    reads: list[str] = []
    real = archive.get_version
    monkeypatch.setattr(archive, "get_version", lambda vid: reads.append(vid) or real(vid))

    assert [m.version_id for m in store.list_versions()] == [b.version_id, a.version_id]
    assert reads == []

    c = _save(store, b"c", at=T0 + timedelta(seconds=2))
    assert [m.version_id for m in store.list_versions()] == [c.version_id, b.version_id, a.version_id]
    assert reads == [c.version_id]

    meta_path = store.version_dir(a.version_id) / "meta.json"
    meta_path.write_bytes(meta_path.read_bytes()[:20])  # damaged after it was listed: seen at once
    shutil.rmtree(store.version_dir(b.version_id))  # and one removed by hand
    listed = store.list_versions()
    assert [m.version_id for m in listed] == [c.version_id, a.version_id]
    assert listed[0].corrupt is None and listed[1].corrupt and "meta.json" in listed[1].corrupt
