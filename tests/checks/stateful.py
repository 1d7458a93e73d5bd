"""The stateful classes under the state-protocol checks (``test_state_protocol.py``), one ``Spec`` each.

A spec says how to build an instance that has seen a few simulated trajectories, how it exports
its state, how the product reloads it (export, encode, decode, import: the full round trip), and,
for a learning class, ``run``: feed it further trajectories, one at a time, returning what it
answered for each before learning it (prequential, as river evaluates). A class with a ``clone``
or ``copy`` names it in ``clone``.

Adding a class is one entry in ``SPECS``.
"""

from __future__ import annotations

import io
import json
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

import numpy as np

from memabrad.config import Config, PortfolioMemberConfig
from memabrad.daemon.checkpoint import CheckpointStore
from memabrad.daemon.dedupe import DedupeMemory
from memabrad.daemon.partition import PartitionState
from memabrad.evaluation.benchmark import BenchmarkWindow, LoggedItem
from memabrad.learning.case_index import CaseIndex
from memabrad.learning.features import normalize_text, text_hashes
from memabrad.learning.guardrail_prices import Mark, Prices, Repricer
from memabrad.learning.learned_routes import LearnedRoutes
from memabrad.learning.learner import RouterLearner
from memabrad.learning.number_part import NumberPart
from memabrad.learning.number_scales import NumberScales
from memabrad.learning.outcome_noise import OutcomeNoise
from memabrad.learning.outcome_scale import OutcomeScale
from memabrad.learning.portfolio import Member, members_from_state, members_of
from memabrad.learning.progressive import ProgressiveEvidence, score_trajectory
from memabrad.learning.route_model import RouteModel
from memabrad.learning.router import Router
from memabrad.learning.shared_part import SharedPart, SharedWeight
from memabrad.learning.stacking_pool import StackingPool
from memabrad.learning.text_groups import TextGroups
from memabrad.promotion.guard import GuardSettings, PromotionGuard
from memabrad.sim import Simulator
from memabrad.stats.moments import Moments
from memabrad.wire.trajectory import Trajectory

Row = dict[str, Any]
BUILD_SEED, NEXT_SEED = 11, 12
BUILD_N, NEXT_N, RESENT_N = 60, 30, 10


@dataclass(frozen=True)
class Spec:
    name: str
    build: Callable[[], Any]
    """A fresh instance that has seen ``build_rows()``."""
    save: Callable[[Any], Any]
    """The exported state, as the class returns it (compared through ``plain``)."""
    reload: Callable[[Any], Any]
    """The product's round trip: export, encode, decode, import."""
    run: Callable[[Any, list[Row]], list[Any]] | None = None
    """Answer then learn each row; None for an immutable value."""
    clone: Callable[[Any], Any] | None = None

    def __str__(self) -> str:
        return self.name


# -- inputs -------------------------------------------------------------------------------------


@cache
def _rows(seed: int, n: int) -> tuple[Row, ...]:
    return tuple(Simulator(seed=seed).generate(n))


def build_rows() -> list[Row]:
    return list(_rows(BUILD_SEED, BUILD_N))


def next_rows() -> list[Row]:
    """Unseen trajectories, then a few seen ones again (producers re-send)."""
    return list(_rows(NEXT_SEED, NEXT_N)) + build_rows()[:RESENT_N]


def trajectory(row: Row) -> Trajectory:
    return Trajectory.model_validate(row)


FEATURIZER = Router().featurizer
CFG = Config()


def features(row: Row) -> dict[int, float]:
    return FEATURIZER.featurize(row["task"])


