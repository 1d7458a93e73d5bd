"""A hard routing workload: twelve priced LLMs, cost-aware reward, long shared prompts.

What makes it hard for a learned router, on purpose:

- **Twelve routes**, each an LLM with a per-call USD price (``PRICE_USD``); the reward is
  ``correct - LAMBDA * price`` with ``LAMBDA = 5`` reward units per USD (a fully correct answer
  is worth $0.20 of spend), so the most accurate model is rarely the best route.
- **Long inputs that look alike**: every task of a family opens with the same few-shot prompt
  (a preamble shared by all families, the family's instructions and worked examples: 290-370
  words, byte-identical across the family's tasks) and ends with a short task-specific part
  (15-35 words). Bag-of-words features and near-duplicate search see mostly the opening.
- **Five families**, two of them near chance for every model (``forecast``: binary questions
  about the future, ~0.5; ``puzzle``: four-option trick riddles, ~0.25-0.3), where the only
  thing worth learning is "do not pay for a big model".
- **A task-level signal**: ``code`` and ``math`` tasks are ``easy`` or ``hard``, told by the
  wording of the short end only (scope of the bug, kind of problem); the best route differs
  by level (a code specialist for code, a reasoning model for easy math, the largest models
  for hard math).
- **A skewed logging policy**: 70% to one mid-price route (``llm/mid``), 30% uniform over all
  twelve, with exact propensities (0.725 for ``llm/mid``, 0.025 for each other route).

Ground truth is exact: ``ACCURACY[(family, level)]`` is each route's probability of a correct
answer and ``expected_reward`` follows from it and the price, so every policy's true value on
a fixed sample of contexts is an exact average (``HardWorkload.true_value``), and a policy
keyed by (family, level) has an exact population value (``population_value``).

>>> w = HardWorkload(seed=1)
>>> rows = w.generate(2)
>>> [r["trajectory_id"] for r in rows]
['hard-k1-00000000', 'hard-k1-00000001']
>>> len(ROUTES), len(FAMILIES)
(12, 5)
>>> round(sum(w.logging_probabilities(list(ROUTES)).values()), 12)
1.0
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

from memabrad.sim.rows import trajectory_row

LAMBDA = 5.0  # reward units per USD: reward = correct - LAMBDA * price
LOGGING_ROUTE = "llm/mid"
EXPLORE = 0.3

ROUTES: tuple[str, ...] = (
    "llm/nano", "llm/micro", "llm/mini", "llm/small", "llm/base", "llm/mid",
    "llm/coder", "llm/reasoner", "llm/large", "llm/xl", "llm/ultra", "llm/max",
)
PRICE_USD: dict[str, float] = {
    "llm/nano": 0.0002, "llm/micro": 0.0004, "llm/mini": 0.0008, "llm/small": 0.0015,
    "llm/base": 0.003, "llm/mid": 0.006, "llm/coder": 0.008, "llm/reasoner": 0.02,
    "llm/large": 0.03, "llm/xl": 0.05, "llm/ultra": 0.08, "llm/max": 0.12,
}
LATENCY_MS: dict[str, float] = {
    "llm/nano": 350.0, "llm/micro": 400.0, "llm/mini": 450.0, "llm/small": 550.0,
    "llm/base": 700.0, "llm/mid": 900.0, "llm/coder": 1000.0, "llm/reasoner": 2600.0,
    "llm/large": 1500.0, "llm/xl": 1900.0, "llm/ultra": 2400.0, "llm/max": 3000.0,
}
ERROR_RATE: dict[str, float] = {r: 0.02 if i < 4 else 0.01 for i, r in enumerate(ROUTES)}

# (family, level) -> share of tasks; levels are told apart by the task's short end only.
MIX: dict[tuple[str, str], float] = {
    ("extract", "-"): 0.22,
    ("code", "easy"): 0.13,
    ("code", "hard"): 0.12,
    ("math", "easy"): 0.11,
    ("math", "hard"): 0.10,
    ("forecast", "-"): 0.16,
    ("puzzle", "-"): 0.16,
}
FAMILIES: tuple[str, ...] = ("extract", "code", "math", "forecast", "puzzle")

# Probability of a correct answer (errors included: an errored call is not correct), in ROUTES order.
ACCURACY: dict[tuple[str, str], tuple[float, ...]] = {
    #                 nano  micro mini  small base  mid   coder reas  large xl    ultra max
    ("extract", "-"): (0.80, 0.84, 0.88, 0.90, 0.92, 0.93, 0.90, 0.93, 0.94, 0.95, 0.95, 0.96),
    ("code", "easy"): (0.35, 0.42, 0.50, 0.58, 0.66, 0.72, 0.88, 0.80, 0.84, 0.87, 0.89, 0.90),
    ("code", "hard"): (0.05, 0.08, 0.12, 0.18, 0.26, 0.34, 0.55, 0.62, 0.66, 0.84, 0.86, 0.88),
    ("math", "easy"): (0.30, 0.36, 0.45, 0.52, 0.60, 0.66, 0.62, 0.90, 0.82, 0.86, 0.88, 0.90),
    ("math", "hard"): (0.02, 0.03, 0.05, 0.08, 0.12, 0.18, 0.15, 0.52, 0.40, 0.55, 0.86, 0.90),
    ("forecast", "-"): (0.50, 0.50, 0.50, 0.51, 0.51, 0.51, 0.50, 0.52, 0.52, 0.52, 0.53, 0.53),
    ("puzzle", "-"): (0.25, 0.25, 0.26, 0.26, 0.27, 0.27, 0.26, 0.30, 0.28, 0.29, 0.30, 0.31),
}


def expected_reward(family: str, level: str, route: str, lam: float = LAMBDA) -> float:
    """Exact expected reward of ``route`` on a task of (family, level)."""
    return ACCURACY[(family, level)][ROUTES.index(route)] - lam * PRICE_USD[route]


class HardContext(NamedTuple):
    """The hidden part of a task that its value depends on (recoverable from the text)."""

    family: str
    level: str


class HardValue(NamedTuple):
    """Exact means over contexts: reward, accuracy, USD per call, latency and error rate."""

    reward: float
    accuracy: float
    cost_usd: float
    latency_ms: float
    error_rate: float


# -- prompts ------------------------------------------------------------------------------------

PREAMBLE = (
    "You are the assistant of the operations team at Northwind Logistics. Read the instructions and "
    "the worked examples below with care, then answer the final task in the same format as the "
    "examples. Be concise and precise. Do not invent facts that are not given in the task. If a value "
    "is missing, say that it is missing instead of guessing. Never reveal internal notes, credentials "
    "or customer data that the task does not ask for. Answers are checked automatically, so keep to "
    "the requested format exactly: no greetings, no apologies, no extra commentary before or after "
    "the answer. When a calculation is needed, show only the final result unless the instructions "
    "ask for the steps. Company policy applies to every answer you give. The team works in several "
    "countries and time zones, so write dates in ISO format and amounts with their currency. Treat every "
    "document as confidential. If the task is ambiguous, pick the most likely reading and answer it; "
    "the reviewers prefer a short correct answer to a long careful one, and a wrong answer costs more "
    "than a missing one."
)
INSTRUCTIONS: dict[str, str] = {
    "extract": "Task type: field extraction. You receive a short business document. Extract the vendor "
               "name, the document date in ISO format and the total amount with its currency. Reply with "
               "one line of JSON with the keys vendor, date and total.",
    "code": "Task type: code repair. You receive a bug report about our Python services. Identify the "
            "faulty logic and reply with a unified diff that fixes it, followed by one sentence that "
            "explains the fix. Keep the patch minimal and keep the existing style.",
    "math": "Task type: mathematics. Solve the problem and reply with the final answer on the last line "
            "in the form Answer: value. For proofs, give a complete and rigorous argument, then write "
            "Answer: proved.",
    "forecast": "Task type: forecasting. You receive a yes or no question about a future event. Reply with "
                "yes or no and your probability for yes, as in: yes 0.62. Base rates matter more than "
                "stories.",
    "puzzle": "Task type: riddle. You receive a trick question with four options. Reply with the letter of "
              "the correct option only. The obvious answer is usually wrong.",
}
DELIMITER = "### Final task"

_VENDORS = ("Acme Freight", "Blue Harbor Supplies", "Cedar Office Goods", "Delta Packaging", "Evergreen Fuel",
            "Fjord Shipping", "Granite Tools", "Helios Energy", "Iris Catering", "Juniper Print")
_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK")
_DOCS = ("invoice", "receipt", "credit note", "purchase order", "delivery note")
_COMPONENTS = ("billing service", "route planner", "warehouse sync", "label printer", "customer portal",
               "fleet tracker", "pricing engine", "notification worker")
_SYMPTOMS = ("wrong totals", "a timeout", "duplicate rows", "a crash on start", "stale data", "an empty page")
# Level markers of code tasks: the scope of the bug (disjoint from the worked examples' wording).
CODE_SCOPES: dict[str, tuple[str, ...]] = {
    "easy": ("a typo in one variable name", "an off by one error in a single loop",
             "a missing return in a small helper", "a wrong comparison operator in one condition"),
    "hard": ("a race condition between two worker threads", "a deadlock when the retry path takes the lock again",
             "inconsistent state after a partial schema migration", "a memory leak shared by the cache and the "
             "scheduler"),
}
_OBJECTS = ("crates", "pallets", "parcels", "drivers", "trucks", "orders", "labels")
MATH_TEMPLATES: dict[str, tuple[str, ...]] = {
    "easy": ("A depot ships {a} {obj} each day for {b} days. How many {obj} does it ship in total?",
             "Each truck carries {a} {obj}. How many trucks are needed for {c} {obj}?",
             "A route is {a} km long and a van drives it {b} times. What distance does it cover?"),
    "hard": ("Prove that for every integer n greater than {b}, the number n^{a} - n is divisible by {a}.",
             "Find all pairs of positive integers x and y with x^2 - {a}y^2 = 1 and x below {c}, and prove "
             "the list is complete.",
             "Determine the number of lattice paths from (0,0) to ({a},{b}) that never cross the diagonal, "
             "with a bijective proof."),
}
_ENTITIES = ("the central bank", "the port authority", "the largest rival carrier", "the city council",
             "the national rail operator", "the fuel index", "the dockworkers union")
_EVENTS = ("raise interest rates", "announce a strike", "open a new terminal", "cut its prices",
           "report record volumes", "change the toll scheme")
_MONTHS = ("March", "April", "May", "June", "July", "August", "September")
_RIDDLE_WORDS = ("shadow", "echo", "map", "key", "clock", "candle", "river", "mirror", "coin", "bridge", "stamp",
                 "anchor", "compass", "ledger", "lantern", "ticket")


def _extract_task(rng: random.Random) -> str:
    return (f"{rng.choice(_DOCS).capitalize()} {rng.randrange(10000, 99999)} from {rng.choice(_VENDORS)}, "
            f"issued on {rng.randrange(1, 29)} {rng.choice(_MONTHS)} 2025, for {rng.randrange(1, 40)} items, "
            f"total due {rng.randrange(50, 9000)}.{rng.randrange(100):02d} {rng.choice(_CURRENCIES)}.")


def _code_task(rng: random.Random, level: str) -> str:
    return (f"Bug report NW-{rng.randrange(1000, 9999)}: the {rng.choice(_COMPONENTS)} shows "
            f"{rng.choice(_SYMPTOMS)}. Suspected cause: {rng.choice(CODE_SCOPES[level])}. Send the patch.")


def _math_task(rng: random.Random, level: str) -> str:
    a, b, c = rng.randrange(3, 12), rng.randrange(4, 30), rng.randrange(40, 400)
    return rng.choice(MATH_TEMPLATES[level]).format(a=a, b=b, c=c, obj=rng.choice(_OBJECTS))


def _forecast_task(rng: random.Random) -> str:
    return (f"Will {rng.choice(_ENTITIES)} {rng.choice(_EVENTS)} before the end of {rng.choice(_MONTHS)} "
            f"{rng.choice((2026, 2027))}?")


def _puzzle_task(rng: random.Random) -> str:
    w = rng.sample(_RIDDLE_WORDS, 5)
    return (f"Riddle {rng.randrange(100, 999)}: I have a {w[0]} but never use it, and I follow you without "
            f"a sound. What am I? (A) {w[1]} (B) {w[2]} (C) {w[3]} (D) {w[4]}")


_TASKS: dict[str, Callable[[random.Random, str], str]] = {
    "extract": lambda rng, _level: _extract_task(rng),
    "code": _code_task,
    "math": _math_task,
    "forecast": lambda rng, _level: _forecast_task(rng),
    "puzzle": lambda rng, _level: _puzzle_task(rng),
}

_EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "extract": (
        ("Invoice 48213 from Polar Paper Mills, issued on 3 February 2025, for 12 items, total due 1,204.50 EUR.",
         '{"vendor": "Polar Paper Mills", "date": "2025-02-03", "total": "1204.50 EUR"}'),
        ("Receipt 11870 from Harbor Coffee, issued on 19 January 2025, for 3 items, total due 18.20 USD.",
         '{"vendor": "Harbor Coffee", "date": "2025-01-19", "total": "18.20 USD"}'),
        ("Credit note 50921 from Summit Tyres, issued on 27 December 2024, for 4 items, total due 310.00 GBP.",
         '{"vendor": "Summit Tyres", "date": "2024-12-27", "total": "310.00 GBP"}'),
        ("Delivery note 77310 from Oakline Timber, issued on 8 November 2024, for 40 items, no total given.",
         '{"vendor": "Oakline Timber", "date": "2024-11-08", "total": "missing"}'),
    ),
    "code": (
        ("Bug report NW-1042: the invoice exporter writes dates in local time instead of UTC.",
         "--- a/export.py +++ b/export.py - ts = datetime.now() + ts = datetime.now(UTC). Use aware UTC "
         "timestamps."),
        ("Bug report NW-2210: the stock counter forgets items returned after midnight.",
         "--- a/stock.py +++ b/stock.py - if returned.date() == today: + if returned >= last_count: Count "
         "returns since the last count, not since midnight."),
        ("Bug report NW-3307: the address parser drops the house number when it has a letter suffix.",
         "--- a/address.py +++ b/address.py - r'(\\d+)' + r'(\\d+[a-z]?)' Accept a letter suffix."),
        ("Bug report NW-4415: the discount rule applies twice to bundled orders.",
         "--- a/discount.py +++ b/discount.py - for item in order.items: + for item in order.unbundled(): "
         "Apply discounts once per unbundled item."),
    ),
    "math": (
        ("A warehouse holds 120 boxes and receives 35 more each week. After 4 weeks, how many boxes are there?",
         "120 + 4 * 35 = 260. Answer: 260"),
        ("Show that the sum of two odd integers is even.",
         "Write them as 2a + 1 and 2b + 1; the sum is 2(a + b + 1), which is even. Answer: proved"),
        ("A ferry crosses 18 km in 45 minutes. What is its speed in km per hour?",
         "18 / 0.75 = 24. Answer: 24"),
        ("Prove that there are infinitely many primes.",
         "Suppose finitely many, multiply them all and add one; the result has a prime factor outside the "
         "list, a contradiction. Answer: proved"),
    ),
    "forecast": (
        ("Will the harbour of Rotterdam close for a full day because of storms before the end of 2025?",
         "no 0.08"),
        ("Will diesel prices in Germany be higher next quarter than this quarter?", "yes 0.55"),
        ("Will our main customer renew the contract that expires in two months?", "yes 0.80"),
        ("Will a new competitor enter the Baltic freight market this year?", "no 0.30"),
    ),
    "puzzle": (
        ("What has keys but cannot open locks? (A) piano (B) door (C) safe (D) car", "A"),
        ("What gets wetter the more it dries? (A) sponge (B) towel (C) rain (D) soap", "B"),
        ("What can travel around the world while staying in a corner? (A) plane (B) stamp (C) letter (D) "
         "globe", "B"),
        ("What has a neck but no head? (A) bottle (B) shirt (C) giraffe (D) guitar", "A"),
    ),
}


@cache
def opening(family: str) -> str:
    """The few-shot opening of a family: identical for every task of it, in every process."""
    parts = [PREAMBLE, "", INSTRUCTIONS[family], ""]
    for k, (question, answer) in enumerate(_EXAMPLES[family], 1):
        parts.append(f"Example {k}.\nTask: {question}\nAnswer: {answer}\n")
    return "\n".join(parts) + "\n" + DELIMITER + "\n"


_CODE_LEVEL = {p: lvl for lvl, ps in CODE_SCOPES.items() for p in ps}
_MATH_LEVEL = [(re.compile("^" + re.escape(t).replace(r"\{a\}", r"\d+").replace(r"\{b\}", r"\d+")
                           .replace(r"\{c\}", r"\d+").replace(r"\{obj\}", r"[a-z]+") + "$"), lvl)
               for lvl, ts in MATH_TEMPLATES.items() for t in ts]


def context_of_task(task: Mapping[str, Any]) -> HardContext:
    """Recover (family, level) from a task dict's text alone (raises on a foreign task)."""
    text = str(task["input"])
    head, sep, end = text.rpartition(DELIMITER + "\n")
    family = str(task.get("task_type") or "")
    if not sep or family not in INSTRUCTIONS or head + sep != opening(family):
        raise ValueError("not a hard-workload task")
    if family == "code":
        for phrase, lvl in _CODE_LEVEL.items():
            if phrase in end:
                return HardContext(family, lvl)
    elif family == "math":
        for rx, lvl in _MATH_LEVEL:
            if rx.match(end.strip()):
                return HardContext(family, lvl)
    else:
        return HardContext(family, "-")
    raise ValueError("cannot tell the level of a hard-workload task")


