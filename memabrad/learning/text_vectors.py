"""A task's text as a signed hashed bag of words and bigrams in ``DIMS`` dimensions: what the case index
stores per task and compares near duplicates by, and what text groups sketch.

Counts are integers clipped to +-``COUNT_CLIP``, kept as float32: 256 products of two such counts
sum to less than 2^24, so every dot product is exact whatever the summation order.

>>> v = text_vector("reset my password")
>>> round(float(v @ v), 6), round(float(v @ text_vector("Reset my password")), 6)
(1.0, 1.0)
"""

from __future__ import annotations

import numpy as np

from memabrad.learning.features import text_hashes

DIMS = 256
COUNT_CLIP = 127
_NUMPY_FROM = 96  # hashes: above this many, ``sparse_counts`` counts with numpy


def sparse_counts(hashes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The dimensions the hashes fall in and their signed counts (float32), clipped to +-``COUNT_CLIP``.

    Counted in plain Python for a short text: for its ~20 hashes that is cheaper than numpy's calls
    (~1 us each); a long one (a few-shot prompt: hundreds of hashes) is counted by numpy. A dimension
    whose signs cancel may be listed with count 0 or not at all: it adds nothing to any product.
    """
    if len(hashes) > _NUMPY_FROM:
        hs = np.fromiter(hashes, dtype=np.int64, count=len(hashes))
        dense = np.bincount(hs % DIMS, weights=1 - 2 * ((hs >> 31) & 1), minlength=DIMS)
        dims = np.flatnonzero(dense)
        return dims, np.clip(dense[dims], -COUNT_CLIP, COUNT_CLIP).astype(np.float32)
    counts: dict[int, int] = {}
    get = counts.get
    for h in hashes:
        d = h % DIMS
        counts[d] = get(d, 0) + (-1 if (h >> 31) & 1 else 1)
    if len(hashes) > COUNT_CLIP:  # no count can reach the clip with fewer hashes
        counts = {d: max(-COUNT_CLIP, min(COUNT_CLIP, c)) for d, c in counts.items()}
    n = len(counts)
    return np.fromiter(counts, dtype=np.intp, count=n), np.fromiter(counts.values(), dtype=np.float32, count=n)


def dense(dims: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The bag as a ``DIMS`` float32 vector (what a slot stores and candidates are multiplied with)."""
    v = np.zeros(DIMS, dtype=np.float32)
    v[dims] = counts
    return v


def text_counts(text: str, hashes: list[int] | None = None) -> np.ndarray:
    """Signed hashed bag of words and bigrams in ``DIMS`` dimensions: integers in +-``COUNT_CLIP``,
    as float32 (exact: 256 products of two such counts sum to less than 2^24).

    ``hashes`` are ``text_hashes(text)`` when the caller already has them (the featurizer does).
    """
    return dense(*sparse_counts(text_hashes(text) if hashes is None else hashes))


def text_vector(text: str, hashes: list[int] | None = None) -> np.ndarray:
    """``text_counts`` scaled to unit norm: cosine similarity is a dot product of two of these."""
    v = text_counts(text, hashes).astype(np.float64)
    n = float(np.sqrt(v @ v))
    return v / n if n > 0 else v
