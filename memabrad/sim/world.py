"""The hidden world behind the simulator: what each route is really worth for each task.

A learner only ever sees logged trajectories; tests need the truth to check it against.
The world is a pure function of what a task dict shows (input text, task type and the
``history_sessions`` feature) plus a fixed world salt, so the expected outcome of any
generated task can be recomputed later from the task alone, in any process.

Value depends on the task type *and* on words in the text (freshness words favour web
search, recall words favour episodic memory, code favours the code tool, vague inputs
favour clarifying), so a learner that reads words beats a rule keyed on task type alone.
Some distinct texts also carry a hidden "quirk" (the route their words point to fails for
them and a runner-up shines); since users repeat themselves, a case index keyed on text
can learn it.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from memabrad.sim.vocab import TASK_GENERATORS

DEFAULT_ROUTES: tuple[str, ...] = (
    "direct",
    "memory.episodic",
    "memory.semantic",
    "tool.web_search",
    "tool.code",
    "clarify",
)
TASK_TYPES: tuple[str, ...] = ("qa", "coding", "chitchat", "research", "recall", "ambiguous")

# Share of fresh (non-repeated) tasks per type.
TYPE_WEIGHTS: dict[str, float] = {
    "qa": 0.22,
    "coding": 0.18,
    "chitchat": 0.13,
    "research": 0.17,
    "recall": 0.14,
    "ambiguous": 0.16,
}
REPEAT_PROBABILITY = 0.3  # share of tasks drawn from the popular pool (users repeat themselves)
POOL_SIZE = 400
NEAR_DUPLICATE_PROBABILITY = 0.15  # of repeats, share reworded slightly (case, punctuation, filler)
NEW_USER_PROBABILITY = 0.15  # history_sessions == 0: nothing for episodic memory to recall
MEAN_HISTORY_SESSIONS = 12.0
QUIRK_PROBABILITY = 0.25  # share of distinct texts with a hidden route quirk
QUIRK_BONUS = 0.15
QUIRK_PENALTY = 0.30

_DIRECT, _EPISODIC, _SEMANTIC, _WEB, _CODE, _CLARIFY = range(6)
_ROUTE_INDEX: dict[str, int] = {r: i for i, r in enumerate(DEFAULT_ROUTES)}

# Success-conditional quality per (task type, route), in DEFAULT_ROUTES order.
_BASE_QUALITY: dict[str, tuple[float, ...]] = {
    "qa": (0.65, 0.27, 0.55, 0.53, 0.20, 0.33),
    "coding": (0.51, 0.27, 0.47, 0.39, 0.57, 0.33),
    "chitchat": (0.77, 0.47, 0.37, 0.25, 0.13, 0.41),
    "research": (0.39, 0.23, 0.61, 0.50, 0.20, 0.33),
    "recall": (0.31, 0.51, 0.47, 0.19, 0.13, 0.47),
    "ambiguous": (0.50, 0.39, 0.33, 0.29, 0.19, 0.59),
}
_GENERIC_QUALITY: tuple[float, ...] = (0.52, 0.36, 0.48, 0.36, 0.29, 0.44)

_BASE_ERROR: tuple[float, ...] = (0.025, 0.045, 0.04, 0.085, 0.075, 0.02)
_BASE_LATENCY: tuple[float, ...] = (380.0, 520.0, 700.0, 1850.0, 1450.0, 160.0)
LATENCY_SIGMA = 0.35  # lognormal shape of observed latency
REWARD_CONCENTRATION = 6.0  # Beta(q*k, (1-q)*k) noise around the success quality

# Word signals. Matching is on lowercase text with word boundaries.
_SIGNAL_PATTERNS: dict[str, str] = {
    "episodic": r"yesterday|last time|earlier|remember|remind me|we discussed|we decided|you told me"
    r"|told you|left off|previous session|before|i mentioned|my notes|again|our last",
    "fresh": r"latest|news|price|prices|today|current|currently|this week|recent|recently|stock"
    r"|weather|score|tonight|right now|released",
    "code": r"def|function|bug|debug|traceback|compile|regex|script|query|refactor|unit test|class"
    r"|keyerror|stack trace|segfault|python|sql|javascript|rust|bash|typescript|golang",
    "knowledge": r"documentation|docs|handbook|policy|history of|overview|difference between|definition"
    r"|according to|reading list|literature|sources|style guide|background brief",
    "concept": r"explain|what is|how does|why does|describe|in simple terms",
    "vague": r"it|this|that|thing|stuff|something|usual|other one|same|whatever|hmm",
}
_SIGNAL_RES: dict[str, re.Pattern[str]] = {
    name: re.compile(r"\b(?:" + pat + r")\b") for name, pat in _SIGNAL_PATTERNS.items()
}
_WORD = re.compile(r"[a-z0-9]+")
_FILLER = frozenset({"please", "pls", "thanks", "thank", "you", "hey", "ok", "so", "um"})


class ExpectedOutcome(NamedTuple):
    """Analytic expectation of one route on one context: what estimators should recover."""

    reward: float
    error_rate: float
    latency_ms: float


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the world reads from a task's text and type (cached: texts repeat a lot)."""

    text: str
    task_type: str
    tokens: int
    has_code: bool
    signals: frozenset[str]
    quality: tuple[float, ...]
    error: tuple[float, ...]
    latency: tuple[float, ...]


