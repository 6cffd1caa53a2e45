"""IAM wildcard matching in linear time: table cases, a property test against a straightforward reference matcher,
and the measured ReDoS cases of issue 11 as regressions through the CLI.

Sources (IAM User Guide): "IAM JSON policy elements: Condition operators" (OPS: StringLike "case-sensitive
matching; the values can include multi-character match wildcards (*) and single-character match wildcards (?)";
ArnLike: each of the six colon-delimited parts of the ARN is checked separately), "IAM JSON policy elements:
Action" (ACTION: action names are case-insensitive and may use * and ?), "IAM policy elements: Variables and tags"
(VARS: a variable's value is substituted literally).
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kms_rescue.policy.actions import action_matches
from kms_rescue.policy.condition_check import evaluate_condition
from kms_rescue.policy.evaluate import actions_cover
from kms_rescue.policy.like_patterns import like_match
from kms_rescue.policy.model import Condition
from kms_rescue.policy.policy_variables import parse_template
from kms_rescue.policy.request_context import RequestContext
from kms_rescue.policy.wildcard import ONE, STAR, compile_pattern, wildcard_match
from kms_rescue.status import ExitStatus
from tests.helpers.paths import SCRIPT

ACCOUNT = "111122223333"
# Generous: each run takes well under a second now; before the fix the cases below took from 4 s to minutes.
CLI_TIMEOUT_S = 20


def reference_match(pattern: str, value: str) -> bool:
    """The textbook dynamic programme: does ``value[i:]`` match ``pattern[j:]``? (``*`` any run, ``?`` one.)"""

    @cache
    def m(i: int, j: int) -> bool:
        if j == len(pattern):
            return i == len(value)
        if pattern[j] == "*":
            return m(i, j + 1) or (i < len(value) and m(i + 1, j))
        return i < len(value) and pattern[j] in ("?", value[i]) and m(i + 1, j + 1)

    return m(0, 0)


def reference_arn_match(pattern: str, value: str) -> bool:
    """OPS, ArnLike: six colon-separated parts matched one by one; the sixth is the rest (colons included)."""
    pp, vp = pattern.split(":", 5), value.split(":", 5)
    return len(pp) == 6 and len(vp) == 6 and all(reference_match(p, v) for p, v in zip(pp, vp, strict=True))


@pytest.mark.parametrize(
    ("pattern", "value", "expected", "fact"),
    [
        ("arn:aws:iam::111122223333:role/*", "arn:aws:iam::111122223333:role/Admin", True, "OPS: * matches any run"),
        ("role/*", "role/", True, "OPS: * matches the empty run too"),
        ("role/?dmin", "role/Admin", True, "OPS: ? matches exactly one character"),
        ("role/?dmin", "role/dmin", False, "OPS: ? never matches zero characters"),
        ("role/Admin", "role/admin", False, "OPS: StringLike is case-sensitive"),
        ("*a*a*a*a*a*a*a*b", "a" * 80, False, "OPS: no b, no match (the issue's ReDoS case)"),
        ("*a*a*a*a*a*a*a*b", "a" * 80 + "b", True, "OPS: ... and with the b it matches"),
        ("ab*ba", "aba", False, "OPS: the first and the last chunk may not overlap"),
        ("ab*ba", "abba", True, "OPS: adjacent chunks are fine"),
        ("*?*?*", "x", False, "OPS: two ? need two characters"),
        ("", "", True, "OPS: the empty pattern matches only the empty value"),
    ],
)
def test_wildcard_table(pattern: str, value: str, expected: bool, fact: str) -> None:
    assert wildcard_match(pattern, value) is expected, fact
    assert like_match(pattern, value) is expected, fact


def test_action_matching_is_case_insensitive_with_wildcards() -> None:
    assert action_matches("KMS:put*", "kms:PutKeyPolicy"), "ACTION: names are case-insensitive"
    assert actions_cover(("kms:Get*", "kms:?escribeKey"), "kms:DescribeKey"), "ACTION: ? is one character"
    assert not actions_cover(("kms:Get*",), "kms:PutKeyPolicy")


def test_a_variable_value_is_literal() -> None:
    ctx = RequestContext({"aws:username": "a*"})
    assert like_match("user/${aws:username}", "user/a*", ctx), "VARS: the value is substituted literally"
    assert not like_match("user/${aws:username}", "user/abc", ctx), "VARS: a * in a value is no wildcard"
    literal = compile_pattern(["a*", STAR, "?", ONE])
    assert literal.matches("a*xyz?q") and not literal.matches("abxyz?q")


def test_arn_parts_are_matched_one_by_one() -> None:
    cond = Condition("ArnLike", "aws:SourceArn", ("arn:aws:iam::*:role/Admin",))
    assert evaluate_condition(cond, RequestContext({"aws:SourceArn": f"arn:aws:iam::{ACCOUNT}:role/Admin"})).result
    assert not evaluate_condition(cond, RequestContext({"aws:SourceArn": "arn:aws:iam::1:2:role/Admin"})).result, (
        "OPS: * in the account part cannot span a colon"
    )


patterns = st.text(alphabet="ab*?:", max_size=12)
values = st.text(alphabet="abc:", max_size=14)


@settings(max_examples=400, deadline=None)
@given(patterns, values, st.booleans())
def test_matches_like_the_reference(pattern: str, value: str, ignore_case: bool) -> None:
    got = wildcard_match(pattern, value.upper() if ignore_case else value, ignore_case=ignore_case)
    assert got == reference_match(pattern, value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["arn", "aws", "a", "b", ":", "*", "?", "::"]), max_size=12),
       st.lists(st.sampled_from(["arn", "aws", "a", "b", ":", "c"]), max_size=12))
def test_arn_like_matches_the_reference(pattern_parts: list[str], value_parts: list[str]) -> None:
    pattern, value = "".join(pattern_parts), "".join(value_parts)
    cond = Condition("ArnLike", "aws:SourceArn", (pattern,))
    got = evaluate_condition(cond, RequestContext({"aws:SourceArn": value}))
    assert got.result is reference_arn_match(pattern, value)


# The variable syntax as one regex: the former reader, kept as the reference. Fine on the short strings below; on
# "${" and thousands of spaces it takes cubic time, which is why the reader no longer uses it.
_REFERENCE_VARIABLE = re.compile(r"\$\{\s*([^},']*?)\s*(?:,\s*'([^']*)'\s*)?\}")
_ESCAPED = {"*": "*", "?": "?", "$": "$"}


def reference_template(text: str) -> tuple[tuple[object, ...], ...]:
    """VARS: ${key} and ${key, 'default'}; ${*}, ${?}, ${$} are the literal characters; * and ? wildcards."""
    segs: list[tuple[object, ...]] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            segs.append(("lit", "".join(buf)))
            buf.clear()

    i = 0
    while i < len(text):
        ch = text[i]
        m = _REFERENCE_VARIABLE.match(text, i) if text.startswith("${", i) else None
        if ch in "*?":
            flush()
            segs.append(("star",) if ch == "*" else ("one",))
            i += 1
        elif m and m.group(1):
            if m.group(1) in _ESCAPED and m.group(2) is None:
                buf.append(_ESCAPED[m.group(1)])
            else:
                flush()
                segs.append(("var", m.group(1).lower(), m.group(1), m.group(2)))
            i = m.end()
        else:
            buf.append(ch)
            i += 1
    flush()
    return tuple(segs)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["${", "}", ",", "'", " ", "a", "B", "*", "?", "$", ":", "\t"]), max_size=14))
def test_variables_are_read_like_the_reference(parts: list[str]) -> None:
    text = "".join(parts)
    assert parse_template(text) == reference_template(text)


def test_worst_cases_stay_fast() -> None:
    """A bound on work, not on time: 12 stars against 10,000 characters runs the chunk search a few times per
    star; a backtracking regex would never finish. (The timed figures are in ``make bench``.)"""
    pattern = "*a" * 12 + "*b"
    assert not wildcard_match(pattern, "a" * 10_000)
    assert parse_template("${" + " " * 30_000) == (("lit", "${" + " " * 30_000),), "no cubic variable scan"


def _redos_policy(stars: int) -> dict[str, object]:
    """The issue's 444-byte policy: an Allow for role/ + 80 x a, a Deny unless aws:PrincipalArn is like
    role/*a*a…*b with ``stars`` wildcards before the b."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/{'a' * 80}"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "OnlyB", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
             "Condition": {"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/" + "*a" * (stars - 1)
                                          + "*b"}}},
        ],
    }


@pytest.mark.parametrize("stars", [4, 7, 12])
def test_issue11_redos_policy_lint_and_explain_complete(stars: int, tmp_path: Path) -> None:
    path = tmp_path / f"redos-{stars}.json"
    path.write_text(json.dumps(_redos_policy(stars)))
    lint = subprocess.run([str(SCRIPT), "lint", str(path), "--account", ACCOUNT], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S)
    assert lint.returncode == 4, lint.stderr  # the Deny covers the only admin: locked out
    explain = subprocess.run(
        [str(SCRIPT), "explain", "--policy", str(path), "--principal", f"arn:aws:iam::{ACCOUNT}:role/{'a' * 80}",
         "--action", "kms:PutKeyPolicy", "--format", "json"], capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert explain.returncode == 0, explain.stderr
    assert json.loads(explain.stdout)["decision"] == "explicit_deny"


def test_variable_scan_regression_through_lint(tmp_path: Path) -> None:
    """A condition value of "${" and 20,000 spaces took minutes to read (a cubic regex); now it is literal text."""
    policy = _redos_policy(2)
    policy["Statement"][1]["Condition"] = {"StringLike": {"aws:PrincipalTag/x": "${" + " " * 20_000}}  # type: ignore[index]
    path = tmp_path / "vars.json"
    path.write_text(json.dumps(policy))
    run = subprocess.run([str(SCRIPT), "lint", str(path), "--account", ACCOUNT], capture_output=True, text=True,
                         timeout=CLI_TIMEOUT_S)
    assert run.returncode in (ExitStatus.OK, ExitStatus.FINDINGS), run.stderr
