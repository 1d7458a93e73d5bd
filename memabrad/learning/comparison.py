"""What each trajectory's challengers are scored against before they learn it: the progressive comparison.

Every trajectory a learner observes is scored first, by every challenger (the main one and each portfolio
member) against the router it would replace: the active baseline (the logging agent while there is none),
through that router's frozen scorer; and while a look's verdict is pending, against that look's frozen
challenger too (the *shadow*), so that if the look is promoted the evidence against the new version starts
right after the look rather than whenever the promotion is applied.

``Comparison`` holds those routers and the scoring step; ``RouterLearner`` (``learner.py``) decides when
they change (``set_baseline``, a look's ``snapshot``) and owns the evidence streams they feed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from memabrad.learning.features import Features, Hint
from memabrad.learning.frozen import FrozenScorer
from memabrad.learning.portfolio import Member
from memabrad.learning.progressive import ProgressiveEvidence, score_trajectory
from memabrad.learning.router import Router, SameFeatures
from memabrad.learning.snapshot import LearnerSnapshot
from memabrad.wire.trajectory import Trajectory


@dataclass
class Shadow:
    """Evidence against a look's frozen challenger, gathered while that look's verdict is pending: if it
    is promoted, the evidence against the new version starts right after the look, not whenever the
    promotion happens to be applied. One stream per portfolio member, by name."""

    snapshot: LearnerSnapshot
    evidence: dict[str, ProgressiveEvidence] = field(default_factory=dict)

    @property
    def look(self) -> int:
        return self.snapshot.sequence

    def chooser(self) -> Router | FrozenScorer:
        """The frozen scorer once the evaluator's thread has built it, the router itself until then."""
        frozen = self.snapshot.__dict__.get("frozen")
        return frozen if frozen is not None else self.snapshot.challenger

    def of(self, member: str) -> ProgressiveEvidence:
        ev = self.evidence.get(member)
        if ev is None:
            ev = self.evidence[member] = ProgressiveEvidence()
        return ev


@dataclass
class Comparison:
    """The active baseline (None: the logging agent) and its frozen scorer; the pending look's ``shadow``; and a
    promoted version a replay learned of before reaching its look (``pending``: the look, the router, its
    scorer), installed when that look is reached."""

    baseline: Router | None = None
    scorer: FrozenScorer | None = None
    shadow: Shadow | None = None
    pending: tuple[int, Router | None, FrozenScorer | None] | None = None
    same_features: SameFeatures = field(default_factory=SameFeatures, compare=False)

    def install(self, router: Router | None, scorer: FrozenScorer | None) -> None:
        """``router`` is the baseline from now on (``scorer``: its frozen scorer when built already)."""
        self.baseline = router
        self.scorer = scorer if scorer is not None or router is None else FrozenScorer(router)
        self.pending = None

    def score(self, members: Sequence[Member], t: Trajectory, x: Features, hint: Hint | None, p: float,
              group: str | None) -> None:
        """Progressive evidence: score every member (``members``, the main challenger first, whose features ``x``
        are) and the baseline on ``t`` (a task of ``group``, with its ``hint``, logged propensity ``p``) before
        the members learn it."""
        baseline = self.baseline
        xb = x
        if baseline is not None and not self.same_features(baseline, members[0].router):
            xb = baseline.featurizer.featurize(t.task, hint)
        o = t.outcome
        outcome = (o.reward, 1.0 if o.error else 0.0, o.latency_ms)
        cands, route = t.candidates, t.decision.route
        shadow = self.shadow
        chooser = shadow.chooser() if shadow is not None else None
        scorer = self.scorer  # the baseline's and the shadow's choices: the same for every member
        picks = (scorer.best(xb, cands, group) if scorer is not None else None,
                 chooser.best(x, cands, group) if chooser is not None else None)
        for m in members:
            s = score_trajectory(m.router, scorer, x, xb, cands, route, p, outcome, group,
                                 shadow=chooser, pessimism=m.pessimism, picks=picks, prices=m.prices)
            m.evidence.add(s.phi_challenger, s.phi_baseline, weight=s.weight, unsupported=s.unsupported,
                           at=t.trajectory_id, route=s.choice, error_parts=s.error_parts, unseen=s.unseen,
                           residual_sq=s.residual_sq, logged=route)
            if shadow is not None and s.shadow is not None:
                shadow.of(m.name).add(s.phi_challenger, s.shadow[0], weight=s.weight, unsupported=s.unsupported,
                                      at=t.trajectory_id, route=s.choice, error_parts=s.shadow[1],
                                      unseen=s.shadow[2], residual_sq=s.residual_sq, logged=route)
