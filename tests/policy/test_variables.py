"""IAM wildcard matching and policy variables (IAM User Guide, "IAM policy elements: Variables and tags" (VARS) and
"IAM JSON policy elements: Condition operators", string wildcards (OPS)), as used for Resource and the Like
operators."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kms_rescue.policy.like_patterns import like_match, like_match3
from kms_rescue.policy.policy_variables import substitute_variables, variable_keys
from kms_rescue.policy.request_context import RequestContext

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CTX = RequestContext(
    {
        "aws:username": "alice",
        "aws:PrincipalAccount": ACCOUNT,
        "aws:PrincipalTag/Team": "red",
        "aws:PrincipalTag/star": "a*",
        "aws:TagKeys": ["env", "team"],
    }
)


@pytest.mark.parametrize(
    ("pattern", "value", "expected", "fact"),
    [
        ("*", "", True, "OPS: * matches any run of characters, the empty one included"),
        ("*", "anything:at/all", True, "OPS: * matches any run of characters"),
        (f"arn:aws:kms:*:{ACCOUNT}:key/*", KEY, True, "OPS: * matches within the string"),
        (f"arn:aws:kms:*:{ACCOUNT}:alias/*", KEY, False, "OPS: literal text must match"),
        ("key/????", "key/abcd", True, "OPS: ? matches exactly one character"),
        ("key/????", "key/abc", False, "OPS: ? matches exactly one character"),
        ("key/????", "key/abcde", False, "OPS: ? matches exactly one character"),
        ("Key/*", "key/abc", False, "OPS: matching is case-sensitive by default"),
        ("a.b", "axb", False, "regex metacharacters in the pattern are literal"),
        ("a+b(c)[d]", "a+b(c)[d]", True, "regex metacharacters in the pattern are literal"),
        ("line*", "line1\nline2", True, "* also runs over line breaks"),
        ("home/${aws:username}/*", "home/alice/file", True, "VARS: a variable is replaced by the request's value"),
        ("home/${aws:username}/*", "home/bob/file", False, "VARS: a variable is replaced by the request's value"),
        ("${aws:principaltag/team}", "red", True, "VARS: variable (and tag) key names are not case-sensitive"),
        ("${ aws:username }", "alice", True, "VARS: spaces around the key name are ignored"),
        ("${aws:PrincipalTag/star}", "a*", True, "VARS: a variable's value is matched literally"),
        ("${aws:PrincipalTag/star}", "abc", False, "VARS: a * in a variable's value is not a wildcard"),
        ("${aws:PrincipalTag/star}*", "a*xyz", True, "VARS: wildcards around a variable still work"),
        ("${aws:missing, 'nobody'}", "nobody", True, "VARS: the default stands in for a missing key"),
        ("${aws:username, 'nobody'}", "alice", True, "VARS: the default is unused when the key has a value"),
        ("${aws:missing, ''}x", "x", True, "VARS: an empty default is a value"),
        ("${aws:missing}", "", False, "VARS: a variable with no value and no default matches nothing"),
        ("*${aws:missing}*", "anything", False, "VARS: a variable with no value and no default matches nothing"),
        ("${aws:TagKeys}", "env", False, "VARS: a multivalued key cannot be used as a variable"),
        ("${*}", "*", True, "VARS: ${*} is a literal *"),
        ("${*}", "x", False, "VARS: ${*} is a literal *, not a wildcard"),
        ("${?}", "?", True, "VARS: ${?} is a literal ?"),
        ("${?}", "x", False, "VARS: ${?} is a literal ?, not a wildcard"),
        ("${$}{x}", "${x}", True, "VARS: ${$} is a literal $"),
        ("cost$", "cost$", True, "a $ that starts no variable is literal"),
        ("${unclosed", "${unclosed", True, "a ${ without } is literal text"),
    ],
)
def test_like_match(pattern: str, value: str, expected: bool, fact: str) -> None:
    assert like_match(pattern, value, CTX) is expected, fact


def test_like_match_without_context_uses_defaults() -> None:
    assert like_match("${aws:username, 'nobody'}", "nobody")
    assert not like_match("${aws:username}", "alice")


def test_like_match_case_insensitive() -> None:
    assert like_match("KMS:Put*", "kms:PutKeyPolicy", case_sensitive=False)
    assert not like_match("KMS:Put*", "kms:PutKeyPolicy")
    assert like_match("${aws:username}", "ALICE", CTX, case_sensitive=False)


def test_unknown_variable() -> None:
    ctx = RequestContext({"aws:PrincipalAccount": ACCOUNT}, unknown=["aws:username"])
    assert like_match3("home/${aws:username}", "home/alice", ctx) is None
    assert like_match("home/${aws:username}", "home/alice", ctx) is False
    assert like_match3("home/*", "home/alice", ctx) is True
    assert like_match3("${aws:PrincipalAccount}", "444455556666", ctx) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("home/${aws:username}/${aws:PrincipalTag/team}", "home/alice/red"),
        ("${aws:missing, 'nobody'}", "nobody"),
        ("${*}${?}${$}", "*?$"),
        ("plain*text", "plain*text"),
        ("${aws:missing}", None),
        ("${aws:TagKeys}", None),
    ],
)
def test_substitute_variables(text: str, expected: str | None) -> None:
    assert substitute_variables(text, CTX) == expected


def test_variable_keys() -> None:
    assert variable_keys("arn:aws:s3:::b/${aws:username}/${aws:PrincipalTag/team, 'x'}${*}") == (
        "aws:username",
        "aws:PrincipalTag/team",
    )


@settings(max_examples=300, deadline=None)
@given(text=st.text(), other=st.text())
def test_pattern_without_wildcards_is_equality(text: str, other: str) -> None:
    """OPS: only * and ? are wildcards (and $ starts variables); any other text matches only itself."""
    pattern = text.replace("*", "").replace("?", "").replace("$", "")
    assert like_match(pattern, pattern)
    assert like_match(pattern, other) is (pattern == other)


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(alphabet="ab:/", max_size=6), rest=st.text(max_size=10))
def test_trailing_star_is_prefix_match(prefix: str, rest: str) -> None:
    assert like_match(prefix + "*", prefix + rest)
