"""One router's learning state: challenger, case index, benchmark window and counters.

``RouterLearner.observe`` is the per-trajectory step shared by ``memabrad cycle`` and
the daemon: look up the case-index hint *before* recording the trajectory (so a task
never hints at itself), featurise, then either train the challenger or hold the
trajectory out for the benchmark, by a stable hash of its id; a held-out trajectory is
learned when a newer one pushes it out of the benchmark window (``learn_after_holdout``).

``snapshot`` freezes what an evaluation needs — a clone of the challenger put forward
(the main one, or the portfolio member a selector picks) and a copy of the window — so
evaluation can run beside ongoing learning (evaluate clones, never the live model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from memabrad.learning.case_index import CaseIndex
from memabrad.learning.comparison import Comparison, Shadow
from memabrad.learning.features import Features, TaskView, normalize_text, text_hashes
from memabrad.learning.frozen import FrozenScorer
from memabrad.learning.guardrail_prices import Repricer
from memabrad.learning.portfolio import MAIN, Member, MemberEstimate, members_of
from memabrad.learning.progressive import ProgressiveEvidence
from memabrad.learning.router import Router, share_numbers
from memabrad.learning.snapshot import LearnerSnapshot, Span, look_of_report
from memabrad.learning.task_identity import case_query
from memabrad.learning.window import BenchmarkWindow, LoggedItem, is_holdout
from memabrad.wire.trajectory import Trajectory


def _at(t: Trajectory) -> str:
    return t.occurred_at.isoformat().replace("+00:00", "Z")


@dataclass
class Counters:
    """Counts from the router's beginning; they survive restarts in the checkpoint."""

    learned: int = 0
    duplicates: int = 0
    invalid: int = 0
    trained: int = 0
    benchmarked: int = 0
    since_evaluation: int = 0
    evaluations: int = 0
    imputed_propensities: int = 0
    learned_after_holdout: int = 0  # held-out trajectories learned once they left the window (in ``trained``)


Selector = Callable[[list[Member]], tuple[int, tuple[MemberEstimate, ...]]]
"""Given every member at a look (the main challenger first), the one to put forward and each one's
standing (``promotion.portfolio.selector`` judges them with the gates)."""

__all__ = ["Counters", "LearnerSnapshot", "RouterLearner", "Selector", "Shadow", "Span", "look_of_report"]


