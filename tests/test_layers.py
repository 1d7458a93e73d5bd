"""The package's shape: import floors, no cycles between packages, modules and classes of a readable size.

Read from the source with ``ast`` (nothing is imported). The unit of layering is a top-level
package or module of ``memabrad`` (``memabrad/learning/`` is ``learning``, ``memabrad/cycle.py``
is ``cycle``, ``memabrad/__init__.py`` is the ``memabrad`` facade). Floors, bottom to top:

0. ``config``, ``kafka``, ``stats``, ``store``, ``wire``: formats, settings, statistics, files and
   Kafka clients, knowing nothing of routers' learning;
1. ``learning``: featurizer, route models, the router, the case index, the per-router learner;
2. ``evaluation``: benchmark windows, off-policy estimators, comparisons;
3. ``promotion``: gates, the promotion policy, the guard, evaluation end to end;
4. ``cli``, ``cycle``, ``daemon``, ``demo``, ``report``, ``sdk``, ``sim``: the applications;
5. ``memabrad`` (the package facade) and ``__main__``: entry points.

Rules:

- every unit is on a floor (a new top-level package must be placed here deliberately);
- a module imports only from its own floor or lower ones;
- ``sim`` (the workload simulators) imports only ``wire``, so simulated traffic is built
  from the wire formats alone and never from the code it exercises;
- the units' import graph has no cycle;
- no module under ``memabrad/`` has more than 400 lines, no class more than 250.

Every import counts, wherever it is written: at module level, inside functions (lazy
imports), under ``if TYPE_CHECKING:``, and ``importlib.import_module("memabrad...")`` with a
literal name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "memabrad"

FACADE = "memabrad"
FLOORS: tuple[tuple[str, frozenset[str]], ...] = (
    ("base", frozenset({"config", "kafka", "stats", "store", "wire"})),
    ("learning", frozenset({"learning"})),
    ("evaluation", frozenset({"evaluation"})),
    ("promotion", frozenset({"promotion"})),
    ("applications", frozenset({"cli", "cycle", "daemon", "demo", "report", "sdk", "sim"})),
    ("entry points", frozenset({FACADE, "__main__"})),
)
ONLY_FROM: dict[str, frozenset[str]] = {"sim": frozenset({"wire"})}
"""Units restricted further than their floor: they may import only these units (and themselves)."""

MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250


@dataclass(frozen=True)
class Import:
    source: Path
    line: int
    target: str  # absolute dotted module name, e.g. "memabrad.evaluation.benchmark"

    def where(self) -> str:
        return f"{self.source.relative_to(ROOT)}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def sources() -> tuple[tuple[Path, ast.Module], ...]:
    return tuple((p, ast.parse(p.read_text(encoding="utf-8"), filename=str(p))) for p in sorted(PACKAGE.rglob("*.py")))


def unit_of(module: str) -> str:
    """``memabrad.learning.router`` -> ``learning``; ``memabrad`` -> the facade."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else FACADE


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def _absolute(path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, tree: ast.Module) -> Iterator[Import]:
    """Every ``memabrad`` module this file imports; ``from pkg import sub`` names the submodule."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "memabrad" or alias.name.startswith("memabrad."):
                    yield Import(path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(path, node)
            if base != "memabrad" and not base.startswith("memabrad."):
                continue
            subs = [f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}")]
            if subs:
                yield from (Import(path, node.lineno, s) for s in subs)
            if len(subs) < len(node.names):
                yield Import(path, node.lineno, base)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            arg = node.args[0]
            if (name in ("import_module", "__import__") and isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str) and arg.value.startswith("memabrad")):
                yield Import(path, node.lineno, arg.value)


def all_imports() -> list[Import]:
    return [imp for path, tree in sources() for imp in imports_of(path, tree)]


def floor_of(unit: str) -> int | None:
    for level, (_, units) in enumerate(FLOORS):
        if unit in units:
            return level
    return None


def describe(unit: str) -> str:
    level = floor_of(unit)
    return f"{unit} (floor {level}, {FLOORS[level][0]})" if level is not None else f"{unit} (no floor)"


def units_present() -> set[str]:
    return {unit_of(module_name(path)) for path, _ in sources()}


def unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {u: set() for u in units_present()}
    for imp in all_imports():
        a, b = unit_of(module_name(imp.source)), unit_of(imp.target)
        if a != b:
            graph[a].add(b)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one unit (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _report(title: str, problems: list[str]) -> str:
    return f"{len(problems)} {title}:\n  " + "\n  ".join(problems)


# -- tests -------------------------------------------------------------------------------------


def test_the_package_is_read() -> None:
    """Guards the other tests against passing vacuously (a moved root, a broken walk)."""
    assert len(sources()) > 50
    assert {"wire", "learning", "daemon"} <= units_present()
    assert any(unit_of(imp.target) == "wire" for imp in all_imports())


def test_every_unit_is_on_a_floor() -> None:
    placed = [u for _, units in FLOORS for u in units]
    assert len(placed) == len(set(placed)), "a unit is on two floors"
    missing = sorted(u for u in units_present() if floor_of(u) is None)
    assert not missing, f"top-level modules with no floor (place them in FLOORS): {missing}"


def test_no_module_imports_from_a_higher_floor() -> None:
    problems = []
    for imp in all_imports():
        src, dst = unit_of(module_name(imp.source)), unit_of(imp.target)
        a, b = floor_of(src), floor_of(dst)
        if a is not None and b is not None and b > a:
            problems.append(f"{imp.where()}: {imp.target} — {describe(src)} imports {describe(dst)}")
    assert not problems, _report("imports from a higher floor", problems)


def test_restricted_units_import_only_what_they_may() -> None:
    problems = []
    for imp in all_imports():
        src, dst = unit_of(module_name(imp.source)), unit_of(imp.target)
        allowed = ONLY_FROM.get(src)
        if allowed is not None and dst != src and dst not in allowed:
            problems.append(f"{imp.where()}: {imp.target} — {src} may import only {sorted(allowed)}")
    assert not problems, _report("imports outside a restricted unit's allowance", problems)


def test_no_import_cycles_between_packages() -> None:
    graph = unit_graph()
    found = cycles(graph)
    problems = []
    for component in found:
        members = set(component)
        edges: dict[tuple[str, str], list[Import]] = {}
        for imp in all_imports():
            a, b = unit_of(module_name(imp.source)), unit_of(imp.target)
            if a != b and a in members and b in members:
                edges.setdefault((a, b), []).append(imp)
        shown = "; ".join(f"{a} -> {b} ({len(imps)}x, e.g. {imps[0].where()} imports {imps[0].target})"
                          for (a, b), imps in sorted(edges.items()))
        problems.append(f"{' <-> '.join(component)}: {shown}")
    assert not problems, _report("import cycles between packages", problems)


def test_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_is_over_the_line_limit() -> None:
    problems = []
    for path, _ in sources():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            problems.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not problems, _report(f"modules over {MAX_MODULE_LINES} lines", problems)


def test_no_class_is_over_the_line_limit() -> None:
    problems = []
    for path, tree in sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = (node.end_lineno or node.lineno) - first + 1
                if lines > MAX_CLASS_LINES:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno} class {node.name}: {lines} lines")
    assert not problems, _report(f"classes over {MAX_CLASS_LINES} lines", problems)
