"""What one evaluation reads, frozen at the look: ``LearnerSnapshot``; and the report-id format.

The learner freezes a clone of the challenger put forward, a copy of the hold-out window and
of that challenger's progressive evidence, so evaluation runs beside ongoing learning; the
portfolio's per-member estimates at the look ride along for the report.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from memabrad.learning.frozen import FrozenScorer
from memabrad.learning.portfolio import MAIN, MemberEstimate
from memabrad.learning.progressive import ProgressiveEvidence
from memabrad.learning.router import Router
from memabrad.learning.window import LoggedItem


@dataclass
class Span:
    """First and last trajectory of a stretch of data, for a report's evidence."""

    count: int = 0
    first_id: str | None = None
    last_id: str | None = None
    first_at: str | None = None
    last_at: str | None = None

    def add(self, trajectory_id: str, occurred_at: str) -> None:
        if self.first_id is None:
            self.first_id, self.first_at = trajectory_id, occurred_at
        self.last_id, self.last_at = trajectory_id, occurred_at
        self.count += 1

    def add_inside(self) -> None:
        """One more trajectory that arrived inside the stretch (a held-out one, learned once it left the window)."""
        self.count += 1


def look_of_report(router_id: str, report_id: str | None) -> int | None:
    """The look (evaluation sequence) in a report id made by ``LearnerSnapshot.report_id``, None for any
    other id (a version saved by hand, another router's).

    >>> look_of_report("default", "default-e000012-0a1b2c3d4e"), look_of_report("default", "r1")
    (12, None)
    """
    prefix = f"{router_id}-e"
    if not report_id or not report_id.startswith(prefix):
        return None
    seq = report_id[len(prefix):].split("-", 1)[0]
    return int(seq) if seq.isdigit() else None


@dataclass(frozen=True)
class LearnerSnapshot:
    """Everything one evaluation reads, frozen at the moment the threshold was reached."""

    router_id: str
    sequence: int
    challenger: Router
    window: list[LoggedItem]
    trained_total: int
    trained_since_last: Span
    supported_routes: frozenset[str]
    progressive: ProgressiveEvidence = field(default_factory=ProgressiveEvidence)
    member: str = MAIN
    """The portfolio member put forward (``challenger`` is its router, ``progressive`` its evidence)."""
    portfolio: tuple[MemberEstimate, ...] = ()
    """Every member's standing at the look (empty without a portfolio)."""

    @property
    def portfolio_size(self) -> int:
        """Members the choice was made among: each one's intervals are built at alpha / this."""
        return max(1, len(self.portfolio))

    @functools.cached_property
    def frozen(self) -> FrozenScorer:
        """The frozen challenger's scorer (built in the evaluator's thread; the learner's shadow scoring
        uses it once it exists, ``Router.best`` on the same model until then: the same choices)."""
        return FrozenScorer(self.challenger)

    @functools.cached_property
    def challenger_sha256(self) -> str:
        """The frozen challenger's fingerprint, computed once (in the evaluator's thread)."""
        return self.challenger.fingerprint()

    @property
    def report_id(self) -> str:
        """Deterministic: the same evaluation re-run after a crash gets the same id."""
        digest = hashlib.sha256(
            f"{self.router_id}|{self.sequence}|{self.challenger_sha256}".encode()
        ).hexdigest()[:10]
        return f"{self.router_id}-e{self.sequence:06d}-{digest}"

    def evidence(self) -> dict[str, Any]:
        window = self.window
        return {
            "trained_total": self.trained_total,
            "trained_since_last_evaluation": asdict(self.trained_since_last),
            "benchmark_window": {
                "count": len(window),
                "first_id": window[0].trajectory_id if window else None,
                "last_id": window[-1].trajectory_id if window else None,
            },
            "challenger_sha256": self.challenger_sha256,
            **({"portfolio": {"chosen": self.member, "members": [m.to_dict() for m in self.portfolio]}}
               if self.portfolio else {}),
        }


