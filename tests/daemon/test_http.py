"""The HTTP server answers from its own thread: a busy or stalled event loop reports itself, idle
connections do not starve it, and the state endpoints read the daemon's loop with a deadline."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from memabrad.daemon.http import Heartbeat, HttpApp, HttpServer
from memabrad.daemon.metrics import DaemonMetrics


def _get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:  # noqa: S310
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


class MainLoop:
    """A stand-in for the daemon's event loop, on a thread, beating a heartbeat; a test can block it."""

    def __init__(self, beat: Heartbeat) -> None:
        self.loop = asyncio.new_event_loop()

        def tick() -> None:
            beat.beat()
            self.loop.call_later(0.05, tick)

        self.loop.call_soon(tick)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def block(self, seconds: float) -> None:
        self.loop.call_soon_threadsafe(time.sleep, seconds)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def served() -> Iterator[tuple[HttpServer, MainLoop, Heartbeat]]:
    beat = Heartbeat()
    main = MainLoop(beat)
    app = HttpApp(DaemonMetrics(), healthy=lambda: True, ready=lambda: True,
                  status=lambda: {"ready": True, "routers": {}}, heartbeat=beat)
    server = HttpServer(app, "127.0.0.1", 0, stall_s=0.5)
    server.start(main.loop)
    yield server, main, beat
    server.stop()
    main.close()


def test_endpoints_answer(served: tuple[HttpServer, MainLoop, Heartbeat]) -> None:
    server, _, _ = served
    port = server.bound_port
    assert port is not None
    assert _get(port, "/healthz") == (200, "ok\n")
    assert _get(port, "/readyz") == (200, "ready\n")
    code, body = _get(port, "/status")
    assert code == 200 and '"ready": true' in body
    code, body = _get(port, "/metrics")
    assert code == 200 and "memabrad_ready" in body
    assert _get(port, "/nope")[0] == 404


def test_a_stalled_loop_reports_itself_instead_of_hanging(served: tuple[HttpServer, MainLoop, Heartbeat]) -> None:
    server, main, beat = served
    port = server.bound_port
    assert port is not None
    assert _get(port, "/healthz")[0] == 200
    main.block(3.0)  # the loop stops beating; past stall_s (0.5 s) /healthz says so
    started = time.monotonic()
    code, body = _get(port, "/healthz")
    while code == 200 and time.monotonic() - started < 2.0:
        code, body = _get(port, "/healthz")
    assert code == 503 and "stalled" in body
    code, body = _get(port, "/metrics")  # metrics do not need the loop
    assert code == 200
    code, body = _get(port, "/status")  # needs the loop: a prompt 503, not a hung probe
    assert code == 503 and "busy" in body
    assert time.monotonic() - started < 2.9


def test_hundreds_of_idle_connections_do_not_starve_the_server(
        served: tuple[HttpServer, MainLoop, Heartbeat]) -> None:
    server, _, _ = served
    port = server.bound_port
    assert port is not None
    idle = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
            idle.append(s)
        started = time.monotonic()
        for _ in range(20):
            assert _get(port, "/healthz")[0] == 200
        assert time.monotonic() - started < 5.0
    finally:
        for s in idle:
            s.close()
