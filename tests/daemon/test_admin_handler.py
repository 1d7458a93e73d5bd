"""Admin commands through the handler: each answered once; refusals change nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from memabrad.config import Config
from memabrad.daemon.admin import AdminHandler, AdminMessage
from memabrad.daemon.metrics import DaemonMetrics
from memabrad.daemon.partition import PartitionState
from memabrad.learning.router import Router
from memabrad.store.versions import RouterVersionStore
from memabrad.wire.admin import sign_command
from memabrad.wire.events import RouterEventBase

NOW = datetime(2026, 11, 25, 17, 5, tzinfo=UTC)
KEY = "test-key"


class Harness:
    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch, signed: bool = True) -> None:
        self.cfg = Config()
        self.cfg.store.base_dir = str(tmp)
        if signed:
            self.cfg.admin.hmac_key_env = "MEMABRAD_TEST_KEY"
            monkeypatch.setenv("MEMABRAD_TEST_KEY", KEY)
        self.metrics = DaemonMetrics()
        self.events: list[RouterEventBase] = []
        self.state = PartitionState.empty("traj", 0, self.cfg)
        self.state.learner("default", self.cfg)
        self.evaluated: list[str] = []
        self.active: dict[str, str | None] = {}
        self.store = RouterVersionStore(tmp, "default")
        self.v1 = self.store.save_version(Router().version_files(), report_id="r1").version_id
        self.store.activate(self.v1, source="test")
        self.v2 = self.store.save_version(Router(learning_rate=0.1).version_files(), report_id="r2",
                                          idempotency_key="k2").version_id
        self.store.activate(self.v2, source="test")
        self.handler = AdminHandler(self.cfg, self.metrics, self._publish, self, self, clock=lambda: NOW)
        self.offset = 0

    async def _publish(self, ev: RouterEventBase) -> None:
        self.events.append(ev)

    # the router registry and the evaluation queue, as the handler sees them

    def owner(self, router_id: str) -> PartitionState | None:
        return self.state

    async def rolled_back(self, router_id: str, version_id: str) -> None:
        self.active[router_id] = version_id

    async def baseline_changed(self, router_id: str) -> None:
        pass

    def evaluate_now(self, state: PartitionState, router_id: str) -> bool:
        self.evaluated.append(router_id)
        return True

    def send(self, cmd: dict[str, Any] | bytes, sign: bool = True) -> RouterEventBase:
        if isinstance(cmd, dict):
            if sign:
                cmd = {**cmd, "signature": sign_command(cmd, KEY)}
            raw = json.dumps(cmd).encode()
        else:
            raw = cmd
        before = len(self.events)
        anyio.run(self.handler.handle, AdminMessage(0, self.offset, b"default", raw))
        self.offset += 1
        assert len(self.events) == before + 1, "every command gets exactly one answer"
        return self.events[-1]


def command(name: str, request_id: str, **extra: Any) -> dict[str, Any]:
    return {"schema_version": 1, "command": name, "request_id": request_id, "router_id": "default",
            "issued_at": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "requested_by": "oncall@example.com", **extra}


def test_signed_rollback_is_applied_with_audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(tmp_path, monkeypatch)
    ev = h.send(command("rollback", "r-1", version_id=h.v1, reason="reward dropped"))
    assert ev.type == "router.rolled_back"
    assert (ev.version_id, ev.previous_version_id, ev.trigger) == (h.v1, h.v2, "admin")  # type: ignore[attr-defined]
    cur = h.store.get_current()
    assert cur is not None and cur["version_id"] == h.v1 and cur["rollback_from"] == h.v2
    assert h.active["default"] == h.v1
    assert h.metrics.rollbacks.labels("default", "admin")._value.get() == 1


@pytest.mark.parametrize("case", ["unsigned", "bad_signature", "stale", "future", "unknown_version",
                                  "unknown_router", "garbage"])
def test_refused_commands_change_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    h = Harness(tmp_path, monkeypatch)
    before = h.store.current_path.read_bytes()
    cmd = command("rollback", f"r-{case}", version_id=h.v1)
    if case == "unsigned":
        ev = h.send(cmd, sign=False)
    elif case == "bad_signature":
        ev = h.send({**cmd, "signature": "00" * 32}, sign=False)
    elif case == "stale":
        ev = h.send({**cmd, "issued_at": (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    elif case == "future":
        ev = h.send({**cmd, "issued_at": (NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    elif case == "unknown_version":
        ev = h.send({**cmd, "version_id": "19990101-000000"})
    elif case == "unknown_router":
        ev = h.send({**cmd, "router_id": "never-seen"})
    else:
        ev = h.send(b"{not json")
    assert ev.type == "admin.rejected"
    assert ev.reason  # type: ignore[attr-defined]
    if case != "garbage":
        assert ev.request_id == f"r-{case}"  # type: ignore[attr-defined]
    assert h.store.current_path.read_bytes() == before
    assert h.metrics.admin_commands.labels("rollback" if case != "garbage" else "unknown",
                                           "rejected")._value.get() == 1


def test_replayed_request_id_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(tmp_path, monkeypatch)
    assert h.send(command("pause_promotions", "same")).type == "admin.applied"
    again = h.send(command("resume_promotions", "same"))
    assert again.type == "admin.rejected" and "replayed" in again.reason  # type: ignore[attr-defined]
    assert h.store.promotions_paused()


def test_each_command_is_applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(tmp_path, monkeypatch)
    assert h.send(command("pause_promotions", "a")).type == "admin.applied"
    assert h.store.promotions_paused()
    assert h.send(command("resume_promotions", "b")).type == "admin.applied"
    assert not h.store.promotions_paused()
    assert h.send(command("pin_baseline", "c", version_id=h.v1)).type == "admin.applied"
    assert h.store.pinned_baseline() == h.v1
    assert h.send(command("unpin_baseline", "d")).type == "admin.applied"
    assert h.store.pinned_baseline() is None
    assert h.send(command("evaluate_now", "e")).type == "admin.applied"
    assert h.evaluated == ["default"]


def test_already_processed_positions_are_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(tmp_path, monkeypatch)
    h.send(command("pause_promotions", "x"))
    assert h.state.admin_offsets == {0: 1}
    anyio.run(h.handler.handle, AdminMessage(0, 0, b"default", b"{}"))  # below the saved position
    assert len(h.events) == 1


def test_without_a_key_signatures_are_not_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(tmp_path, monkeypatch, signed=False)
    assert h.send(command("pause_promotions", "p"), sign=False).type == "admin.applied"
