"""A repetitive support-desk workload: short requests from a few templates and a small vocabulary.

Real help-desk traffic repeats itself: a handful of request shapes ("reset my password for
the billing portal") over a small vocabulary. That is the worst case for anything whose
cost grows with how many similar texts it has seen (near-duplicate search, hash buckets),
so the ingest benchmark and the responsiveness test run on it beside the main simulator.

24 templates x slots from a vocabulary of under 200 words; 7 routes with a known
expected reward per (task type, route), so true policy values are exact.

>>> rows = HelpdeskWorkload(seed=1).generate(3)
>>> [r["trajectory_id"] for r in rows]
['helpdesk-h1-00000000', 'helpdesk-h1-00000001', 'helpdesk-h1-00000002']
>>> len(vocabulary()) <= 200 and len(TEMPLATES) <= 30
True
"""

from __future__ import annotations

import random
import re
from typing import Any

from memabrad.sim.rows import RowStream, trajectory_row

ROUTES = ("answer.direct", "memory.episodic", "memory.semantic", "tool.kb_search", "tool.ticket",
          "llm.small", "clarify")

SLOTS: dict[str, tuple[str, ...]] = {
    "app": ("billing portal", "vpn", "email", "laptop", "printer", "wifi", "calendar", "chat app"),
    "thing": ("password", "account", "invoice", "license", "badge", "phone", "monitor", "headset"),
    "verb": ("reset", "unlock", "renew", "replace", "update", "cancel"),
    "time": ("today", "tomorrow", "this week", "right now", "before friday"),
    "err": ("error 403", "error 500", "timeout", "blank screen", "login loop", "sync failure"),
}
# Politeness and context words people add; with them nearly every request is a new text that
# differs from thousands of earlier ones by a word or two (near duplicates, not exact repeats).
FILLERS = ("hi", "hello", "thanks", "thank you", "please", "urgent", "asap", "again", "still", "team",
           "help", "sorry", "quick question", "from home", "in the office", "on my mac", "on windows",
           "for my manager", "since monday", "since yesterday", "not sure why", "any idea", "cheers")

TEMPLATES: tuple[tuple[str, str], ...] = (
    ("account", "please {verb} my {thing}"),
    ("account", "i need to {verb} my {thing} {time}"),
    ("account", "how do i {verb} the {thing} for the {app}"),
    ("account", "can you {verb} my {app} {thing}"),
    ("account", "my {thing} for the {app} is locked"),
    ("outage", "the {app} shows {err}"),
    ("outage", "{app} is down again with {err}"),
    ("outage", "is the {app} down {time}"),
    ("outage", "getting {err} on the {app}"),
    ("howto", "how do i set up the {app}"),
    ("howto", "where can i find the {app} settings"),
    ("howto", "how to connect my {thing} to the {app}"),
    ("howto", "what is the policy for a new {thing}"),
    ("billing", "why was my {thing} charged twice"),
    ("billing", "send me the invoice for my {thing}"),
    ("billing", "refund for the {thing} i bought {time}"),
    ("billing", "update the card on my {app} account"),
    ("hardware", "my {thing} does not turn on"),
    ("hardware", "the {thing} is broken please {verb} it"),
    ("hardware", "order a new {thing} {time}"),
    ("followup", "any update on my ticket about the {app}"),
    ("followup", "same problem as last time with the {thing}"),
    ("followup", "still waiting on the {thing}"),
    ("vague", "it does not work"),
)

TASK_TYPES = ("account", "outage", "howto", "billing", "hardware", "followup", "vague")

