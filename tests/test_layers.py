"""The import layering of docs/design.md, checked on the source (every import, also those inside
functions): ``provenance`` imports neither ``detectors`` nor ``service``; ``detectors`` does not
import ``service``; nothing outside the web layer and the CLI imports them; no import cycles."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("provenance", "detectors", "service")
#: The outer layer: entry points that may import anything, and that nothing else imports.
OUTER = ("service.web", "service.cli")


@functools.cache
def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "migrations" in path.relative_to(ROOT).parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    # ``from pkg import mod`` imports the module ``pkg.mod`` (as import-linter counts it);
    # ``from pkg import name`` imports ``pkg``.
    subs = [f"{prefix}.{a.name}" for a in node.names]
    known = _modules()
    return [s for s in subs if s in known] + ([prefix] if any(s not in known for s in subs) else [])


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (the nearest enclosing known module)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _targets(module, path, node):
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    graph[module].add(target)
    return graph


def _in(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_graph_sees_the_project(graph: dict[str, set[str]]) -> None:
    assert {"provenance.c2pa", "detectors.registry", "service.pipeline", "service.web"} <= set(
        graph
    )
    assert "detectors.base" in graph["detectors.registry"]


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("provenance", ("detectors", "service")),
        ("detectors", ("service",)),
    ],
)
def test_lower_layers_do_not_import_higher_ones(
    graph: dict[str, set[str]], layer: str, forbidden: tuple[str, ...]
) -> None:
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if _in(m, layer)
        for t in targets
        if any(_in(t, f) for f in forbidden)
    )
    assert not bad


def test_the_core_does_not_import_the_web_layer_or_the_cli(graph: dict[str, set[str]]) -> None:
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if not any(_in(m, o) for o in OUTER)
        for t in targets
        if any(_in(t, o) for o in OUTER)
    )
    assert not bad


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    assert not cycles(graph)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _exception_classes() -> list[type[BaseException]]:
    import importlib
    import inspect

    found = []
    for module_name in sorted(_modules()):
        module = importlib.import_module(module_name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module_name:
                found.append(obj)
    return found


def test_every_error_class_derives_from_the_one_root() -> None:
    from provenance.errors import ShinganError

    classes = _exception_classes()
    assert len(classes) >= 15  # the test sees the project's errors
    stray = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, ShinganError)]
    assert not stray


def _knows_status(cls: type[BaseException]) -> bool:
    """A ``status`` class attribute, or one its own ``__init__`` sets."""
    init = vars(cls).get("__init__")
    code = getattr(init, "__code__", None)
    names = code.co_names if code is not None else ()
    return "status" in vars(cls) or "status" in names


def test_only_the_web_layer_knows_http_statuses() -> None:
    with_status = [
        f"{c.__module__}.{c.__qualname__}"
        for c in _exception_classes()
        if not any(_in(c.__module__, o) for o in OUTER) and _knows_status(c)
    ]
    assert not with_status
    from service.web.errors import ApiError

    assert _knows_status(ApiError)  # the check sees a status where there is one
