"""The verdict layer: candidate worlds narrowed by observed call outcomes (docs/engine.md, "Deciding under
uncertainty"). Each case names the AWS fact it rests on.

Cases are decided from plain observations (kms_rescue.observations), without any AWS call: a policy, what the
identity was able to read, what each call returned, and the decision expected.
"""

from __future__ import annotations

import ast
import datetime as dt
from typing import Any

import pytest

from kms_rescue.observations import CallResult, IdentityPolicies, IdentityProbe, IdentitySpec, PolicyDoc
from kms_rescue.policy import parse_policy
from kms_rescue.policy.principals import parse_caller
from kms_rescue.verdict.identity import decide_identity, request_time_context
from kms_rescue.verdict.worlds import MAX_WORLDS, parse_documents, path_candidates
from tests.helpers.paths import REPO

ACCOUNT = "111122223333"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_ID}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role"
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
DENIED_BY_KEY_POLICY = "because no resource-based policy allows the kms:GetKeyPolicy action"
DENIED_BY_SCP = "with an explicit deny in a service control policy"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def star_when(values: list[str], op: str = "StringLike", key: str = "aws:PrincipalArn",
              action: Any = "kms:*") -> dict[str, Any]:
    return {"Sid": "Admins", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": action, "Resource": "*",
            "Condition": {op: {key: values}}}


def named(principal: str, action: Any, sid: str = "Named") -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": "*"}


def call(operation: str, outcome: str, message: str | None = None) -> CallResult:
    return CallResult(operation, outcome, "AccessDeniedException" if outcome == "access_denied" else None,  # type: ignore[arg-type]
                      f"User: x is not authorized to perform: {operation} {message}" if message else None,
                      target=KEY_ARN)


def probe(arn: str, calls: list[CallResult], docs: list[dict[str, Any]] | None = None,
          role_arn: str | None = None) -> IdentityProbe:
    p = IdentityProbe(spec=IdentitySpec(name="admin", source="profile", profile="admin"), status="ok", arn=arn,
                      account=ACCOUNT, calls=calls, role_arn=role_arn)
    p.identity_policies = (IdentityPolicies("unknown", reason="denied") if docs is None else
                           IdentityPolicies("read", [PolicyDoc(f"inline {i}", d) for i, d in enumerate(docs)]))
    return p


def decide(doc: dict[str, Any], p: IdentityProbe, grants: list[dict[str, Any]] | None = ()) -> Any:  # type: ignore[assignment]
    return decide_identity(p, key_policy=parse_policy(doc), key_arn=KEY_ARN, key_account=ACCOUNT, key_id=KEY_ID,
                           grants=grants, context=request_time_context(NOW))


SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/shib-admin/admin"
RUNBOOK = policy(star_when([f"{ROLE}/shib-admin", f"arn:aws:iam::{ACCOUNT}:root"]))

