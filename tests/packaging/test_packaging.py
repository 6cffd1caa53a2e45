"""Packaging: the sdist and the wheel build without a warning; the sdist carries the docs, the report schema and
the licence; the wheel carries the schema that `report --schema` prints; the version has one source; every
third-party module the package imports is a declared dependency; the built wheel installs into a fresh venv and
runs; without the lab extra, `demo` and `lab` say which extra to install (exit 2).

The build runs without isolation (setuptools and build are dev dependencies), so no download per run.
"""

from __future__ import annotations

import ast
import email
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import kms_rescue
from tests.helpers.paths import REPO

ROOT = REPO
DOCS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    out = tmp_path_factory.mktemp("dist")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist, "log": proc.stdout + proc.stderr}


def test_the_build_is_clean_of_warnings(built):
    noisy = [line for line in str(built["log"]).splitlines() if re.search(r"(?i)warn|deprecat", line)]
    assert not noisy, noisy


def test_the_sdist_has_the_docs_schema_and_licence(built):
    with tarfile.open(built["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"LICENSE", "README.md", "docs/report.schema.json", "kms_rescue/report.schema.json",
            "docs/audit.schema.json", "kms_rescue/audit.schema.json"} <= names
    assert set(DOCS) <= names, set(DOCS) - names


def test_the_wheel_has_the_schema_licence_and_metadata(built):
    with zipfile.ZipFile(built["wheel"]) as whl:
        names = set(whl.namelist())
        schema = whl.read("kms_rescue/report.schema.json")
        audit_schema = whl.read("kms_rescue/audit.schema.json")
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(whl.read(meta_name))
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert schema == (ROOT / "docs" / "report.schema.json").read_bytes()
    assert audit_schema == (ROOT / "docs" / "audit.schema.json").read_bytes()
    json.loads(schema)
    json.loads(audit_schema)
    assert meta["Version"] == kms_rescue.__version__
    assert meta["License-Expression"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")[:200]
    assert any(r.startswith("rich") for r in meta.get_all("Requires-Dist"))


def test_the_version_has_one_source():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert not re.search(r'(?m)^version\s*=\s*"', text), "pyproject.toml repeats the version"
    assert 'version = { attr = "kms_rescue.__version__" }' in text
    assert 'dynamic = ["version"]' in text
    assert md.version("kms-rescue") == kms_rescue.__version__


def _imported_top_level_modules() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "kms_rescue").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("kms_rescue", "__future__")}


def test_every_imported_module_is_a_declared_dependency():
    declared = {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower().replace("_", "-")
                for r in md.requires("kms-rescue") or []}
    owners = md.packages_distributions()
    for module in sorted(_imported_top_level_modules()):
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [])}
        assert dists & declared, f"{module} (from {dists or 'nothing installed'}) is imported but not declared"


def test_the_schema_is_printable(capsys):
    from kms_rescue.cli.app import main

    assert main(["report", "--schema"]) == 0
    assert capsys.readouterr().out == (ROOT / "docs" / "report.schema.json").read_text(encoding="utf-8")


def test_the_built_wheel_installs_and_runs_in_a_fresh_venv(built, tmp_path: Path):
    # The wheel alone (--no-deps); its dependencies come from this environment's site-packages through a .pth
    # file, which adds the directory but not its editable-install hooks, so kms_rescue is the wheel's.
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([str(python), "-c", purelib], text=True, cwd=tmp_path).strip())
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "botocore").is_dir())
    (site / "deps.pth").write_text(f"{deps}\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(built["wheel"])], check=True, timeout=300, capture_output=True)
    script = target / "bin" / "kms-rescue"
    where = subprocess.check_output([str(python), "-c", "import kms_rescue; print(kms_rescue.__file__)"], text=True,
                                    cwd=tmp_path)
    assert where.startswith(str(target)), where
    assert subprocess.run([str(script), "--help"], capture_output=True, timeout=60, cwd=tmp_path).returncode == 0
    example = ROOT / "docs" / "examples" / "sole-admin-deleted.json"
    lint = subprocess.run([str(script), "lint", str(example), "--account", "111122223333"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert lint.returncode == 4 and "KR001" in lint.stdout, lint.stdout + lint.stderr
    schema = subprocess.run([str(script), "report", "--schema"], capture_output=True, timeout=60, cwd=tmp_path)
    assert schema.returncode == 0 and schema.stdout == (ROOT / "docs" / "report.schema.json").read_bytes()


# A module set to None in sys.modules cannot be imported, and importlib.util.find_spec reports it missing (Python
# reference, "The module cache"): the same as not installed, without a second environment.
@pytest.mark.parametrize("module", ["moto", "werkzeug", "flask", "jsonschema"])
@pytest.mark.parametrize("command", [["demo"], ["lab", "--list"], ["lab", "sole-admin-deleted", "--aws-config", "x"]])
def test_without_the_lab_extra_demo_and_lab_name_the_extra(module: str, command: list[str], tmp_path: Path):
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            "from kms_rescue.cli.app import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'kms-rescue[lab]'" in lines[0] and module in lines[0], proc.stderr
    assert not (tmp_path / "x").exists()
