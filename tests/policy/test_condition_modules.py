"""The public pieces the Condition evaluator is built from (``docs/engine.md``, "Conditions, module by module"): the
request context's lookup, prepared conditions, lazily worded checks, three-valued logic, typed values, patterns, and
the re-exports of ``kms_rescue.policy.conditions``; plus the house rule that ``policy/`` imports at module top.

Sources (IAM User Guide): "IAM JSON policy elements: Condition" (COND: condition key names are not case-sensitive),
"IAM JSON policy elements: Condition operators" (OPS), "Conditions with multiple context keys or values" (MULTI),
"Single-valued vs. multivalued context keys" (SETS), "AWS global condition context keys" (GLOBAL), "IAM policy
elements: Variables and tags" (VARS).
"""

from __future__ import annotations

import ast
import ipaddress
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kms_rescue.policy import conditions
from kms_rescue.policy.condition_check import (
    ConditionCheck,
    judge_all,
    prepare_condition,
    prepare_conditions,
    prepared_condition,
)
from kms_rescue.policy.condition_operators import operator_info, quote, require_operator
from kms_rescue.policy.condition_values import (
    RequestValueError,
    compare,
    parse_binary,
    parse_date,
    parse_network,
    parse_number,
    policy_value,
)
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.like_patterns import arn_pattern, like_pattern
from kms_rescue.policy.management import DirectCallContext
from kms_rescue.policy.model import Condition
from kms_rescue.policy.policy_variables import (
    NO_VALUE,
    has_variables,
    parse_template,
    render,
    resolve_variable,
    static_text,
)
from kms_rescue.policy.request_context import RequestContext, multi_valued, single_valued
from kms_rescue.policy.tristate import and3, not3, or3, word

ACCOUNT = "111122223333"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
POLICY_DIR = Path(__file__).resolve().parent.parent / "kms_rescue" / "policy"


# --- the request context --------------------------------------------------------------------------------------


def test_values_for_ignores_the_case_of_the_key() -> None:
    """COND: condition key names are not case-sensitive; tag keys included."""
    ctx = RequestContext({"aws:PrincipalTag/Team": "red", "aws:SourceIp": ["192.0.2.7"]})
    assert ctx.values_for("aws:principaltag/team") == ("red",)
    assert ctx.values_for("AWS:PRINCIPALTAG/TEAM") == ("red",)
    assert ctx.values_for("aws:SourceIp") == ("192.0.2.7",)


def test_values_for_shares_an_immutable_tuple_and_get_copies() -> None:
    """values_for is the evaluator's lookup: a tuple, shared between calls (nothing to copy); get returns a list the
    caller may change without changing the context."""
    ctx = RequestContext({"aws:TagKeys": ["env", "team"]})
    first = ctx.values_for("aws:TagKeys")
    assert isinstance(first, tuple) and first is ctx.values_for("aws:tagkeys")
    copy = ctx.get("aws:TagKeys")
    assert copy == ["env", "team"]
    assert copy is not None
    copy.append("owner")
    assert ctx.values_for("aws:TagKeys") == ("env", "team")


@pytest.mark.parametrize(
    ("values", "key"),
    [
        pytest.param({}, "aws:username", id="never-given"),
        pytest.param({"aws:TagKeys": []}, "aws:TagKeys", id="empty-list-is-absent"),
    ],
)
def test_values_for_is_none_for_an_absent_key(values: dict[str, list[str]], key: str) -> None:
    """SETS / OPS, Null check: a key with no value is absent (null)."""
    assert RequestContext(values).values_for(key) is None


def test_derived_contexts_keep_their_class_and_their_own_values() -> None:
    """with_values and without return a context of the same class (management's DirectCallContext keeps its rule
    that keys a direct call never carries are absent, not unknown)."""
    base = DirectCallContext({"aws:PrincipalArn": ADMIN})
    more = base.with_values({"aws:SourceIp": "192.0.2.7"})
    assert type(more) is DirectCallContext
    assert more.values_for("aws:sourceip") == ("192.0.2.7",) and base.values_for("aws:SourceIp") is None
    assert more.is_unknown("aws:PrincipalOrgID") and not more.is_unknown("kms:ViaService")
    less = more.without("aws:PrincipalArn")
    assert type(less) is DirectCallContext and less.values_for("aws:PrincipalArn") is None
    assert more.values_for("aws:PrincipalArn") == (ADMIN,)


