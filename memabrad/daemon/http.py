"""``/metrics``, ``/healthz``, ``/readyz`` and ``/status``, served by aiohttp on a thread of its own.

The HTTP server must answer even when the daemon's event loop does not: a probe that
hangs because the loop is busy is indistinguishable from a dead process, and a
Kubernetes liveness probe would restart a daemon that is merely working. So:

- the server runs its own asyncio loop in a daemon thread (aiohttp: keep-alive, request
  size limits and many concurrent idle connections handled by a well-kept library);
- ``/healthz`` answers from the main loop's *heartbeat* (a timestamp the loop refreshes
  every ``HEARTBEAT_S``): 200 while the loop beat recently, 503 naming the stall when it
  has not beaten for ``STALL_S``, or when a background task failed;
- ``/metrics`` renders the Prometheus registry in the server thread (prometheus-client is
  thread safe);
- ``/readyz`` and ``/status`` read the daemon's state *on the main loop* (so they never see
  it half-changed), with a deadline: a loop that cannot answer within ``MAIN_LOOP_TIMEOUT_S``
  gets a 503 saying so instead of a hung connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from aiohttp import web

from memabrad.daemon.metrics import DaemonMetrics

log = logging.getLogger("memabrad.http")
HEARTBEAT_S = 0.1
STALL_S = 10.0
MAIN_LOOP_TIMEOUT_S = 2.0
KEEPALIVE_S = 5.0
MAX_REQUEST_LINE = 8190


@dataclass
class Heartbeat:
    """The main loop's proof of life: ``beat`` is refreshed by a task on that loop."""

    last: float = field(default_factory=time.monotonic)

    def beat(self) -> None:
        self.last = time.monotonic()

    def silence_s(self) -> float:
        return max(0.0, time.monotonic() - self.last)


@dataclass
class HttpApp:
    """What the endpoints read; ``ready`` and ``status`` run on the main loop."""

    metrics: DaemonMetrics
    healthy: Callable[[], bool]
    ready: Callable[[], bool]
    status: Callable[[], dict[str, Any]]
    heartbeat: Heartbeat = field(default_factory=Heartbeat)


class HttpServer:
    """Serves an ``HttpApp`` from a thread; ``start`` returns the bound port, ``stop`` joins the thread."""

    def __init__(self, app: HttpApp, host: str, port: int, stall_s: float = STALL_S) -> None:
        self.app = app
        self.stall_s = stall_s
        self.host = host
        self.port = port
        self._main_loop: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.bound_port: int | None = None

    # -- handlers (server thread) -------------------------------------------------------

    async def _on_main(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the daemon's loop and wait for it, at most ``MAIN_LOOP_TIMEOUT_S``."""
        assert self._main_loop is not None
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def call() -> None:
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as err:  # noqa: BLE001 - handed to the waiting handler
                    fut.set_exception(err)

        self._main_loop.call_soon_threadsafe(call)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), MAIN_LOOP_TIMEOUT_S)
        except TimeoutError:
            fut.cancel()
            raise

    async def healthz(self, _: web.Request) -> web.Response:
        silence = self.app.heartbeat.silence_s()
        if not self.app.healthy():
            return web.Response(status=503, text="unhealthy: a background task failed\n")
        if silence > self.stall_s:
            return web.Response(status=503, text=f"unhealthy: event loop stalled for {silence:.1f} s\n")
        return web.Response(text="ok\n")

    async def readyz(self, _: web.Request) -> web.Response:
        try:
            ok = await self._on_main(self.app.ready)
        except TimeoutError:
            return web.Response(status=503, text="not ready: event loop busy\n")
        return web.Response(status=200 if ok else 503, text="ready\n" if ok else "not ready\n")

    async def status(self, _: web.Request) -> web.Response:
        try:
            doc = await self._on_main(self.app.status)
        except TimeoutError:
            return web.json_response({"error": "event loop busy"}, status=503)
        body = json.dumps(doc, sort_keys=True, default=str)
        return web.Response(body=body.encode("utf-8"), content_type="application/json")

    async def metrics(self, _: web.Request) -> web.Response:
        body = self.app.metrics.render()
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    # -- lifecycle ------------------------------------------------------------------------

    def _build(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_LINE)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/status", self.status)
        app.router.add_get("/metrics", self.metrics)
        return app

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._runner = web.AppRunner(self._build(), access_log=None, keepalive_timeout=KEEPALIVE_S,
                                         max_line_size=MAX_REQUEST_LINE, max_field_size=MAX_REQUEST_LINE,
                                         handle_signals=False)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, self.port, reuse_port=False)
            loop.run_until_complete(site.start())
            server = site._server  # noqa: SLF001 - the bound port of port 0
            sockets = getattr(server, "sockets", None) or []
            self.bound_port = sockets[0].getsockname()[1] if sockets else self.port
        except BaseException as err:  # noqa: BLE001 - reported to start()
            self._error = err
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._runner.cleanup())
            loop.close()

    def start(self, main_loop: asyncio.AbstractEventLoop) -> int:
        self._main_loop = main_loop
        self._thread = threading.Thread(target=self._serve, name="memabrad-http", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        assert self.bound_port is not None
        log.info("http listening", extra={"host": self.host, "port": self.bound_port})
        return self.bound_port

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)


async def heartbeat_loop(heartbeat: Heartbeat, lag: Callable[[float], None] | None = None) -> None:
    """Refresh the heartbeat every ``HEARTBEAT_S`` and report how late each wake-up was (the loop's lag)."""
    while True:
        before = time.monotonic()
        heartbeat.beat()
        await anyio.sleep(HEARTBEAT_S)
        if lag is not None:
            lag(max(0.0, time.monotonic() - before - HEARTBEAT_S))
