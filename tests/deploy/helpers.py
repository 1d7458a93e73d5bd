"""Helpers of the deployment tests: paths, tool lookup, processes that are always stopped, polling, PNG pixels."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polling
import pytest
import yaml

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "memabrad.json"
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str | None:
    """A command from the virtualenv (pip-installed tools) or the PATH."""
    local = VENV_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def require_tool(name: str, how: str) -> str:
    """The tool's path; skip the test only when it is not installed (``how`` says how to get it)."""
    found = tool(name)
    if found is None:
        pytest.skip(f"{name} is not installed ({how})")
    return found


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_all(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def wait_until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll ``check`` (errors count as "not yet") until truthy; fail naming ``what`` after ``timeout`` seconds."""
    return polling.wait_until(check, timeout, what, interval, tolerate_errors=True)


def http_post_form(url: str, form: dict[str, str], timeout: float = 10.0) -> tuple[int, bytes]:
    data = urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class Proc:
    """A child process with its output in a log file; :meth:`stop` always ends it."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None):
        self.args = args
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=cwd, start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._log.close()


@contextlib.contextmanager
def running(args: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> Iterator[Proc]:
    p = Proc(args, log, env, cwd)
    try:
        yield p
    finally:
        p.stop()


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    out: list[tuple[str, str]] = []
    buf = ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def healthcheck_command() -> list[str]:
    """The HEALTHCHECK's exec-form command (also run against a live daemon in test_live_prometheus)."""
    health = dict(dockerfile_instructions())["HEALTHCHECK"]
    return json.loads(health[health.index("CMD") + 3:].strip())


# -- PNG ------------------------------------------------------------------------------------------------


def _unfilter_paeth(line: bytearray, prev: bytes, bpp: int) -> None:
    """Undo PNG filter 4 in place (sequential along the row; the other filters are vectorised)."""
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF


def _unfilter_average(line: bytearray, prev: bytes, bpp: int) -> None:
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        line[i] = (line[i] + ((a + prev[i]) >> 1)) & 0xFF


def read_png(path: Path) -> np.ndarray:
    """The RGB pixels (height x width x 3, uint8) of an 8-bit, non-interlaced RGB or RGBA PNG (Chromium's)."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat = 8, bytearray()
    width = height = color_type = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            if depth != 8 or color_type not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, color type {color_type}, interlace {interlace}")
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
        pos += 12 + length
    bpp = 4 if color_type == 6 else 3
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(bytes(idat)), dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        ftype, line = raw[y, 0], raw[y, 1:]
        if ftype == 0:
            cur = line.copy()
        elif ftype == 1:
            cur = (np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint64) % 256).astype(np.uint8).ravel()
        elif ftype == 2:
            cur = line + prev  # uint8 arithmetic wraps modulo 256
        else:
            buf = bytearray(line.tobytes())
            (_unfilter_average if ftype == 3 else _unfilter_paeth)(buf, prev.tobytes(), bpp)
            cur = np.frombuffer(bytes(buf), dtype=np.uint8)
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp)[:, :, :3]


def hex_rgb(color: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"#([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})", color)
    assert m, color
    r, g, b = (int(x, 16) for x in m.groups())
    return r, g, b


def count_pixels(pixels: np.ndarray, color: tuple[int, int, int], tolerance: int = 24) -> int:
    """Pixels within ``tolerance`` (per channel) of ``color``."""
    diff = np.abs(pixels.astype(np.int16) - np.array(color, dtype=np.int16))
    return int(np.count_nonzero((diff <= tolerance).all(axis=2)))


def count_non_white(pixels: np.ndarray, threshold: int = 235) -> int:
    return int(np.count_nonzero((pixels < threshold).any(axis=2)))