@pytest.mark.parametrize(
    ("key", "single", "multi"),
    [
        pytest.param("aws:PrincipalArn", True, False, id="principal-arn-single"),
        pytest.param("AWS:SourceIp", True, False, id="case-ignored"),
        pytest.param("aws:PrincipalTag/team", True, False, id="tag-prefix-single"),
        pytest.param("aws:TagKeys", False, True, id="tag-keys-multi"),
        pytest.param("kms:EncryptionContextKeys", False, True, id="kms-context-keys-multi"),
        pytest.param("example:Unlisted", False, False, id="not-listed"),
    ],
)
def test_single_and_multivalued_keys(key: str, single: bool, multi: bool) -> None:
    """GLOBAL ("Value type: Single-valued" / "Multivalued") and SETS: what lint advises on set operators follows."""
    assert (single_valued(key), multi_valued(key)) == (single, multi)


# --- three-valued logic ---------------------------------------------------------------------------------------

TRI = (True, False, None)


@pytest.mark.parametrize("a", TRI)
@pytest.mark.parametrize("b", TRI)
def test_three_valued_and_or_not(a: bool | None, b: bool | None) -> None:
    """MULTI: conditions are ANDed, a key's values ORed; with "unknown" (static analysis) the logic is Kleene's: a
    known False decides an AND and a known True an OR, otherwise unknown stays unknown."""
    expected_and = False if False in (a, b) else (None if None in (a, b) else True)
    expected_or = True if True in (a, b) else (None if None in (a, b) else False)
    assert and3([a, b]) is expected_and
    assert or3([a, b]) is expected_or
    assert not3(a) is (None if a is None else not a)
    assert word(a) == {True: "true", False: "false", None: "unknown"}[a]


def test_empty_and_is_true_and_empty_or_is_false() -> None:
    """A statement without conditions applies (AND of nothing); a key without a matching value does not (OR)."""
    assert and3([]) is True and or3([]) is False


# --- prepared conditions --------------------------------------------------------------------------------------

NET = "203.0.113.0/24"


@pytest.mark.parametrize(
    ("condition", "context", "expected", "fact"),
    [
        pytest.param(Condition("IpAddress", "aws:SourceIp", (NET,)), {"aws:SourceIp": "203.0.113.7"}, True,
                     "OPS, IP address: an address inside the CIDR block matches", id="ip-inside"),
        pytest.param(Condition("IpAddress", "aws:SourceIp", (NET,)), {"aws:SourceIp": "198.51.100.7"}, False,
                     "OPS, IP address: an address outside the block does not", id="ip-outside"),
        pytest.param(Condition("IpAddress", "aws:SourceIp", ("203.0.113.7/24",)), {"aws:SourceIp": "203.0.113.9"},
                     True, "OPS, IP address: the block 203.0.113.7/24 is 203.0.113.0/24", id="ip-host-bits"),
        pytest.param(Condition("IpAddress", "aws:SourceIp", ("2001:db8::/32",)), {"aws:SourceIp": "203.0.113.7"},
                     False, "OPS, IP address: an IPv4 address is in no IPv6 block", id="ip-other-version"),
        pytest.param(Condition("NotIpAddress", "aws:SourceIp", (NET,)), {}, True,
                     "OPS: a negated operator holds when the key is absent", id="not-ip-absent"),
        pytest.param(Condition("DateLessThan", "aws:CurrentTime", ("2026-12-31T00:00:00Z",)),
                     {"aws:CurrentTime": "2026-12-01T23:00:00Z"}, True,
                     "OPS, Date: ISO 8601 instants compare in time", id="date-before"),
        pytest.param(Condition("NumericLessThan", "aws:MultiFactorAuthAge", ("3600",)),
                     {"aws:MultiFactorAuthAge": "7200"}, False, "OPS, Numeric: 7200 is not below 3600",
                     id="numeric"),
        pytest.param(Condition("StringLike", "aws:PrincipalArn", (f"arn:aws:iam::{ACCOUNT}:role/${{aws:username}}*",)),
                     {"aws:PrincipalArn": ADMIN, "aws:username": "Adm"}, True,
                     "VARS: a variable's value is substituted, then the pattern matched", id="like-variable"),
        pytest.param(Condition("StringEquals", "aws:username", ("alice",)), {"aws:username": "ALICE"}, False,
                     "OPS, String: StringEquals is case-sensitive", id="string-case"),
        pytest.param(Condition("Null", "aws:SourceIp", ("true",)), {}, True,
                     "OPS, Null: true means the key is absent", id="null-absent"),
        pytest.param(Condition("Null", "aws:SourceIp", ("true",)), {"aws:SourceIp": "192.0.2.7"}, False,
                     "OPS, Null: true does not hold when the key is present", id="null-present"),
    ],
)
def test_prepared_condition_checks(
    condition: Condition, context: dict[str, str], expected: bool, fact: str
) -> None:
    prepared = prepare_condition(condition)
    check = prepared.check(RequestContext(context))
    assert check.result is expected, fact
    assert check.condition is condition


