"""A challenger portfolio: several routers learning side by side, the best one put forward.

No single learning rate or degree of pessimism suits every agent's traffic, and nothing
here may be tuned per workload. So besides the main challenger (``router.*``) the learner
keeps a few *members* (``router.portfolio``), each with its own progressive evidence
against the same baseline, scored on the same trajectories. At a look one member is put
forward to the gates (``LearnerSnapshot``); which one is a data-dependent choice, so every
member's intervals are built at ``alpha / M`` (M = members, the main one included): the
chance that *any* member's confidence sequence misses at any look is then at most alpha
(Bonferroni), whatever the choice was.

Sharing what can be shared: a member that learns at the main learning rate *is* the main
model, ranked with its own pessimism (pessimism changes the choice, never what is
learned), so it costs one ranking per trajectory and no learning; a member with its own
learning rate has a model of its own.

A member may also rank with guardrail prices (``guardrail_prices``, see
``learning/guardrail_prices.py``): learned prices on predicted latency and errors that keep its
deltas inside the promotion allowances. They change its choices only where a guardrail presses;
there it gives the portfolio a challenger the gates can pass when the main one, ranking by reward
alone, never could.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memabrad.learning.guardrail_prices import Prices
from memabrad.learning.progressive import ProgressiveEvidence
from memabrad.learning.router import Router

MAIN = "main"
"""The main challenger's name as a member (``router.portfolio`` may hold up to four more)."""


@dataclass
class Member:
    """One portfolio member: its name, its router (the main challenger itself when ``own_model`` is
    False), the pessimism and guardrail prices it ranks with (None: none), and its evidence against
    the current baseline."""

    name: str
    router: Router
    pessimism: float
    own_model: bool
    evidence: ProgressiveEvidence = field(default_factory=ProgressiveEvidence)
    prices: Prices | None = None

    @property
    def learning_rate(self) -> float:
        return self.router.learning_rate

    def frozen_router(self) -> Router:
        """An independent copy of this member's router, ranking with the member's pessimism (what
        would be saved as a version)."""
        twin = self.router.clone()
        twin.pessimism = self.pessimism
        if self.prices is not None:
            twin.prices = self.prices.copy()
        return twin

    def to_state(self, models: list[Router]) -> dict[str, Any]:
        """Its settings and evidence; its model by position in ``models`` (the main challenger is 0)."""
        return {"name": self.name, "pessimism": self.pessimism,
                "model": next(i for i, m in enumerate(models) if m is self.router),
                "evidence": self.evidence.to_state(),
                **({} if self.prices is None else {"prices": self.prices.to_list()})}


@dataclass(frozen=True)
class MemberEstimate:
    """One member's standing at a look, for the report: its reward advantage (estimate and interval
    at its share of alpha, from the evidence stream its verdict rests on) and that verdict."""

    name: str
    learning_rate: float
    pessimism: float
    trajectories: int
    reward_delta: float
    reward_low: float
    reward_high: float
    verdict: str
    chosen: bool = False
    prices: Prices | None = None
    """The member's guardrail prices at the look (None: it ranks without)."""

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "learning_rate": self.learning_rate, "pessimism": self.pessimism,
               "trajectories": self.trajectories, "reward_delta": _num(self.reward_delta),
               "reward_low": _num(self.reward_low), "reward_high": _num(self.reward_high),
               "verdict": self.verdict, "chosen": self.chosen}
        if self.prices is not None:
            out["guardrail_prices"] = self.prices.to_dict()
        return out


def _num(v: float) -> float | None:
    """JSON has no NaN or infinity: an undefined bound is null."""
    return None if v != v or v in (float("inf"), float("-inf")) else round(v, 6)


def member_confidence(confidence: float, members: int) -> float:
    """The confidence each of ``members`` members' intervals are built at (Bonferroni).

    >>> round(member_confidence(0.95, 4), 4)
    0.9875
    """
    return 1.0 - (1.0 - confidence) / max(1, members)


def members_of(main: Router, specs: list[Any]) -> list[Member]:
    """The extra members ``specs`` (``PortfolioMemberConfig``) describe, around the main challenger."""
    out = []
    for spec in specs:
        rate = spec.learning_rate if spec.learning_rate is not None else main.learning_rate
        pess = spec.pessimism if spec.pessimism is not None else main.pessimism
        prices = Prices() if spec.guardrail_prices else None
        if rate == main.learning_rate:
            out.append(Member(spec.name, main, pess, own_model=False, prices=prices))
        else:
            own = Router(main.hash_bits, rate, main.l2, main.max_importance_weight, pess,
                         features_version=main.features_version)
            out.append(Member(spec.name, own, pess, own_model=True, prices=prices))
    return out


def members_from_state(states: list[dict[str, Any]], models: list[Router]) -> list[Member]:
    return [Member(str(s["name"]), models[int(s["model"])], float(s["pessimism"]), int(s["model"]) != 0,
                   ProgressiveEvidence.from_state(s["evidence"]),
                   Prices.from_list(s["prices"]) if "prices" in s else None) for s in states]


def reconcile(saved: list[Member], wanted: list[Member]) -> list[Member]:
    """The configured members, each with its saved model and evidence when a saved member of the same
    name and settings exists (a changed or new member starts afresh; a removed one is dropped)."""
    by_name = {m.name: m for m in saved}
    out = []
    for w in wanted:
        s = by_name.get(w.name)
        same = (s is not None and s.pessimism == w.pessimism and s.own_model == w.own_model
                and s.learning_rate == w.learning_rate and (s.prices is None) == (w.prices is None))
        out.append(s if same and s is not None else w)
    return out
