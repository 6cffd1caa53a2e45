"""A bounded fuzz suite over what untrusted input reaches (issue 11): ``lint``, ``explain`` and the lab's scenario
loader. Whatever the input, the CLI exits 0, 1, 2 or 4; an input error (2) is exactly one line on stderr; nothing
is an internal error; no run takes more than a few seconds (hypothesis's ``deadline``). The CLI runs in-process
through ``main()``; counts are bounded so the whole file takes well under a minute on two cores.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kms_rescue.cli.app import main
from kms_rescue.errors import UsageError
from kms_rescue.lab.scenario import builtin_names, builtin_text, load_scenario
from kms_rescue.status import ExitStatus
from tests.helpers import paths

ACCOUNT = "111122223333"
FIXTURES = paths.FIXTURES / "lint"
RUN_DEADLINE_MS = 5_000  # "no run over a few seconds", per example
FUZZ = settings(max_examples=100, deadline=RUN_DEADLINE_MS, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)

# Policy vocabulary: elements, operators, keys and values that reach every part of the engine.
ELEMENTS = ["Version", "Id", "Statement", "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
            "Resource", "NotResource", "Condition", "AWS", "Service", "Policy", "Resources", "Type", "Properties",
            "KeyPolicy", "resource_changes", "planned_values", "AWSTemplateFormatVersion"]
OPERATORS = ["StringLike", "StringNotLike", "ArnLike", "ArnNotLike", "StringEquals", "NumericLessThan",
             "DateGreaterThan", "IpAddress", "Bool", "Null", "ForAnyValue:StringLike", "ForAllValues:ArnLike",
             "StringLikeIfExists", "BinaryEquals", "Fn::Sub", "Fn::Join", "Ref", "Fn::GetAtt"]
KEYS = ["aws:PrincipalArn", "aws:SourceIp", "kms:ViaService", "aws:CurrentTime", "aws:PrincipalTag/team",
        "kms:CallerAccount", "aws:MultiFactorAuthPresent"]
ATOMS = ["*", "?", "Allow", "Deny", "kms:*", "kms:PutKeyPolicy", "kms:Get*", "2012-10-17", ACCOUNT,
         f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{ACCOUNT}:role/*a*a*a*a*b", "arn:aws:iam::*:role/?",
         "${aws:username}", "${", "${a, 'b'}", "${*}", "192.0.2.0/24", "1e309", "AIDAJQABLZS4A3QDU576Q", ""]

atoms = st.one_of(
    st.sampled_from(ATOMS),
    st.text(alphabet="a*?:/${}', \n\\\"", max_size=40),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
documents = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(ELEMENTS + OPERATORS + KEYS), inner, max_size=5),
    ),
    max_leaves=30,
)


def _statement(effect: str, action: Any, cond: Any) -> dict[str, Any]:
    return {"Effect": effect, "Principal": {"AWS": "*"}, "Action": action, "Resource": "*", "Condition": cond}


conditions = st.dictionaries(
    st.sampled_from(OPERATORS), st.dictionaries(st.sampled_from(KEYS), st.one_of(atoms, st.lists(atoms, max_size=3)),
                                                max_size=2), max_size=2)
policies = st.builds(
    lambda stmts, version: {"Version": version, "Statement": stmts},
    st.lists(st.builds(_statement, st.sampled_from(["Allow", "Deny", "Permit"]),
                       st.one_of(st.sampled_from(ATOMS), st.lists(st.sampled_from(ATOMS), max_size=3)),
                       conditions), max_size=4),
    st.sampled_from(["2012-10-17", "2008-10-17", "2020-01-01"]),
)


def _fixture_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(FIXTURES.iterdir()) if p.suffix in (".json", ".yaml")]


@st.composite
def mutated_fixture(draw: st.DrawFn) -> str:
    """A lint fixture (JSON policy, Terraform plan, CloudFormation JSON/YAML) with a few random edits."""
    text = draw(st.sampled_from(_fixture_texts()))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        how = draw(st.sampled_from(["cut", "insert", "delete"]))
        if how == "cut":
            text = text[:at]
        elif how == "insert":
            text = text[:at] + draw(st.sampled_from(["*a" * 8, "&x ", "*x", "[", "{", "}", "\"", ":", "!Sub ",
                                                     "9" * 5000, "\x00", "${", "\t", "- ", "[" * 300])) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(min_value=1, max_value=20)):]
    return text


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="kms-rescue-fuzz-") as tmp:
        yield Path(tmp)


def run_cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def check_outcome(code: int, err: str) -> None:
    assert code in (ExitStatus.OK, ExitStatus.FINDINGS, ExitStatus.USAGE, ExitStatus.LOCKED_OUT), (code, err)
    assert "internal error" not in err and "Traceback" not in err, err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err


def lint_text(text: str | bytes, name: str = "input.json") -> None:
    with scratch() as tmp:
        path = tmp / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        check_outcome(*run_cli(["lint", str(path), "--account", ACCOUNT]))


@FUZZ
@given(documents)
def test_lint_any_json_document(document: Any) -> None:
    lint_text(json.dumps(document))


@FUZZ
@given(policies)
def test_lint_policy_shaped_documents(policy: dict[str, Any]) -> None:
    lint_text(json.dumps(policy))


@FUZZ
@given(mutated_fixture(), st.sampled_from(["input.json", "input.yaml"]))
def test_lint_mutated_fixtures(text: str, name: str) -> None:
    lint_text(text.encode("utf-8", errors="surrogatepass"), name)


@FUZZ
@given(st.binary(max_size=200))
def test_lint_arbitrary_bytes(data: bytes) -> None:
    lint_text(data)


@FUZZ
@given(policies, st.sampled_from([f"arn:aws:iam::{ACCOUNT}:role/{'a' * 80}", f"arn:aws:iam::{ACCOUNT}:root",
                                  f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/s", "alice", "*"]),
       st.sampled_from(["kms:PutKeyPolicy", "kms:Decrypt", "kms:*", "bad", "s3:GetObject"]),
       st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(ATOMS)), max_size=3))
def test_explain(policy: dict[str, Any], principal: str, action: str, context: list[tuple[str, str]]) -> None:
    with scratch() as tmp:
        path = tmp / "policy.json"
        path.write_text(json.dumps(policy))
        argv = ["explain", "--policy", str(path), "--principal", principal, "--action", action,
                "--key-arn", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
        for key, value in context:
            argv += ["--context", f"{key}={value}"]
        check_outcome(*run_cli(argv))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


@st.composite
def mutated_scenario(draw: st.DrawFn) -> Any:
    """A built-in scenario with one value anywhere in it (a field, an identity, a history entry...) replaced."""
    base = json.loads(builtin_text(draw(st.sampled_from(builtin_names()))))
    path = draw(st.sampled_from(_paths(base)[1:]))
    replacement = draw(st.one_of(documents, st.sampled_from(["-99999999999999d", "-1s", "2026-13-01T00:00:00Z",
                                                             "role/", "x" * 300, ACCOUNT + "\n"])))
    target = base
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = replacement
    return base


def _scenario_mutations() -> st.SearchStrategy[Any]:
    return st.one_of(documents, mutated_scenario())


@FUZZ
@given(_scenario_mutations())
def test_scenario_loader(document: Any) -> None:
    """The loader either returns a scenario or raises its one-line ScenarioError (a UsageError): nothing else."""
    with scratch() as tmp:
        path = tmp / "scenario.json"
        path.write_text(json.dumps(document))
        try:
            load_scenario(str(path))
        except UsageError as exc:
            assert "\n" not in str(exc).strip(), str(exc)


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_scenarios_still_load(name: str) -> None:
    """The fuzzed loader is the real one: every built-in still loads."""
    assert load_scenario(name).name