class Context(NamedTuple):
    """Everything the world needs about a task; built from observable task fields only."""

    analysis: Analysis
    history_sessions: int

    @property
    def text(self) -> str:
        return self.analysis.text

    @property
    def task_type(self) -> str:
        return self.analysis.task_type

    @property
    def signals(self) -> frozenset[str]:
        return self.analysis.signals

    @property
    def tokens(self) -> int:
        return self.analysis.tokens

    @property
    def has_code(self) -> bool:
        return self.analysis.has_code


def _cumulative(weights: Sequence[float]) -> list[float]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out


def _reword(text: str, rng: random.Random) -> str:
    """A near-duplicate: same request, different casing, punctuation or filler."""
    k = rng.randrange(4)
    if k == 0:
        return text.lower()
    if k == 1:
        return text.rstrip("?.!") if text[-1:] in "?.!" else text + "?"
    if k == 2:
        return "please " + text[:1].lower() + text[1:]
    return text + " thanks"


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def normalized_key(text: str) -> str:
    """Text key shared by near-duplicates (case, punctuation, filler words ignored)."""
    return " ".join(w for w in _WORD.findall(text.lower()) if w not in _FILLER)


def has_code_in(text: str) -> bool:
    """Whether an input carries a code snippet (what the ``has_code`` feature reports)."""
    return "```" in text or "\n    " in text


def count_tokens(text: str) -> int:
    """Whitespace token count (what the ``tokens`` feature reports)."""
    return len(text.split())


