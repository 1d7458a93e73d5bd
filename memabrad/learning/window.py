"""The hold-out rule and the benchmark window of held-out logged trajectories.

Which trajectories are held out is decided by a stable hash of ``trajectory_id`` — the
same in every process and across restarts — so replays after a crash make the same split.
A held-out trajectory is benchmarked on while it is in the window and never learned before:
the window only ever holds tasks the challenger has not learned. When a newer one pushes it
out, the window hands it back (``append``'s return) and the learner learns it then
(``learner.py``, ``evaluation.learn_held_out``), so no trajectory is withheld for good.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from memabrad.learning.features import Features
from memabrad.store.packed import pack, unpack
from memabrad.wire.ids import holdout_bucket_of, trajectory_digest


def holdout_bucket(trajectory_id: str) -> float:
    """A number in [0, 1) fixed by the id alone.

    >>> holdout_bucket("abc") == holdout_bucket("abc")
    True
    >>> 0.0 <= holdout_bucket("abc") < 1.0
    True
    """
    return holdout_bucket_of(trajectory_digest(trajectory_id))


def is_holdout(trajectory_id: str, fraction: float, digest: bytes | None = None) -> bool:
    """``digest``: ``trajectory_digest(trajectory_id)`` when the caller has it (hash an id once)."""
    return holdout_bucket_of(digest if digest is not None else trajectory_digest(trajectory_id)) < fraction


class PackedFeatures(Mapping[int, float]):
    """A held-out task's features as two arrays (keys, values; in the order they were made), read-only.

    The window keeps thousands of tasks for as long as they are in it: a few-shot prompt's ~600
    features take ~10 KB so, against ~55 KB as a dict of Python ints and floats, and the window's
    feature matrix and checkpoint are built from the arrays directly.

    >>> p = PackedFeatures.of({7: 0.5, 3: -1.0})
    >>> list(p.items()), p[3], p == {3: -1.0, 7: 0.5}
    ([(7, 0.5), (3, -1.0)], -1.0, True)
    """

    __slots__ = ("keys_array", "values_array")

    def __init__(self, keys: np.ndarray, values: np.ndarray) -> None:
        self.keys_array = keys
        self.values_array = values

    @classmethod
    def of(cls, x: Mapping[int, float]) -> PackedFeatures:
        if isinstance(x, PackedFeatures):
            return x
        n = len(x)
        return cls(np.fromiter(x, dtype=np.int64, count=n), np.fromiter(x.values(), dtype=np.float64, count=n))

    def __getitem__(self, key: int) -> float:
        hit = np.flatnonzero(self.keys_array == key)
        if not len(hit):
            raise KeyError(key)
        return float(self.values_array[hit[0]])

    def __iter__(self) -> Iterator[int]:
        return iter(self.keys_array.tolist())

    def __len__(self) -> int:
        return len(self.keys_array)

    def values(self) -> list[float]:  # type: ignore[override]  # a list, not a view: one C loop
        return self.values_array.tolist()

    def items(self) -> Iterator[tuple[int, float]]:  # type: ignore[override]
        return zip(self.keys_array.tolist(), self.values_array.tolist(), strict=True)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PackedFeatures({dict(self.items())!r})"


def _pack(x: Features | PackedFeatures) -> list[str]:
    """Features as two base64 strings (little-endian int64 keys, float64 values, in ``x``'s order): exact,
    and a few-shot prompt's hundreds of features encode ~9x faster than as JSON number pairs (a full
    window of them took seconds of every checkpoint)."""
    p = PackedFeatures.of(x)
    return [pack(p.keys_array, "<i8"), pack(p.values_array, "<f8")]


def _unpack(packed: list[Any]) -> PackedFeatures:
    """``_pack``'s inverse; also reads the ``[[key, value], ...]`` pairs of states written before it."""
    if len(packed) == 2 and isinstance(packed[0], str):
        return PackedFeatures(unpack(packed[0], "<i8"), unpack(packed[1], "<f8"))
    return PackedFeatures.of({int(k): float(v) for k, v in packed})


