"""Compact, key-sorted JSON encoded in small pieces, for large documents written beside a live event loop.

A JSON encoder implemented in C holds the GIL for the whole document: a 10 MB checkpoint
encoded in one call stops every other thread — the daemon's event loop included — for
the duration (~50 ms with orjson, ~200 ms with the standard library). Encoding long lists
a slice at a time gives the interpreter a chance to switch threads between slices, so
the loop is never held for more than one slice.

The output is the same document ``json.dumps(obj, sort_keys=True, separators=(",", ":"))``
would decode to (number formatting may differ: orjson writes ``1e-5``, not ``1e-05``).
Non-finite floats are not JSON; orjson writes them as ``null``.

>>> dumps_chunked({"b": [1, 2, 3], "a": {"y": [1.5, None], "x": "s"}}, chunk=2)
b'{"a":{"x":"s","y":[1.5,null]},"b":[1,2,3]}'
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

__all__ = ["dumps_chunked", "gc_paused", "loads"]

_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
CHUNK = 256  # list items per encoder call: well under a millisecond for the daemon's state
MAX_STRUCTURAL_KEYS = 64  # larger dicts (weights, counters by id) are encoded whole: one fast call


def _encode(obj: Any, out: list[bytes], chunk: int) -> None:
    if isinstance(obj, dict) and len(obj) <= MAX_STRUCTURAL_KEYS:
        out.append(b"{")
        for i, key in enumerate(sorted(obj, key=str)):
            if i:
                out.append(b",")
            out.append(orjson.dumps(str(key)))
            out.append(b":")
            _encode(obj[key], out, chunk)
        out.append(b"}")
    elif isinstance(obj, list | tuple) and len(obj) > chunk:
        out.append(b"[")
        for start in range(0, len(obj), chunk):
            if start:
                out.append(b",")
            out.append(orjson.dumps(list(obj[start:start + chunk]), option=_OPTS)[1:-1])
        out.append(b"]")
    else:
        out.append(orjson.dumps(obj, option=_OPTS))


def dumps_chunked(obj: Any, chunk: int = CHUNK) -> bytes:
    """Encode ``obj`` as compact JSON with sorted keys, a slice of each long list at a time."""
    out: list[bytes] = []
    _encode(obj, out, chunk)
    return b"".join(out)


def loads(data: bytes) -> Any:
    """Decode JSON; documents from older writers that hold ``NaN`` fall back to the standard library."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        import json

        return json.loads(data)


_gc_lock = threading.Lock()
_gc_pauses = 0


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large, short-lived document is built.

    Building a state snapshot allocates hundreds of thousands of containers that survive
    until they are encoded; each allocation burst would trigger full collections over the
    whole heap, which hold the GIL (and so the event loop) for tens of milliseconds each.
    Nesting-safe across threads; the collector resumes when the last pause ends.
    """
    global _gc_pauses
    with _gc_lock:
        ours = _gc_pauses > 0 or gc.isenabled()  # else someone disabled it for good: leave it so
        if ours:
            _gc_pauses += 1
            gc.disable()
    try:
        yield
    finally:
        if ours:
            with _gc_lock:
                _gc_pauses -= 1
                if _gc_pauses == 0:
                    gc.enable()
