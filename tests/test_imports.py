"""The package's import structure: no cycles among workbench modules, a light ``import workbench``.

The graph counts every import statement, those inside functions too: a deferred import still
ties two modules together, it only hides the cycle until run time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """``{module: workbench modules it imports}`` from the source, by ``ast``."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = name if is_pkg else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                for a in node.names:
                    sub = f"{stem}.{a.name}"
                    targets.append(sub if sub in modules else stem)
            for t in targets:
                while t and t not in modules:  # ``import workbench.x.y`` names a module
                    t = t.rpartition(".")[0]
                if t and t != name and t.split(".")[0] == "workbench":
                    edges.add(t)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules, or None (iterative depth-first search)."""
    state: dict[str, int] = {}
    for root in graph:
        if state.get(root):
            continue
        stack = [(root, iter(sorted(graph[root])))]
        path = [root]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            for child in children:
                if state.get(child) == 1:
                    return path[path.index(child):] + [child]
                if not state.get(child):
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(sorted(graph.get(child, ())))))
                    break
            else:
                state[node] = 2
                path.pop()
                stack.pop()
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_relative_and_deferred_imports():
    graph = import_graph()
    assert "workbench.names" in graph["workbench.record"]
    assert "workbench.plots.report" in graph["workbench.jobs"]
    assert "workbench.summary" in graph["workbench.record"]  # imported inside Fit.summary


def test_no_import_cycle_among_workbench_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_imports_in_a_fresh_interpreter():
    code = "import importlib\nfor m in %r:\n    importlib.import_module(m)" % sorted(_modules())
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600, cwd=PACKAGE.parent)
    assert res.returncode == 0, res.stderr


def test_import_workbench_loads_neither_pymc_nor_matplotlib():
    code = ("import sys, workbench; "
            "print(','.join(m for m in ('pymc', 'pytensor', 'arviz', 'matplotlib', 'dask') "
            "if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=PACKAGE.parent)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""


def test_tests_use_no_private_names():
    """Tests exercise the public API of each module: they import no private name of it."""
    import re

    pattern = re.compile(r"from workbench[\w.]* import [^#\n]*\b_[a-z]\w*|workbench(\.\w+)+\._[a-z]")
    offenders = []
    for path in sorted(Path(__file__).resolve().parent.rglob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.name}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
