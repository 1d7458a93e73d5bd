"""The docs name only what exists: code symbols, files, metrics, topics, config keys, contract sections.

``docs/architecture.md`` and ``docs/contract.md`` are checked against the package's source (read
with ``ast``, never imported) and against ``config.yaml``. Inline code spans (backticks, outside
fenced blocks) are the references; ``a.{b,c}`` stands for ``a.b`` and ``a.c``. A span counts as:

- a path: ``memabrad/...`` (file or directory) or ``docs/<name>.md`` -> exists in the repository;
- a module path: ``memabrad.<dotted>`` -> its longest prefix is a module under ``memabrad/``, the
  next part a top-level name of that module, the next a member of that class;
- a class: a capitalised identifier with a lower-case letter, optionally ``.member`` and ``()``
  (``Router``, ``RouterLearner.observe``) -> a class of the package (or a builtin) with that member,
  defined in its body or inherited from a base class of the package;
- a function: ``name()`` -> a function or method defined somewhere in the package;
- a topic: ``memabra.<...>`` -> a default topic name under ``kafka.topics`` in ``config.yaml``;
- a metric: ``memabrad_<...>`` -> a metric the package creates with ``prometheus_client``;
- a dotted lower-case name whose first part is a ``config.yaml`` section or a ``memabrad``
  module (``store.base_dir``, ``router.promoted``, ``promotion.evaluation.evaluate``, each
  optionally with ``()``) -> a key of ``config.yaml``, a router event type (``EVENT_TYPES``), or a
  module path under ``memabrad``.

Any other span (field names, values, commands, store file names, flags) is prose. Besides:
a fenced block whose first line is ``memabrad/`` is a directory tree whose entries must exist;
every key in the table of ``docs/contract.md`` §8 is a key of ``config.yaml`` with the default
shown; the contract keeps the upstream numbering (§1 to §10); and every ``CONTRACT §n`` /
``CONTRACT.md §n`` / ``docs/contract.md §n`` citation (or ``§n-m``) in ``memabrad/`` names a
section of ``docs/contract.md``.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "memabrad"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
CONTRACT = ROOT / "docs" / "contract.md"
DOCS = (ARCHITECTURE, CONTRACT)
UPSTREAM_SECTIONS = set(range(1, 11))

METRIC_TYPES = frozenset({"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"})
FILE_SUFFIXES = frozenset({"json", "jsonl", "yaml", "yml", "md", "py", "npz", "txt", "lock", "html", "toml", "csv"})

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PATH_RE = re.compile(r"^(?:memabrad/(?:[A-Za-z0-9_.-]+/?)*|docs/[A-Za-z0-9_.-]+\.md)$")
MODULE_PATH_RE = re.compile(rf"^memabrad(?:\.{IDENT})+(?:\(\))?$")
CLASS_RE = re.compile(rf"^_?[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*(?:\.{IDENT})?(?:\(\))?$")
FUNCTION_RE = re.compile(r"^_?[a-z][a-z0-9_]*\(\)$")
TOPIC_RE = re.compile(r"^memabra\.[a-z0-9._-]+$")
METRIC_RE = re.compile(r"^memabrad_[a-z0-9_]+$")
DOTTED_RE = re.compile(rf"^[a-z_][a-z0-9_]*(?:\.{IDENT})+(?:\(\))?$")
CITATION_RE = re.compile(
    r"(?:\bCONTRACT(?:\.md)?|docs/contract\.md)\s*(§\s*\d+(?:\s*(?:[-–,]|and)\s*§?\s*\d+)*)", re.IGNORECASE
)
SECTION_RE = re.compile(r"^##\s+§?(\d+)\.\s", re.MULTILINE)


# -- the markdown --------------------------------------------------------------------------------


def _without_fences(text: str) -> str:
    return re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.MULTILINE | re.DOTALL)


def _expand(span: str) -> list[str]:
    match = re.search(r"\{([A-Za-z0-9_]+(?:,[A-Za-z0-9_]+)+)\}", span)
    if match is None:
        return [span]
    head, tail = span[: match.start()], span[match.end():]
    return [s for part in match.group(1).split(",") for s in _expand(head + part + tail)]


def spans(path: Path) -> list[str]:
    """Inline code spans outside fenced blocks, brace lists expanded, in order of appearance."""
    found = re.findall(r"`([^`\n]+)`", _without_fences(path.read_text(encoding="utf-8")))
    return [s for span in found for s in _expand(span.strip())]


def section(text: str, number: int) -> str:
    match = re.search(rf"^##\s+§?{number}\.\s.*?(?=^##\s|\Z)", text, flags=re.MULTILINE | re.DOTALL)
    assert match is not None, f"no section {number}"
    return match.group(0)


# -- the code ------------------------------------------------------------------------------------


@dataclass
class Code:
    modules: dict[str, ast.Module]
    classes: dict[str, list[ast.ClassDef]]
    functions: set[str]
    metrics: set[str]
    event_types: set[str]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _metric_name(node: ast.Call) -> str | None:
    func = node.func
    kind = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if kind not in METRIC_TYPES:
        return None
    arg = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "name"), None)
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


@cache
def code() -> Code:
    c = Code({}, {}, set(), set(), set())
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        c.modules[_module_name(path)] = tree
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                c.classes.setdefault(node.name, []).append(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                c.functions.add(node.name)
            elif isinstance(node, ast.Call) and (name := _metric_name(node)):
                c.metrics.add(name)
                if getattr(node.func, "id", getattr(node.func, "attr", None)) == "Counter":
                    c.metrics.add(name if name.endswith("_total") else name + "_total")
            elif isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "EVENT_TYPES" for t in targets):
                    c.event_types |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    return c


def _bound_names(body: list[ast.stmt]) -> Iterator[str]:
    """Names a module or class body binds, looking into if/try/with blocks but not into functions."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.name
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for n in ast.walk(target):
                    if isinstance(n, ast.Name):
                        yield n.id
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            yield node.target.id
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                yield alias.asname or alias.name.split(".")[0]
        elif isinstance(node, ast.If | ast.Try | ast.With):
            for block in ("body", "orelse", "finalbody"):
                yield from _bound_names(getattr(node, block, []))
            for handler in getattr(node, "handlers", []):
                yield from _bound_names(handler.body)


