"""Serving the daemon's active router inside the agent, hot-swapped as the daemon promotes or rolls back.

``RouterFollower`` loads the active version from the store at start, then follows the
router events topic from its end: ``router.promoted`` and ``router.rolled_back`` for its
router make it load the named version (its sha256 verified by ``Router.load``) in a worker
thread and swap it in between two ``choose`` calls. A version that fails to load is
refused: the previous one keeps serving, and the refusal is logged, counted
(``load_failures``, optional Prometheus counter) and kept in ``last_error``.

Events are deduplicated by ``event_id`` (the daemon may re-publish one after a crash).
The end offsets are resolved *before* the initial load, so an event published while
the follower starts is seen rather than lost. A slow poll of ``current.json`` (every
``poll_interval_s``) also catches changes made without an event, e.g. a local
``memabrad rollback`` while no daemon ran; without Kafka settings it is the only source.

``choose`` is synchronous and cheap (no I/O): call it from the app's hot path. With
``epsilon`` > 0 it explores uniformly and reports the exact propensity of the route it
returns, which is what lets the daemon evaluate challengers on the app's own traffic.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
import weakref
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import UnknownTopicOrPartitionError
from prometheus_client import CollectorRegistry, Counter, Gauge

from memabrad.config import Config, KafkaConfig
from memabrad.kafka.client import client_kwargs
from memabrad.kafka.topics import ensure_topics, topic_partitions
from memabrad.learning.case_index import CaseIndex
from memabrad.learning.features import as_candidates
from memabrad.learning.router import Decision, Router
from memabrad.sdk._kafka import as_config, resolve_kafka
from memabrad.sdk._loop import BackgroundLoop
from memabrad.sdk.cases import CaseLookup
from memabrad.sdk.trajectory import make_trajectory
from memabrad.store.versions import RouterVersionStore
from memabrad.wire.events import InvalidRouterEvent, RouterPromoted, RouterRolledBack, parse_router_event

__all__ = ["Decision", "FallbackPolicy", "LoadFailure", "RouterFollower", "Swap"]

log = logging.getLogger("memabrad.sdk.follower")

SEEN_EVENT_IDS = 10_000
"""Event ids remembered for deduplication (re-publications follow the original closely)."""
KEPT_HISTORY = 100
FETCH_MAX_WAIT_MS = 100
"""How long the broker may hold an empty fetch: bounds how late an event is noticed."""
FallbackPolicy = Callable[[Any, Sequence[str]], str]
"""``(task, candidates) -> route``: the app's own rule, serving until the daemon's first version exists."""
BACKLOG_BUDGET_S = 2.0
"""At most this long at start to skip events already reflected in the store."""


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


class _Metrics:
    """Optional Prometheus metrics; one set per registry, shared by the followers registered on it."""

    _by_registry: weakref.WeakKeyDictionary[CollectorRegistry, _Metrics] = weakref.WeakKeyDictionary()

    def __init__(self, registry: CollectorRegistry) -> None:
        self.swaps = Counter("memabrad_sdk_router_swaps_total", "Router versions swapped in by the follower",
                             ["router_id", "cause"], registry=registry)
        self.load_failures = Counter("memabrad_sdk_router_load_failures_total",
                                     "Router versions the follower refused to serve (load or verification failed)",
                                     ["router_id"], registry=registry)
        self.active = Gauge("memabrad_sdk_active_router_info", "The version the follower serves (value 1)",
                            ["router_id", "version_id"], registry=registry)

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> _Metrics:
        metrics = cls._by_registry.get(registry)
        if metrics is None:
            metrics = cls._by_registry[registry] = cls(registry)
        return metrics


class RouterFollower:
    """The active router of ``router_id`` from the store at ``base_dir``, kept current by router events.

    Give ``bootstrap_servers`` (or the daemon's ``KafkaConfig``) to follow events; without
    either the follower only polls the store. Until a version exists, ``fallback`` (the
    app's existing rule, if any) or else an untrained router serves, exploring with
    ``epsilon`` like any version (``version_id`` None). Pass the rule the app routed with
    before memabrad: the first challengers are judged against what it achieves.

    ``epsilon`` is the exploration rate. The daemon can only judge a challenger on tasks
    where the logged route is the one the challenger would take, weighting each by
    1/propensity; in statistical mode an evaluation whose largest weight exceeds
    ``evaluation.max_importance_weight`` (50) is inconclusive. So keep ``epsilon / k``
    (k candidates) above 1/50: the default 0.2 is enough for up to 10 candidates.
    ``rng`` is a ``random.Random`` or a seed, for reproducible exploration.
    ``on_swap`` is called on the event loop after each swap; it must not block.
    ``create_topic`` creates a missing events topic (one partition), for local experiments.
    """

    def __init__(
        self,
        base_dir: str | Path,
        router_id: str = "default",
        *,
        bootstrap_servers: str | None = None,
        kafka: KafkaConfig | None = None,
        topic: str | None = None,
        epsilon: float = 0.2,
        rng: random.Random | int | None = None,
        poll_interval_s: float | None = 5.0,
        create_topic: bool = False,
        fallback: FallbackPolicy | None = None,
        on_swap: Callable[[Swap], None] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError("epsilon must be within [0, 1]")
        self.store = RouterVersionStore(base_dir, router_id)
        self.router_id = router_id
        self.epsilon = epsilon
        self.rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        self.kafka = resolve_kafka(bootstrap_servers, kafka) if (bootstrap_servers or kafka) else None
        self.topic = topic or (self.kafka.topics.router_events if self.kafka else "memabra.router.events")
        self.poll_interval_s = poll_interval_s
        self.create_topic = create_topic
        self.on_swap = on_swap
        self.fallback = fallback
        self.cases = CaseLookup(base_dir, router_id, check_interval_s=None)
        """The router's case index, refreshed with each load and poll (lookups never touch the disk)."""
        self._metrics = _Metrics.for_registry(registry) if registry is not None else None
        self._router = Router()
        self.swaps: collections.deque[Swap] = collections.deque(maxlen=KEPT_HISTORY)
        """The latest swaps, oldest first."""
        self.failures: collections.deque[LoadFailure] = collections.deque(maxlen=KEPT_HISTORY)
        """The latest refused versions, oldest first."""
        self.swap_count = 0
        self.load_failures = 0
        self.last_error: str | None = None
        self.events_seen = 0
        """Valid router events read for this router (any type)."""
        self.duplicate_events = 0
        self.invalid_events = 0
        self._seen_ids: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._refused: set[str] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._swap_lock: asyncio.Lock | None = None
        self._changed: asyncio.Event | None = None
        self._running = False
        self._thread_loop: BackgroundLoop | None = None

    @classmethod
    def from_config(cls, cfg: Config, router_id: str = "default", **options: Any) -> RouterFollower:
        """A follower for the daemon's own config: its store, cluster, events topic and ``router.serving_epsilon``."""
        options.setdefault("epsilon", cfg.router.serving_epsilon)
        return cls(cfg.store.base_dir, router_id, kafka=cfg.kafka, **options)

    def __repr__(self) -> str:
        return f"RouterFollower({str(self.store.base_dir)!r}, {self.router_id!r}, version_id={self.version_id!r})"

    # -- serving --------------------------------------------------------------------------

    @property
    def router(self) -> Router:
        """The router serving now (untrained until a version exists)."""
        return self._router

    @property
    def version_id(self) -> str | None:
        """The version serving now; None while no version was ever loaded."""
        return self._router.version_id

    def choose(self, task: Any, candidates: Sequence[str], *, epsilon: float | None = None) -> Decision:
        """Route ``task`` among ``candidates``: ``.route``, its ``.propensity``, ``.router_version``, ``.scores``.

        Epsilon-greedy: the greedy route with probability ``1 - epsilon + epsilon/k``, each
        other candidate ``epsilon/k``; ``propensity`` is that probability for the route returned.
        ``task`` is a trajectory's task (a dict with ``input``, ``task_type``, ``features``, ``tags``).
        """
        eps = self.epsilon if epsilon is None else epsilon
        router = self._router
        if router.version_id is None and self.fallback is not None:
            return self._choose_fallback(task, candidates, eps)
        return router.choose(task, candidates, eps, self.rng)

    def _choose_fallback(self, task: Any, candidates: Sequence[str], epsilon: float) -> Decision:
        """Epsilon-greedy over the app's rule, drawn exactly as ``Router.choose`` draws."""
        assert self.fallback is not None
        cands = as_candidates(candidates)
        if not cands:
            raise ValueError("candidates must not be empty")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError("epsilon must be within [0, 1]")
        greedy = self.fallback(task, cands)
        if greedy not in cands:
            raise ValueError(f"the fallback policy chose {greedy!r}, which is not a candidate")
        k = len(cands)
        route = greedy
        if epsilon > 0.0 and self.rng.random() < epsilon:
            route = cands[int(self.rng.random() * k) % k]
        propensity = (1.0 - epsilon) + epsilon / k if route == greedy else epsilon / k
        return Decision(route, propensity, {}, None, None)

    def probabilities(self, task: Any, candidates: Sequence[str], *, epsilon: float | None = None) -> dict[str, float]:
        """The whole distribution ``choose`` draws from for this task (sums to 1)."""
        eps = self.epsilon if epsilon is None else epsilon
        greedy = self.choose(task, candidates, epsilon=0.0).route
        cands = as_candidates(candidates)
        k = len(cands)
        return {r: eps / k + (1.0 - eps if r == greedy else 0.0) for r in cands}

    def make_trajectory(self, task: Any, candidates: Sequence[str], decision: Any, outcome: Any,
                        **kwargs: Any) -> dict[str, Any]:
        """``memabrad.sdk.make_trajectory`` with this follower's ``router_id``."""
        return make_trajectory(task, candidates, decision, outcome, router_id=self.router_id, **kwargs)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> Self:
        """Position on the events topic's end, load the active version, then follow in the background."""
        if self._running:
            return self
        self._swap_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        if self.kafka is not None:
            self._consumer = await self._start_consumer(self.kafka)
        try:
            await self._switch_to_current(cause="start")
            await self._refresh_cases()  # start is not latency critical: serve with hints from the first choice
        except BaseException:
            await self._stop_consumer()
            raise
        self._running = True
        if self._consumer is not None:
            self._tasks.append(asyncio.create_task(self._consume_loop(self._consumer), name="memabrad-sdk-follow"))
        if self.poll_interval_s is not None:
            self._tasks.append(asyncio.create_task(self._poll_loop(self.poll_interval_s), name="memabrad-sdk-poll"))
        return self

    async def stop(self) -> None:
        """Stop following; the current version keeps serving ``choose``."""
        self._running = False
        tasks, self._tasks = [*self._tasks, *self._background], []
        self._background.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._stop_consumer()

    def start_in_thread(self, timeout: float = 30.0) -> Self:
        """``start`` on a private event loop in a daemon thread, for apps without asyncio.

        ``choose`` may then be called from any thread; end with ``stop_in_thread``.
        """
        if self._thread_loop is None:
            loop = BackgroundLoop(f"memabrad-sdk-follower-{self.router_id}")
            loop.start()
            try:
                loop.run(self.start(), timeout)
            except BaseException:
                loop.stop()
                raise
            self._thread_loop = loop
        return self

    def stop_in_thread(self, timeout: float = 30.0) -> None:
        """Undo ``start_in_thread``; the current version keeps serving ``choose``."""
        loop, self._thread_loop = self._thread_loop, None
        if loop is not None:
            try:
                loop.run(self.stop(), timeout)
            finally:
                loop.stop()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def load_active(self) -> str | None:
        """Load the active version now, synchronously (without events; for scripts and tests)."""
        current = self.store.get_current()
        version_id = current["version_id"] if current else None
        if version_id is not None and version_id != self.version_id:
            now = time.time()
            try:
                router = self._load(version_id)
            except Exception as err:  # noqa: BLE001
                self._refuse(version_id, "start", None, err)
            else:
                self._apply(router, "start", None, None, now)
        self.cases.refresh()
        if self.cases.index is not None:
            self._router.case_index = self.cases.index
        return self.version_id

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

    def stats(self) -> dict[str, Any]:
        """Counters for logs and health endpoints."""
        last = self.swaps[-1] if self.swaps else None
        return {
            "router_id": self.router_id,
            "version_id": self.version_id,
            "swaps": self.swap_count,
            "load_failures": self.load_failures,
            "last_error": self.last_error,
            "events_seen": self.events_seen,
            "duplicate_events": self.duplicate_events,
            "invalid_events": self.invalid_events,
            "last_swap_latency_s": last.latency_s if last else None,
            "cases": len(self.cases),
        }

    # -- Kafka ----------------------------------------------------------------------------

    async def _start_consumer(self, kafka: KafkaConfig) -> AIOKafkaConsumer:
        if self.create_topic:
            await ensure_topics(as_config(kafka), names=[self.topic])
        try:
            count = await topic_partitions(as_config(kafka), self.topic)
        except UnknownTopicOrPartitionError:
            raise UnknownTopicOrPartitionError(
                f"router events topic {self.topic!r} does not exist: start the daemon (or create the topics) first, "
                "or pass create_topic=True") from None
        consumer = AIOKafkaConsumer(**client_kwargs(kafka), group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="latest", fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in range(count)]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:  # resolve now: events published from here on are ours, even during the initial load
                await consumer.position(tp)
            await self._skip_backlog(consumer)
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def _skip_backlog(self, consumer: AIOKafkaConsumer) -> None:
        """Mark as seen what is readable right away; the initial load, which comes after, reflects it.

        With Kafka the end position has nothing behind it and this returns after one empty
        fetch. Some brokers (the embedded Tansu) report the end of a partition as one past the
        *first* record of its last batch, which would replay the rest of that batch as new.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BACKLOG_BUDGET_S
        while loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=FETCH_MAX_WAIT_MS * 2)
            if not batches:
                return
            for records in batches.values():
                for record in records:
                    with contextlib.suppress(InvalidRouterEvent):
                        self._is_new(parse_router_event(record.value if record.value is not None else b"").event_id)

    async def _stop_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10)

    async def _consume_loop(self, consumer: AIOKafkaConsumer) -> None:
        backoff = 0.5
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - keep following; the poll loop covers the gap
                log.warning("router events: read failed, retrying in %.1fs: %r", backoff, err)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            received = time.time()
            for records in batches.values():
                for record in records:
                    await self._on_record(record, received)

    def _is_new(self, event_id: str) -> bool:
        if event_id in self._seen_ids:
            return False
        self._seen_ids[event_id] = None
        if len(self._seen_ids) > SEEN_EVENT_IDS:
            self._seen_ids.popitem(last=False)
        return True

    async def _on_record(self, record: Any, received: float) -> None:
        try:
            event = parse_router_event(record.value if record.value is not None else b"")
        except InvalidRouterEvent as err:
            self.invalid_events += 1
            log.debug("ignoring an invalid router event at %s:%s: %s", record.partition, record.offset, err.reason)
            return
        if event.router_id != self.router_id:
            return
        self.events_seen += 1
        if not isinstance(event, RouterPromoted | RouterRolledBack):
            return
        if not self._is_new(event.event_id):
            self.duplicate_events += 1
            return
        published = record.timestamp / 1000.0 if record.timestamp and record.timestamp > 0 else None
        await self._switch_to(event.version_id, cause=event.type, event_id=event.event_id, published_at=published,
                              received_at=received)

    # -- loading --------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _poll_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self._refresh_cases()
                await self._switch_to_current(cause="store")
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - an unreadable current.json must not stop following
                log.warning("router %s: cannot read the store: %r", self.router_id, err)

    async def _switch_to_current(self, cause: str) -> None:
        current = await asyncio.to_thread(self.store.get_current)
        version_id = current["version_id"] if current else None
        if version_id is None or version_id == self.version_id:
            return
        if cause == "store" and version_id in self._refused:
            return  # refused once already; an event naming it again retries
        await self._switch_to(version_id, cause=cause, event_id=None, published_at=None, received_at=time.time())

    async def _switch_to(self, version_id: str, *, cause: str, event_id: str | None, published_at: float | None,
                         received_at: float) -> None:
        assert self._swap_lock is not None
        async with self._swap_lock:  # one load at a time, in event order
            if version_id == self.version_id:
                return
            try:
                router = await asyncio.to_thread(self._load, version_id)
            except Exception as err:  # noqa: BLE001 - any load failure: refuse and keep serving
                self._refuse(version_id, cause, event_id, err)
                return
            self._apply(router, cause, event_id, published_at, received_at)
        self._spawn(self._refresh_cases())

    def _load(self, version_id: str) -> Router:
        """Read, verify (sha256) and build a version (worker thread).

        The case index loaded so far is attached as is: reloading a large index takes
        seconds, so a changed one is loaded after the swap and attached when ready
        (``_refresh_cases``); meanwhile the new version routes without the newest hints.
        """
        index = self.cases.index
        return Router.load(self.store.version_dir(version_id), case_index=index if index is not None else CaseIndex())

    async def _refresh_cases(self) -> None:
        """Load the case index if the daemon rewrote it, and hand it to the router serving now."""
        try:
            if await self.cases.refresh_async():
                self._router.case_index = self.cases.index
        except Exception as err:  # noqa: BLE001 - hints are optional; CaseLookup already logged load errors
            log.warning("router %s: case index refresh failed: %r", self.router_id, err)

    def _apply(self, router: Router, cause: str, event_id: str | None, published_at: float | None,
               received_at: float) -> None:
        previous = self.version_id
        self._router = router  # one reference assignment: a concurrent choose() sees the old or the new version
        assert router.version_id is not None
        self._refused.discard(router.version_id)
        swap = Swap(router.version_id, previous, cause, event_id, published_at, received_at, time.time())
        self.swaps.append(swap)
        self.swap_count += 1
        latency = f" {swap.latency_s * 1000:.0f} ms after publication" if swap.latency_s is not None else ""
        log.info("router %s: now serving version %s (was %s; %s)%s", self.router_id, swap.version_id, previous,
                 cause, latency)
        if self._metrics is not None:
            self._metrics.swaps.labels(self.router_id, cause).inc()
            if previous is not None:
                with contextlib.suppress(KeyError):
                    self._metrics.active.remove(self.router_id, previous)
            self._metrics.active.labels(self.router_id, swap.version_id).set(1)
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()
        if self.on_swap is not None:
            try:
                self.on_swap(swap)
            except Exception:  # noqa: BLE001
                log.exception("on_swap callback raised")

    def _refuse(self, version_id: str, cause: str, event_id: str | None, err: BaseException) -> None:
        self.load_failures += 1
        self._refused.add(version_id)
        self.last_error = f"version {version_id}: {type(err).__name__}: {err}"
        self.failures.append(LoadFailure(version_id, cause, event_id, self.last_error, time.time()))
        if self._metrics is not None:
            self._metrics.load_failures.labels(self.router_id).inc()
        log.error("router %s: refusing version %s (%s), still serving %s: %s", self.router_id, version_id, cause,
                  self.version_id, self.last_error)
