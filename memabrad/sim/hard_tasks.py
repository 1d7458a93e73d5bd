"""The tasks of the hard workload (``hard.py``): five families in a fixed mix, their long shared
few-shot openings, the short task-specific ends, and reading a task's hidden context back from its text.

Every task of a family opens with the same prompt (``opening``: a preamble shared by all families,
the family's instructions and worked examples) and ends with a short part drawn here; for ``code``
and ``math`` that end alone tells the level (``easy`` or ``hard``).

>>> task, ctx = sample_task(random.Random(1))
>>> task["input"].startswith(opening(ctx.family)), context_of_task(task) == ctx
(True, True)
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, NamedTuple

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


class HardContext(NamedTuple):
    """The hidden part of a task that its value depends on (recoverable from the text)."""

    family: str
    level: str


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


# -- drawing tasks ------------------------------------------------------------------------------

_MIX_KEYS = tuple(MIX)
_MIX_CUM: tuple[float, ...] = tuple(sum(MIX[k] for k in _MIX_KEYS[: i + 1]) for i in range(len(_MIX_KEYS)))


def sample_task(rng: random.Random) -> tuple[dict[str, Any], HardContext]:
    """Draw one task dict and its hidden context."""
    u = rng.random() * _MIX_CUM[-1]
    i = next((j for j, c in enumerate(_MIX_CUM) if u < c), len(_MIX_CUM) - 1)
    family, level = _MIX_KEYS[i]
    text = opening(family) + _TASKS[family](rng, level)
    return {"input": text, "task_type": family}, HardContext(family, level)