def _has_member(class_name: str, member: str, seen: set[str] | None = None) -> bool:
    seen = set() if seen is None else seen
    if class_name in seen:
        return False
    seen.add(class_name)
    for node in code().classes.get(class_name, []):
        if member in set(_bound_names(node.body)):
            return True
        for base in node.bases:
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
            if name and _has_member(name, member, seen):
                return True
    return False


def resolve_module_path(dotted: str) -> str | None:
    """None when ``memabrad.a.b.Name.member`` exists, else what is missing."""
    parts = dotted.removesuffix("()").split(".")
    modules = code().modules
    cut = max((i for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules), default=0)
    if cut == 0:
        return "no such module"
    module, rest = ".".join(parts[:cut]), parts[cut:]
    if not rest:
        return None
    if rest[0] not in set(_bound_names(modules[module].body)):
        return f"{module} defines no {rest[0]}"
    if len(rest) == 1:
        return None
    if len(rest) == 2 and rest[0] in code().classes:
        return None if _has_member(rest[0], rest[1]) else f"class {rest[0]} has no member {rest[1]}"
    return f"cannot resolve {'.'.join(rest)} in {module}"


def resolve_class(span: str) -> str | None:
    name, _, member = span.removesuffix("()").partition(".")
    if name not in code().classes:
        return None if hasattr(builtins, name) and not member else f"no class {name} in the package"
    if member and not _has_member(name, member):
        return f"class {name} has no member {member}"
    return None


@cache
def config_yaml() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))