class World:
    """The hidden reward model; ``seed`` salts per-text quirks and the repeated-task pool.

    ``quirk_probability=0`` gives a world whose values follow from type and words alone.
    """

    def __init__(self, seed: int = 0, quirk_probability: float = QUIRK_PROBABILITY) -> None:
        self.seed = seed
        self.quirk_probability = quirk_probability
        self._salt = f"memabrad-world:{seed}:".encode()
        self._analyze = lru_cache(maxsize=32768)(self._build_analysis)
        self._type_cum = _cumulative([TYPE_WEIGHTS[t] for t in TASK_TYPES])
        pool_rng = random.Random(f"memabrad-world:{seed}:pool")
        self.pool: tuple[tuple[str, str, tuple[str, ...]], ...] = tuple(
            self._fresh_task(pool_rng) for _ in range(POOL_SIZE)
        )
        self._pool_cum = _cumulative([1.0 / (rank + 5) for rank in range(POOL_SIZE)])

    # -- task distribution ----------------------------------------------------------------
    def _fresh_task(self, rng: random.Random) -> tuple[str, str, tuple[str, ...]]:
        task_type = TASK_TYPES[bisect.bisect_right(self._type_cum, rng.random() * self._type_cum[-1])]
        text, tags = TASK_GENERATORS[task_type](rng)
        return text, task_type, tuple(tags)

    def sample_task(self, rng: random.Random) -> tuple[str, str, tuple[str, ...], int]:
        """Draw (input, task_type, tags, history_sessions) from the workload distribution."""
        if rng.random() < REPEAT_PROBABILITY:
            i = bisect.bisect_right(self._pool_cum, rng.random() * self._pool_cum[-1])
            text, task_type, tags = self.pool[min(i, POOL_SIZE - 1)]
            if rng.random() < NEAR_DUPLICATE_PROBABILITY:
                text = _reword(text, rng)
        else:
            text, task_type, tags = self._fresh_task(rng)
        new_user = rng.random() < NEW_USER_PROBABILITY
        history = 0 if new_user else min(200, 1 + int(rng.expovariate(1.0 / MEAN_HISTORY_SESSIONS)))
        return text, task_type, tags, history

    # -- contexts -------------------------------------------------------------------------
    def context(self, text: str, task_type: str | None, history_sessions: int = 5) -> Context:
        """The context of an observable task (the text analysis is cached)."""
        return Context(self._analyze(text, task_type or ""), int(history_sessions))

    def context_of_task(self, task: Mapping[str, Any]) -> Context:
        """Recover the context from a trajectory's ``task`` object (dict)."""
        features = task.get("features") or {}
        history = features.get("history_sessions", 5)
        return self.context(str(task["input"]), task.get("task_type"), int(history))

    def _apply_quirk(self, text: str, q: list[float]) -> None:
        """Per-text hidden quirk, stable across processes: for some texts the route the words
        point to fails (say the search returns junk for that query) and a runner-up shines.

        Only experience with the very text reveals it, which is what a case index is for.
        """
        digest = hashlib.blake2b(self._salt + normalized_key(text).encode(), digest_size=8).digest()
        if int.from_bytes(digest[:4], "big") / 2**32 >= self.quirk_probability:
            return
        ranked = sorted(range(len(q)), key=lambda i: -q[i])
        q[ranked[0]] -= QUIRK_PENALTY
        q[ranked[1 + digest[4] % 2]] += QUIRK_BONUS

    def _build_analysis(self, text: str, task_type: str) -> Analysis:
        """Text-dependent part of a context; ``_profile`` adds the history effects."""
        lower = text.lower()
        n_tokens = count_tokens(text)
        code = has_code_in(text)
        signals = {name for name, rx in _SIGNAL_RES.items() if rx.search(lower)}
        vague_word = "vague" in signals
        signals.discard("vague")
        if code:
            signals.add("code")
        if task_type != "chitchat":
            short = n_tokens <= 5
            if (short and (vague_word or task_type in ("ambiguous", ""))) or (vague_word and n_tokens <= 7):
                signals.add("vague")
            elif len(signals - {"concept"}) >= 2 and n_tokens <= 6:
                signals.add("vague")  # short inputs mixing vocabularies are unclear too

        q = list(_BASE_QUALITY.get(task_type, _GENERIC_QUALITY))
        err = list(_BASE_ERROR)
        lat = list(_BASE_LATENCY)

        if "episodic" in signals:
            q[_EPISODIC] += 0.34
            q[_DIRECT] -= 0.12
            q[_WEB] -= 0.10
        if "fresh" in signals:
            q[_WEB] += 0.38
            q[_SEMANTIC] -= 0.16
            q[_DIRECT] -= 0.18
            q[_EPISODIC] -= 0.08
            err[_WEB] += 0.02
            lat[_WEB] += 250.0
        if "code" in signals:
            q[_CODE] += 0.30 if code else 0.12
            q[_DIRECT] -= 0.04
            if code:
                q[_SEMANTIC] -= 0.10
                lat[_CODE] += 350.0
        if "knowledge" in signals:
            q[_SEMANTIC] += 0.25
        if "concept" in signals and not code:
            q[_DIRECT] += 0.08
            q[_CODE] -= 0.22
        if "vague" in signals:
            q = [v - 0.12 for v in q]
            q[_CLARIFY] += 0.40
        if n_tokens > 40:
            q[_DIRECT] -= 0.08
            q[_CLARIFY] -= 0.10
        if not code:
            err[_CODE] += 0.04  # nothing concrete to run

        self._apply_quirk(text, q)

        lat[_DIRECT] += 7.0 * n_tokens
        lat[_SEMANTIC] += 3.0 * n_tokens
        lat[_CLARIFY] += 2.0 * n_tokens

        return Analysis(
            text=text,
            task_type=task_type,
            tokens=n_tokens,
            has_code=code,
            signals=frozenset(signals),
            quality=tuple(_clip(v, 0.02, 0.97) for v in q),
            error=tuple(_clip(v, 0.02, 0.15) for v in err),
            latency=tuple(_clip(v, 100.0, 3000.0) for v in lat),
        )

    # -- outcomes -------------------------------------------------------------------------
    def _profile(self, context: Context, route: str) -> tuple[float, float, float]:
        """(success quality, error rate, mean latency) of a route, also for unknown routes."""
        i = _ROUTE_INDEX.get(route)
        if i is None:
            h = hashlib.blake2b(self._salt + route.encode(), digest_size=4).digest()
            return 0.15 + 0.3 * h[0] / 255, 0.03 + 0.1 * h[1] / 255, 300.0 + 2000.0 * h[2] / 255
        a = context.analysis
        q, e, lat = a.quality[i], a.error[i], a.latency[i]
        history = context.history_sessions
        if i == _EPISODIC:
            if history == 0:
                # New user: nothing to recall, and episodic lookups fail more often.
                q = min(q, 0.10)
                e = min(e + 0.05, 0.15)
            elif history >= 20:
                q = min(q + 0.06, 0.97)
            lat = min(lat + 6.0 * min(history, 60), 3000.0)
        elif i == _CLARIFY and history == 0 and a.task_type == "recall":
            q = min(q + 0.15, 0.97)
        return q, e, lat

    def expected_outcome(self, context: Context, route: str) -> ExpectedOutcome:
        """Exact expectation (no sampling): errors score 0, so reward = (1 - e) * quality."""
        q, e, lat = self._profile(context, route)
        return ExpectedOutcome((1.0 - e) * q, e, lat)

    def sample_outcome(self, context: Context, route: str, rng: random.Random) -> tuple[float, bool, float]:
        """One observed (reward, error, latency_ms); unbiased for ``expected_outcome``.

        Reward is 0 on error, else Beta-distributed with mean ``quality``; latency is
        lognormal with mean exactly the route's mean latency.
        """
        q, e, lat = self._profile(context, route)
        error = rng.random() < e
        if error:
            reward = 0.0
        else:
            k = REWARD_CONCENTRATION
            reward = rng.betavariate(q * k, (1.0 - q) * k)
        latency = rng.lognormvariate(math.log(lat) - 0.5 * LATENCY_SIGMA**2, LATENCY_SIGMA)
        return reward, error, latency

    def best_route(self, context: Context, candidates: Sequence[str]) -> str:
        """The candidate with the highest expected reward (first one wins ties)."""
        best, best_r = candidates[0], -1.0
        for route in candidates:
            r = self.expected_outcome(context, route).reward
            if r > best_r:
                best, best_r = route, r
        return best


_DEFAULT_WORLD: World | None = None


def default_world() -> World:
    """The shared world used when none is passed (seed 0)."""
    global _DEFAULT_WORLD
    if _DEFAULT_WORLD is None:
        _DEFAULT_WORLD = World(0)
    return _DEFAULT_WORLD


def expected_outcome(context: Context, route: str, world: World | None = None) -> ExpectedOutcome:
    """Module-level shortcut for ``World.expected_outcome``."""
    return (world or default_world()).expected_outcome(context, route)


def sample_outcome(
    context: Context, route: str, rng: random.Random, world: World | None = None
) -> tuple[float, bool, float]:
    """Module-level shortcut for ``World.sample_outcome``."""
    return (world or default_world()).sample_outcome(context, route, rng)


def expected_outcome_for_task(task: Mapping[str, Any], route: str, world: World | None = None) -> ExpectedOutcome:
    """The true expected outcome of ``route`` for a generated trajectory's ``task`` dict.

    Works from the observable fields alone, so estimator tests can score any policy on
    the very contexts that were logged.
    """
    w = world or default_world()
    return w.expected_outcome(w.context_of_task(task), route)
