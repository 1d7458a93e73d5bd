"""What makes two tasks the same task, for the case index and the novelty of an event.

A task is its input text *and* the structured fields an agent sends with it: tags and numeric
``task.features``. An agent may send the same short text every time ("classify this item",
"route request") and put the whole context in numbers; keyed by its text alone, every such task
would be one case, every event after the first would count as a repeat (and not as evidence for
the contextual part's stacking weight, see ``RouteModel.learn``), and every hint would be the same.

- ``task_key``: the normalised text; for a task with tags or numeric features, then a unit
  separator (which ``normalize_text`` never leaves in a text) and the sorted tags and features
  with their exact values, as JSON. A text-only task's key is its normalised text, unchanged.
- ``key_hashes``: what the case index compares near duplicates on, read back from a key (so an
  index restored from its saved keys answers as the live one did): the text's word and bigram
  hashes, plus one hash per tag and one per non-zero numeric feature at its nearest knot of
  ``ln|v|`` (the featuriser's grid). Two tasks with the same text and similar numbers are near
  duplicates; two with very different numbers are not. A text-only key's hashes are the text's.

The task type is not part of either: it is the task's group, which the router learns apart.

>>> from memabrad.learning.features import TaskView, normalize_text, text_hashes
>>> a = TaskView.of({"input": "Classify this item", "features": {"p1": 3, "p0": 16.0}})
>>> task_key(a, normalize_text(a.input))
'classify this item\\x1f[[], [["p0", 16.0], ["p1", 3.0]]]'
>>> len(key_hashes(task_key(a, "classify this item"))) - len(text_hashes(a.input))
2
>>> b = TaskView.of({"input": "Classify this item"})
>>> task_key(b, normalize_text(b.input))
'classify this item'
>>> key_hashes("classify this item") == text_hashes(b.input)
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from memabrad.learning.features import TaskView, cached_hash, knot_position, normalize_text, text_hashes

SEP = "\x1f"  # whitespace to ``normalize_text``, so never inside a normalised text


def task_key(view: TaskView, text_key: str) -> str:
    """The case index's key of a task whose normalised input is ``text_key``."""
    return case_query(view, [], text_key)[0]


def key_hashes(key: str, hashes: list[int] | None = None) -> list[int]:
    """The case-index hashes of a ``task_key`` (``hashes``: its text's ``text_hashes``, when known)."""
    text, _, fields = key.partition(SEP)
    out = text_hashes(text) if hashes is None else hashes
    if not fields:
        return out
    tags, features = json.loads(fields)
    return [*out, *_field_hashes(tags, features)]


def _field_hashes(tags: Iterable[str], features: Iterable[tuple[str, float]]) -> list[int]:
    out = [cached_hash("g:" + t) for t in tags]
    for name, v in features:
        if math.isfinite(v) and v != 0.0:
            knot = round(knot_position(v))
            out.append(cached_hash(("f:" if v > 0.0 else "f-:") + name + "#" + str(knot)))
    return out


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
    return text_key + SEP + json.dumps([tags, features], separators=(", ", ": ")), [
        *hashes, *_field_hashes(tags, features)]