def _flatten(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        yield prefix + key, value
        if isinstance(value, dict):
            yield from _flatten(value, prefix + key + ".")


@cache
def config_keys() -> dict[str, Any]:
    return dict(_flatten(config_yaml()))


def topics() -> set[str]:
    return set(config_yaml()["kafka"]["topics"].values())


def _dotted_roots() -> set[str]:
    """First parts that make a dotted lower-case span a reference: config sections and memabrad modules."""
    modules = {m.split(".")[1] for m in code().modules if m.count(".") >= 1}
    return set(config_yaml()) | modules


# -- classification --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    kind: str  # path, symbol, metric, topic, dotted
    text: str


def references(path: Path) -> list[Ref]:
    refs = []
    roots = _dotted_roots()
    for span in spans(path):
        if PATH_RE.match(span):
            refs.append(Ref("path", span))
        elif MODULE_PATH_RE.match(span) or CLASS_RE.match(span) or FUNCTION_RE.match(span):
            refs.append(Ref("symbol", span))
        elif TOPIC_RE.match(span):
            refs.append(Ref("topic", span))
        elif METRIC_RE.match(span):
            refs.append(Ref("metric", span))
        elif DOTTED_RE.match(span) and span.split(".")[0] in roots and span.rsplit(".", 1)[-1] not in FILE_SUFFIXES:
            refs.append(Ref("dotted", span))
    return refs


def check(ref: Ref) -> str | None:
    """None when the reference resolves, else why not."""
    text = ref.text
    if ref.kind == "path":
        return None if (ROOT / text.rstrip("/")).exists() else "no such file or directory"
    if ref.kind == "topic":
        return None if text in topics() else f"not a topic of config.yaml (kafka.topics: {sorted(topics())})"
    if ref.kind == "metric":
        return None if text in code().metrics else "no metric of that name in the package"
    if ref.kind == "dotted":
        bare = text.removesuffix("()")
        if bare in config_keys() or bare in code().event_types:
            return None
        if resolve_module_path("memabrad." + bare) is None:
            return None
        return "neither a config.yaml key, a router event type nor a module path under memabrad"
    if text.startswith("memabrad."):
        return resolve_module_path(text)
    if FUNCTION_RE.match(text):
        return None if text.removesuffix("()") in code().functions else "no function or method of that name"
    return resolve_class(text)


def _failures(path: Path, kind: str) -> list[str]:
    return [f"{path.relative_to(ROOT)}: `{r.text}`: {why}"
            for r in references(path) if r.kind == kind and (why := check(r)) is not None]


# -- tests -----------------------------------------------------------------------------------------


def test_the_classifier_sees_each_kind() -> None:
    kinds = {(r.kind, r.text) for doc in DOCS for r in references(doc)}
    assert ("symbol", "RouterLearner.observe") in kinds
    assert ("dotted", "promotion.evaluation.apply_evaluation") in kinds
    assert ("metric", "memabrad_trajectories_total") in kinds
    assert ("topic", "memabra.admin") in kinds
    assert ("dotted", "store.base_dir") in kinds
    assert ("dotted", "kafka.topics.dead_letter") in kinds
    assert ("dotted", "router.promoted") in kinds
    assert ("path", "memabrad/cli/") in kinds
    assert ("dotted", "decision.route") not in kinds  # a field of the trajectory, not a reference


def test_the_checker_rejects_what_does_not_exist() -> None:
    assert check(Ref("symbol", "RouterLearner.evaluate")) is not None
    assert check(Ref("dotted", "promotion.apply.apply_decision")) is not None
    assert check(Ref("symbol", "memabrad.learning.nowhere")) is not None
    assert check(Ref("symbol", "memabrad.learning.router.Router.nothing")) is not None
    assert check(Ref("metric", "memabrad_no_such_total")) is not None
    assert check(Ref("dotted", "http.portt")) is not None
    assert check(Ref("symbol", "memabrad.learning.router.Router.load")) is None
    assert check(Ref("symbol", "memabrad.wire.Trajectory")) is None  # a re-export counts


KINDS = {
    "symbol": "named code symbols exist",
    "path": "named paths exist",
    "dotted": "dotted names are config keys, event types or modules",
    "metric": "named metrics exist in the code",
    "topic": "named topics are the configured defaults",
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_named_references_exist(doc: Path, kind: str) -> None:
    """Every reference of one kind in the doc resolves (see ``KINDS``)."""
    failures = _failures(doc, kind)
    assert not failures, f"{KINDS[kind]}:\n" + "\n".join(failures)


def test_architecture_tree_entries_exist() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    trees = [b for b in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
             if b.strip().splitlines()[0].strip() == "memabrad/"]
    assert trees, "docs/architecture.md has no memabrad/ tree"
    missing = [line.split()[0] for tree in trees for line in tree.strip().splitlines()[1:]
               if line.strip() and not (PACKAGE / line.split()[0].rstrip("/")).exists()]
    assert not missing, f"tree entries that do not exist under memabrad/: {missing}"


def test_contract_keeps_the_upstream_section_numbers() -> None:
    numbers = [int(n) for n in SECTION_RE.findall(CONTRACT.read_text(encoding="utf-8"))]
    assert numbers == sorted(UPSTREAM_SECTIONS), f"numbered sections: {numbers}"


def test_contract_config_table_matches_config_yaml() -> None:
    table = section(CONTRACT.read_text(encoding="utf-8"), 8)
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) > 20
    keys = config_keys()
    failures = []
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        key = re.search(r"`([^`]+)`", cells[0]).group(1)  # type: ignore[union-attr]
        default = re.fullmatch(r"`([^`]*)`", cells[1])
        if key not in keys:
            failures.append(f"{key}: not a key of config.yaml")
        elif isinstance(keys[key], dict):
            failures.append(f"{key}: a section, not a key")
        elif default is not None and yaml.safe_load(default.group(1)) != keys[key]:
            failures.append(f"{key}: documented default {default.group(1)}, config.yaml has {keys[key]!r}")
    assert not failures, "\n".join(failures)


def _citations() -> Iterator[tuple[str, int, int]]:
    """(where, first, last) for every contract citation in memabrad/."""
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in CITATION_RE.finditer(text):
            where = f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}"
            chunk = match.group(1)
            for part in re.split(r"\s*(?:,|and)\s*", chunk):
                numbers = [int(n) for n in re.findall(r"\d+", part)]
                if numbers:
                    yield where, numbers[0], numbers[-1]


def test_contract_citations_in_the_code_name_existing_sections() -> None:
    sections = {int(n) for n in SECTION_RE.findall(CONTRACT.read_text(encoding="utf-8"))}
    citations = list(_citations())
    assert citations, "no CONTRACT §n citation found: has the citation style changed?"
    bad = [f"{where}: §{first}" + (f"-{last}" if last != first else "")
           for where, first, last in citations
           if first > last or not set(range(first, last + 1)) <= sections]
    assert not bad, "citations of sections docs/contract.md does not have:\n" + "\n".join(bad)
