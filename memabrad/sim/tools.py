"""A tool-desk workload: short untyped requests, one general model and fourteen tools, each tried rarely.

An assistant answers everything with a general LLM and could instead call a tool: weather, stock
quotes, a calculator, a calendar, email, maps, SQL, code... Each tool is right for one intent and
useless for the rest, the general model is fair at everything. Requests are short, written many
ways (templates with names, places, tickers, numbers) and carry no ``task_type``, so only the words
tell a route which requests are its own. Logged as agents start out: 70% to the general model and
30% uniform over all fifteen routes, so a tool sees about 2% of the traffic and its own intent in
about a twelfth of that — a route learns its requests from a handful of events, where a router's
step size and shrinkage show most.

Built after every default had been set, as a check on traffic none of the other workloads is like;
rewards are Bernoulli with the exact success probability ``expected_reward``, so true values are exact.

>>> rows = ToolsWorkload(seed=1).generate(2)
>>> [r["trajectory_id"] for r in rows], len(ROUTES)
(['tools-k1-00000000', 'tools-k1-00000001'], 15)
>>> expected_reward("weather", "tool/weather"), expected_reward("weather", "llm/general")
(0.9, 0.3)
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from memabrad.sim.rows import Clock, RowStream, trajectory_row

GENERAL = "llm/general"
# intent -> (request templates, its tool or None, the general model's success, the tool's success)
INTENTS: dict[str, tuple[tuple[str, ...], str | None, float, float]] = {
    "weather": (("what's the weather in {city}", "will it rain in {city} {day}", "forecast for {city} {day} please",
                 "is it cold in {city}"), "tool/weather", 0.3, 0.9),
    "stock": (("price of {tick} stock", "how is {tick} trading {day}", "quote for {tick}", "{tick} share price now"),
              "tool/stocks", 0.25, 0.85),
    "translate": (("translate '{word}' to {lang}", "how do you say {word} in {lang}", "{word} in {lang}?",
                   "give me the {lang} word for {word}"), "tool/translate", 0.75, 0.7),
    "calc": (("what is {n} times {m}", "compute {n} plus {m}", "{n} divided by {m}", "square root of {n}"),
             "tool/calculator", 0.6, 0.95),
    "calendar": (("book a meeting with {name} {day}", "schedule call with {name} at {n}",
                  "move my {day} meeting with {name}", "cancel the meeting with {name}"), "tool/calendar", 0.1, 0.85),
    "email": (("email {name} about the report", "send a note to {name} saying thanks", "reply to {name}'s last email",
               "draft an email to {name}"), "tool/email", 0.2, 0.8),
    "search": (("who won the {word} award in {year}", "latest news about {tick}", "find articles on {word}",
                "when did {name} become ceo"), "tool/search", 0.45, 0.75),
    "maps": (("directions to {city} airport", "how far is {city} from here", "route to {city} avoiding tolls",
              "nearest gas station in {city}"), "tool/maps", 0.2, 0.9),
    "sql": (("how many orders did {name} place in {year}", "total revenue for {year}", "list customers in {city}",
             "top products sold in {day}"), "tool/sql", 0.05, 0.8),
    "code": (("fix this python error: {word}Error on line {n}", "write a function to sort {word}",
              "why does my loop print {n} twice", "refactor the {word} class"), "tool/code", 0.7, 0.6),
    "chitchat": (("hi how are you", "tell me a joke about {word}", "thanks that helped", "good morning {name}"),
                 None, 0.8, 0.0),
    "advice": (("should I learn {lang} or {word}", "how do I ask {name} for a raise", "tips for visiting {city}",
                "is it worth buying {tick} shares"), None, 0.7, 0.0),
}
_INTENT_NAMES = tuple(sorted(INTENTS))  # drawn from per request
WRONG_TOOL = 0.02  # a tool asked for what it does not do
SLOTS: dict[str, tuple[str, ...]] = {
    "city": ("paris", "tokyo", "austin", "lagos", "lima", "oslo", "delhi", "perth"),
    "day": ("today", "tomorrow", "monday", "friday", "next week"),
    "tick": ("AAPL", "TSLA", "NVDA", "ACME", "IBM"),
    "word": ("apple", "freedom", "banana", "Value", "Index", "nobel", "oscar", "rust", "go"),
    "lang": ("french", "spanish", "japanese", "swahili"),
    "n": ("3", "7", "12", "42", "99", "250"), "m": ("2", "5", "8", "11"),
    "name": ("alice", "bob", "priya", "chen", "omar", "lena"), "year": ("2019", "2021", "2023", "2024"),
}
TOOLS = (*sorted(t for _, t, _, _ in INTENTS.values() if t), "tool/crm", "tool/files", "tool/payments", "tool/tickets")
ROUTES = (GENERAL, *TOOLS)
LOGGING_SHARE = 0.7  # to the general model; the rest uniform over every route
LATENCY_MS = 400.0
START = datetime(2026, 1, 1, tzinfo=UTC)


def expected_reward(intent: str, route: str) -> float:
    """The exact success probability of ``route`` on a request of ``intent``."""
    _, tool, general, own = INTENTS[intent]
    if route == GENERAL:
        return general
    return own if route == tool else WRONG_TOOL


def logging_probability(route: str) -> float:
    """The logging agent's exact propensity of ``route`` (every request offers every route)."""
    return (1.0 - LOGGING_SHARE) / len(ROUTES) + (LOGGING_SHARE if route == GENERAL else 0.0)


def sample_request(rng: random.Random) -> tuple[str, str]:
    """(request text, intent): a uniform intent, one of its templates, its slots filled."""
    intent = rng.choice(_INTENT_NAMES)
    template = rng.choice(INTENTS[intent][0])
    return template.format(**{k: rng.choice(v) for k, v in SLOTS.items()}), intent


class ToolsWorkload(RowStream):
    """Seeded stream of tool-desk trajectories (trajectory v1 dicts); independent streams for the requests
    and for the logging decisions and outcomes."""

    def __init__(self, seed: int = 0, router_id: str = "tools") -> None:
        self.seed = seed
        self.router_id = router_id
        self._tasks = random.Random(f"memabrad-tools:{seed}:tasks")
        self._log = random.Random(f"memabrad-tools:{seed}:log")
        self._index = 0
        self._clock = Clock(START)  # ten requests a second

    def next(self) -> dict[str, Any]:
        text, intent = sample_request(self._tasks)
        rng = self._log
        route = GENERAL if rng.random() < LOGGING_SHARE else ROUTES[rng.randrange(len(ROUTES))]
        reward = float(rng.random() < expected_reward(intent, route))
        i = self._index
        self._index += 1
        return trajectory_row(f"{self.router_id}-k{self.seed}-{i:08d}", self.router_id, self._clock.format(100 * i),
                              {"input": text}, list(ROUTES), route, round(logging_probability(route), 12), reward,
                              False, LATENCY_MS * (0.5 + rng.random()))

