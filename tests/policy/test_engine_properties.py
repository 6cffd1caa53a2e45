"""Properties of the engine that must hold for every input (hypothesis)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kms_rescue.policy import Decision, PolicyInputError, analyze_management, evaluate
from tests.helpers.engine import ACCOUNT, ADMIN_ROLE, ALICE, KEY, ROOT

PRINCIPALS = [ROOT, ALICE, ADMIN_ROLE, f"arn:aws:sts::{ACCOUNT}:assumed-role/KeyAdmin/s",
              "arn:aws:iam::444455556666:user/carol"]
ACTIONS = ["kms:PutKeyPolicy", "kms:Decrypt", "kms:DescribeKey", "kms:GetKeyPolicy", "s3:GetObject"]

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children,
                                                                                max_size=4)),
    max_leaves=20,
)

principal_values = st.one_of(
    st.just("*"),
    st.fixed_dictionaries({"AWS": st.sampled_from([ROOT, ACCOUNT, ALICE, ADMIN_ROLE, "*", "AROAEXAMPLEID0000000001",
                                                   "arn:aws:iam::444455556666:root"])}),
)
conditions = st.one_of(
    st.just({}),
    st.builds(
        lambda op, value: {op: {"aws:PrincipalArn": value}},
        st.sampled_from(["StringEquals", "StringLike", "StringNotEquals", "ArnLike", "StringEqualsIfExists"]),
        st.sampled_from([ADMIN_ROLE, f"arn:aws:iam::{ACCOUNT}:*", ROOT]),
    ),
    st.just({"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}),
    st.builds(lambda v: {"Null": {"aws:SourceIp": v}}, st.sampled_from(["true", "false"])),
)


@st.composite
def statements(draw: Any, effect: str | None = None) -> dict[str, Any]:
    st_: dict[str, Any] = {
        "Effect": effect or draw(st.sampled_from(["Allow", "Deny"])),
        "Principal": draw(principal_values),
        "Action": draw(st.sampled_from(["kms:*", "kms:PutKeyPolicy", "kms:Get*", "kms:Decrypt", "*"])),
        "Resource": "*",
    }
    cond = draw(conditions)
    if cond:
        st_["Condition"] = cond
    return st_


policies = st.lists(statements(), min_size=0, max_size=6).map(lambda s: {"Version": "2012-10-17", "Statement": s})
identity_sets = st.lists(
    st.lists(st.fixed_dictionaries({
        "Effect": st.sampled_from(["Allow", "Deny"]),
        "Action": st.sampled_from(["kms:*", "kms:PutKeyPolicy", "s3:*", "*"]),
        "Resource": st.sampled_from(["*", KEY, "arn:aws:kms:*:*:key/other"]),
    }), max_size=3).map(lambda s: {"Version": "2012-10-17", "Statement": s}),
    max_size=2,
)


def decide(key_policy: Any, principal: str, action: str, identity: Any = ()) -> Decision:
    return evaluate(principal=principal, action=action, resource=KEY, key_policy=key_policy,
                    identity_policies=identity).decision


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(doc=json_values, principal=st.sampled_from(PRINCIPALS), action=st.sampled_from(ACTIONS))
def test_arbitrary_json_raises_only_the_engines_input_error(doc: Any, principal: str, action: str) -> None:
    for policy in (doc, {"Statement": doc}, {"Version": "2012-10-17", "Statement": [doc]}):
        try:
            decide(policy, principal, action)
        except PolicyInputError as exc:
            assert "\n" not in str(exc)
        try:
            analyze_management(policy, key_account=ACCOUNT)
        except PolicyInputError:
            pass


@settings(max_examples=300)
@given(policy=policies, extra=statements(effect="Deny"), principal=st.sampled_from(PRINCIPALS),
       action=st.sampled_from(ACTIONS), identity=identity_sets)
def test_adding_a_deny_never_turns_a_deny_into_an_allow(policy: dict[str, Any], extra: dict[str, Any],
                                                         principal: str, action: str, identity: Any) -> None:
    before = decide(policy, principal, action, identity)
    after = decide({**policy, "Statement": [*policy["Statement"], extra]}, principal, action, identity)
    if before is not Decision.ALLOW:
        assert after is not Decision.ALLOW
    if before is Decision.EXPLICIT_DENY:
        assert after is Decision.EXPLICIT_DENY


@settings(max_examples=300)
@given(policy=policies, principal=st.sampled_from(PRINCIPALS), action=st.sampled_from(ACTIONS),
       identity=identity_sets, data=st.data())
def test_removing_an_allow_never_creates_an_allow(policy: dict[str, Any], principal: str, action: str,
                                                   identity: Any, data: Any) -> None:
    allows = [i for i, s in enumerate(policy["Statement"]) if s["Effect"] == "Allow"]
    if not allows:
        return
    drop = data.draw(st.sampled_from(allows))
    smaller = {**policy, "Statement": [s for i, s in enumerate(policy["Statement"]) if i != drop]}
    if decide(policy, principal, action, identity) is not Decision.ALLOW:
        assert decide(smaller, principal, action, identity) is not Decision.ALLOW


@settings(max_examples=200)
@given(policy=policies, principal=st.sampled_from(PRINCIPALS), action=st.sampled_from(ACTIONS),
       identity=identity_sets)
def test_evaluation_is_deterministic_and_does_not_mutate_input(policy: dict[str, Any], principal: str, action: str,
                                                               identity: Any) -> None:
    snapshot = copy.deepcopy(policy)
    first = evaluate(principal=principal, action=action, resource=KEY, key_policy=policy,
                     identity_policies=identity)
    second = evaluate(principal=principal, action=action, resource=KEY, key_policy=policy,
                      identity_policies=identity)
    assert first.to_dict() == second.to_dict()
    assert policy == snapshot


@settings(max_examples=200)
@given(policy=policies)
def test_lockout_verdict_agrees_with_evaluation_for_root(policy: dict[str, Any]) -> None:
    """If the analysis says root can manage, evaluating root on PutKeyPolicy with a direct call must allow,
    unless the path depends on conditions (then the decision may go either way)."""
    analysis = analyze_management(policy, key_account=ACCOUNT, key_arn=KEY)
    decision = decide(policy, ROOT, "kms:PutKeyPolicy")
    if decision is Decision.ALLOW:
        assert not analysis.locked_out
    unconditional_root = [p for p in analysis.managing_paths if p.kind == "root_user" and not p.conditions
                          and not p.may_be_blocked_by]
    if unconditional_root:
        assert decision is Decision.ALLOW