# -- the workload -------------------------------------------------------------------------------

Policy = Callable[[Mapping[str, Any], Sequence[str]], str]
_MIX_KEYS = tuple(MIX)
_MIX_CUM: tuple[float, ...] = tuple(sum(MIX[k] for k in _MIX_KEYS[: i + 1]) for i in range(len(_MIX_KEYS)))
_START = datetime(2026, 1, 1, tzinfo=UTC)


def sample_task(rng: random.Random) -> tuple[dict[str, Any], HardContext]:
    """Draw one task dict and its hidden context."""
    u = rng.random() * _MIX_CUM[-1]
    i = next((j for j, c in enumerate(_MIX_CUM) if u < c), len(_MIX_CUM) - 1)
    family, level = _MIX_KEYS[i]
    text = opening(family) + _TASKS[family](rng, level)
    return {"input": text, "task_type": family}, HardContext(family, level)


class HardWorkload:
    """Seeded stream of hard-workload trajectories (trajectory v1 dicts).

    Separate random streams drive contexts, logging decisions and outcomes, so the contexts
    of a seed do not depend on the logging policy and ``contexts(n)`` replays those logged.
    """

    def __init__(self, seed: int = 0, router_id: str = "hard", explore: float = EXPLORE,
                 logging_route: str = LOGGING_ROUTE, lam: float = LAMBDA) -> None:
        if logging_route not in ROUTES:
            raise ValueError(f"unknown logging route {logging_route!r}")
        if not 0.0 <= explore <= 1.0:
            raise ValueError("explore must be within [0, 1]")
        self.seed = seed
        self.router_id = router_id
        self.explore = explore
        self.logging_route = logging_route
        self.lam = lam
        self.routes = ROUTES
        self._contexts: dict[tuple[int, int], list[tuple[dict[str, Any], list[str], HardContext]]] = {}
        self.reset()

    def reset(self) -> None:
        self._ctx_rng = random.Random(f"memabrad-hard:{self.seed}:contexts")
        self._dec_rng = random.Random(f"memabrad-hard:{self.seed}:decisions")
        self._out_rng = random.Random(f"memabrad-hard:{self.seed}:outcomes")
        self._index = 0

    # -- truth ---------------------------------------------------------------------------
    def expected_reward(self, ctx: HardContext, route: str) -> float:
        return expected_reward(ctx.family, ctx.level, route, self.lam)

    def logging_probabilities(self, candidates: Sequence[str]) -> dict[str, float]:
        """The logging policy's exact distribution over ``candidates`` (sums to 1)."""
        share = self.explore / len(candidates)
        base = self.logging_route if self.logging_route in candidates else candidates[0]
        return {r: share + (1.0 - self.explore if r == base else 0.0) for r in candidates}

    def contexts(self, n: int, seed: int | None = None) -> list[tuple[dict[str, Any], list[str], HardContext]]:
        """The first ``n`` (task, candidates, context) of a seed's stream (this workload's seed if None).

        Cached per (n, seed): do not mutate the returned tasks.
        """
        key = (n, self.seed if seed is None else seed)
        out = self._contexts.get(key)
        if out is None:
            rng = random.Random(f"memabrad-hard:{key[1]}:contexts")
            out = []
            for _ in range(n):
                task, ctx = sample_task(rng)
                out.append((task, list(ROUTES), ctx))
            self._contexts = {key: out}  # keep one sample: they are large
        return out

    def _value(self, dist: Callable[[dict[str, Any], list[str]], Mapping[str, float]],
               contexts: Sequence[tuple[dict[str, Any], list[str], HardContext]]) -> HardValue:
        acc = [0.0] * 5
        for task, cands, ctx in contexts:
            row = ACCURACY[ctx]
            for route, p in dist(task, cands).items():
                a = row[ROUTES.index(route)]
                acc[0] += p * (a - self.lam * PRICE_USD[route])
                acc[1] += p * a
                acc[2] += p * PRICE_USD[route]
                acc[3] += p * LATENCY_MS[route]
                acc[4] += p * ERROR_RATE[route]
        n = len(contexts)
        return HardValue(*(v / n for v in acc))

    def true_value(self, policy: Policy, n_contexts: int = 5000, seed: int = 12345) -> HardValue:
        """Exact expected value of a deterministic policy, averaged over ``n_contexts`` sampled contexts."""
        return self._value(lambda t, c: {policy(t, c): 1.0}, self.contexts(n_contexts, seed))

    def true_value_of_logging(self, n_contexts: int = 5000, seed: int | None = None) -> HardValue:
        """Exact value of the logging policy on the same kind of context sample."""
        return self._value(lambda _t, c: self.logging_probabilities(c), self.contexts(n_contexts, seed))

    def population_value(self, choice: Mapping[tuple[str, str], str]) -> float:
        """Exact value under the task mix of a policy that picks ``choice[(family, level)]``."""
        return sum(w * self.expected_reward(HardContext(*k), choice[k]) for k, w in MIX.items())

    def oracle_choice(self) -> dict[tuple[str, str], str]:
        """The best route per (family, level)."""
        return {k: max(ROUTES, key=lambda r, k=k: self.expected_reward(HardContext(*k), r)) for k in MIX}

    def oracle_policy(self) -> Policy:
        """The per-(family, level) best route, read from the task text."""
        choice = self.oracle_choice()

        def oracle(task: Mapping[str, Any], candidates: Sequence[str]) -> str:
            ctx = context_of_task(task)
            best = choice[ctx]
            if best in candidates:
                return best
            return max(candidates, key=lambda r: self.expected_reward(ctx, r))

        return oracle

    def best_single_route(self) -> str:
        """The route with the highest population value when used for every task."""
        return max(ROUTES, key=lambda r: self.population_value(dict.fromkeys(MIX, r)))

    # -- the log -------------------------------------------------------------------------
    def next(self) -> dict[str, Any]:
        task, ctx = sample_task(self._ctx_rng)
        candidates = list(ROUTES)
        base = self.logging_route
        route = self._dec_rng.choice(candidates) if self._dec_rng.random() < self.explore else base
        propensity = self.logging_probabilities(candidates)[route]
        rng = self._out_rng
        e = ERROR_RATE[route]
        error = rng.random() < e
        correct = (not error) and rng.random() < ACCURACY[ctx][ROUTES.index(route)] / (1.0 - e)
        reward = (1.0 if correct else 0.0) - self.lam * PRICE_USD[route]
        latency = LATENCY_MS[route] * (0.6 + 0.8 * rng.random())
        i = self._index
        self._index += 1
        at = _START + timedelta(milliseconds=250 * i)
        return trajectory_row(f"{self.router_id}-k{self.seed}-{i:08d}", self.router_id,
                              at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z", task, candidates,
                              route, propensity, reward, error, latency)

    def iter_generate(self, n: int) -> Iterator[dict[str, Any]]:
        for _ in range(n):
            yield self.next()

    def generate(self, n: int) -> list[dict[str, Any]]:
        return [self.next() for _ in range(n)]
