"""server/ has no import cycle between its packages: each folder (and top-level module) of server/ may
import another only if that one does not, directly or through others, import it back.

Read from the source's `import` and `from` statements (lazy ones inside functions included), so the
test needs no import to run and names the statements that close a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

SERVER = Path(__file__).resolve().parents[1] / "server"


def _unit(module: str) -> str:
    """The package-level unit a module belongs to: server.proxy.failover -> server.proxy."""
    return ".".join(module.split(".")[:2])


def _imports(path: Path) -> list[tuple[str, int]]:
    module = ".".join(path.relative_to(SERVER.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                found.append((".".join(base + ([node.module] if node.module else [])), node.lineno))
            elif node.module:
                found.append((node.module, node.lineno))
    return found


def import_graph() -> dict[str, dict[str, list[str]]]:
    """unit -> {imported unit -> ["server/x/y.py:12", …]} for imports between different units."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in sorted(SERVER.rglob("*.py")):
        here = _unit(".".join(path.relative_to(SERVER.parent).with_suffix("").parts))
        for target, line in _imports(path):
            if target.startswith("server.") and _unit(target) != here:
                where = f"{path.relative_to(SERVER.parent)}:{line}"
                graph.setdefault(here, {}).setdefault(_unit(target), []).append(where)
    return graph


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected groups of more than one unit (Tarjan), each a set of units in a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(unit: str) -> None:
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        for other in graph.get(unit, {}):
            if other not in index:
                visit(other)
                low[unit] = min(low[unit], low[other])
            elif other in stack:
                low[unit] = min(low[unit], index[other])
        if low[unit] == index[unit]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == unit:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for unit in list(graph):
        if unit not in index:
            visit(unit)
    return found


def test_server_packages_import_each_other_one_way_only():
    graph = import_graph()
    problems = []
    for group in cycles(graph):
        edges = [
            f"  {a} -> {b}: {', '.join(graph[a][b])}"
            for a in group
            for b in sorted(graph.get(a, {}))
            if b in group
        ]
        problems.append("cycle between " + ", ".join(group) + "\n" + "\n".join(edges))
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_cycle():
    assert cycles({"a": {"b": ["x"]}, "b": {"c": ["y"]}, "c": {"a": ["z"]}, "d": {"a": ["w"]}}) == [
        ["a", "b", "c"]
    ]
    assert import_graph()["server.proxy"]["server.upstream"]  # the graph is read at all