def test_the_checks_that_do_not_depend_on_the_request_are_built_once() -> None:
    """OPS: a policy value of the wrong type never matches, whatever the request; an absent key and an unknown key
    (static analysis) give the same check every time, so the prepared condition holds them."""
    bad = prepare_condition(Condition("IpAddress", "aws:SourceIp", ("not-an-ip",)))
    assert bad.invalid is not None and bad.invalid.result is False
    assert bad.check(RequestContext({"aws:SourceIp": "192.0.2.7"})) is bad.invalid
    assert bad.check(RequestContext(unknown=["aws:SourceIp"])) is bad.invalid
    good = prepare_condition(Condition("StringEqualsIfExists", "aws:username", ("alice",)))
    assert good.check(RequestContext()) is good.absent and good.absent.result is True  # OPS, ...IfExists
    assert good.check(RequestContext(unknown=["aws:username"])) is good.unknown and good.unknown.result is None


def test_prepare_condition_refuses_an_operator_iam_does_not_have() -> None:
    with pytest.raises(PolicyInputError) as err:
        prepare_condition(Condition("StringEqualz", "aws:username", ("alice",)))
    assert str(err.value) == 'unknown condition operator "StringEqualz"'


def test_prepared_condition_is_remembered_for_equal_conditions() -> None:
    """Lint and the management analysis read equal conditions many times; they share one prepared form."""
    one = prepared_condition(Condition("StringEquals", "aws:username", ("alice",)))
    assert prepared_condition(Condition("StringEquals", "aws:username", ("alice",))) is one
    assert prepared_condition(Condition("StringEquals", "aws:username", ("bob",))) is not one


def test_prepare_conditions_keeps_the_order() -> None:
    conds = (Condition("Bool", "aws:SecureTransport", ("true",)), Condition("Null", "aws:SourceIp", ("false",)))
    assert [p.condition for p in prepare_conditions(conds)] == list(conds)


def test_a_check_is_worded_only_from_its_parts() -> None:
    """The detail line is built when read, from why (or the request's values) and the condition."""
    condition = Condition("StringEquals", "aws:username", ("alice", "bob"))
    check = prepare_condition(condition).check(RequestContext({"aws:username": "alice"}))
    assert (check.result, check.why, check.request_values) == (True, "", ("alice",))
    assert check.detail == 'StringEquals aws:username ["alice", "bob"]: request has "alice" -> true'
    absent = prepare_condition(condition).check(RequestContext())
    assert absent.detail == 'StringEquals aws:username ["alice", "bob"]: key absent from the request -> false'
    assert ConditionCheck(condition, None, "why not").detail.endswith(": why not -> unknown")


def test_judge_all_ands_and_can_stop_at_the_first_false() -> None:
    """MULTI: the conditions of a statement are ANDed; once one is false the statement does not apply."""
    prepared = prepare_conditions((
        Condition("StringEquals", "aws:username", ("bob",)),
        Condition("StringEquals", "aws:PrincipalAccount", (ACCOUNT,)),
    ))
    ctx = RequestContext({"aws:username": "alice", "aws:PrincipalAccount": ACCOUNT})
    full = judge_all(prepared, ctx)
    assert full.result is False and [c.result for c in full.checks] == [False, True]
    short = judge_all(prepared, ctx, stop_at_false=True)
    assert short.result is False and len(short.checks) == 1


# --- operators and values -------------------------------------------------------------------------------------


