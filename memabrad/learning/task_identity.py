"""What makes two tasks the same task, for the case index and the novelty of an event.

A task is its input text *and* the structured fields an agent sends with it: tags and numeric
``task.features``. An agent may send the same short text every time ("classify this item",
"route request") and put the whole context in numbers; keyed by its text alone, every such task
would be one case, every event after the first would count as a repeat (and not as evidence for
the contextual part's stacking weight, see ``RouteModel.learn``), and every hint would be the same.

- ``task_key``: the normalised text; for a task with tags or numeric features, then a unit
  separator (which ``normalize_text`` never leaves in a text), a 64-bit digest of the sorted tags
  and features with their exact values (the task's identity), another separator and the fields'
  near-duplicate tokens, packed. A text-only task's key is its normalised text, unchanged. The key
  stays short whatever the task carries (256 numbers: ~700 characters, not the ~20 KB their names
  and values would take): the case index keeps 20,000 of them and saves them with every checkpoint.
- ``key_hashes``: what the case index compares near duplicates on, read back from a key (so an
  index restored from its saved keys answers as the live one did): the text's word and bigram
  hashes, plus one token per tag and one per non-zero number at its nearest knot of ``ln|v|`` (the
  featuriser's grid). Two tasks with the same text and similar numbers are near duplicates; two with
  very different numbers are not. The index reads a token only as a dimension and a sign (``h % 256``
  and bit 31), which is what the key keeps of it: two bytes.

The task type is not part of either: it is the task's group, which the router learns apart.

>>> from memabrad.learning.features import TaskView, normalize_text, text_hashes
>>> a = TaskView.of({"input": "Classify this item", "features": {"p1": 3, "p0": 16.0}})
>>> key, hashes = case_query(a)
>>> key.split(SEP)[0], len(key.split(SEP)[1]), len(hashes) - len(text_hashes(a.input))
('classify this item', 16, 2)
>>> case_query(TaskView.of({"input": "Classify this item", "features": {"p0": 16, "p1": 3.0}}))[0] == key
True
>>> from memabrad.learning.text_vectors import text_counts
>>> (text_counts(a.input, key_hashes(key)) == text_counts(a.input, hashes)).all()  # as restored, as live
np.True_
>>> b = TaskView.of({"input": "Classify this item"})
>>> case_query(b) == ("classify this item", text_hashes(b.input))
True
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from collections.abc import Iterable

from memabrad.learning.features import (
    Memo,
    TaskView,
    cached_hash,
    knot_hash,
    knot_position,
    normalize_text,
    text_hashes,
)

SEP = "\x1f"  # whitespace to ``normalize_text``, so never inside a normalised text
_SIGN = 1 << 31


def task_key(view: TaskView, text_key: str) -> str:
    """The case index's key of a task whose normalised input is ``text_key``."""
    return case_query(view, [], text_key)[0]


def key_hashes(key: str, hashes: list[int] | None = None) -> list[int]:
    """The case-index hashes of a ``task_key`` (``hashes``: its text's ``text_hashes``, when known); a field
    token comes back as its dimension and sign, all the index reads of it."""
    text, _, fields = key.partition(SEP)
    out = text_hashes(text) if hashes is None else hashes
    if not fields:
        return out
    packed = base64.b64decode(fields.partition(SEP)[2])
    codes = [int.from_bytes(packed[i:i + 2], "little") for i in range(0, len(packed), 2)]
    return [*out, *((c & 0xFF) | (_SIGN if c >> 8 else 0) for c in codes)]


_JSON = Memo(json.dumps, 100_000)  # a name or tag as JSON text: an agent's names are a small set that repeats
_json = _JSON.__getitem__


def _identity(tags: list[str], features: list[tuple[str, float]]) -> str:
    """64-bit digest of ``json.dumps([tags, features])``, its text assembled from cached names (a float's
    JSON text is its ``repr``; the numbers are finite)."""
    text = ("[[" + ", ".join(map(_json, tags)) + "], ["
            + ", ".join(f"[{_json(k)}, {v!r}]" for k, v in features) + "]]")
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _field_hashes(tags: Iterable[str], features: Iterable[tuple[str, float]]) -> list[int]:
    out = [cached_hash("g:" + t) for t in tags]
    out.extend(knot_hash(name, round(knot_position(v)), v > 0.0) for name, v in features
               if math.isfinite(v) and v != 0.0)
    return out


def _packed(tokens: list[int]) -> str:
    """Each token's dimension (``h % 256``) and sign (bit 31) in two bytes, base64."""
    return base64.b64encode(struct.pack(f"<{len(tokens)}H", *[(h & 0xFF) | (h >> 31 & 1) << 8 for h in tokens])
                            ).decode("ascii")


def case_query(view: TaskView, hashes: list[int] | None = None, text_key: str | None = None
               ) -> tuple[str, list[int]]:
    """(``task_key``, ``key_hashes``) of a task: what a case-index lookup or record of it takes.
    ``hashes``, ``text_key``: the input's ``text_hashes`` and ``normalize_text``, when the caller has them."""
    hashes = text_hashes(view.input) if hashes is None else hashes
    text_key = normalize_text(view.input) if text_key is None else text_key
    if not view.features and not view.tags:
        return text_key, hashes
    tags = sorted(str(t) for t in view.tags)
    features = sorted((str(k), float(v)) for k, v in view.features.items())
    tokens = _field_hashes(tags, features)
    return text_key + SEP + _identity(tags, features) + SEP + _packed(tokens), [*hashes, *tokens]
