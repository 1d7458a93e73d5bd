"""The one polling helper of the test suites: wait on a condition with a deadline, never a bare sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2,
               tolerate_errors: bool = False) -> T:
    """Poll ``probe`` until it returns something truthy; AssertionError naming ``what`` at the deadline.

    ``tolerate_errors``: exceptions from ``probe`` count as "not yet" (services still starting)
    and the last one is named in the failure.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    last_error: Exception | None = None
    while True:
        try:
            last = probe()
            if last:
                return last
        except Exception as err:
            if not tolerate_errors:
                raise
            last_error = err
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last value: {last!r}{detail}")
        time.sleep(interval)  # the polling interval of a deadline-bounded wait


async def until(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.01) -> T:
    """``wait_until`` for code on an asyncio loop: the probe runs on the loop between polls."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := probe()):
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(interval)  # the polling interval of a deadline-bounded wait
    return value
