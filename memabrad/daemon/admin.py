"""Admin commands: validate, apply, answer with exactly one event.

Every instance reads the whole admin topic but acts only on commands for routers whose
trajectory partition it owns (Kafka's default partitioner on the ``router_id`` key), so
one instance answers each command. How far each partition's routers have read the admin
topic is kept in that partition's checkpoint (``admin_offsets``), so commands sent while
the daemon was down are processed after it restarts, and a command is not applied
twice by the same state. Answer event ids derive from the command's request id and
topic position, so a re-answer after a crash carries the same id.

Checks, in order: readable and valid; signature (when a key is configured); age within
``admin.max_age_s``; request id not seen before; router known; version known.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import anyio

from memabrad.config import Config
from memabrad.daemon.metrics import DaemonMetrics
from memabrad.daemon.partition import PartitionState
from memabrad.promotion.events import rollback_event
from memabrad.store.errors import StoreError, UnknownVersionError
from memabrad.store.versions import RouterVersionStore
from memabrad.wire.admin import AdminCommand, sign_command
from memabrad.wire.events import AdminApplied, AdminRejected, RouterEventBase, make_event_id
from memabrad.wire.parse import InvalidAdminCommand, parse_admin_command
from memabrad.wire.trajectory import DEFAULT_ROUTER_ID

log = logging.getLogger("memabrad.admin")


class Refused(Exception):
    """A command that is answered with ``admin.rejected``."""


@dataclass(frozen=True)
class AdminMessage:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def _now() -> datetime:
    return datetime.now(UTC)


class AdminRouters(Protocol):
    """What commands need of the router registry: the owning state, and where to report a change."""

    def owner(self, router_id: str) -> PartitionState | None: ...

    async def rolled_back(self, router_id: str, version_id: str) -> None: ...

    async def baseline_changed(self, router_id: str) -> None: ...


class Evaluations(Protocol):
    def evaluate_now(self, state: PartitionState, router_id: str) -> bool: ...


def router_of_key(key: bytes | None) -> str:
    """The router a record's key names, or the default router for a missing or malformed key."""
    try:
        rid = key.decode("utf-8") if key else DEFAULT_ROUTER_ID
    except UnicodeDecodeError:
        return DEFAULT_ROUTER_ID
    ok = 0 < len(rid) <= 64 and all(c.isalnum() or c in "._-" for c in rid) and rid.isascii()
    return rid if ok else DEFAULT_ROUTER_ID


