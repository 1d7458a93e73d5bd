"""Loading, verifying and swapping the router version a follower serves.

Every change of version goes through ``VersionSwapper``, whoever asks for it (the start, the
router events, the store poll): one load at a time, in request order. A version is read and
sha256-verified (``Router.load``) in a worker thread, then swapped in with one reference
assignment between two ``choose`` calls. A version that fails to load is refused: the previous
one keeps serving, and the refusal is logged, counted and kept in ``last_error``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from memabrad.learning.case_index import CaseIndex
from memabrad.learning.router import Router
from memabrad.sdk.cases import CaseLookup
from memabrad.store.versions import RouterVersionStore

__all__ = ["KEPT_HISTORY", "LoadFailure", "Swap", "SwapMetrics", "SwapRequest", "VersionSwapper"]

log = logging.getLogger("memabrad.sdk.follower")  # the follower's logger: operators filter one name

KEPT_HISTORY = 100
"""Swaps and refusals remembered for ``stats`` and health endpoints."""


@dataclass(frozen=True, slots=True)
class Swap:
    """One version change applied by the follower; times are epoch seconds (``time.time()``)."""

    version_id: str
    previous_version_id: str | None
    cause: str
    """``start``, ``store`` (found by polling ``current.json``), or the event type."""
    event_id: str | None
    published_at: float | None
    """The event record's Kafka timestamp (set by the daemon's producer), when there is one."""
    received_at: float
    """When the follower's consumer handed over the event (or the change was noticed)."""
    swapped_at: float
    """When ``choose`` started using the new version."""

    @property
    def latency_s(self) -> float | None:
        """From publication to serving; None without a Kafka timestamp."""
        return None if self.published_at is None else self.swapped_at - self.published_at


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """A version the follower refused to serve, and why."""

    version_id: str
    cause: str
    event_id: str | None
    error: str
    at: float


@dataclass(frozen=True, slots=True)
class SwapRequest:
    """A version to serve and where the request came from: what a ``Swap`` or ``LoadFailure`` records."""

    version_id: str
    cause: str
    event_id: str | None = None
    published_at: float | None = None
    received_at: float = field(default_factory=time.time)


class SwapMetrics:
    """Optional Prometheus metrics; one set per registry, shared by the followers registered on it."""

    _by_registry: weakref.WeakKeyDictionary[CollectorRegistry, SwapMetrics] = weakref.WeakKeyDictionary()

    def __init__(self, registry: CollectorRegistry) -> None:
        self.swaps = Counter("memabrad_sdk_router_swaps_total", "Router versions swapped in by the follower",
                             ["router_id", "cause"], registry=registry)
        self.load_failures = Counter("memabrad_sdk_router_load_failures_total",
                                     "Router versions the follower refused to serve (load or verification failed)",
                                     ["router_id"], registry=registry)
        self.active = Gauge("memabrad_sdk_active_router_info", "The version the follower serves (value 1)",
                            ["router_id", "version_id"], registry=registry)

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> SwapMetrics:
        """The registry's metrics, created on first use (Prometheus refuses a second registration)."""
        metrics = cls._by_registry.get(registry)
        if metrics is None:
            metrics = cls._by_registry[registry] = cls(registry)
        return metrics