@dataclass(frozen=True, slots=True)
class LoggedItem:
    """One held-out logged trajectory, featurised as the router saw it."""

    trajectory_id: str
    x: Features | PackedFeatures  # the window packs what it keeps (``BenchmarkWindow.append``)
    candidates: tuple[str, ...]
    route: str
    propensity: float
    imputed: bool
    reward: float
    error: bool
    latency_ms: float
    task_type: str | None
    text_group: str | None = None  # without a task_type: the group its text was given (``text_groups.py``)
    case_key: str | None = None  # its case-index key (None: no case index): is it new to its route when learned?
    hint_key: int | None = None  # the feature of its case-index hint (None: no hint)

    @property
    def group(self) -> str | None:
        """What the route models group it by: its task type, or its text group."""
        return self.task_type or self.text_group

    def to_state(self) -> list[Any]:
        state = [
            self.trajectory_id, _pack(self.x), list(self.candidates), self.route,
            self.propensity, self.imputed, self.reward, self.error, self.latency_ms, self.task_type,
        ]
        if self.case_key is not None or self.hint_key is not None:
            state.extend((self.text_group, self.case_key, self.hint_key))
        elif self.text_group is not None:
            state.append(self.text_group)
        return state

    @classmethod
    def from_state(cls, s: list[Any]) -> LoggedItem:
        return cls(
            s[0], _unpack(s[1]), tuple(s[2]), s[3], float(s[4]), bool(s[5]),
            float(s[6]), bool(s[7]), float(s[8]), s[9], s[10] if len(s) > 10 else None,
            s[11] if len(s) > 11 else None, int(s[12]) if len(s) > 12 and s[12] is not None else None,
        )


def _packed(item: LoggedItem) -> LoggedItem:
    return item if isinstance(item.x, PackedFeatures) else dataclasses.replace(item, x=PackedFeatures.of(item.x))


class BenchmarkWindow:
    """The most recent held-out trajectories, bounded so evaluation cost stays flat in history.

    >>> w = BenchmarkWindow(2)
    >>> item = LoggedItem("t1", {1: 1.0}, ("a", "b"), "a", 0.5, False, 1.0, False, 10.0, None)
    >>> [w.append(dataclasses.replace(item, trajectory_id=t)) for t in ("t1", "t2", "t3")][2].trajectory_id
    't1'
    >>> [i.trajectory_id for i in w.resize(1)], [i.trajectory_id for i in w]
    (['t2'], ['t3'])
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: deque[LoggedItem] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[LoggedItem]:
        return iter(self._items)

    def append(self, item: LoggedItem) -> LoggedItem | None:
        """Add ``item``; the oldest item it pushes out of a full window, if any."""
        items = self._items
        out = items[0] if len(items) == self.size else None
        items.append(_packed(item))
        return out

    def resize(self, size: int) -> list[LoggedItem]:
        """Keep at most ``size`` items from now on; the oldest ones that no longer fit, oldest first."""
        items = self._items
        out = [items.popleft() for _ in range(max(0, len(items) - size))]
        self.size, self._items = size, deque(items, maxlen=size)
        return out

    def extend(self, items: Iterable[LoggedItem]) -> None:
        self._items.extend(map(_packed, items))

    def snapshot(self) -> list[LoggedItem]:
        """A stable copy for an evaluation running beside ongoing appends."""
        return list(self._items)

    def to_state(self) -> dict[str, Any]:
        return {"size": self.size, "items": [i.to_state() for i in self._items]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BenchmarkWindow:
        """The window ``to_state`` saved, at its saved size (``resize`` to another)."""
        w = cls(int(state["size"]))
        w.extend(LoggedItem.from_state(s) for s in state["items"])
        return w
