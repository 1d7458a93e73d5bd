"""A router learner's state as plain data, and the learner it describes (``RouterLearner.to_state`` /
``from_state``): what a checkpoint holds, so a restart, and a replay after ``kill -9``, go on exactly
where the learner was."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from memabrad.learning.case_index import CaseIndex
from memabrad.learning.guardrail_prices import Repricer
from memabrad.learning.learner import Counters, RouterLearner
from memabrad.learning.portfolio import members_from_state, members_of, reconcile
from memabrad.learning.progressive import ProgressiveEvidence
from memabrad.learning.router import Router
from memabrad.learning.snapshot import Span
from memabrad.learning.text_groups import TextGroups
from memabrad.learning.window import BenchmarkWindow

STATE_FORMAT = "memabrad.learner/v1"


def learner_to_state(learner: RouterLearner) -> dict[str, Any]:
    """``RouterLearner.to_state``: plain data, the model parts as their own exports."""
    state = {
        "format": STATE_FORMAT,
        "router_id": learner.router_id,
        "holdout_fraction": learner.holdout_fraction,
        "use_case_index": learner.use_case_index,
        "counters": asdict(learner.counters),
        "span": asdict(learner.span),
        "challenger": learner.challenger.export_state(),
        "case_index": learner.case_index.to_state(),
        "window": learner.window.to_state(),
        "progressive": learner.progressive.to_state(),
    }
    if len(learner.challenger.text_groups) or learner.challenger.text_groups.seeded():
        state["text_groups"] = learner.challenger.text_groups.to_state()
    if learner.repricer is not None:
        state["price_marks"] = learner.repricer.to_state()
    if learner.portfolio:
        models = [learner.challenger, *(m.router for m in learner.portfolio if m.own_model)]
        state["portfolio"] = {"models": [r.export_state() for r in models[1:]],
                              "members": [m.to_state(models) for m in learner.portfolio]}
    return state


def learner_from_state(state: dict[str, Any], cfg: Any | None = None) -> RouterLearner:
    """``RouterLearner.from_state``."""
    if state.get("format") != STATE_FORMAT:
        raise ValueError(f"not a {STATE_FORMAT} state")
    kw: dict[str, Any] = {}
    if cfg is not None:
        kw = {"capacity": cfg.case_index.capacity,
              "similarity_threshold": cfg.case_index.similarity_threshold}
    main = Router.from_state(state["challenger"])
    if "text_groups" in state:
        main.text_groups = TextGroups.from_state(state["text_groups"])
    saved = state.get("portfolio")
    members = (members_from_state(saved["members"], [main, *(Router.from_state(m) for m in saved["models"])])
               if saved else [])
    if cfg is not None:
        members = reconcile(members, members_of(main, list(cfg.router.portfolio)))
    learner = RouterLearner(
        router_id=state["router_id"],
        challenger=main,
        case_index=CaseIndex.from_state(state["case_index"], **kw),
        window=BenchmarkWindow.from_state(state["window"]),
        holdout_fraction=float(state["holdout_fraction"]),
        learn_held_out=cfg.evaluation.learn_held_out if cfg is not None else True,
        use_case_index=bool(state["use_case_index"]),
        counters=Counters(**state["counters"]),
        span=Span(**state["span"]),
        progressive=(ProgressiveEvidence.from_state(state["progressive"]) if "progressive" in state
                     else ProgressiveEvidence()),
        portfolio=members,
        repricer=Repricer.of(cfg, state.get("price_marks")) if cfg is not None else None,
        group_texts=cfg.router.text_groups if cfg is not None else True,
    )
    if learner.use_case_index:
        _note_hints(learner)
    if cfg is not None and cfg.evaluation.window_size != learner.window.size:  # a window resized by the config
        for item in learner.window.resize(cfg.evaluation.window_size):  # what no longer fits: as though pushed out
            if learner.learn_held_out:
                learner.learn_after_holdout(item)
    return learner


def _note_hints(learner: RouterLearner) -> None:
    """Window items saved before items noted their case key and hint (case key None with a case index): their
    hint feature, found among their features once here, so each is learned with its hint apart when it leaves
    the window, as one saved now is (the routes a hint can name: the item's candidates, then every route the
    logs have tried)."""
    items = learner.window.snapshot()
    if all(i.case_key is not None for i in items):
        return
    feat, routes = learner.challenger.featurizer, sorted(learner.supported_routes())
    window = BenchmarkWindow(learner.window.size)
    window.extend(i if i.case_key is not None else replace(i, hint_key=feat.hint_key_in(i.x, (*i.candidates, *routes)))
                  for i in items)
    learner.window = window