class VersionSwapper:
    """The router serving now for ``store``'s router, and the only code that replaces it.

    ``cases`` is the follower's case index view: refreshed here and handed to each version.
    ``on_swap`` is called after each swap (on the event loop, except from ``load_active``).
    """

    def __init__(self, store: RouterVersionStore, cases: CaseLookup, *, metrics: SwapMetrics | None = None,
                 on_swap: Callable[[Swap], None] | None = None) -> None:
        self.store = store
        self.cases = cases
        self.router = Router()
        """Serving now (untrained until a version exists); replaced whole, never changed in place."""
        self.swaps: collections.deque[Swap] = collections.deque(maxlen=KEPT_HISTORY)
        self.failures: collections.deque[LoadFailure] = collections.deque(maxlen=KEPT_HISTORY)
        self.swap_count = 0
        self.load_failures = 0
        self.last_error: str | None = None
        self._metrics = metrics
        self._on_swap = on_swap
        self._refused: set[str] = set()
        self._lock = asyncio.Lock()
        self._changed: asyncio.Event | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def router_id(self) -> str:
        return self.store.router_id

    @property
    def version_id(self) -> str | None:
        return self.router.version_id

    def bind_loop(self) -> None:
        """A fresh lock and change signal for the event loop about to swap (a follower may restart on another)."""
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    async def wait_for_version(self, version_id: str | None = None, timeout: float = 10.0) -> str:
        """Until ``version_id`` serves (any version when None); ``TimeoutError`` after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            current = self.version_id
            if current is not None and (version_id is None or current == version_id):
                return current
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"router {self.router_id}: version {version_id or '(any)'} not serving after "
                                   f"{timeout:g}s (serving {current})")
            assert self._changed is not None, "start() the follower first"
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def take_background(self) -> list[asyncio.Task[None]]:
        """The case index refreshes still running, handed over for cancelling at stop."""
        tasks = list(self._background)
        self._background.clear()
        return tasks

    def load_active(self) -> str | None:
        """Load the active version now, synchronously (without events; for scripts and tests)."""
        current = self.store.get_current()
        version_id = current["version_id"] if current else None
        if version_id is not None and version_id != self.version_id:
            request = SwapRequest(version_id, "start")
            try:
                router = self._load(version_id)
            except Exception as err:  # noqa: BLE001
                self._refuse(request, err)
            else:
                self._apply(router, request)
        self.cases.refresh()
        if self.cases.index is not None:
            self.router.case_index = self.cases.index
        return self.version_id

    async def follow_store(self, interval: float) -> None:
        """Poll ``current.json`` every ``interval`` s: catches changes made without an event."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh_cases()
                await self.switch_to_current(cause="store")
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - an unreadable current.json must not stop following
                log.warning("router %s: cannot read the store: %r", self.router_id, err)

    async def switch_to_current(self, cause: str) -> None:
        """Serve the version ``current.json`` names, unless the poll already refused it once."""
        current = await asyncio.to_thread(self.store.get_current)
        version_id = current["version_id"] if current else None
        if version_id is None or version_id == self.version_id:
            return
        if cause == "store" and version_id in self._refused:
            return  # refused once already; an event naming it again retries
        await self.switch_to(SwapRequest(version_id, cause))

    async def switch_to(self, request: SwapRequest) -> None:
        """Load, verify and serve ``request.version_id``; on failure refuse it and keep serving."""
        async with self._lock:  # one load at a time, in request order
            if request.version_id == self.version_id:
                return
            try:
                router = await asyncio.to_thread(self._load, request.version_id)
            except Exception as err:  # noqa: BLE001 - any load failure: refuse and keep serving
                self._refuse(request, err)
                return
            self._apply(router, request)
        self._spawn(self.refresh_cases())

    async def refresh_cases(self) -> None:
        """Load the case index if the daemon rewrote it, and hand it to the router serving now."""
        try:
            if await self.cases.refresh_async():
                self.router.case_index = self.cases.index
        except Exception as err:  # noqa: BLE001 - hints are optional; CaseLookup already logged load errors
            log.warning("router %s: case index refresh failed: %r", self.router_id, err)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _load(self, version_id: str) -> Router:
        """Read, verify (sha256) and build a version (worker thread).

        The case index loaded so far is attached as is: reloading a large index takes
        seconds, so a changed one is loaded after the swap and attached when ready
        (``refresh_cases``); meanwhile the new version routes without the newest hints.
        """
        index = self.cases.index
        return Router.load(self.store.version_dir(version_id), case_index=index if index is not None else CaseIndex())

    def _apply(self, router: Router, request: SwapRequest) -> None:
        previous = self.version_id
        self.router = router  # one reference assignment: a concurrent choose() sees the old or the new version
        assert router.version_id is not None
        self._refused.discard(router.version_id)
        swap = Swap(router.version_id, previous, request.cause, request.event_id, request.published_at,
                    request.received_at, time.time())
        self.swaps.append(swap)
        self.swap_count += 1
        latency = f" {swap.latency_s * 1000:.0f} ms after publication" if swap.latency_s is not None else ""
        log.info("router %s: now serving version %s (was %s; %s)%s", self.router_id, swap.version_id, previous,
                 request.cause, latency)
        if self._metrics is not None:
            self._metrics.swaps.labels(self.router_id, request.cause).inc()
            if previous is not None:
                with contextlib.suppress(KeyError):
                    self._metrics.active.remove(self.router_id, previous)
            self._metrics.active.labels(self.router_id, swap.version_id).set(1)
        if self._changed is not None:  # wake wait_for_version; later waiters get a fresh signal
            self._changed.set()
            self._changed = asyncio.Event()
        if self._on_swap is not None:
            try:
                self._on_swap(swap)
            except Exception:  # noqa: BLE001
                log.exception("on_swap callback raised")

    def _refuse(self, request: SwapRequest, err: BaseException) -> None:
        version_id = request.version_id
        self.load_failures += 1
        self._refused.add(version_id)
        self.last_error = f"version {version_id}: {type(err).__name__}: {err}"
        self.failures.append(LoadFailure(version_id, request.cause, request.event_id, self.last_error, time.time()))
        if self._metrics is not None:
            self._metrics.load_failures.labels(self.router_id).inc()
        log.error("router %s: refusing version %s (%s), still serving %s: %s", self.router_id, version_id,
                  request.cause, self.version_id, self.last_error)