# Expected reward of each route per task type; the logging rule below is mediocre on purpose.
EXPECTED_REWARD: dict[str, dict[str, float]] = {
    "account": {"answer.direct": 0.35, "memory.episodic": 0.40, "memory.semantic": 0.45, "tool.kb_search": 0.60,
                "tool.ticket": 0.80, "llm.small": 0.30, "clarify": 0.20},
    "outage": {"answer.direct": 0.30, "memory.episodic": 0.35, "memory.semantic": 0.40, "tool.kb_search": 0.75,
               "tool.ticket": 0.60, "llm.small": 0.25, "clarify": 0.15},
    "howto": {"answer.direct": 0.55, "memory.episodic": 0.40, "memory.semantic": 0.80, "tool.kb_search": 0.70,
              "tool.ticket": 0.30, "llm.small": 0.60, "clarify": 0.20},
    "billing": {"answer.direct": 0.30, "memory.episodic": 0.50, "memory.semantic": 0.40, "tool.kb_search": 0.45,
                "tool.ticket": 0.75, "llm.small": 0.30, "clarify": 0.25},
    "hardware": {"answer.direct": 0.25, "memory.episodic": 0.30, "memory.semantic": 0.35, "tool.kb_search": 0.40,
                 "tool.ticket": 0.85, "llm.small": 0.20, "clarify": 0.20},
    "followup": {"answer.direct": 0.20, "memory.episodic": 0.85, "memory.semantic": 0.40, "tool.kb_search": 0.30,
                 "tool.ticket": 0.50, "llm.small": 0.25, "clarify": 0.30},
    "vague": {"answer.direct": 0.20, "memory.episodic": 0.30, "memory.semantic": 0.25, "tool.kb_search": 0.25,
              "tool.ticket": 0.30, "llm.small": 0.30, "clarify": 0.70},
}
ERROR_RATE = {"answer.direct": 0.01, "memory.episodic": 0.02, "memory.semantic": 0.02, "tool.kb_search": 0.05,
              "tool.ticket": 0.08, "llm.small": 0.03, "clarify": 0.01}
LATENCY_MS = {"answer.direct": 300.0, "memory.episodic": 450.0, "memory.semantic": 500.0, "tool.kb_search": 900.0,
              "tool.ticket": 1500.0, "llm.small": 700.0, "clarify": 250.0}
LOGGING_RULE = "tool.kb_search"


def vocabulary() -> set[str]:
    words: set[str] = set()
    for _, template in TEMPLATES:
        words.update(re.findall(r"[a-z0-9]+", re.sub(r"\{\w+\}", " ", template)))
    for values in (*SLOTS.values(), FILLERS):
        for v in values:
            words.update(re.findall(r"[a-z0-9]+", v))
    return words


class HelpdeskWorkload(RowStream):
    """Seeded stream of help-desk trajectories logged by epsilon-greedy over one fixed route."""

    def __init__(self, seed: int = 0, router_id: str = "helpdesk", epsilon: float = 0.3) -> None:
        self.seed = seed
        self.router_id = router_id
        self.epsilon = epsilon
        self._rng = random.Random(f"memabrad-helpdesk:{seed}")
        self._index = 0

    def _task(self) -> tuple[str, str]:
        rng = self._rng
        task_type, template = TEMPLATES[rng.randrange(len(TEMPLATES))]
        text = re.sub(r"\{(\w+)\}", lambda m: rng.choice(SLOTS[m.group(1)]), template)
        head = [rng.choice(FILLERS) for _ in range(rng.randrange(3))]
        tail = [rng.choice(FILLERS) for _ in range(rng.randrange(4))]
        return " ".join([*head, text, *tail]), task_type

    def next(self) -> dict[str, Any]:
        rng = self._rng
        text, task_type = self._task()
        k = len(ROUTES)
        route = ROUTES[rng.randrange(k)] if rng.random() < self.epsilon else LOGGING_RULE
        propensity = self.epsilon / k + (1.0 - self.epsilon if route == LOGGING_RULE else 0.0)
        error = rng.random() < ERROR_RATE[route]
        reward = 0.0 if error else float(rng.random() < EXPECTED_REWARD[task_type][route] / (1 - ERROR_RATE[route]))
        latency = LATENCY_MS[route] * (0.5 + rng.random())
        i = self._index
        self._index += 1
        sec = i // 10
        at = (f"2026-01-{1 + (sec // 86400) % 28:02d}T{(sec // 3600) % 24:02d}:{(sec // 60) % 60:02d}:"
              f"{sec % 60:02d}.{(i % 10) * 100:03d}Z")
        return trajectory_row(f"{self.router_id}-h{self.seed}-{i:08d}", self.router_id, at,
                              {"input": text, "task_type": task_type}, list(ROUTES), route, round(propensity, 12),
                              min(1.0, reward), error, latency)


def true_reward(policy: dict[str, str]) -> float:
    """Exact value of a per-task-type policy under the workload's uniform template mix."""
    total = 0.0
    for task_type, _ in TEMPLATES:
        total += EXPECTED_REWARD[task_type][policy[task_type]]
    return total / len(TEMPLATES)