class AdminHandler:
    def __init__(
        self,
        cfg: Config,
        metrics: DaemonMetrics,
        publish: Callable[[RouterEventBase], Awaitable[None]],
        routers: AdminRouters,
        evaluations: Evaluations,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.publish = publish
        self.routers = routers
        self.evaluations = evaluations
        self.clock = clock

    def _key(self) -> bytes | None:
        name = self.cfg.admin.hmac_key_env
        if not name:
            return None
        value = os.environ.get(name)
        return value.encode("utf-8") if value else None

    async def handle(self, msg: AdminMessage) -> None:
        """Process one admin-topic record (a no-op for routers this instance does not own)."""
        cmd: AdminCommand | None = None
        try:
            cmd = parse_admin_command(msg.value if msg.value is not None else b"")
        except InvalidAdminCommand as err:
            router_id = router_of_key(msg.key)
            bad = err
        else:
            router_id = cmd.router_id
        state = self.routers.owner(router_id)
        if state is None:
            return
        if msg.offset < state.admin_offsets.get(msg.partition, 0):
            return
        state.admin_offsets[msg.partition] = msg.offset + 1
        state.records_since_checkpoint += 1  # admin progress is saved with the next checkpoint
        position = f"{msg.partition}:{msg.offset}"
        if cmd is None:
            await self._reject(router_id, bad.request_id, bad.command, f"invalid command: {bad.reason}", position)
            return
        try:
            event = await self._apply(cmd, state, position)
        except Refused as why:
            await self._reject(router_id, cmd.request_id, cmd.command, str(why), position)
            return
        self.metrics.admin_commands.labels(cmd.command, "applied").inc()
        log.info("admin command applied", extra={"router_id": router_id, "command": cmd.command,
                                                  "request_id": cmd.request_id, "requested_by": cmd.requested_by})
        await self.publish(event)

    async def _reject(self, router_id: str, request_id: str | None, command: str | None, reason: str,
                      position: str) -> None:
        self.metrics.admin_commands.labels(command or "unknown", "rejected").inc()
        log.warning("admin command rejected", extra={"router_id": router_id, "command": command,
                                                      "request_id": request_id, "reason": reason})
        await self.publish(AdminRejected(
            event_id=make_event_id(router_id, "admin.rejected", request_id, position),
            router_id=router_id, occurred_at=self.clock(), request_id=request_id, command=command, reason=reason))

    def _check(self, cmd: AdminCommand, state: PartitionState, store: RouterVersionStore) -> None:
        key = self._key()
        if self.cfg.admin.hmac_key_env and key is None:
            raise Refused(f"admin key variable {self.cfg.admin.hmac_key_env} is not set on the daemon; "
                          "refusing every command")
        if key is not None:
            if not cmd.signature:
                raise Refused("missing signature")
            if not hmac.compare_digest(sign_command(cmd.raw, key), cmd.signature.lower()):
                raise Refused("bad signature")
        age = (self.clock() - cmd.issued_at).total_seconds()
        if age > self.cfg.admin.max_age_s:
            raise Refused(f"stale command: issued {age:.0f}s ago, max_age_s is {self.cfg.admin.max_age_s:g}")
        if age < -self.cfg.admin.max_age_s:
            raise Refused(f"issued_at is {-age:.0f}s in the future")
        if not state.remember_request(cmd.request_id):
            raise Refused(f"replayed request_id {cmd.request_id}")
        if cmd.router_id not in state.learners and not store.router_dir.is_dir():
            raise Refused(f"unknown router {cmd.router_id}")
        if cmd.version_id is not None and cmd.command in ("rollback", "pin_baseline") and \
                not store.has_version(cmd.version_id):
            raise Refused(f"unknown version {cmd.version_id}")

    async def _apply(self, cmd: AdminCommand, state: PartitionState, position: str) -> RouterEventBase:
        """Check and apply a command; the store writes (fsynced) run in a worker thread, off the loop."""
        store = RouterVersionStore(self.cfg.store.base_dir, cmd.router_id)
        self._check(cmd, state, store)
        rid = cmd.router_id
        off_loop = anyio.to_thread.run_sync
        try:
            if cmd.command == "rollback":
                assert cmd.version_id is not None
                current = await off_loop(functools.partial(
                    store.rollback, cmd.version_id, trigger="admin", request_id=cmd.request_id,
                    requested_by=cmd.requested_by, reason=cmd.reason))
                self.metrics.rollbacks.labels(rid, "admin").inc()
                await self.routers.rolled_back(rid, current["version_id"])
                return rollback_event(rid, current, trigger="admin", request_id=cmd.request_id,
                                      requested_by=cmd.requested_by, reason=cmd.reason)
            if cmd.command == "evaluate_now":
                if not self.evaluations.evaluate_now(state, rid):
                    raise Refused(f"router {rid} has no trajectories to evaluate yet")
            elif cmd.command == "pause_promotions":
                await off_loop(functools.partial(store.set_promotions_paused, True, requested_by=cmd.requested_by))
            elif cmd.command == "resume_promotions":
                await off_loop(functools.partial(store.set_promotions_paused, False, requested_by=cmd.requested_by))
            elif cmd.command == "pin_baseline":
                assert cmd.version_id is not None
                await off_loop(store.pin_baseline, cmd.version_id)
                await self.routers.baseline_changed(rid)
            elif cmd.command == "unpin_baseline":
                await off_loop(store.unpin_baseline)
                await self.routers.baseline_changed(rid)
        except UnknownVersionError as err:
            raise Refused(str(err)) from None
        except StoreError as err:
            raise Refused(f"store error: {err}") from None
        return AdminApplied(event_id=make_event_id(rid, "admin.applied", cmd.request_id, position),
                            router_id=rid, occurred_at=self.clock(), request_id=cmd.request_id, command=cmd.command)
