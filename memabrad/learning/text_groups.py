"""Groups found in the texts themselves, for agents that send no ``task_type``.

A route model's group part (per-group means, ``route_model.py``) is most of what a router
learns early, but it needs a label. Agents that send none still often send families of
near-identical inputs: prompts built on one template, or long few-shot openings shared by
every task of a benchmark family with only the last sentences differing. Such a family is a
cluster of texts at cosine >= ``SIMILARITY`` (the case index's near-duplicate threshold) in
the case index's hashed word-and-bigram space, and it can stand in for the missing label.

Only texts longer than ``TAIL_WORDS`` words are grouped: that is where the featurizer, too,
expects shared openings. Short texts at that similarity are the same request repeated, which
the case index and the contextual part already learn; grouping them lowered the simulator's
and the help desk's untyped values (docs/benchmarks.md).

Leader clustering, bounded and deterministic:

- a text belongs to the *first* group (in creation order) whose prototype it is at least
  ``SIMILARITY`` similar to; groups are never changed or removed, so once a text has a group
  it keeps it, and a router holding an older prefix of the groups gives a text either the
  same group or none;
- a text in no group becomes a *seed* (the ``SEEDS`` most recent are kept); a later text at
  least ``SIMILARITY`` similar to a seed turns that seed into a new group's prototype. A
  group needs two texts, so one-off texts never take up one of the ``MAX_GROUPS`` places;
- a group is named by its prototype's content (``"~"`` and a crc32), so two routers that
  built the same group call it the same, and a router that never saw a group treats its name
  as unknown (its group offset is 0, the route's mean).

Similarities are exact: counts are small integers (their float32 products are exact, as in
the case index), divided in float64 and rounded to 6 digits, so a text's group does not
depend on the BLAS path or on the order prototypes were restored in.

>>> from memabrad.learning.features import text_hashes
>>> g = TextGroups()
>>> opening = "you are a careful grader answer with one word " * 4
>>> g.assign(text_hashes(opening + "is seven prime")) is None  # the first of its kind: a seed
True
>>> a = g.assign(text_hashes(opening + "is nine prime"))  # a second one: a group
>>> a == g.match(text_hashes(opening + "is two prime")) and a.startswith("~")
True
>>> g.match(text_hashes("translate good morning into french")) is None  # short: never grouped
True
>>> TextGroups.from_state(g.to_state()).match(text_hashes(opening + "is ten prime")) == a
True
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from memabrad.learning.features import TAIL_WORDS
from memabrad.learning.text_vectors import DIMS, sparse_counts

SIMILARITY = 0.9  # the case index's default near-duplicate threshold: most words (and bigrams) shared
MAX_GROUPS = 64
SEEDS = 64
FORMAT = "memabrad.text-groups/v1"
_MIN_HASHES = 2 * (TAIL_WORDS + 1) - 1  # ``text_hashes``: n words, then n - 1 bigrams


def _name(row: np.ndarray) -> str:
    return f"~{zlib.crc32(row.astype(np.int8).tobytes()):08x}"


class TextGroups:
    """Prototypes of the groups found so far (and, while learning, the recent seeds)."""

    def __init__(self, max_groups: int = MAX_GROUPS, seeds: int = SEEDS) -> None:
        self.max_groups = max_groups
        self._protos = np.zeros((max_groups, DIMS), dtype=np.float32)
        self._pnorm = np.zeros(max_groups)
        self.names: list[str] = []
        self._seeds = np.zeros((seeds, DIMS), dtype=np.float32)
        self._snorm = np.zeros(seeds)  # 0: an empty place
        self._next_seed = 0

    def __len__(self) -> int:
        return len(self.names)

    def seeded(self) -> bool:
        """Whether any text is waiting as a seed."""
        return bool(self._snorm.any())

    @staticmethod
    def _counts(hashes: list[int]) -> tuple[np.ndarray, np.ndarray, float]:
        dims, counts = sparse_counts(hashes)
        return dims, counts, float(np.sqrt(counts @ counts))

    @staticmethod
    def _similar(rows: np.ndarray, norms: np.ndarray, dims: np.ndarray, counts: np.ndarray,
                 norm: float) -> np.ndarray:
        """Rounded cosine of the text with each row (0 for an empty row)."""
        dots = rows[:, dims] @ counts
        with np.errstate(divide="ignore", invalid="ignore"):
            sims = np.where(norms > 0, dots / (norms * norm), 0.0)
        return sims.round(6)

    def _match(self, dims: np.ndarray, counts: np.ndarray, norm: float) -> str | None:
        k = len(self.names)
        if not k or norm == 0.0:
            return None
        hit = np.flatnonzero(self._similar(self._protos[:k], self._pnorm[:k], dims, counts, norm) >= SIMILARITY)
        return self.names[int(hit[0])] if len(hit) else None

    def match(self, hashes: list[int]) -> str | None:
        """The group of a text (``text_hashes`` of it), or None; changes nothing."""
        if not self.names or len(hashes) < _MIN_HASHES:
            return None
        return self._match(*self._counts(hashes))

    def assign(self, hashes: list[int]) -> str | None:
        """``match``, and when the text is in no group: a new group with the most similar seed, or
        the text kept as a seed (while there is room for groups)."""
        if len(hashes) < _MIN_HASHES:
            return None
        dims, counts, norm = self._counts(hashes)
        if norm == 0.0:
            return None
        found = self._match(dims, counts, norm)
        if found is not None or len(self.names) >= self.max_groups:
            return found
        sims = self._similar(self._seeds, self._snorm, dims, counts, norm)
        best = int(np.argmax(sims))
        if sims[best] >= SIMILARITY:
            row = self._seeds[best].copy()
            self._snorm[best] = 0.0
            self._seeds[best] = 0.0
            k = len(self.names)
            self._protos[k] = row
            self._pnorm[k] = float(np.sqrt(row @ row))
            self.names.append(_name(row))
            return self.names[-1]
        slot = self._next_seed
        self._seeds[slot] = 0.0
        self._seeds[slot, dims] = counts
        self._snorm[slot] = norm
        self._next_seed = (slot + 1) % len(self._snorm)
        return None

    # -- state ------------------------------------------------------------------------

    def prototypes(self) -> TextGroups:
        """A copy of the groups without the seeds (what a saved version serves with)."""
        g = TextGroups(self.max_groups, 1)
        k = len(self.names)
        g._protos[:k], g._pnorm[:k], g.names = self._protos[:k], self._pnorm[:k], list(self.names)
        return g

    def copy(self) -> TextGroups:
        g = self.prototypes()
        g._seeds, g._snorm, g._next_seed = self._seeds.copy(), self._snorm.copy(), self._next_seed
        return g

    def to_state(self, seeds: bool = True) -> dict[str, Any]:
        """Sparse rows (``[[dim, count], ...]``) of the prototypes, and of the seeds unless ``seeds=False``."""

        def sparse(row: np.ndarray) -> list[list[int]]:
            nz = np.flatnonzero(row)
            return [[int(d), int(row[d])] for d in nz]

        state: dict[str, Any] = {"format": FORMAT, "max_groups": self.max_groups,
                                 "groups": [sparse(r) for r in self._protos[: len(self.names)]]}
        if seeds:
            state["seeds"] = [sparse(r) for r in self._seeds]
            state["next_seed"] = self._next_seed
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> TextGroups:
        if not state:
            return cls()
        if state.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} state")
        saved_seeds = state.get("seeds")
        g = cls(int(state["max_groups"]), len(saved_seeds) if saved_seeds else SEEDS)
        if len(state["groups"]) > g.max_groups:
            raise ValueError(f"{len(state['groups'])} text groups, more than max_groups {g.max_groups}")
        for k, row in enumerate(state["groups"]):
            for d, c in row:
                g._protos[k, int(d)] = float(c)
            g._pnorm[k] = float(np.sqrt(g._protos[k] @ g._protos[k]))
            g.names.append(_name(g._protos[k]))
        for k, row in enumerate(saved_seeds or []):
            for d, c in row:
                g._seeds[k, int(d)] = float(c)
            g._snorm[k] = float(np.sqrt(g._seeds[k] @ g._seeds[k]))
        g._next_seed = int(state.get("next_seed", 0))
        return g
