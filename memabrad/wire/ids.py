"""The one stable digest of a trajectory id, shared by the duplicate memory and the hold-out rule.

blake2b-64 of the UTF-8 id, the same in every process. Read little-endian it is the
duplicate memory's key; read big-endian over 2^64 it is the id's hold-out bucket in [0, 1).
Both readings are those of the earlier separate hashes, so checkpoints and hold-out splits
written before are unchanged; the record path now hashes each id once.

>>> d = trajectory_digest("abc")
>>> dedupe_key(d) == dedupe_key(trajectory_digest("abc")) and 0.0 <= holdout_bucket_of(d) < 1.0
True
"""

from __future__ import annotations

from hashlib import blake2b


def trajectory_digest(trajectory_id: str) -> bytes:
    return blake2b(trajectory_id.encode("utf-8"), digest_size=8).digest()


def dedupe_key(digest: bytes) -> int:
    return int.from_bytes(digest, "little")


def holdout_bucket_of(digest: bytes) -> float:
    return int.from_bytes(digest, "big") / 2.0**64
