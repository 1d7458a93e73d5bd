"""A small HTTP/1.1 server for ``/metrics``, ``/healthz``, ``/readyz`` and ``/status``.

Built on anyio's TCP listener so it lives in the daemon's task group and stops with it;
GET only, one request per connection, bounded request size and read time.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import SocketStream

from memabrad.daemon.metrics import DaemonMetrics

log = logging.getLogger("memabrad.http")
MAX_REQUEST = 8192
READ_TIMEOUT_S = 5.0
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request", 503: "Service Unavailable"}


@dataclass
class HttpApp:
    metrics: DaemonMetrics
    healthy: Callable[[], bool]
    ready: Callable[[], bool]
    status: Callable[[], dict[str, Any]]

    def respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        path = path.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", self.metrics.render()
        if path == "/healthz":
            ok = self.healthy()
            return (200 if ok else 503), "text/plain", b"ok\n" if ok else b"unhealthy\n"
        if path == "/readyz":
            ok = self.ready()
            return (200 if ok else 503), "text/plain", b"ready\n" if ok else b"not ready\n"
        if path == "/status":
            body = json.dumps(self.status(), sort_keys=True, default=str).encode("utf-8")
            return 200, "application/json", body
        return 404, "text/plain", b"not found\n"


async def _handle(app: HttpApp, stream: SocketStream) -> None:
    async with stream:
        data = b""
        with anyio.move_on_after(READ_TIMEOUT_S):
            while b"\r\n\r\n" not in data and len(data) < MAX_REQUEST:
                try:
                    chunk = await stream.receive(4096)
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    return
                data += chunk
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3:
            status, ctype, body = 400, "text/plain", b"bad request\n"
            method = "GET"
        else:
            method = parts[0]
            try:
                status, ctype, body = app.respond(method, parts[1])
            except Exception:  # noqa: BLE001 - a bad handler must not kill the server
                log.exception("http handler failed")
                status, ctype, body = 500, "text/plain", b"internal error\n"
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1")
        with contextlib.suppress(anyio.BrokenResourceError, OSError):
            await stream.send(head + (b"" if method == "HEAD" else body))


async def serve_http(app: HttpApp, host: str, port: int, started: Callable[[int], None] | None = None) -> None:
    """Serve until cancelled; ``started`` receives the bound port (useful with port 0)."""
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port, reuse_port=False)
    bound = listener.extra(anyio.abc.SocketAttribute.local_port)
    log.info("http listening", extra={"host": host, "port": bound})
    if started:
        started(bound)
    async with listener:
        await listener.serve(lambda s: _handle(app, s))
