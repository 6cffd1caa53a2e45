"""The layout of ``tests/`` (docs/testing.md): no test module imports another (fixtures come from conftest.py,
plain helpers from ``tests/helpers/``), every folder of test code is a package, and the folders mirror the
package's."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.helpers.paths import FIXTURES, GOLDEN, REPO, TESTS

#: Folders of tests that are not named after a package of kms_rescue: tests of docs/, and of what is shipped.
NOT_A_PACKAGE = {"docs", "packaging"}
#: Folders that hold no tests.
NOT_TESTS = {"helpers", "fixtures", "golden"}


def _imported(path: Path, root: Path) -> list[str]:
    """The dotted names ``path`` imports (relative imports resolved); ``from m import n`` yields ``m`` and ``m.n``,
    since ``n`` may be a module."""
    package = path.relative_to(root).with_suffix("").parts[:-1]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = list(package[:len(package) - node.level + 1]) if node.level else []
            base = ".".join([*parts, *([node.module] if node.module else [])])
            names += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return names


def _is_test_module(name: str, root: Path) -> bool:
    """Whether the dotted ``name`` is a file under ``root`` that pytest collects (test_*.py) or loads (conftest)."""
    file = root.joinpath(*name.split(".")).with_suffix(".py")
    return file.is_file() and (file.name.startswith("test_") or file.name == "conftest.py")


def cross_imports(tests: Path) -> list[str]:
    """Every import, in any Python file of ``tests``, of a test module or a conftest: 'importer -> imported'."""
    root = tests.parent
    return [f"{path.relative_to(root)} -> {name}"
            for path in sorted(tests.rglob("*.py"))
            for name in _imported(path, root) if _is_test_module(name, root)]


def test_no_test_module_imports_another() -> None:
    assert cross_imports(TESTS) == []


@pytest.mark.parametrize("statement", [
    "from tests.cli.test_a import helper",
    "from tests.cli import test_a",
    "import tests.cli.test_a",
    "from . import test_a",
    "from .test_a import helper",
    "from ..test_top import helper",
    "from tests import conftest",
])
def test_the_check_sees_every_form_of_import(tmp_path: Path, statement: str) -> None:
    tests = tmp_path / "tests"
    (tests / "cli").mkdir(parents=True)
    for name in ("__init__.py", "conftest.py", "test_top.py", "cli/__init__.py", "cli/test_a.py"):
        (tests / name).write_text("def helper(): pass\n")
    (tests / "helpers").mkdir()
    (tests / "helpers" / "__init__.py").write_text("")
    (tests / "helpers" / "paths.py").write_text("")
    (tests / "cli" / "test_b.py").write_text(f"from tests.helpers.paths import REPO\n{statement}\n")
    found = cross_imports(tests)
    assert len(found) == 1 and found[0].startswith("tests/cli/test_b.py -> "), found


def test_every_folder_of_test_code_is_a_package() -> None:
    """pytest's 'prepend' import mode names a module by its packages (tests.cli.test_fix): a folder without
    ``__init__.py`` would be imported as top-level modules, and two files of the same name would clash."""
    folders = {path.parent for path in TESTS.rglob("*.py")}
    missing = sorted(str(folder.relative_to(REPO)) for folder in folders
                     if not (folder / "__init__.py").is_file() and folder != TESTS)
    assert missing == []
    assert (TESTS / "__init__.py").is_file()
    assert not [p for p in (*FIXTURES.rglob("*.py"), *GOLDEN.rglob("*.py"))], "data folders hold no code"


def test_the_folders_mirror_the_package() -> None:
    package = REPO / "kms_rescue"
    folders = sorted(p for p in TESTS.rglob("*") if p.is_dir() and p.name != "__pycache__"
                     and not set(p.relative_to(TESTS).parts) & NOT_TESTS)
    assert folders, "tests/ has folders"
    strays = [str(folder.relative_to(TESTS)) for folder in folders
              if folder.relative_to(TESTS).parts[0] not in NOT_A_PACKAGE
              and not (package / folder.relative_to(TESTS)).is_dir()]
    assert strays == [], "a folder of tests/ named after no package of kms_rescue"
    assert all((package / name).is_dir() for name in ("policy", "aws", "verdict", "render", "lab", "cli"))


def test_the_shared_paths_point_into_this_repository() -> None:
    assert (REPO / "pyproject.toml").is_file() and (REPO / "kms_rescue" / "__init__.py").is_file()
    assert FIXTURES.is_dir() and GOLDEN.is_dir()


def test_every_test_file_the_repository_names_exists() -> None:
    """The docs, the code's comments and the tests' docstrings point at test files by path; a move must not leave
    them pointing nowhere. (This module is left out: it names the files of its planted tree.)"""
    named = re.compile(r"\btests/[\w/]*test_\w+\.py")
    sources = [*(REPO / "docs").rglob("*.md"), REPO / "README.md", REPO / "action.yml", REPO / "pyproject.toml",
               *(REPO / "kms_rescue").rglob("*.py"), *(p for p in TESTS.rglob("*.py") if p != Path(__file__))]
    dangling = sorted(f"{path.relative_to(REPO)}: {name}" for path in sources
                      for name in set(named.findall(path.read_text(encoding="utf-8")))
                      if not (REPO / name).is_file())
    assert len(sources) > 100
    assert dangling == []