def plain(state: Any) -> Any:
    """A deep, comparable copy of an exported state (numpy arrays as dtype and values, tuples as lists)."""
    if isinstance(state, np.ndarray):
        return {"dtype": str(state.dtype), "values": state.tolist()}
    if isinstance(state, dict):
        return {k: plain(v) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return [plain(v) for v in state]
    return state


def via_json(save: Callable[[Any], Any], load: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Round trip of a JSON state: exported, encoded, decoded, imported."""
    return lambda obj: load(json.loads(json.dumps(save(obj))))


def _npz(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# -- factories ----------------------------------------------------------------------------------


def logged_item(row: Row) -> LoggedItem:
    d, o = row["decision"], row["outcome"]
    return LoggedItem(row["trajectory_id"], features(row), tuple(row["candidates"]), d["route"], d["propensity"],
                      False, o["reward"], o["error"], o["latency_ms"], row["task"].get("task_type"))


T = TypeVar("T")


def feeder(step: Callable[[T, Row], Any]) -> Callable[[T, list[Row]], list[Any]]:
    """Feed rows one by one: ``step`` observes the object (what the checks compare), then teaches it the row."""
    def run(obj: T, rows: list[Row]) -> list[Any]:
        return [step(obj, r) for r in rows]
    return run


def fed(obj: T, run: Callable[[T, list[Row]], object]) -> T:
    """``obj`` after it has been fed the build rows (by the same ``run`` the checks feed it more with)."""
    run(obj, build_rows())
    return obj


def _window() -> BenchmarkWindow:
    w = BenchmarkWindow(size=40)  # smaller than the rows seen: the oldest have left
    w.extend(logged_item(r) for r in build_rows())
    return w


def _step_window(w: BenchmarkWindow, r: Row) -> Any:
    seen = (len(w), w.snapshot()[0].trajectory_id)
    w.append(logged_item(r))
    return seen


_run_window = feeder(_step_window)


def _case_index() -> CaseIndex:
    return fed(CaseIndex(capacity=32, similarity_threshold=0.5), _run_case_index)  # small: evictions happen


def _learned(r: Row) -> bool:
    """Whether the row is one its route learns (some are held out): a fixed function of its id."""
    return zlib.crc32(r["trajectory_id"].encode()) % 5 != 0


def _step_case_index(idx: CaseIndex, r: Row) -> Any:
    d, o, task = r["decision"], r["outcome"], r["task"]
    key = normalize_text(task["input"])
    seen = (idx.lookup(task["input"]), idx.learned_routes.learned(key, d["route"]))
    idx.add(task["input"], trajectory_id=r["trajectory_id"], route=d["route"], reward=o["reward"],
            error=o["error"], latency_ms=o["latency_ms"], task_type=task.get("task_type"),
            occurred_at=r["occurred_at"], learned=_learned(r))
    return seen


_run_case_index = feeder(_step_case_index)


@cache
def _task_keys() -> list[str]:
    """Every task key the checks' rows have (``LearnedRoutes`` saves the keys it is asked for)."""
    return sorted({normalize_text(r["task"]["input"]) for r in build_rows() + next_rows()})


def _learned_routes() -> LearnedRoutes:
    return fed(LearnedRoutes(), _run_learned_routes)


def _step_learned_routes(lr: LearnedRoutes, r: Row) -> Any:
    key, route = normalize_text(r["task"]["input"]), r["decision"]["route"]
    seen = (lr.learned(key, route), lr.previous(key, route))
    if _learned(r):
        lr.add(key, route, r["outcome"]["reward"])
    return seen


def _save_learned_routes(lr: LearnedRoutes) -> Any:
    return lr.to_state(_task_keys())


_run_learned_routes = feeder(_step_learned_routes)


def _route_model() -> RouteModel:
    return fed(RouteModel(), _run_route_model)


def _step_route_model(m: RouteModel, r: Row) -> Any:
    x, o, group = features(r), r["outcome"], r["task"].get("task_type")
    seen = (m.predict(x, group), m.reward_score(x, 1.0, group))
    m.learn(x, reward=o["reward"], error=o["error"], latency_s=o["latency_ms"] / 1000.0,
            weight=1.0 / r["decision"]["propensity"], group=group)
    return seen


_run_route_model = feeder(_step_route_model)


def _route_model_numbers() -> RouteModel:
    return fed(RouteModel(), _run_route_model_numbers)


def _step_route_model_numbers(m: RouteModel, r: Row) -> Any:
    """As ``_step_route_model``, with the task's first two features fitted as numbers (``number_part.py``):
    tasks differ in which they carry, so fits move weights of features a task lacks."""
    x, o, group = features(r), r["outcome"], r["task"].get("task_type")
    seen = (m.predict(x, group), m.reward_score(x, 1.0, group))
    m.learn(x, reward=o["reward"], error=o["error"], latency_s=o["latency_ms"] / 1000.0,
            weight=1.0 / r["decision"]["propensity"], group=group, numbers=frozenset(list(x)[:2]))
    return seen


_run_route_model_numbers = feeder(_step_route_model_numbers)


def _number_part() -> NumberPart:
    return fed(NumberPart(), _run_number_part)


def _step_number_part(p: NumberPart, r: Row) -> Any:
    o = r["outcome"]
    keys = [11, 12, 13][: 1 + len(p) % 3]
    vals = np.array([o["reward"], o["latency_ms"] / 1000.0, 1.0][: len(keys)])
    gain, s = p.step(keys, vals, 1.0 / r["decision"]["propensity"])
    return gain.tolist(), s


_run_number_part = feeder(_step_number_part)


def _shared_part() -> SharedPart:
    return fed(SharedPart(), _run_shared_part)


def _step_shared_part(sp: SharedPart, r: Row) -> Any:
    x = features(r)
    seen = sp.part(x)
    idx, rows = sp.rows(x)
    rows[:, :3] += 0.01 * r["outcome"]["reward"]
    sp.store(idx, rows)
    return seen


_run_shared_part = feeder(_step_shared_part)


def _shared_weight() -> SharedWeight:
    return fed(SharedWeight(), _run_shared_weight)


def _step_shared_weight(sw: SharedWeight, r: Row) -> Any:
    o = r["outcome"]
    seen = list(sw.beta)
    shared = [0.2 * o["reward"], 0.5 if o["error"] else -0.5, o["latency_ms"] / 2000.0]
    sw.learn(shared, (o["reward"] - 0.5, 1.0 if o["error"] else 0.0, o["latency_ms"] / 1000.0 - 0.5), -3.0,
             1.0 / r["decision"]["propensity"], np.array([0.3, 1.0, 0.2]))
    return seen


_run_shared_weight = feeder(_step_shared_weight)


def _stacking_pool() -> StackingPool:
    return fed(StackingPool(), _run_stacking_pool)


def _step_stacking_pool(p: StackingPool, r: Row) -> Any:
    seen = p.prior_for([[0.1] * 5] * 3, own_events=1.0)
    y = r["outcome"]["reward"]
    for h in range(3):
        p.add(h, [y * y, y, 1.0, y, y * y])
    p.n += 1.0
    return seen


_run_stacking_pool = feeder(_step_stacking_pool)


def _number_scales() -> NumberScales:
    return fed(NumberScales(), _run_number_scales)


def _step_number_scales(s: NumberScales, r: Row) -> Any:
    """The scales freeze during the next rows (60 built, fixed at the 64th value of a name)."""
    nums = {**(r["task"].get("features") or {}), "reward": r["outcome"]["reward"],
            "latency": r["outcome"]["latency_ms"]}
    seen = {k: s.z(k, float(v)) for k, v in nums.items()}
    s.observe(nums)
    return seen


_run_number_scales = feeder(_step_number_scales)


def _router() -> Router:
    return fed(Router(), _run_router)


def _step_router(router: Router, r: Row) -> Any:
    d, o = r["decision"], r["outcome"]
    seen = router.choose(r["task"], r["candidates"])
    router.numbers.observe({**(r["task"].get("features") or {}), "latency": o["latency_ms"]})  # as the learner
    router.learn(features(r), d["route"], propensity=d["propensity"], reward=o["reward"], error=o["error"],
                 latency_ms=o["latency_ms"], group=r["task"].get("task_type"))
    return seen


_run_router = feeder(_step_router)


def _moments() -> Moments:
    return fed(Moments(), _run_moments)


def _step_moments(m: Moments, r: Row) -> Any:
    seen = (m.n, m.mean, m.m2)
    m.add(r["outcome"]["latency_ms"])
    return seen


_run_moments = feeder(_step_moments)


def _outcome_scale() -> OutcomeScale:
    return fed(OutcomeScale(), _run_outcome_scale)


def _step_outcome_scale(s: OutcomeScale, r: Row) -> Any:
    seen = (s.steps().tolist(), s.means())
    s.add(r["outcome"]["reward"], r["outcome"]["latency_ms"] / 1000.0)
    return seen


_run_outcome_scale = feeder(_step_outcome_scale)


def _outcome_noise() -> OutcomeNoise:
    return fed(OutcomeNoise(), _run_outcome_noise)


def _step_outcome_noise(n: OutcomeNoise, r: Row) -> Any:
    seen = (n.pairs, n.boldness(1.0), n.step(0.5, r["decision"]["propensity"], 1.0, True, 0.0, None))
    n.add(r["outcome"]["reward"], 0.5)
    return seen


_run_outcome_noise = feeder(_step_outcome_noise)


@cache
def _scorer() -> Router:
    """The challenger that scores trajectories for ``ProgressiveEvidence`` (trained once, never changed)."""
    return _router()


def _evidence() -> ProgressiveEvidence:
    return fed(ProgressiveEvidence(), _run_evidence)


def _step_evidence(ev: ProgressiveEvidence, r: Row) -> Any:
    d, o, x = r["decision"], r["outcome"], features(r)
    s = score_trajectory(_scorer(), None, x, x, r["candidates"], d["route"], d["propensity"],
                         (o["reward"], float(o["error"]), o["latency_ms"]), r["task"].get("task_type"))
    seen = (ev.n, ev.delta[0].mean, ev.effective_sample_size)
    ev.add(s.phi_challenger, s.phi_baseline, weight=s.weight, unsupported=s.unsupported, at=r["occurred_at"],
           route=s.choice)
    return seen


_run_evidence = feeder(_step_evidence)


GUARD_SETTINGS = GuardSettings(min_trajectories=20)


def _guard() -> PromotionGuard:
    g = PromotionGuard()
    g.arm("v2", "v1", reward=0.75, error_rate=0.05, latency_ms=900.0)
    _run_guard(g, build_rows())
    return g


def _run_guard(g: PromotionGuard, rows: list[Row]) -> list[Any]:
    """Live trajectories served by the armed version (every third by an older one, which is not judged)."""
    return [g.observe("v1" if i % 3 == 2 else "v2", r["outcome"]["reward"], r["outcome"]["error"],
                      r["outcome"]["latency_ms"], GUARD_SETTINGS, propensity=r["decision"]["propensity"],
                      n_candidates=len(r["candidates"])) for i, r in enumerate(rows)]


def _learner() -> RouterLearner:
    return fed(RouterLearner.new("default", CFG), _run_learner)


def _step_learner(learner: RouterLearner, r: Row) -> Any:
    hint = learner.case_index.hint(r["task"]["input"])
    seen = (hint, learner.challenger.choose(r["task"], r["candidates"]), learner.observe(trajectory(r)))
    return seen


_run_learner = feeder(_step_learner)


PORTFOLIO_CFG = Config.model_validate({"router": {"portfolio": [{"name": "slow", "learning_rate": 0.1},
                                                                {"name": "bold", "pessimism": 0.0,
                                                                 "guardrail_prices": True}]}})


def _portfolio_learner() -> RouterLearner:
    return fed(RouterLearner.new("default", PORTFOLIO_CFG), _run_portfolio_learner)


def _step_portfolio_learner(learner: RouterLearner, r: Row) -> Any:
    seen = _step_learner(learner, r)
    return seen, [(m.name, m.evidence.n, m.evidence.delta[0].mean) for m in learner.members()]


_run_portfolio_learner = feeder(_step_portfolio_learner)


def untyped(r: Row) -> Row:
    """The row without its task type, its input after a long opening its type shares (text groups form)."""
    task = {k: v for k, v in r["task"].items() if k != "task_type"}
    opening = f"instructions for {r['task']['task_type']} tasks, with worked examples; "
    task["input"] = opening * 6 + task["input"]
    return {**r, "task": task}


def _untyped_learner() -> RouterLearner:
    return fed(RouterLearner.new("default", PORTFOLIO_CFG), _run_untyped_learner)


def _step_untyped_learner(learner: RouterLearner, r: Row) -> Any:
    return _step_portfolio_learner(learner, untyped(r)), len(learner.challenger.text_groups)


_run_untyped_learner = feeder(_step_untyped_learner)


def _text_groups() -> TextGroups:
    return fed(TextGroups(max_groups=8, seeds=3), _run_text_groups)  # few seeds: they are overwritten


def _step_text_groups(g: TextGroups, r: Row) -> Any:
    # half the texts after a shared opening (they group), half long enough to be grouped but unrelated (seeds)
    grouped = zlib.crc32(r["trajectory_id"].encode()) % 2
    text = untyped(r)["task"]["input"] if grouped else " ".join([r["task"]["input"]] * 4)
    hashes = text_hashes(text)
    return g.match(hashes), g.assign(hashes)


_run_text_groups = feeder(_step_text_groups)


def _member() -> Member:
    return fed(members_of(Router.from_config(CFG.router), [PortfolioMemberConfig(name="slow", learning_rate=0.1)])[0],
               _run_member)


def _member_state(m: Member) -> dict[str, Any]:
    """A member's state with the model it owns (a learner saves the models beside its members)."""
    return {"model": m.router.export_state(), "member": m.to_state([Router(), m.router])}


def _member_from_state(s: dict[str, Any]) -> Member:
    return members_from_state([s["member"]], [Router(), Router.from_state(s["model"])])[0]


def _step_member(m: Member, r: Row) -> Any:
    d, o, x = r["decision"], r["outcome"], features(r)
    s = score_trajectory(m.router, None, x, x, r["candidates"], d["route"], d["propensity"],
                         (o["reward"], float(o["error"]), o["latency_ms"]), r["task"].get("task_type"),
                         pessimism=m.pessimism)
    seen = (s.choice, m.evidence.n, m.evidence.delta[0].mean)
    m.evidence.add(s.phi_challenger, s.phi_baseline, weight=s.weight, unsupported=s.unsupported,
                   at=r["occurred_at"], route=s.choice)
    m.router.learn(x, d["route"], propensity=d["propensity"], reward=o["reward"], error=o["error"],
                   latency_ms=o["latency_ms"], group=r["task"].get("task_type"))
    return seen


_run_member = feeder(_step_member)


def _repricer() -> Repricer:
    rep = Repricer.of(CFG)
    assert rep is not None  # the default portfolio has a priced member
    _run_repricer(rep, build_rows())
    return rep


def _run_repricer(rep: Repricer, rows: list[Row]) -> list[Any]:
    """Evidence of the scorer against the logging agent, a look every 10 rows; the prices after each look
    (fresh prices each run: the repricer's own state is its marks)."""
    ev, prices, out = ProgressiveEvidence(), Prices(), []
    for i, r in enumerate(rows, 1):
        _step_evidence(ev, r)
        if i % 10 == 0:
            rep.look([("m", prices, 0.3, ev)])
            out.append(prices.copy())
    return out


def _mark() -> Mark:
    return Mark(_moments(), _moments(), "v1")


def _dedupe() -> DedupeMemory:
    # small: generations seal and the oldest drop
    return fed(DedupeMemory(capacity=48, generation_size=16), _run_dedupe)


def _step_dedupe(m: DedupeMemory, r: Row) -> Any:
    seen = (r["trajectory_id"] in m)
    m.add(r["trajectory_id"])
    return seen


_run_dedupe = feeder(_step_dedupe)


def _partition() -> PartitionState:
    st = PartitionState.empty("traj", 0, CFG)
    st.admin_offsets[0] = 3
    _run_partition(st, build_rows())
    return st


def _run_partition(st: PartitionState, rows: list[Row]) -> list[Any]:
    """What the daemon does with each record: duplicates skipped, invalid ones counted, admin replays refused."""
    out: list[Any] = []
    for i, r in enumerate(rows):
        t = trajectory(r)
        if i % 13 == 5:
            out.append(st.count_invalid(t.router_id))
        elif t.trajectory_id in st.dedupe:
            out.append("duplicate")
        else:
            out.append(st.learner(t.router_id, CFG).observe(t))
            st.dedupe.add(t.trajectory_id)
        if i % 7 == 0:
            out.append(st.remember_request(f"req-{i % 21}"))
        st.next_offset = (st.next_offset or 0) + 1
    return out


def _via_checkpoint(st: PartitionState) -> PartitionState:
    """The daemon's own round trip: a checkpoint generation written to disk and read back."""
    with tempfile.TemporaryDirectory() as tmp:
        store = CheckpointStore(tmp, "group")
        return CheckpointStore.read(store.write(st), CFG)


# -- the classes under the checks ---------------------------------------------------------------

SPECS: list[Spec] = [
    Spec("LoggedItem", lambda: logged_item(build_rows()[0]), LoggedItem.to_state,
         via_json(LoggedItem.to_state, LoggedItem.from_state)),
    Spec("BenchmarkWindow", _window, BenchmarkWindow.to_state,
         via_json(BenchmarkWindow.to_state, BenchmarkWindow.from_state), _run_window),
    Spec("CaseIndex", _case_index, CaseIndex.to_state, via_json(CaseIndex.to_state, CaseIndex.from_state),
         _run_case_index),
    Spec("LearnedRoutes", _learned_routes, _save_learned_routes,
         via_json(_save_learned_routes, lambda s: LearnedRoutes.from_state(s[0], _task_keys(), s[1])),
         _run_learned_routes),
    Spec("RouteModel", _route_model, RouteModel.to_state, via_json(RouteModel.to_state, RouteModel.from_state),
         _run_route_model, clone=RouteModel.copy),
    Spec("RouteModel.numbers", _route_model_numbers, RouteModel.to_state,
         via_json(RouteModel.to_state, RouteModel.from_state), _run_route_model_numbers, clone=RouteModel.copy),
    Spec("NumberPart", _number_part, NumberPart.to_state, via_json(NumberPart.to_state, NumberPart.from_state),
         _run_number_part, clone=NumberPart.copy),
    Spec("SharedPart", _shared_part, SharedPart.to_state, via_json(SharedPart.to_state, SharedPart.from_state),
         _run_shared_part, clone=SharedPart.copy),
    Spec("SharedWeight", _shared_weight, SharedWeight.to_state,
         via_json(SharedWeight.to_state, SharedWeight.from_state), _run_shared_weight, clone=SharedWeight.copy),
    Spec("StackingPool", _stacking_pool, StackingPool.to_state,
         via_json(StackingPool.to_state, StackingPool.from_state), _run_stacking_pool, clone=StackingPool.copy),
    Spec("NumberScales", _number_scales, NumberScales.to_state,
         via_json(NumberScales.to_state, NumberScales.from_state), _run_number_scales, clone=NumberScales.copy),
    Spec("Router", _router, Router.export_state, via_json(Router.export_state, Router.from_state), _run_router,
         clone=Router.clone),
    Spec("Router.bytes", _router, Router.to_bytes, lambda r: Router.from_bytes(r.to_bytes()), _run_router,
         clone=Router.clone),
    Spec("Moments", _moments, Moments.to_state, via_json(Moments.to_state, Moments.from_state), _run_moments,
         clone=Moments.copy),
    Spec("OutcomeScale", _outcome_scale, OutcomeScale.to_state,
         via_json(OutcomeScale.to_state, OutcomeScale.from_state), _run_outcome_scale, clone=OutcomeScale.copy),
    Spec("OutcomeNoise", _outcome_noise, OutcomeNoise.to_state,
         via_json(OutcomeNoise.to_state, OutcomeNoise.from_state), _run_outcome_noise, clone=OutcomeNoise.copy),
    Spec("ProgressiveEvidence", _evidence, ProgressiveEvidence.to_state,
         via_json(ProgressiveEvidence.to_state, ProgressiveEvidence.from_state), _run_evidence,
         clone=ProgressiveEvidence.copy),
    Spec("PromotionGuard", _guard, PromotionGuard.to_state,
         via_json(PromotionGuard.to_state, PromotionGuard.from_state), _run_guard),
    Spec("RouterLearner", _learner, RouterLearner.to_state,
         via_json(RouterLearner.to_state, lambda s: RouterLearner.from_state(s, CFG)), _run_learner),
    Spec("RouterLearner.portfolio", _portfolio_learner, RouterLearner.to_state,
         via_json(RouterLearner.to_state, lambda s: RouterLearner.from_state(s, PORTFOLIO_CFG)),
         _run_portfolio_learner),
    Spec("RouterLearner.untyped", _untyped_learner, RouterLearner.to_state,
         via_json(RouterLearner.to_state, lambda s: RouterLearner.from_state(s, PORTFOLIO_CFG)),
         _run_untyped_learner),
    Spec("TextGroups", _text_groups, TextGroups.to_state, via_json(TextGroups.to_state, TextGroups.from_state),
         _run_text_groups, clone=TextGroups.copy),
    Spec("Member", _member, _member_state, via_json(_member_state, _member_from_state), _run_member),
    Spec("Prices", lambda: Prices(0.125, 2.5), Prices.to_state, via_json(Prices.to_state, Prices.from_state)),
    Spec("Mark", _mark, Mark.to_state, via_json(Mark.to_state, Mark.from_state)),
    Spec("Repricer", _repricer, Repricer.to_state, via_json(Repricer.to_state, lambda s: Repricer.of(CFG, s)),
         _run_repricer),
    Spec("DedupeMemory", _dedupe, DedupeMemory.to_arrays,
         lambda m: DedupeMemory.from_arrays(_npz(m.to_arrays()), m.capacity, m.generation_size), _run_dedupe),
    Spec("PartitionState", _partition, PartitionState.to_payload, _via_checkpoint, _run_partition),
]