def test_require_operator_and_quote() -> None:
    """OPS: ForAnyValue:/ForAllValues: prefixes and the IfExists suffix qualify any base operator but Null."""
    info = require_operator("ForAllValues:StringNotLikeIfExists")
    assert (info.base, info.set_op, info.if_exists, info.negated) == ("StringNotLike", "all", True, True)
    assert operator_info("NullIfExists") is None
    assert quote('a"b\\c') == '"a\\"b\\\\c"'


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        pytest.param(parse_number, "3600", Decimal(3600), id="number"),
        pytest.param(parse_number, "1e3", Decimal(1000), id="number-exponent"),
        pytest.param(parse_number, "ten", None, id="not-a-number"),
        pytest.param(parse_date, "1793491200", Decimal(1793491200), id="epoch-seconds"),
        pytest.param(parse_date, "2026-11-01T00:00:00Z", Decimal(1793491200), id="iso-utc"),
        pytest.param(parse_date, "2026-11-01T01:00:00+01:00", Decimal(1793491200), id="iso-offset"),
        pytest.param(parse_date, "2026-13-01", None, id="no-month-13"),
        pytest.param(parse_binary, "QmluYXJ5VmFsdWU=", b"BinaryValue", id="base64"),
        pytest.param(parse_binary, "not base64!", None, id="not-base64"),
        pytest.param(parse_network, "192.0.2.7", ipaddress.ip_network("192.0.2.7/32"), id="bare-address"),
        pytest.param(parse_network, "192.0.2.300/24", None, id="not-an-address"),
    ],
)
def test_value_parsers(parse: object, text: str, expected: object) -> None:
    """OPS: Numeric, Date ("a W3C implementation of the ISO 8601 date formats or epoch (UNIX) time"), Binary
    (base64) and IP address values."""
    assert callable(parse)
    assert parse(text) == expected


def test_compare_refuses_a_request_value_of_the_wrong_type() -> None:
    """OPS: a request value that is not a number never matches a Numeric operator (the check says so)."""
    info = require_operator("NumericLessThan")
    with pytest.raises(RequestValueError) as err:
        compare(info, policy_value(info, "10"), "ten", RequestContext())
    assert err.value.value == "ten"


OCTETS = st.integers(0, 255)


@settings(max_examples=200, deadline=None)
@given(st.tuples(OCTETS, OCTETS, OCTETS, OCTETS), st.integers(0, 32), st.tuples(OCTETS, OCTETS, OCTETS, OCTETS),
       st.integers(0, 32))
def test_ip_containment_agrees_with_ipaddress(
    policy_octets: tuple[int, ...], policy_len: int, request_octets: tuple[int, ...], request_len: int
) -> None:
    """OPS, IP address: IpAddress holds when the request's address (or block) lies inside the policy's block; the
    integer test the engine uses agrees with the standard library's ``subnet_of``."""
    policy_net = ipaddress.ip_network(f"{'.'.join(map(str, policy_octets))}/{policy_len}", strict=False)
    request = f"{'.'.join(map(str, request_octets))}/{request_len}"
    info = require_operator("IpAddress")
    got = compare(info, policy_value(info, str(policy_net)), request, RequestContext())
    assert got is ipaddress.ip_network(request, strict=False).subnet_of(policy_net)


# --- variables and patterns -----------------------------------------------------------------------------------


def test_variables_resolve_render_and_static_text() -> None:
    """VARS: a variable takes the key's single value, else its default; without either it has no value (the
    pattern matches nothing); a multivalued key cannot be a variable; ``${*}`` is a literal ``*``."""
    segs = parse_template("role/${aws:username, 'nobody'}-${*}*")
    assert has_variables(segs)
    var = next(s for s in segs if s[0] == "var")
    assert resolve_variable(var, RequestContext({"aws:username": "alice"})) == "alice"
    assert resolve_variable(var, RequestContext()) == "nobody"
    assert resolve_variable(var, RequestContext(unknown=["aws:username"])) is None
    bare = next(s for s in parse_template("${aws:TagKeys}") if s[0] == "var")
    assert resolve_variable(bare, RequestContext({"aws:TagKeys": ["a", "b"]})) is NO_VALUE
    assert render(segs, RequestContext({"aws:username": "alice"})) == "role/alice-**"
    assert not has_variables(parse_template("role/a?b*"))
    assert static_text(parse_template("role/a?b*")) == "role/a?b*"


