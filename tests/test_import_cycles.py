"""No import cycles among kms_rescue's modules (docs/architecture.md, "Seams"): every import is read from the source,
at module level and inside functions alike (an import moved into a function hides a cycle, it does not remove it).
Imports under ``if TYPE_CHECKING:`` are left out: they never run."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.paths import REPO

PACKAGE = REPO / "kms_rescue"

#: Cycles that remain, each with the reason it is allowed. None today: keep it that way.
KNOWN_CYCLES: dict[frozenset[str], str] = {}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The kms_rescue modules ``name`` imports: ``import a.b``, ``from a import b`` (b a module or a name in a),
    relative imports included."""

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    deps: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            deps.update(filter(None, (owner(a.name) for a in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found = target if target in known else owner(base)
                if found:
                    deps.add(found)
    deps.discard(name)
    return deps


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[frozenset[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_the_finder_sees_a_cycle_hidden_in_a_function() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    source = PACKAGE / "cli" / "app.py"  # imports kms_rescue.cli._runtime inside a function (--debug only)
    assert "kms_rescue.cli._runtime" in imports_of("kms_rescue.cli.app", source, modules())


def test_no_import_cycles_outside_the_known_ones() -> None:
    unexplained = [sorted(c) for c in cycles(import_graph()) if not any(c <= known for known in KNOWN_CYCLES)]
    assert not unexplained, f"import cycles: {unexplained} (docs/architecture.md, 'Seams')"


#: The audit's modules that gather observations through kms_rescue.aws (kms_rescue/audit/ruff.toml lists the same).
AUDIT_AWS_SIDE = {"kms_rescue.audit.account", "kms_rescue.audit.accounts", "kms_rescue.audit.pacing",
                  "kms_rescue.audit.scheduler", "kms_rescue.audit.terraform_guard", "kms_rescue.audit.lambda_handler",
                  "kms_rescue.audit.merge"}


def test_the_audit_aws_side_is_what_its_ruff_config_allows() -> None:
    config = (PACKAGE / "audit" / "ruff.toml").read_text(encoding="utf-8")
    allowed = {f"kms_rescue.audit.{name}" for name in re.findall(r'^"(\w+)\.py" = \["TID251"\]', config, re.M)}
    assert allowed == AUDIT_AWS_SIDE


def test_the_pure_core_never_imports_aws() -> None:
    """What ruff's banned-api rule (kms_rescue/ruff.toml) enforces, checked on the import graph as well: the pure
    core (everything outside aws/, cli/, lab/) imports kms_rescue.aws nowhere, not even inside a function."""
    graph = import_graph()
    impure = ("kms_rescue.aws", "kms_rescue.cli", "kms_rescue.lab")
    offenders = {name: sorted(d for d in deps if d.startswith("kms_rescue.aws"))
                 for name, deps in graph.items() if not name.startswith(impure) and name not in AUDIT_AWS_SIDE}
    assert {n: d for n, d in offenders.items() if d} == {}


def _deferred_without_a_reason(path: Path) -> list[str]:
    """Imports inside functions that no comment explains (on the line, or on the line above its block)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for fn in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            first = node.lineno
            while first > 1 and (not lines[first - 2].strip()
                                 or lines[first - 2].strip().startswith(("import ", "from "))):
                first -= 1  # the start of this block of imports (isort's groups are split by blank lines)
            block = lines[first - 2: node.end_lineno]
            if not any("#" in line for line in block):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return found


def test_imports_are_at_module_top_unless_deferred_for_a_reason() -> None:
    """Outside aws/, policy/ and lab/ (their owners are moving theirs), an import inside a function is there only
    for start-up time (--help, lint and explain import neither boto3 nor the report layer), and says so."""
    skipped = {"aws", "policy", "lab"}
    found = [line for path in sorted(PACKAGE.rglob("*.py"))
             if path.relative_to(PACKAGE).parts[0] not in skipped
             for line in _deferred_without_a_reason(path)]
    assert not found, found
