"""Deterministic hashed features of a task.

Feature keys are integers from ``zlib.crc32`` so a model trained in one process makes the
same choices in another (Python's ``hash()`` is salted per process and is never used).
The vector is L2-normalised, which keeps SGD steps bounded whatever the input length.
"""

from __future__ import annotations

import math
import operator
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from memabrad.learning.number_scales import NumberScales

_TOKEN = re.compile(r"[a-z0-9]+")  # versions 1-3: ASCII letters and digits only
# Version 4: letters and digits of every script; scripts written without spaces (Chinese, Japanese kana) a
# character at a time, so a text's bigrams are its character bigrams. For ASCII text exactly ``_TOKEN``.
_NO_SPACES = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN_V4 = re.compile(f"[^\\W_{_NO_SPACES}]+|[{_NO_SPACES}]")
_SPACE = re.compile(r"\s+")

Features = Mapping[int, float]
"""A task's hashed features: feature id -> value (a dict as featurised, packed in the benchmark window)."""
TAIL_WORDS = 16  # the end of a long input gets a block of its own
HINT_SCALE = math.sqrt(0.5)  # an exact repeat's hint at the value it had within the unit vector before version 7
FEATURES_VERSION = 7  # saved with every model: a model is always read with the features it learned on
KNOT_STEP = 0.5  # numeric features (version 3): knots every 0.5 of ln|v|, i.e. a factor of 1.65 apart
KNOT_LIMIT = 40  # knots run from -KNOT_LIMIT to KNOT_LIMIT steps: |v| from 2e-9 to 5e8, clamped beyond


def normalize_text(text: str) -> str:
    """Canonical form of a task input: lowercase, single spaces, trimmed.

    >>> normalize_text("  How do I  SPEED up\\nthis? ")
    'how do i speed up this?'
    """
    return _SPACE.sub(" ", text.strip().lower())


def tokens(text: str, version: int = FEATURES_VERSION) -> list[str]:
    """Lowercase words of ``text``: from version 4 in any script, before only ASCII letters and digits
    (which left a Russian or Chinese text with no words at all, and split "Málaga" into "m" and "laga").

    >>> tokens("Speed up SQL-query #42")
    ['speed', 'up', 'sql', 'query', '42']
    >>> tokens("Как ускорить SQL-запрос в Málaga?")
    ['как', 'ускорить', 'sql', 'запрос', 'в', 'málaga']
    >>> tokens("如何加速SQL查询")
    ['如', '何', '加', '速', 'sql', '查', '询']
    >>> tokens("Как ускорить SQL-запрос в Málaga?", version=3)
    ['sql', 'm', 'laga']
    """
    if version < 4 or text.isascii():
        return _TOKEN.findall(text.lower())
    return _TOKEN_V4.findall(text.lower())


class Memo(dict[Any, Any]):
    """A dict that fills a missing key with ``fn(key)`` and forgets everything past ``cap`` entries (bounded
    memory whatever the traffic). Words, names and tags repeat, so nearly every lookup is one dict access.

    >>> m = Memo(len, cap=2)
    >>> m["ab"], m["abc"], m["x"], len(m)
    (2, 3, 1, 1)
    """

    def __init__(self, fn: Callable[[Any], Any], cap: int) -> None:
        super().__init__()
        self.fn, self.cap = fn, cap

    def __missing__(self, key: Any) -> Any:
        if len(self) >= self.cap:
            self.clear()
        value = self[key] = self.fn(key)
        return value


_HASH_CACHE_MAX = 500_000
_HASH_CACHE = Memo(lambda key: zlib.crc32(key.encode("utf-8")), _HASH_CACHE_MAX)


def cached_hash(key: str) -> int:
    """``stable_hash`` memoised: words repeat, so most lookups skip the encode and crc32."""
    return _HASH_CACHE[key]


_LAST_HASHED: tuple[str, int, list[int]] = ("", FEATURES_VERSION, [])