# (case, policy, probe, expected can_manage, fact and page)
CASES = [
    ("runbook policy, role path unread, GetKeyPolicy observed", RUNBOOK,
     probe(SESSION, [call("kms:GetKeyPolicy", "ok")]), True,
     "IAM User Guide, global condition keys, aws:PrincipalArn: a session's value is its role's ARN (path "
     "included); the observed read leaves only the path / "),
    ("runbook policy, role path unread, nothing observed", RUNBOOK, probe(SESSION, []), None,
     "without an observation the path decides: manageable only if role shib-admin's path is /"),
    ("path pattern, read denied by the key policy", policy(star_when([f"{ROLE}/admins/*"])),
     probe(f"arn:aws:sts::{ACCOUNT}:assumed-role/KmsAdmin/a", [call("kms:GetKeyPolicy", "access_denied",
                                                                         DENIED_BY_KEY_POLICY)]), False,
     "IAM User Guide, AccessDenied messages: 'no resource-based policy allows' means the key policy did not "
     "allow; only paths outside /admins/ are consistent with that"),
    ("path pattern, read denied by an SCP: no constraint", policy(star_when([f"{ROLE}/admins/*"])),
     probe(f"arn:aws:sts::{ACCOUNT}:assumed-role/KmsAdmin/a", [call("kms:GetKeyPolicy", "access_denied",
                                                                         DENIED_BY_SCP)]), None,
     "IAM User Guide, AccessDenied messages: a denial in a service control policy says nothing about the key "
     "policy"),
    ("path known from iam:GetRole", policy(star_when([f"{ROLE}/admins/*"])),
     probe(f"arn:aws:sts::{ACCOUNT}:assumed-role/KmsAdmin/a", [], docs=[], role_arn=f"{ROLE}/admins/KmsAdmin"),
     True, "the role's ARN read with iam:GetRole carries its path"),
    ("delegation, identity policies unread", policy(named(f"arn:aws:iam::{ACCOUNT}:root", "kms:*")),
     probe(SESSION, [call("kms:GetKeyPolicy", "ok")]), None,
     "KMS Developer Guide, default key policy: the account principal delegates to IAM; the identity's own "
     "policies decide, and reading GetKeyPolicy says nothing about PutKeyPolicy"),
    ("source IP condition narrowed by an observed read",
     policy({**star_when(["10.0.0.0/8"], op="IpAddress", key="aws:SourceIp")}),
     probe(SESSION, [call("kms:GetKeyPolicy", "ok")]), True,
     "IAM User Guide, aws:SourceIp: the same caller's address holds for both calls; the read succeeded only if "
     "it is inside 10.0.0.0/8"),
    ("source IP condition on PutKeyPolicy only, nothing narrows it",
     policy(named(SESSION.replace("assumed-role/shib-admin/admin", "role/shib-admin").replace("sts", "iam"),
                  "kms:GetKeyPolicy", "Read"),
            {**star_when(["10.0.0.0/8"], op="IpAddress", key="aws:SourceIp", action="kms:PutKeyPolicy")}),
     probe(SESSION, [call("kms:GetKeyPolicy", "ok")], docs=[]), None,
     "an unread request-context value that only the PutKeyPolicy statement tests stays unknown"),
    ("a grant may explain DescribeKey: it is not a constraint", policy(star_when([f"{ROLE}/admins/*"])),
     probe(f"arn:aws:sts::{ACCOUNT}:assumed-role/KmsAdmin/a", [call("kms:DescribeKey", "ok")]), None,
     "KMS Developer Guide, grant operations: DescribeKey can be allowed by a grant (and nobody listed them)"),
]


@pytest.mark.parametrize(("name", "doc", "p", "expected", "fact"), CASES, ids=[c[0] for c in CASES])
def test_decision_table(name: str, doc: dict[str, Any], p: IdentityProbe, expected: bool | None, fact: str):
    grants = None if "grant may" in name else []
    d = decide(doc, p, grants)
    assert d.can_manage is expected, (fact, d.why)
    if expected is None:
        assert d.why.startswith("unknown"), d.why
    assert d.worlds_left <= d.worlds


def test_the_unknown_that_decides_is_named_without_inventing_a_principal():
    d = decide(RUNBOOK, probe(SESSION, []))
    assert d.can_manage is None
    assert d.assumption == "role shib-admin's path is /"
    assert "assumed-role/shib-admin/session" not in d.why


def test_observations_are_quoted_with_how_many_worlds_they_removed():
    d = decide(RUNBOOK, probe(SESSION, [call("kms:GetKeyPolicy", "ok")]))
    assert (d.worlds, d.worlds_left) == (2, 1)
    assert d.observations[0].describe("admin") == ("kms:GetKeyPolicy by admin succeeded: 1 of 2 candidate worlds "
                                                   "contradict it")


def test_contradicting_observations_make_the_decision_unknown_not_a_guess():
    # Nothing in this policy lets the caller read it, yet the read succeeded: something unmodelled is at work.
    doc = policy(named(f"{ROLE}/Other", "kms:*"))
    d = decide(doc, probe(SESSION, [call("kms:GetKeyPolicy", "ok")], docs=[]))
    assert d.can_manage is None and d.worlds_left == 0 and "cannot explain" in d.why


