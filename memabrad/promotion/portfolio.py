"""Which portfolio member goes forward to the gates at a look.

Every member's progressive evidence is judged by the gates exactly as the evaluation will
judge the one chosen, at ``alpha / M`` for M members (``learning/portfolio.py`` says why
that keeps the false-promotion rate at alpha). The member put forward is, among those whose
gates all pass, the one with the highest lower bound on its reward advantage (the one-sided
bound its reward gate compared; ties: the earlier member); when none passes, the main
challenger — a look that promotes nothing keeps the main line (on thin evidence the member
with the tightest interval is not the best one).
The choice reads only the checkpointed evidence, so a replay after a crash makes it again.
"""

from __future__ import annotations

import math
from dataclasses import replace

from memabrad.evaluation.sequential import SequentialSettings, stream_results
from memabrad.learning.learner import Selector
from memabrad.learning.portfolio import Member, MemberEstimate, member_confidence
from memabrad.promotion.evaluation import decide_streams
from memabrad.promotion.policy import PolicySettings, PromotionPolicy


def selector(settings: PolicySettings, confidence: float) -> Selector:
    """A ``Selector`` for ``RouterLearner.snapshot`` that judges members with these gates."""
    policy = PromotionPolicy(settings)

    def select(members: list[Member]) -> tuple[int, tuple[MemberEstimate, ...]]:
        seq = SequentialSettings(member_confidence(confidence, len(members)), settings.target_n)
        rows: list[MemberEstimate] = []
        keys = []
        for i, m in enumerate(members):
            results = stream_results(m.evidence, seq, min_trajectories=settings.required_task_count,
                                     members=len(members))
            result, decision = decide_streams(policy, results)
            reward = result.deltas["reward"]
            bound = decision.gates["reward_delta"].ci_low  # the bound the reward gate compared
            low = bound if bound is not None and not math.isnan(bound) else -math.inf
            passes = decision.verdict == "promote"
            keys.append((not passes, -low if passes else 0.0, i))
            rows.append(MemberEstimate(m.name, m.learning_rate, m.pessimism, result.task_count, reward.value,
                                       reward.ci_low, reward.ci_high, decision.verdict,
                                       prices=None if m.prices is None else m.prices.copy()))
        chosen = min(keys)[2]
        rows[chosen] = replace(rows[chosen], chosen=True)
        return chosen, tuple(rows)

    return select
