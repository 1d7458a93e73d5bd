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

This module is the part apps call (choosing and lifecycle); reading the events topic is
:mod:`memabrad.sdk.feed`, loading and swapping versions :mod:`memabrad.sdk.swap`.
"""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

from prometheus_client import CollectorRegistry

from memabrad.config import Config, KafkaConfig
from memabrad.learning.features import as_candidates
from memabrad.learning.router import Decision, Router
from memabrad.sdk._kafka import resolve_kafka
from memabrad.sdk._loop import BackgroundLoop
from memabrad.sdk.cases import CaseLookup
from memabrad.sdk.feed import BACKLOG_BUDGET_S as BACKLOG_BUDGET_S
from memabrad.sdk.feed import FETCH_MAX_WAIT_MS as FETCH_MAX_WAIT_MS
from memabrad.sdk.feed import SEEN_EVENT_IDS as SEEN_EVENT_IDS
from memabrad.sdk.feed import RouterEventFeed
from memabrad.sdk.swap import KEPT_HISTORY as KEPT_HISTORY
from memabrad.sdk.swap import LoadFailure, Swap, SwapMetrics, VersionSwapper
from memabrad.sdk.trajectory import make_trajectory
from memabrad.store.versions import RouterVersionStore

__all__ = ["Decision", "FallbackPolicy", "LoadFailure", "RouterFollower", "Swap"]

FallbackPolicy = Callable[[Any, Sequence[str]], str]
"""``(task, candidates) -> route``: the app's own rule, serving until the daemon's first version exists."""


def fallback_decision(policy: FallbackPolicy, task: Any, candidates: Sequence[str], epsilon: float,
                      rng: random.Random) -> Decision:
    """Epsilon-greedy over the app's rule, drawn exactly as ``Router.choose`` draws.

    >>> fallback_decision(lambda task, cands: cands[0], {}, ["a", "b"], 0.0, random.Random(1)).route
    'a'
    """
    cands = as_candidates(candidates)
    if not cands:
        raise ValueError("candidates must not be empty")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError("epsilon must be within [0, 1]")
    greedy = policy(task, cands)
    if greedy not in cands:
        raise ValueError(f"the fallback policy chose {greedy!r}, which is not a candidate")
    k = len(cands)
    route = greedy
    if epsilon > 0.0 and rng.random() < epsilon:
        route = cands[int(rng.random() * k) % k]
    propensity = (1.0 - epsilon) + epsilon / k if route == greedy else epsilon / k
    return Decision(route, propensity, {}, None, None)


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
    ``evaluation.max_importance_weight`` (50) is inconclusive until the evidence holds
    ``evaluation.trajectories_per_weight`` (100) trajectories per unit of that weight. So keep
    ``epsilon / k`` (k candidates) above 1/50 to be judged from the first looks: the default 0.2
    is enough for up to 10 candidates.
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
        metrics = SwapMetrics.for_registry(registry) if registry is not None else None
        self._swapper = VersionSwapper(self.store, self.cases, metrics=metrics, on_swap=self._swapped)
        self._feed: RouterEventFeed | None = None
        self._tasks: list[asyncio.Task[None]] = []
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
        return self._swapper.router

    @property
    def version_id(self) -> str | None:
        """The version serving now; None while no version was ever loaded."""
        return self._swapper.router.version_id

    def choose(self, task: Any, candidates: Sequence[str], *, epsilon: float | None = None) -> Decision:
        """Route ``task`` among ``candidates``: ``.route``, its ``.propensity``, ``.router_version``, ``.scores``.

        Epsilon-greedy: the greedy route with probability ``1 - epsilon + epsilon/k``, each
        other candidate ``epsilon/k``; ``propensity`` is that probability for the route returned.
        ``task`` is a trajectory's task (a dict with ``input``, ``task_type``, ``features``, ``tags``).
        """
        eps = self.epsilon if epsilon is None else epsilon
        router = self._swapper.router
        if router.version_id is None and self.fallback is not None:
            return fallback_decision(self.fallback, task, candidates, eps, self.rng)
        return router.choose(task, candidates, eps, self.rng)

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
        self._swapper.bind_loop()
        feed = None
        if self.kafka is not None:
            if self._feed is None:  # made once: its dedup memory outlives a restart
                self._feed = RouterEventFeed(self.kafka, self.topic, self.router_id, self._swapper.switch_to,
                                             create_topic=self.create_topic)
            feed = self._feed
            await feed.open()
        try:
            await self._swapper.switch_to_current(cause="start")
            await self._swapper.refresh_cases()  # start is not latency critical: serve with hints from the first choice
        except BaseException:
            if feed is not None:
                await feed.close()
            raise
        self._running = True
        if feed is not None:
            self._tasks.append(asyncio.create_task(feed.run(), name="memabrad-sdk-follow"))
        if self.poll_interval_s is not None:
            self._tasks.append(asyncio.create_task(self._swapper.follow_store(self.poll_interval_s),
                                                   name="memabrad-sdk-poll"))
        return self

    async def stop(self) -> None:
        """Stop following; the current version keeps serving ``choose``."""
        self._running = False
        tasks, self._tasks = [*self._tasks, *self._swapper.take_background()], []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._feed is not None:
            await self._feed.close()

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
        return self._swapper.load_active()

    async def wait_for_version(self, version_id: str | None = None, timeout: float = 10.0) -> str:
        """Until ``version_id`` serves (any version when None); ``TimeoutError`` after ``timeout`` s."""
        return await self._swapper.wait_for_version(version_id, timeout)

    def _swapped(self, swap: Swap) -> None:
        """Calls ``on_swap`` as it is now, so an app may set it after construction (errors are logged)."""
        if self.on_swap is not None:
            self.on_swap(swap)

    # -- counters -------------------------------------------------------------------------

    @property
    def swaps(self) -> collections.deque[Swap]:
        """The latest swaps, oldest first."""
        return self._swapper.swaps

    @property
    def failures(self) -> collections.deque[LoadFailure]:
        """The latest refused versions, oldest first."""
        return self._swapper.failures

    @property
    def swap_count(self) -> int:
        return self._swapper.swap_count

    @property
    def load_failures(self) -> int:
        return self._swapper.load_failures

    @property
    def last_error(self) -> str | None:
        return self._swapper.last_error

    @property
    def events_seen(self) -> int:
        """Valid router events read for this router (any type)."""
        return self._feed.events_seen if self._feed is not None else 0

    @property
    def duplicate_events(self) -> int:
        return self._feed.duplicate_events if self._feed is not None else 0

    @property
    def invalid_events(self) -> int:
        return self._feed.invalid_events if self._feed is not None else 0

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
