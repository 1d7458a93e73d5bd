"""The featurizer's quicker normalisation changes no number: its vectors equal the plain formulas', key for
key and in the same order (the order fixes the float sums downstream)."""

from __future__ import annotations

import math
import random
import zlib
from typing import Any

import pytest

from memabrad.learning.features import TAIL_WORDS, Featurizer, Hint, text_hashes, tokens

WORDS = ["alpha", "beta", "gamma", "delta", "sql", "price", "gold", "fix", "the", "a", "42", "bash"]


def _reference(task: dict[str, Any], hint: Hint | None, bits: int, version: int = 3) -> dict[int, float]:
    """The featurizer (version 3, or 2) written out plainly, from scratch."""
    mask = (1 << bits) - 1

    def key(name: str) -> int:
        return zlib.crc32(name.encode("utf-8")) & mask

    def unit(x: dict[int, float]) -> None:
        norm = math.sqrt(sum(v * v for v in x.values()))
        if norm > 0.0:
            for k in x:
                x[k] *= 1.0 / norm

    words = tokens(task["input"])
    hs = [zlib.crc32(("w:" + w).encode()) for w in words]
    hs += [zlib.crc32(("b:" + a + "_" + b).encode()) for a, b in zip(words, words[1:], strict=False)]
    n_words = (len(hs) + 1) // 2
    x: dict[int, float] = {}
    for h in hs:
        x[h & mask] = x.get(h & mask, 0.0) + 1.0
    unit(x)
    if n_words > TAIL_WORDS:
        tail: dict[int, float] = {}
        for h in hs[n_words - TAIL_WORDS:n_words]:
            k = ((h * 0x9E3779B1) ^ 0x7F4A7C15) & 0xFFFFFFFF & mask
            tail[k] = tail.get(k, 0.0) + 1.0
        unit(tail)
        for k, v in tail.items():
            x[k] = x.get(k, 0.0) + v
    if task.get("task_type"):
        x[key("t:" + task["task_type"])] = 1.0
    for tag in task.get("tags", ()):
        x[key("g:" + tag)] = 1.0
    for name, value in task.get("features", {}).items():
        if not value:
            continue
        if version == 2:
            x[key("f:" + name)] = math.copysign(math.log1p(abs(value)), value)
            continue
        pos = min(40.0, max(-40.0, 2.0 * math.log(abs(value))))  # knots every 0.5 of ln|v|
        below = math.floor(pos)
        stem = ("f:" if value > 0 else "f-:") + name + "#"
        x[key(stem + str(below))] = 1.0 - (pos - below)
        if pos > below:
            x[key(stem + str(below + 1))] = pos - below
    if hint is not None:
        x[key("h:" + hint.route)] = hint.similarity
    if n_words:
        x[key("s:words")] = 0.25 * math.log1p(n_words) / math.log(10_000)
    unit(x)
    return x


def _task(rng: random.Random) -> dict[str, Any]:
    n = rng.choice([0, 1, 3, 8, TAIL_WORDS, TAIL_WORDS + 1, 40, 400])
    task: dict[str, Any] = {"input": " ".join(rng.choices(WORDS, k=n)) or "?!"}
    if rng.random() < 0.7:
        task["task_type"] = rng.choice(["qa", "coding"])
    if rng.random() < 0.3:
        task["tags"] = rng.sample(WORDS, 2)
    if rng.random() < 0.3:
        task["features"] = {"tokens": rng.randint(-5, 50), "has_code": rng.randint(0, 1),
                            "cost": rng.choice([0.0, 1e-12, 0.003, 2.5, 1e30])}
    return task


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("bits", [4, 18])  # 4 bits: many collisions between text, tail and field keys
def test_vectors_equal_the_reference(bits: int, version: int) -> None:
    rng = random.Random(bits)
    f = Featurizer(hash_bits=bits, version=version)
    tasks = [_task(rng) for _ in range(60)]
    for _ in range(2):
        for task in tasks:
            hint = Hint("tool.web_search", 0.5) if len(task["input"]) % 3 == 0 else None
            want = _reference(task, hint, bits, version)
            for got in (f.featurize(task, hint), f.featurize(task, hint, text_hashes(task["input"]))):
                assert list(got.items()) == list(want.items())
