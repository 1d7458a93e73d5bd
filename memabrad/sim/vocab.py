"""Task vocabularies: phrasing templates, topics and modifiers per task type.

Kept as plain data so generation stays cheap (``random.Random`` choices over tuples) and the
wording that the world rewards (freshness, recall, code, vague words) appears naturally.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

Tagged = tuple[str, str]  # (phrase, tag)
T = TypeVar("T")


def _pick(rng: random.Random, seq: Sequence[T]) -> T:
    """Uniform choice; cheaper than ``Random.choice`` (generation speed matters here)."""
    return seq[int(rng.random() * len(seq))]


QA_TOPICS: tuple[Tagged, ...] = (
    ("photosynthesis", "biology"),
    ("compound interest", "finance"),
    ("the TCP handshake", "networking"),
    ("black holes", "physics"),
    ("the French revolution", "history"),
    ("vitamin D", "health"),
    ("inflation", "economics"),
    ("the Pythagorean theorem", "math"),
    ("DNS caching", "networking"),
    ("index funds", "finance"),
    ("plate tectonics", "geology"),
    ("the immune system", "health"),
    ("supply chains", "economics"),
    ("GDPR", "legal"),
    ("our refund policy", "company"),
    ("the onboarding handbook", "company"),
    ("sourdough fermentation", "cooking"),
    ("jet lag", "health"),
    ("the electoral college", "politics"),
    ("quantum entanglement", "physics"),
    ("mortgage rates", "finance"),
    ("the expense policy", "company"),
    ("CRISPR", "biology"),
    ("the Roman empire", "history"),
    ("public key cryptography", "security"),
)
QA_TEMPLATES: tuple[str, ...] = (
    "What is {t}?",
    "How does {t} work?",
    "Explain {t} in simple terms.",
    "Can you give me a short definition of {t}?",
    "Why does {t} matter?",
    "What are the main facts about {t}?",
    "Summarize {t} for a beginner.",
    "Give me three key points about {t}.",
    "Is it true that {t} is complicated?",
    "How would you describe {t} to a child?",
)
QA_FRESH: tuple[str, ...] = (
    " What is the latest on this?",
    " Any news about it today?",
    " What's the current status?",
    " Has anything changed recently?",
)
QA_EPISODIC: tuple[str, ...] = (
    " Like you explained last time.",
    " You told me something about it yesterday.",
    " We discussed this earlier, remember?",
)
QA_KNOWLEDGE: tuple[str, ...] = (" Check the documentation.", " According to the handbook.")

LANGS: tuple[str, ...] = ("Python", "SQL", "JavaScript", "Rust", "Go", "Bash", "TypeScript")
CODE_OBJECTS: tuple[str, ...] = ("function", "query", "script", "regex", "unit test", "class", "loop")
CODE_PROBLEMS: tuple[str, ...] = (
    "returns the wrong total",
    "throws a KeyError",
    "is too slow on large inputs",
    "leaks memory",
    "fails on empty lists",
    "deadlocks under load",
    "does not compile",
    "prints nothing",
)
CODE_TEMPLATES: tuple[str, ...] = (
    "Fix this {lang} {obj} that {problem}.",
    "My {lang} {obj} {problem}, can you debug it?",
    "Write a {lang} {obj} that parses CSV files.",
    "Refactor this {lang} {obj} for readability.",
    "Add error handling to this {lang} {obj}.",
    "Run this {lang} {obj} and tell me the output.",
)
CODE_CONCEPT_TEMPLATES: tuple[str, ...] = (
    "What is the difference between a list and a tuple in {lang}?",
    "Explain how async works in {lang}.",
    "What is a closure in {lang}?",
    "Summarize the history of {lang}.",
    "Which {lang} style guide do we follow according to the handbook?",
)
CODE_SNIPPETS: tuple[str, ...] = (
    "\n```\ndef total(xs):\n    return sum(xs) - 1\n```",
    "\n```\nSELECT * FROM orders o JOIN users u ON o.user_id = u.id WHERE u.active\n```",
    "\n```\nfor (let i = 0; i <= arr.length; i++) { sum += arr[i]; }\n```",
    '\n```\nfn main() { let v: Vec<i32> = Vec::new(); println!("{}", v[0]); }\n```',
    "\n```\nd = {}\nprint(d['missing'])\n```",
)
CODE_EPISODIC: tuple[str, ...] = (
    " It's the script you wrote for me yesterday.",
    " Same bug as last time.",
)
CODE_FRESH: tuple[str, ...] = (" Use the latest released version of the library.",)

CHAT_THINGS: tuple[str, ...] = (
    "cats",
    "pizza",
    "movie",
    "book",
    "song",
    "board game",
    "hiking trail",
    "podcast",
    "recipe",
)
CHAT_TEMPLATES: tuple[str, ...] = (
    "Hi there!",
    "Good morning, how are you?",
    "Tell me a joke about {x}.",
    "I'm bored, say something fun.",
    "Thanks, that was helpful!",
    "What's your favorite {x}?",
    "Can you cheer me up?",
    "Recommend a {x} for the weekend.",
    "Let's just chat for a bit.",
    "Write a short poem about {x}.",
    "Good night!",
)
CHAT_EPISODIC: tuple[str, ...] = (
    " Remember what we talked about last time?",
    " Do you remember my dog's name from before?",
)
CHAT_FRESH: tuple[str, ...] = (" Also, what's the weather today?", " Who won the game tonight?")

RESEARCH_TOPICS: tuple[Tagged, ...] = (
    ("electric cars", "autos"),
    ("solar panels", "energy"),
    ("interest rates", "finance"),
    ("AI regulation", "policy"),
    ("housing markets", "realestate"),
    ("vaccine trials", "health"),
    ("chip shortages", "hardware"),
    ("remote work", "work"),
    ("battery recycling", "energy"),
    ("ocean warming", "climate"),
)
PRODUCTS: tuple[str, ...] = (
    "noise-cancelling headphones",
    "laptops",
    "flights to Lisbon",
    "e-bikes",
    "standing desks",
    "mirrorless cameras",
)
COMPANIES: tuple[str, ...] = ("ACME Corp", "Globex", "Initech", "Umbrella Inc", "Hooli", "Stark Industries")
RESEARCH_FRESH_TEMPLATES: tuple[str, ...] = (
    "Find the latest news on {t}.",
    "Compare current prices of {p}.",
    "What is the stock price of {c} today?",
    "Research the best {p} released this week.",
    "Collect recent reports about {t}.",
    "What happened with {t} this week?",
)
RESEARCH_STATIC_TEMPLATES: tuple[str, ...] = (
    "Give me a literature overview of {t}.",
    "Summarize the history of {t}.",
    "Write a background brief on {t} with sources.",
    "What are the main arguments for and against {t}?",
    "Compile a reading list on {t}.",
)

RECALL_THINGS: tuple[str, ...] = (
    "the budget",
    "my trip to Japan",
    "the migration plan",
    "the birthday party",
    "my workout plan",
    "the hiring plan",
    "the quarterly report",
    "my reading list",
)
RECALL_NOUNS: tuple[str, ...] = ("restaurant", "book", "colleague", "tool", "hotel", "recipe")
RECALL_TEMPLATES: tuple[str, ...] = (
    "What did I tell you yesterday about {x}?",
    "Remind me what we decided last time about {x}.",
    "What was the name of the {y} I mentioned earlier?",
    "Continue where we left off on {x}.",
    "Did I already ask you about {x} before?",
    "What were my notes from our previous session on {x}?",
    "Pick up {x} from our last conversation.",
    "What was my plan for {x}?",
)
RECALL_FRESH: tuple[str, ...] = (" And has the price changed since then?",)

AMBIGUOUS_TEMPLATES: tuple[str, ...] = (
    "fix it",
    "that thing again",
    "the usual please",
    "hmm, what about the other one?",
    "do the same as before",
    "can you check this",
    "it's broken",
    "more",
    "and then?",
    "what about tomorrow",
    "ok so the numbers",
    "same but faster",
    "help with the stuff",
    "you know what I mean",
    "try again",
    "is this right?",
    "why",
    "that one",
    "continue",
    "do something about it",
)
AMBIGUOUS_FRAGMENTS: tuple[str, ...] = (
    "python",
    "news",
    "yesterday",
    "price",
    "the report",
    "sql",
    "my trip",
    "latest",
    "regex",
    "the budget",
    "weather",
    "last time",
)


def _qa(rng: random.Random) -> tuple[str, list[str]]:
    topic, tag = _pick(rng, QA_TOPICS)
    text = _pick(rng, QA_TEMPLATES).format(t=topic)
    u = rng.random()
    if u < 0.25:
        text += _pick(rng, QA_FRESH)
    elif u < 0.37:
        text += _pick(rng, QA_EPISODIC)
    elif u < 0.50:
        text += _pick(rng, QA_KNOWLEDGE)
    return text, [tag]


def _coding(rng: random.Random) -> tuple[str, list[str]]:
    lang = _pick(rng, LANGS)
    tags = [lang.lower()]
    if rng.random() < 0.3:
        return _pick(rng, CODE_CONCEPT_TEMPLATES).format(lang=lang), tags
    text = _pick(rng, CODE_TEMPLATES).format(lang=lang, obj=_pick(rng, CODE_OBJECTS), problem=_pick(rng, CODE_PROBLEMS))
    u = rng.random()
    if u < 0.12:
        text += _pick(rng, CODE_EPISODIC)
    elif u < 0.18:
        text += _pick(rng, CODE_FRESH)
    if rng.random() < 0.55:
        text += _pick(rng, CODE_SNIPPETS)
        tags.append("snippet")
    return text, tags


def _chitchat(rng: random.Random) -> tuple[str, list[str]]:
    text = _pick(rng, CHAT_TEMPLATES).format(x=_pick(rng, CHAT_THINGS))
    u = rng.random()
    if u < 0.12:
        text += _pick(rng, CHAT_EPISODIC)
    elif u < 0.20:
        text += _pick(rng, CHAT_FRESH)
    return text, ["social"]


def _research(rng: random.Random) -> tuple[str, list[str]]:
    topic, tag = _pick(rng, RESEARCH_TOPICS)
    templates = RESEARCH_FRESH_TEMPLATES if rng.random() < 0.55 else RESEARCH_STATIC_TEMPLATES
    text = _pick(rng, templates).format(t=topic, p=_pick(rng, PRODUCTS), c=_pick(rng, COMPANIES))
    return text, [tag]


def _recall(rng: random.Random) -> tuple[str, list[str]]:
    text = _pick(rng, RECALL_TEMPLATES).format(x=_pick(rng, RECALL_THINGS), y=_pick(rng, RECALL_NOUNS))
    if rng.random() < 0.08:
        text += _pick(rng, RECALL_FRESH)
    return text, ["personal"]


def _ambiguous(rng: random.Random) -> tuple[str, list[str]]:
    u = rng.random()
    if u < 0.6:
        return _pick(rng, AMBIGUOUS_TEMPLATES), []
    a, b = rng.sample(AMBIGUOUS_FRAGMENTS, 2)
    if u < 0.85:
        return f"{a} {b}?", []
    return f"{a} and {b}, {_pick(rng, AMBIGUOUS_TEMPLATES)}", []


TASK_GENERATORS: dict[str, Callable[[random.Random], tuple[str, list[str]]]] = {
    "qa": _qa,
    "coding": _coding,
    "chitchat": _chitchat,
    "research": _research,
    "recall": _recall,
    "ambiguous": _ambiguous,
}