@pytest.mark.parametrize(
    ("pattern", "kind", "value", "expected"),
    [
        pytest.param("alice", "eq", "alice", True, id="no-wildcard"),
        pytest.param("*", "any", "", True, id="star-matches-empty"),
        pytest.param("a*e", "pattern", "alice", True, id="pattern"),
        pytest.param("a?e", "pattern", "alice", False, id="question-is-one-character"),
        pytest.param("${aws:username}*", "vars", "alice-admin", True, id="variable"),
    ],
)
def test_like_pattern_kinds(pattern: str, kind: str, value: str, expected: bool) -> None:
    """OPS, StringLike: ``*`` any run of characters (none included), ``?`` exactly one; VARS: variables first."""
    compiled = like_pattern(parse_template(pattern))
    assert compiled.kind == kind
    assert compiled.match(value, RequestContext({"aws:username": "alice"})) is expected


@pytest.mark.parametrize(
    ("pattern", "six_parts", "value", "expected"),
    [
        pytest.param(f"arn:aws:iam::{ACCOUNT}:role/*", True, ADMIN, True, id="role-wildcard"),
        pytest.param("arn:aws:iam::*", False, ADMIN, False, id="four-parts-match-nothing"),
        pytest.param("arn:*:iam::*:role/Admin", True, ADMIN, True, id="star-within-one-part"),
        pytest.param("arn:aws:iam::${aws:PrincipalAccount}:role/Admin", True, ADMIN, True, id="variable"),
    ],
)
def test_arn_patterns(pattern: str, six_parts: bool, value: str, expected: bool) -> None:
    """OPS, ARN: each of the six colon-delimited parts is matched on its own; a pattern without six parts matches
    no ARN (lint reports it)."""
    compiled = arn_pattern(parse_template(pattern))
    assert compiled.six_parts is six_parts
    assert compiled.match(value, RequestContext({"aws:PrincipalAccount": ACCOUNT})) is expected


# --- the module layout ----------------------------------------------------------------------------------------


def test_conditions_reexports_the_objects_of_the_modules_that_define_them() -> None:
    """``kms_rescue.policy.conditions`` is a thin module: each name it offers is the defining module's own object."""
    for name in conditions.__all__:
        obj = getattr(conditions, name)
        home = getattr(obj, "__module__", None)
        if home is None or not home.startswith("kms_rescue.policy.") or home == conditions.__name__:
            continue  # constants (frozensets) and typing aliases carry no module
        module = __import__(home, fromlist=[name])
        assert getattr(module, name) is obj, name


def _nested_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = path.read_text(encoding="utf-8").splitlines()
    top = set(tree.body)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and node not in top:
            out.append((node.lineno, lines[node.lineno - 1] + " " + lines[node.lineno - 2]))
    return out


def test_policy_imports_at_module_top_unless_deferred_for_start_up_time() -> None:
    """Imports sit at module top; the few deferred ones (cfn-lint, PyYAML) say why in a comment on the line or the
    line before (``docs/architecture.md``)."""
    offenders = []
    for path in sorted(POLICY_DIR.rglob("*.py")):
        for lineno, text in _nested_imports(path):
            if "deferred" not in text.lower():
                offenders.append(f"{path.relative_to(POLICY_DIR)}:{lineno}")
    assert offenders == []


@pytest.mark.parametrize("operator", ["StringLike", "ArnLike"])
def test_a_variable_without_a_value_matches_nothing_even_beside_an_unknown_one(operator: str) -> None:
    """VARS: a variable with no value and no default matches nothing, so the result is known (false) even when
    another variable of the same pattern is unknown; StringLike and ArnLike agree."""
    pattern = f"arn:aws:iam::{ACCOUNT}:role/${{aws:username}}-${{aws:userid}}"
    condition = Condition(operator, "aws:PrincipalArn", (pattern,))
    ctx = RequestContext({"aws:PrincipalArn": ADMIN}, unknown=["aws:username"])
    assert prepare_condition(condition).check(ctx).result is False
    assert prepare_condition(condition).check(RequestContext({"aws:PrincipalArn": ADMIN, "aws:userid": "x"},
                                                             unknown=["aws:username"])).result is None
