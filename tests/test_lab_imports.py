"""The lab's modules import one way (docs/architecture.md): the gate imports the service handlers and the
decisions, no handler imports the gate, there is no import cycle in ``kms_rescue/lab/``, and imports sit at
module top unless deferred for start-up time with a comment that says so."""

from __future__ import annotations

import ast
from pathlib import Path

import kms_rescue.lab

LAB = Path(kms_rescue.lab.__file__).parent
HANDLERS = ("kms_api", "iam_api", "org_api", "ec2_api")


def _imports(tree: ast.AST) -> list[tuple[ast.stmt, set[str]]]:
    """Each import statement and the kms_rescue.lab modules it names."""
    out = []
    for node in ast.walk(tree):
        names: set[str] = set()
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "kms_rescue.lab":
                names = {a.name for a in node.names if (LAB / f"{a.name}.py").exists()}
            elif node.module.startswith("kms_rescue.lab."):
                names = {node.module.split(".")[2]}
        elif isinstance(node, ast.Import):
            names = {a.name.split(".")[2] for a in node.names if a.name.startswith("kms_rescue.lab.")}
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append((node, names))
    return out


def _graph() -> dict[str, set[str]]:
    return {f.stem: set().union(*(n for _, n in _imports(ast.parse(f.read_text())))) - {f.stem}
            for f in LAB.glob("*.py")}


def test_no_handler_imports_the_gate() -> None:
    graph = _graph()
    for handler in HANDLERS:
        assert "gate" not in graph[handler], handler
        assert "decisions" in graph[handler] or handler == "ec2_api"
    assert set(HANDLERS) <= graph["gate"]


def test_no_import_cycle_in_the_lab() -> None:
    graph = _graph()

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph.get(start, ()))
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(graph.get(n, ()))
        return seen

    cycles = sorted(m for m in graph if m in reach(m))
    assert cycles == []


def test_imports_inside_functions_say_why() -> None:
    unexplained = []
    for f in sorted(LAB.glob("*.py")):
        text = f.read_text()
        lines = text.splitlines()
        for func in ast.walk(ast.parse(text)):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    # The comment is on the line, or on the lines just above the block of imports it heads.
                    window = " ".join(lines[max(0, node.lineno - 6):node.lineno]).lower()
                    if "deferred" not in window and "see session()" not in window and "extra" not in window:
                        unexplained.append(f"{f.name}:{node.lineno}: {ast.unparse(node)}")
    assert unexplained == []