@dataclass
class RouterLearner:
    router_id: str
    challenger: Router
    case_index: CaseIndex
    window: BenchmarkWindow
    holdout_fraction: float = 0.2
    use_case_index: bool = True
    counters: Counters = field(default_factory=Counters)
    span: Span = field(default_factory=Span)
    progressive: ProgressiveEvidence = field(default_factory=ProgressiveEvidence)
    portfolio: list[Member] = field(default_factory=list)
    """Members besides the main challenger (``challenger``/``progressive``); see ``learning/portfolio.py``."""
    repricer: Repricer | None = None
    """Moves the priced members' guardrail prices at every look (None: none is priced, or no config)."""
    learn_held_out: bool = True
    """Learn a held-out trajectory once a newer one pushes it out of the window (``evaluation.learn_held_out``)."""
    group_texts: bool = True
    """Group tasks sent without a ``task_type`` by their text (``learning/text_groups.py``); the groups (and
    their seeds) live on the main challenger and every member with a model of its own shares them."""
    comparison: Comparison = field(default_factory=Comparison, repr=False)
    """What each trajectory is scored against before the members learn it (``learning/comparison.py``)."""

    def members(self) -> list[Member]:
        """The main challenger (as a member) and the portfolio's, in that order."""
        main = Member(MAIN, self.challenger, self.challenger.pessimism, False, self.progressive)
        return [main, *self.portfolio]

    def _restart(self, version_id: str | None) -> None:
        self.progressive = ProgressiveEvidence(baseline_version_id=version_id)
        for m in self.portfolio:
            m.evidence = ProgressiveEvidence(baseline_version_id=version_id)

    def set_baseline(self, router: Router | None, scorer: FrozenScorer | None = None,
                     from_look: int | None = None) -> None:
        """The router the challenger is judged against from now on (None: the logging agent).

        Call it whenever the active version changes, and after a restore once the active version
        is loaded; the progressive evidence restarts when the baseline is a different version, and
        carries on when it is the one the evidence was gathered against. ``scorer``: the router's
        ``FrozenScorer`` when the caller built it already (it takes a moment: build it off the loop).

        ``from_look``: the look whose challenger this version is (a promotion). Its evidence then
        starts right after that look — whenever the promotion is applied, and also when a replay
        after a crash learns of it before reaching that look again — so a replay gathers exactly the
        evidence an uninterrupted run did: scored against that look's challenger in the meantime
        (the shadow), adopted here; or held until the look is reached."""
        cmp = self.comparison
        shadow = cmp.shadow
        if from_look is not None and router is not None and shadow is not None and shadow.look == from_look:
            cmp.shadow = None
            cmp.install(router, scorer)
            self.progressive = shadow.of(MAIN)
            for m in self.portfolio:
                m.evidence = shadow.of(m.name)
            for ev in (self.progressive, *(m.evidence for m in self.portfolio)):
                ev.baseline_version_id = router.version_id
            return
        if from_look is not None and router is not None and from_look > self.counters.evaluations:
            cmp.pending = (from_look, router, scorer)
            return
        cmp.install(router, scorer)
        version_id = router.version_id if router is not None else None
        if version_id != self.progressive.baseline_version_id:
            self._restart(version_id)

    def drop_shadow(self, look: int) -> None:
        """Look ``look`` was not promoted: stop scoring against its challenger."""
        cmp = self.comparison
        if cmp.shadow is not None and cmp.shadow.look == look:
            cmp.shadow = None

    @classmethod
    def new(cls, router_id: str, cfg: Any) -> RouterLearner:
        """An empty learner from a ``Config``."""
        main = Router.from_config(cfg.router)
        return cls(
            router_id=router_id,
            challenger=main,
            case_index=CaseIndex(cfg.case_index.capacity, cfg.case_index.similarity_threshold),
            window=BenchmarkWindow(cfg.evaluation.window_size),
            holdout_fraction=cfg.evaluation.holdout_fraction,
            learn_held_out=cfg.evaluation.learn_held_out,
            use_case_index=cfg.case_index.enabled,
            portfolio=members_of(main, list(cfg.router.portfolio)),
            repricer=Repricer.of(cfg),
            group_texts=cfg.router.text_groups,
        )

    def __post_init__(self) -> None:
        for m in self.portfolio:
            if m.own_model:  # what members learn from the stream's tasks alone is the main challenger's
                m.router.text_groups = self.challenger.text_groups
                share_numbers(m.router, self.challenger.numbers)

    def observe(self, t: Trajectory, digest: bytes | None = None) -> bool:
        """Learn from or hold out one valid, not-yet-seen trajectory (and learn the held-out one it pushes out of
        the window, if any); True if held out.

        ``digest``: ``wire.ids.trajectory_digest`` of its id, when the caller has it already."""
        task = t.task
        view = TaskView.of(task)  # read once: the case key and the features both take it
        version = self.challenger.featurizer.version
        hashes = text_hashes(view.input, version)
        key, case_h = (normalize_text(view.input) if self.use_case_index else ""), hashes
        if version < 4 and not view.input.isascii():  # the case index reads every text one way (version 4's words)
            case_h = text_hashes(view.input)
        if self.use_case_index and (view.features or view.tags):  # the task is its text and its fields
            key, case_h = case_query(view, case_h, key)
        hint = self.case_index.hint(view.input, case_h, key) if self.use_case_index else None
        # whether the route learned this task before, and with what reward (None while it has not: ``last``)
        was_learned, last_reward = self.case_index.learned_routes.last(key, t.decision.route)
        novel = not self.use_case_index or not was_learned
        x = self.challenger.featurizer.featurize(view, hint, hashes)
        d, o = t.decision, t.outcome
        p = d.propensity
        imputed = p is None
        if p is None:
            p = 1.0 / len(t.candidates)
        held_out = is_holdout(t.trajectory_id, self.holdout_fraction, digest)
        at = _at(t)
        group = task.task_type
        if not group and self.group_texts:
            group = self.challenger.text_groups.assign(hashes)
        self.comparison.score(self.members(), t, x, hint, p, group)
        hk = self.challenger.featurizer.hint_key(hint) if hint is not None else None
        if held_out:
            out = self.window.append(LoggedItem(
                t.trajectory_id, x, tuple(t.candidates), d.route, p, imputed,
                o.reward, o.error, o.latency_ms, task.task_type, None if task.task_type else group,
                key if self.use_case_index else None, hk,
            ))
            self.counters.benchmarked += 1
            if out is not None and self.learn_held_out:
                self.learn_after_holdout(out)
        else:
            numbers = self.challenger.featurizer.numbers  # None before features version 5
            if view.features and numbers is not None:  # after featurising: a task is never scaled by its own numbers
                numbers.observe(view.features)
            self._learn(x, d.route, p, o.reward, o.error, o.latency_ms, group, novel, hk, last_reward)
            self.span.add(t.trajectory_id, at)
        if self.use_case_index:
            self.case_index.add(task.input, trajectory_id=t.trajectory_id, route=d.route, reward=o.reward,
                                error=o.error, latency_ms=o.latency_ms, task_type=task.task_type,
                                occurred_at=at, hashes=case_h, key=key, learned=not held_out)
        self.counters.learned += 1
        self.counters.since_evaluation += 1
        self.counters.imputed_propensities += imputed
        return held_out

    def _learn(self, x: Features, route: str, p: float, reward: float, error: bool, latency_ms: float,
               group: str | None, novel: bool, hint_key: int | None, previous: float | None = None) -> None:
        """The main challenger and every member with a model of its own learn one trajectory (``previous``: the reward
        ``route`` last learned this task with, ``Router.learn``)."""
        for router in (self.challenger, *(m.router for m in self.portfolio if m.own_model)):
            router.learn(x, route, propensity=p, reward=reward, error=error, latency_ms=latency_ms,
                         group=group, novel=novel, hint_key=hint_key, previous_reward=previous)
        self.counters.trained += 1

    def learn_after_holdout(self, item: LoggedItem) -> None:
        """Learn a held-out trajectory that has left the window: no look will benchmark on it again, so what
        it teaches is no longer withheld from every challenger (it would be for good otherwise: a fifth of
        the traffic at the default ``holdout_fraction``). Learned with its features, group and hint as they
        were when it arrived; whether the task is new to its route is asked now (the route may have learned a
        repeat of it meanwhile), and the case index then records that the route has learned it. Its numbers do
        not move the number scales (fixed from trained values as they arrive)."""
        key = item.case_key
        was_learned, previous = (False, None) if key is None else self.case_index.learned_routes.last(key, item.route)
        novel = not was_learned
        self._learn(item.x, item.route, item.propensity, item.reward, item.error, item.latency_ms, item.group,
                    novel, item.hint_key, previous)
        if key is not None:
            self.case_index.mark_learned(key, item.route, item.reward)
        self.counters.learned_after_holdout += 1
        self.span.add_inside()

    def supported_routes(self) -> frozenset[str]:
        """Routes the logging policy has tried: trained on, or logged in the window."""
        routes = {r for r, m in self.challenger.routes.items() if m.n}
        routes.update(i.route for i in self.window)
        return frozenset(routes)

    def snapshot(self, select: Selector | None = None) -> LearnerSnapshot:
        """Freeze the inputs of the next evaluation and reset the since-evaluation count.

        ``select``: which member to put forward (without it, or without a portfolio: the main one)."""
        self.counters.evaluations += 1
        members = self.members()
        for m in members:
            m.evidence.mark_look()
        chosen, standing = select(members) if select is not None and self.portfolio else (0, ())
        member = members[chosen]
        snap = LearnerSnapshot(
            router_id=self.router_id,
            sequence=self.counters.evaluations,
            challenger=member.frozen_router(),
            window=self.window.snapshot(),
            trained_total=self.counters.trained,
            trained_since_last=Span(**asdict(self.span)),
            supported_routes=self.supported_routes(),
            progressive=member.evidence.copy(),
            member=member.name,
            portfolio=standing,
        )
        self.counters.since_evaluation = 0
        self.span = Span()
        if self.repricer is not None:  # after freezing: the judged model keeps the prices it was judged with
            self.repricer.look([(m.name, m.prices, m.router.prior_se, m.evidence)
                                for m in members if m.prices is not None])
        cmp = self.comparison
        pending = cmp.pending
        if pending is not None and pending[0] <= snap.sequence:  # a replay reached the promoted look
            cmp.install(pending[1], pending[2])
            self._restart(pending[1].version_id if pending[1] is not None else None)
            cmp.shadow = None
        else:
            cmp.shadow = Shadow(snap)
        return snap

    # -- state ------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        from memabrad.learning.learner_state import learner_to_state

        return learner_to_state(self)

    @classmethod
    def from_state(cls, state: dict[str, Any], cfg: Any | None = None) -> RouterLearner:
        """The learner a state describes; with ``cfg``, its portfolio is the configured one (members kept
        where name and settings match, new or changed ones start afresh, removed ones dropped)."""
        from memabrad.learning.learner_state import learner_from_state

        return learner_from_state(state, cfg)