def text_hashes(text: str, version: int = FEATURES_VERSION) -> list[int]:
    """32-bit hashes of the words (``w:``) and bigrams (``b:``) of a text, shared by featurizer and case index
    (``version``: the features version whose ``tokens`` to use; the case index always uses the latest).

    The last text's hashes are kept: serving asks for them twice per choice (the case-index hint, then the
    features), and a long prompt costs tens of microseconds to hash. Callers only read the list."""
    global _LAST_HASHED
    last = _LAST_HASHED
    if last[1] == version and (last[0] is text or last[0] == text):
        return last[2]
    words = tokens(text, version)
    out = [cached_hash("w:" + w) for w in words]
    out.extend(cached_hash("b:" + a + "_" + b) for a, b in zip(words, words[1:], strict=False))
    _LAST_HASHED = (text, version, out)
    return out


def stable_hash(key: str) -> int:
    """32-bit hash that is the same in every process.

    >>> stable_hash("w:sql")
    919691466
    """
    return zlib.crc32(key.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class TaskView:
    """The parts of a trajectory's ``task`` the featurizer reads, from a dict or a model."""

    input: str
    task_type: str | None
    features: Mapping[str, float]
    tags: tuple[str, ...]

    @classmethod
    def of(cls, task: Any) -> TaskView:
        if isinstance(task, TaskView):
            return task
        if isinstance(task, Mapping):
            return cls(
                input=str(task.get("input", "")),
                task_type=task.get("task_type"),
                features=task.get("features") or {},
                tags=tuple(task.get("tags") or ()),
            )
        return cls(
            input=task.input,
            task_type=getattr(task, "task_type", None),
            features=getattr(task, "features", None) or {},
            tags=tuple(getattr(task, "tags", None) or ()),
        )


@dataclass(frozen=True, slots=True)
class Hint:
    """The case index's suggestion: the best past route for this task (``exact``) or a similar one.

    From features version 6 the two are separate features (``h:`` and ``hn:`` + route): a repeat's best
    route is a record of this very task, a near duplicate's a guess from another one, and where tasks
    repeat (a catalogue, a classification dataset) training sees mostly repeats while serving a new task
    sees only near duplicates. One weight for both learned the repeats' reliability and applied it to
    the guesses (``docs/benchmarks.md``, "Judging a policy as it is served, and exact repeats apart from near
    duplicates")."""

    route: str
    similarity: float
    exact: bool = True


class Featurizer:
    """Hashes words, bigrams, task type, tags, numeric features and the case-index hint.

    >>> f = Featurizer(hash_bits=18)
    >>> x = f.featurize({"input": "latest price of gold", "task_type": "qa"})
    >>> round(sum(v * v for v in x.values()), 6)
    1.0
    >>> x == Featurizer(hash_bits=18).featurize({"input": "latest price of gold", "task_type": "qa"})
    True
    """

    def __init__(self, hash_bits: int = 18, version: int = FEATURES_VERSION,
                 numbers: NumberScales | None = None) -> None:
        if version not in (1, 2, 3, 4, 5, 6, 7):
            raise ValueError(f"unknown feature version {version}")
        self.hash_bits = hash_bits
        self.version = version
        self.numbers = numbers if version >= 5 else None  # the numbers' fixed scales (number_scales.py)
        self._mask = (1 << hash_bits) - 1

    def _key(self, name: str) -> int:
        return cached_hash(name) & self._mask

    def number_keys(self) -> frozenset[int]:
        """The feature ids of the standardised numbers (``z:`` terms) the featurizer can set today: one per
        name with a fixed scale (names only ever gain one, so the set is rebuilt only when one did)."""
        frozen = self.numbers.frozen if self.numbers is not None else {}
        cached = self.__dict__.get("_number_keys")
        if cached is None or cached[0] != len(frozen):
            cached = self._number_keys = (len(frozen), frozenset(self._key("z:" + n) for n in frozen))
        return cached[1]

    def featurize(self, task: Any, hint: Hint | None = None, hashes: list[int] | None = None) -> dict[int, float]:
        """``hashes``: ``text_hashes(input)`` when the caller has them already (hash a text once).

        Blocks, each scaled to unit norm before the whole vector is: the words and bigrams of the
        input; for inputs longer than ``TAIL_WORDS`` words, the last ``TAIL_WORDS`` words again in a
        namespace of their own (long prompts often share their opening — instructions, few-shot
        examples — and differ only at the end, which would otherwise be a sliver of the norm); the
        task type, tags, numeric features (on knots of their logarithm, see ``_add_fields``, and from
        version 5 standardised, see ``number_scales.py``), the input's length, and the case-index hint
        (from version 6 a near duplicate's apart from an exact repeat's, see ``Hint``).

        From version 7 the hint is added after the normalisation, at ``HINT_SCALE`` times its similarity (an
        exact repeat's value before): within the unit vector it scaled the task's other features by 0.71,
        and the route models, which learn a hinted task's other features as though it were new
        (``route_model.py``), then served a new task 1.41 times the contextual part they had learned.
        """
        view = TaskView.of(task)
        if self.version == 1:
            return self._featurize_v1(view, hint, hashes)
        mask = self._mask
        hs = text_hashes(view.input, self.version) if hashes is None else hashes
        n_words = (len(hs) + 1) // 2  # text_hashes: n words, then n - 1 bigrams
        x: dict[int, float] = {}
        for h in hs:
            k = h & mask
            x[k] = x.get(k, 0.0) + 1.0
        x = _unit(x)
        if n_words > TAIL_WORDS:
            tail: dict[int, float] = {}
            for h in hs[n_words - TAIL_WORDS:n_words]:
                k = ((h * 0x9E3779B1) ^ 0x7F4A7C15) & 0xFFFFFFFF & mask
                tail[k] = tail.get(k, 0.0) + 1.0
            for k, v in _unit(tail).items():
                x[k] = x.get(k, 0.0) + v
        beside = hint if self.version >= 7 else None  # the hint beside the task's unit vector, not within it
        self._add_fields(x, view, hint if beside is None else None, weight=1.0, knots=self.version >= 3)
        numbers = self.numbers
        if numbers is not None and numbers.frozen and view.features:  # a linear term per number with a scale
            key, z_of = self._key, numbers.z
            for name, value in view.features.items():
                z = z_of(name, float(value))
                if z:
                    x[key("z:" + name)] = z
        if n_words:  # a length feature on a small scale: 0.06 at 3 words, 0.16 at 300, 0.25 at 10,000
            x[self._key("s:words")] = 0.25 * math.log1p(n_words) / math.log(10_000)
        x = _unit(x)
        if beside is not None:
            k = self.hint_key(beside)
            x[k] = x.get(k, 0.0) + HINT_SCALE * beside.similarity
        return x

    def _add_fields(self, x: dict[int, float], view: TaskView, hint: Hint | None, weight: float,
                    knots: bool = False) -> None:
        """Task type and hint (scaled by ``weight``), tags and numeric features.

        Numeric features before version 3: one term, ``log1p(|v|)`` with the sign of ``v``. Up to
        ~20 in size against a text block of norm 1, that term took over the vector's norm, and the
        normalisation then turned it into a near-constant ratio (a 20-token and a 5,000-token task
        came out 0.75 and 0.96) while shrinking every other feature of the task by the same factor;
        values below 1 (a cost in USD, a probability) all fell on nearly the same point. From
        version 3 (``knots``), a number is spread over the two nearest knots of a grid on ``ln|v|``
        (step ``KNOT_STEP``, linear interpolation, weights summing to 1), so each route's linear
        model can learn any piecewise-linear function of the number's logarithm — a cheap model
        good up to 300 tokens and poor above, a tool worth it only above $0.01 — whatever its
        scale, with a block whose norm stays in [0.71, 1]. Negative values have knots of their
        own; zero adds nothing (the route's mean stands for it).
        """
        key = self._key
        if view.task_type:
            x[key("t:" + view.task_type)] = weight
        for tag in view.tags:
            x[key("g:" + str(tag))] = 1.0
        mask, knot_hashes, log, floor, isfinite = self._mask, _KNOT_HASHES, math.log, math.floor, math.isfinite
        for name, value in view.features.items():
            v = float(value)
            if not (isfinite(v) and v != 0.0):
                continue
            if not knots:
                x[key("f:" + name)] = math.copysign(math.log1p(abs(v)), v)
                continue
            pos = min(KNOT_LIMIT, max(-KNOT_LIMIT, log(abs(v)) / KNOT_STEP))  # ``knot_position``, inline
            k = floor(pos)
            frac = pos - k
            up = v > 0.0
            x[knot_hashes[(name, k, up)] & mask] = 1.0 - frac
            if frac > 0.0:
                x[knot_hashes[(name, k + 1, up)] & mask] = frac
        if hint is not None:
            x[self.hint_key(hint)] = weight * hint.similarity

    def hint_key(self, hint: Hint) -> int:
        """The feature a case-index hint sets (from version 6 a near duplicate's apart from an exact repeat's)."""
        near = not hint.exact and self.version >= 6
        return self._key(("hn:" if near else "h:") + hint.route)

    def hint_key_in(self, x: Mapping[int, float], routes: Iterable[str]) -> int | None:
        """The hint feature among ``x``'s, if any: the first of ``routes``' exact or near-duplicate hint keys that
        ``x`` holds (for features saved without a note of their hint)."""
        for route in routes:
            for prefix in ("h:", "hn:"):
                k = self._key(prefix + route)
                if k in x:
                    return k
        return None

    def _featurize_v1(self, view: TaskView, hint: Hint | None, hashes: list[int] | None) -> dict[int, float]:
        """The features of models saved before version 2 (one block, L2-normalised as a whole)."""
        x: dict[int, float] = {}
        mask = self._mask
        for h in text_hashes(view.input, self.version) if hashes is None else hashes:
            k = h & mask
            x[k] = x.get(k, 0.0) + 1.0
        self._add_fields(x, view, hint, weight=2.0)
        return _unit(x)


# (name, knot, positive) -> its key's hash: an agent's names repeat
_KNOT_HASHES = Memo(lambda k: cached_hash(("f:" if k[2] else "f-:") + k[0] + "#" + str(k[1])), _HASH_CACHE_MAX)


def knot_hash(name: str, knot: int, positive: bool) -> int:
    """``stable_hash`` of a number's knot key (``f:name#knot``, ``f-:`` for a negative value), memoised: the
    featurizer's knots and the case key's near-duplicate tokens (``task_identity.py``) are the same keys."""
    return _KNOT_HASHES[(name, knot, positive)]


def knot_position(v: float) -> float:
    """Where a non-zero number falls on the knot grid of ``ln|v|`` (in knots, clamped to +-``KNOT_LIMIT``)."""
    return min(KNOT_LIMIT, max(-KNOT_LIMIT, math.log(abs(v)) / KNOT_STEP))


def _unit(x: dict[int, float]) -> dict[int, float]:
    """``x`` at unit L2 norm as a new dict (C-level sum, one comprehension); ``x`` itself if it is zero."""
    vals = x.values()
    norm = math.sqrt(sum(map(operator.mul, vals, vals)))
    if norm > 0.0:
        inv = 1.0 / norm
        return {k: v * inv for k, v in x.items()}
    return x


def as_candidates(candidates: Iterable[str]) -> tuple[str, ...]:
    """Candidates as a tuple, order kept, duplicates dropped."""
    return tuple(dict.fromkeys(candidates))
