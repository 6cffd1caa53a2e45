"""docs/engine.md stands alone: every rule of the engine has the AWS page it comes from, and the code, the tests and
the docs cite the repository's own docs/, never a file outside it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers.paths import REPO

ROOT = REPO
ENGINE = (ROOT / "docs" / "engine.md").read_text(encoding="utf-8")
AWS_URL = re.compile(r"https://docs\.aws\.amazon\.com/\S+?\.html")


def _section(title: str) -> str:
    return ENGINE.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 3 and not set(cells[0]) <= {"-"} and cells[0] not in {"#", "Rule"}:
            rows[cells[0]] = line
    return rows


def test_every_rule_has_its_aws_page() -> None:
    rules = _rows(_section("The rules it applies"))
    sources = _rows(_section("Where each rule comes from"))
    assert [str(n) for n in range(1, len(rules) + 1)] == list(rules), "rules are numbered 1, 2, …"
    assert set(rules) <= set(sources), f"rules without their page: {sorted(set(rules) - set(sources), key=int)}"
    linked = {m.group(0) for m in AWS_URL.finditer(_section("Where each rule comes from"))}
    assert len(linked) >= 10
    titled = dict(re.findall(r"\*([^*]+)\* \((https://docs\.aws\.amazon\.com/\S+?)\)", ENGINE))
    for name, row in sources.items():
        page = row.split("|")[2]
        named = re.findall(r"\*([^*]+)\*", page)
        assert AWS_URL.search(page) or any(t in titled for t in named), f"rule {name}: no AWS page with its address"


def test_test_cases_name_rules_that_exist() -> None:
    rules = _rows(_section("The rules it applies"))
    evaluate_tests = ROOT / "tests" / "policy" / "test_evaluate.py"
    cited = set(re.findall(r'"rule (\d+)\b', evaluate_tests.read_text(encoding="utf-8")))
    assert cited and cited <= set(rules), sorted(cited - set(rules))


def test_nothing_cites_a_file_outside_the_repository() -> None:
    outside = re.compile(r"DESIGN(\.md)?\b|§\d|/work/shared|shared/DESIGN")
    found = []
    for folder, pattern in (("kms_rescue", "*.py"), ("tests", "*.py"), ("docs", "*.md"), ("bench", "*.py")):
        for path in sorted((ROOT / folder).rglob(pattern)):
            if path == Path(__file__):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if outside.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert not found, found