def test_a_date_window_past_is_decided_by_the_clock():
    """IAM User Guide, global condition keys: aws:CurrentTime is in every request; a window that closed in 2020
    never opens again."""
    doc = policy({**named(f"{ROLE}/shib-admin", "kms:*"),
                  "Condition": {"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}})
    d = decide(doc, probe(SESSION, [], docs=[]))
    assert d.can_manage is False


def test_path_candidates_come_from_the_policies():
    pols = parse_documents([policy(star_when([f"{ROLE}/admins/*", f"{ROLE}/shib-admin"]))])
    found = path_candidates(parse_caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/KmsAdmin/s"), pols)
    assert found is not None
    assert f"{ROLE}/KmsAdmin" in found and f"{ROLE}/admins/KmsAdmin" in found and len(found) == 3


def test_too_many_unknowns_are_reported_not_enumerated():
    keys = [f"aws:PrincipalTag/t{i}" for i in range(12)]
    statements = [{**star_when(["a", "b"], op="StringEquals", key=k), "Sid": f"S{i}"} for i, k in enumerate(keys)]
    d = decide(policy(*statements), probe(SESSION, [], docs=[]))
    assert d.can_manage is None and "too many" in d.why and str(MAX_WORLDS) not in d.why


PURE = ["kms_rescue/verdict", "kms_rescue/report.py", "kms_rescue/contract.py", "kms_rescue/advice.py",
        "kms_rescue/observations.py", "kms_rescue/plan.py", "kms_rescue/policy", "kms_rescue/render"]


def test_the_verdict_layer_and_report_never_import_the_aws_package():
    root = REPO
    files = [p for entry in PURE for p in ((root / entry).rglob("*.py") if (root / entry).is_dir()
                                          else [root / entry])]
    assert len(files) > 10
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith("kms_rescue.aws"), f"{path.relative_to(root)} imports {name}"
                assert not name.startswith(("boto3", "botocore")), f"{path.relative_to(root)} imports {name}"


# --- ways in against the organization's guardrails (kms_rescue.verdict.paths) --------------------------------------

FULL_ACCESS = policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
DENY_PUT = policy({"Sid": "DenyPutKeyPolicy", "Effect": "Deny", "Action": "kms:PutKeyPolicy", "Resource": "*"})
ROOT_ONLY = policy(named(f"arn:aws:iam::{ACCOUNT}:root", "kms:*", "Enable IAM User Permissions"))


def test_a_way_in_an_scp_denies_is_blocked_but_the_key_is_recoverable_through_the_organization():
    """AWS Organizations User Guide, "Service control policies": an SCP restricts every principal of a member
    account, its root user included, and does not affect the management account, which can change it. A root
    path an SCP denies is not a way in; the key stays recoverable, with a change_guardrail step."""
    from kms_rescue.advice import guardrail_steps
    from kms_rescue.contract import KeySection, PathEntry
    from kms_rescue.policy import analyze_management
    from kms_rescue.policy.guardrails import Guardrails, OrgLevel
    from kms_rescue.verdict.overall import choose_verdict
    from kms_rescue.verdict.paths import apply_guardrails

    analysis = analyze_management(ROOT_ONLY, key_account=ACCOUNT, key_arn=KEY_ARN, now=NOW)
    root_only = [PathEntry(p.kind, p.principal, p.statement, can_manage=p.can_manage, why=p.why)
                 for p in analysis.paths if p.kind == "root_user"]
    scps = (OrgLevel("r-ab12", (FULL_ACCESS, DENY_PUT)), OrgLevel(ACCOUNT, (FULL_ACCESS,)))
    out = apply_guardrails(root_only, key_policy=ROOT_ONLY, key_arn=KEY_ARN, key_account=ACCOUNT,
                           guardrails=Guardrails(scps=scps, rcps=None), context=request_time_context(NOW))
    assert out[0].can_manage is False and out[0].blocked_by == ("service control policies",)
    assert "management account can change" in out[0].why
    assert choose_verdict(True, analysis, [], out) == "recoverable"
    key = KeySection(input=KEY_ARN, arn=KEY_ARN, id=KEY_ID, account=ACCOUNT, region="us-east-1")
    assert [s.action for s in guardrail_steps(key, out)] == ["change_guardrail"]
    # Without the SCP's deny, the same path is a way in.
    free = apply_guardrails(root_only, key_policy=ROOT_ONLY, key_arn=KEY_ARN, key_account=ACCOUNT,
                            guardrails=Guardrails(scps=(OrgLevel("r-ab12", (FULL_ACCESS,)),
                                                        OrgLevel(ACCOUNT, (FULL_ACCESS,))), rcps=None))
    assert free[0].can_manage is True


def test_unread_guardrails_leave_the_ways_in_alone():
    from kms_rescue.contract import PathEntry
    from kms_rescue.policy.guardrails import UNREAD, Guardrails
    from kms_rescue.verdict.paths import apply_guardrails

    paths = [PathEntry("root_user", "root user", '"S"', can_manage=True, why="covered")]
    assert apply_guardrails(paths, key_policy=ROOT_ONLY, key_arn=KEY_ARN, key_account=ACCOUNT,
                            guardrails=Guardrails(permissions_boundary=UNREAD, scps=UNREAD, rcps=UNREAD)) == paths
