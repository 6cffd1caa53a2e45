"""Probes with botocore's Stubber: the error shapes a lab cannot easily produce (SSO token errors, ExpiredToken,
region mismatch, an identity that blows up), alias resolution, identity-policy reads, CloudTrail paging."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import botocore.session
import pytest
from botocore import exceptions as bexc
from botocore.stub import Stubber

from kms_rescue.aws.history import TokenBucket
from kms_rescue.aws.investigate import InvestigateOptions, investigate
from kms_rescue.aws.keyref import parse_key_ref
from kms_rescue.aws.probe import IdentityRun, ProbeSettings, probe_identities
from kms_rescue.aws.results import IdentitySpec
from kms_rescue.errors import UsageError
from kms_rescue.report import build_report

ACCOUNT = "111122223333"
REGION = "us-east-1"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
ROLE_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/App/kms-rescue"
ADMIN_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/kms-rescue"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Admin"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "Use", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/App"},
         "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"},
    ],
}
DENIED = ("User: {who} is not authorized to perform: {action} on resource: {res} because no identity-based "
          "policy allows it")

_BOTO = botocore.session.get_session()


class Stubs:
    """Stubbed clients for one identity; ``factory`` plugs into ProbeSettings.client_factory."""

    def __init__(self) -> None:
        self.clients: dict[str, Any] = {}
        self.stubbers: dict[str, Stubber] = {}
        for service in ("sts", "kms", "iam", "cloudtrail"):
            client = _BOTO.create_client(service, region_name=REGION, aws_access_key_id="testing",
                                         aws_secret_access_key="testing")
            self.clients[service] = client
            self.stubbers[service] = Stubber(client)
            self.stubbers[service].activate()

    def ok(self, service: str, method: str, response: dict[str, Any], params: dict[str, Any] | None = None) -> None:
        self.stubbers[service].add_response(method, response, params)

    def err(self, service: str, method: str, code: str, message: str = "", status: int = 400) -> None:
        self.stubbers[service].add_client_error(method, service_error_code=code, service_message=message,
                                                http_status_code=status)

    def whoami(self, arn: str = ROLE_SESSION) -> None:
        self.ok("sts", "get_caller_identity", {"UserId": "AROAEXAMPLE:kms-rescue", "Account": ACCOUNT, "Arn": arn})

    def factory(self, _session: Any, service: str, _region: str) -> Any:
        return self.clients[service]

    def assert_done(self) -> None:
        for s in self.stubbers.values():
            s.assert_no_pending_responses()


def key_metadata(state: str = "Enabled") -> dict[str, Any]:
    return {"KeyMetadata": {"KeyId": KEY_ID, "Arn": KEY_ARN, "AWSAccountId": ACCOUNT, "KeyState": state,
                            "CreationDate": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "Enabled": True,
                            "KeyManager": "CUSTOMER", "Description": "payments"}}


def settings_for(stubs: dict[str, Stubs], open_session: Any = None) -> ProbeSettings:
    by_session: dict[int, Stubs] = {}

    def opener(spec: IdentitySpec) -> Any:
        if open_session is not None:
            open_session(spec)
        token = object()
        by_session[id(token)] = stubs[spec.name]
        return token

    def factory(session: Any, service: str, region: str) -> Any:
        return by_session[id(session)].factory(session, service, region)

    # Stubber answers in the order responses were queued: one call at a time.
    return ProbeSettings(open_session=opener, client_factory=factory, read_identity_policies=True,
                         parallel_calls=False)


def spec(name: str) -> IdentitySpec:
    return IdentitySpec(name=name, source="profile", profile=name, kind="static")


def role_policies(
    s: Stubs, role: str, inline: dict[str, dict] | None = None,
    managed: tuple[tuple[str, dict], ...] | list[tuple[str, dict]] = (),
) -> None:
    inline = inline or {}
    s.ok("iam", "list_role_policies", {"PolicyNames": list(inline)})
    for name, doc in inline.items():
        s.ok("iam", "get_role_policy", {"RoleName": role, "PolicyName": name, "PolicyDocument": json.dumps(doc)})
    s.ok("iam", "list_attached_role_policies",
         {"AttachedPolicies": [{"PolicyName": a.rsplit("/", 1)[1], "PolicyArn": a} for a, _ in managed]})
    for arn, doc in managed:
        s.ok("iam", "get_policy", {"Policy": {"Arn": arn, "DefaultVersionId": "v2"}})
        s.ok("iam", "get_policy_version", {"PolicyVersion": {"Document": json.dumps(doc), "VersionId": "v2",
                                                             "IsDefaultVersion": True}})


# --- single identity -------------------------------------------------------------------------------------------

def test_expired_token_stops_the_identity_after_get_caller_identity():
    s = Stubs()
    s.err("sts", "get_caller_identity", "ExpiredToken", "The security token included in the request is expired")
    probes, _, _ = probe_identities([spec("old")], parse_key_ref(KEY_ARN), settings_for({"old": s}))
    p = probes[0]
    assert p.status == "invalid_credentials"
    assert [c.operation for c in p.calls] == ["credentials", "sts:GetCallerIdentity"]
    assert p.calls[-1].error_code == "ExpiredToken"
    assert p.hint and "refresh" in p.hint
    s.assert_done()


@pytest.mark.parametrize(
    ("error", "status", "hint"),
    [
        (bexc.SSOTokenLoadError(error_msg="Token for https://example.awsapps.com/start does not exist"),
         "sso_expired", "aws sso login --profile dev"),
        (bexc.UnauthorizedSSOTokenError(), "sso_expired", "aws sso login --profile dev"),
        (bexc.NoCredentialsError(), "no_credentials", "no usable credentials"),
    ],
)
def test_credential_errors_become_identity_status(error, status, hint):
    def boom(_spec: IdentitySpec) -> None:
        raise error

    probes, _, _ = probe_identities([spec("dev")], parse_key_ref(KEY_ARN), settings_for({"dev": Stubs()}, boom))
    p = probes[0]
    assert p.status == status
    assert p.hint is not None and hint in p.hint
    assert [c.operation for c in p.calls] == ["credentials"]


def test_region_mismatch_is_wrong_region():
    s = Stubs()
    s.whoami()
    s.err("kms", "describe_key", "InvalidSignatureException", "Credential should be scoped to a valid region.")
    s.err("kms", "get_key_policy", "InvalidSignatureException", "Credential should be scoped to a valid region.")
    s.err("kms", "list_grants", "InvalidSignatureException", "Credential should be scoped to a valid region.")
    role_policies(s, "App")
    probes, _, _ = probe_identities([spec("app")], parse_key_ref(KEY_ARN), settings_for({"app": s}))
    outcomes = {c.operation: c.outcome for c in probes[0].calls}
    assert outcomes["kms:DescribeKey"] == outcomes["kms:GetKeyPolicy"] == "wrong_region"
    assert probes[0].status == "ok"


def test_full_probe_reads_key_policy_grants_and_role_policies():
    s = Stubs()
    s.whoami(ADMIN_SESSION)
    s.ok("kms", "describe_key", key_metadata(), {"KeyId": KEY_ARN})
    s.ok("kms", "get_key_policy", {"Policy": json.dumps(POLICY), "PolicyName": "default"},
         {"KeyId": KEY_ARN, "PolicyName": "default"})
    s.ok("kms", "list_grants", {"Grants": [{"GrantId": "g1", "CreationDate": dt.datetime(2026, 1, 1)}],
                                "Truncated": True, "NextMarker": "m"}, {"KeyId": KEY_ARN})
    s.ok("kms", "list_grants", {"Grants": [{"GrantId": "g2"}], "Truncated": False}, {"KeyId": KEY_ARN, "Marker": "m"})
    inline = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    managed = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    role_policies(s, "Admin", {"s3": inline}, [("arn:aws:iam::aws:policy/Admin", managed)])
    probes, _, _ = probe_identities([spec("admin")], parse_key_ref(KEY_ARN), settings_for({"admin": s}))
    p = probes[0]
    s.assert_done()
    assert p.key_policy == POLICY
    assert p.key_metadata and p.key_metadata["CreationDate"] == "2026-01-01T00:00:00Z"
    assert [g["GrantId"] for g in p.grants or []] == ["g1", "g2"]
    assert p.identity_policies is not None and p.identity_policies.status == "read"
    assert [d.document for d in p.identity_policies.documents] == [inline, managed]


def test_user_policies_include_groups():
    s = Stubs()
    s.whoami(f"arn:aws:iam::{ACCOUNT}:user/alice")
    s.ok("kms", "describe_key", key_metadata())
    s.ok("kms", "get_key_policy", {"Policy": json.dumps(POLICY)})
    s.ok("kms", "list_grants", {"Grants": []})
    group_doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Put*",
                                                         "Resource": "*"}]}
    s.ok("iam", "list_user_policies", {"PolicyNames": []})
    s.ok("iam", "list_attached_user_policies", {"AttachedPolicies": []})
    s.ok("iam", "list_groups_for_user", {"Groups": [{"GroupName": "ops", "Path": "/", "GroupId": "AGPAEXAMPLE1234567",
                                                     "Arn": f"arn:aws:iam::{ACCOUNT}:group/ops",
                                                     "CreateDate": dt.datetime(2026, 1, 1)}]})
    s.ok("iam", "list_group_policies", {"PolicyNames": ["kms"]})
    s.ok("iam", "get_group_policy", {"GroupName": "ops", "PolicyName": "kms", "PolicyDocument": json.dumps(group_doc)})
    s.ok("iam", "list_attached_group_policies", {"AttachedPolicies": []})
    probes, _, _ = probe_identities([spec("alice")], parse_key_ref(KEY_ARN), settings_for({"alice": s}))
    pols = probes[0].identity_policies
    s.assert_done()
    assert pols is not None and pols.status == "read"
    assert [d.source for d in pols.documents] == ["inline group/ops:kms"]


def test_denied_iam_reads_leave_identity_policies_unknown():
    s = Stubs()
    s.whoami()
    s.ok("kms", "describe_key", key_metadata())
    s.err("kms", "get_key_policy", "AccessDeniedException",
          DENIED.format(who=ROLE_SESSION, action="kms:GetKeyPolicy", res=KEY_ARN))
    s.ok("kms", "list_grants", {"Grants": []})
    s.err("iam", "list_role_policies", "AccessDenied", "not authorized to perform: iam:ListRolePolicies")
    s.err("iam", "list_attached_role_policies", "AccessDenied", "not authorized")
    probes, _, _ = probe_identities([spec("app")], parse_key_ref(KEY_ARN), settings_for({"app": s}))
    pols = probes[0].identity_policies
    assert pols is not None and pols.status == "unknown"
    assert "iam:ListRolePolicies: access_denied" in (pols.reason or "")
    assert probes[0].key_policy is None


def test_alias_resolves_through_list_aliases_when_describe_key_is_denied():
    """ListAliases needs only an IAM permission, so it resolves an alias when the key policy denies DescribeKey."""
    s = Stubs()
    s.whoami()
    s.err("kms", "describe_key", "AccessDeniedException", "not authorized to perform: kms:DescribeKey")
    s.ok("kms", "list_aliases", {"Aliases": [
        {"AliasName": "alias/other", "TargetKeyId": "99999999-12ab-34cd-56ef-1234567890ab"},
        {"AliasName": "alias/payments", "TargetKeyId": KEY_ID},
        {"AliasName": "alias/payments-old", "TargetKeyId": KEY_ID},
    ]})
    s.err("kms", "describe_key", "AccessDeniedException", "not authorized")
    s.err("kms", "get_key_policy", "AccessDeniedException", "not authorized")
    s.err("kms", "list_grants", "AccessDeniedException", "not authorized")
    role_policies(s, "App")
    settings = settings_for({"app": s})
    settings.read_identity_policies = True
    probes, resolved, _ = probe_identities([spec("app")], parse_key_ref("alias/payments", REGION), settings)
    assert resolved.key_arn == KEY_ARN
    assert probes[0].aliases == ["alias/payments", "alias/payments-old"]
    ops = [c.operation for c in probes[0].calls]
    assert ops[:4] == ["credentials", "sts:GetCallerIdentity", "kms:DescribeKey", "kms:ListAliases"]
    # Only the alias was tried before; with the ARN known, nothing is re-described for the same account.
    assert ops.count("kms:DescribeKey") == 1


def test_key_arn_is_learnt_from_an_access_denied_message():
    s = Stubs()
    s.whoami()
    s.err("kms", "describe_key", "AccessDeniedException",
          DENIED.format(who=ROLE_SESSION, action="kms:DescribeKey", res=KEY_ARN))
    s.err("kms", "get_key_policy", "AccessDeniedException", "not authorized")
    s.err("kms", "list_grants", "AccessDeniedException", "not authorized")
    role_policies(s, "App")
    _, resolved, _ = probe_identities([spec("app")], parse_key_ref(KEY_ID, REGION), settings_for({"app": s}))
    assert resolved.key_arn == KEY_ARN


def test_an_alias_naming_different_keys_is_a_usage_error():
    a, b = Stubs(), Stubs()
    a.whoami()
    a.ok("kms", "describe_key", key_metadata())
    other = dict(key_metadata())
    other["KeyMetadata"] = dict(other["KeyMetadata"], Arn=KEY_ARN.replace(ACCOUNT, "444455556666"))
    b.whoami("arn:aws:sts::444455556666:assumed-role/App/kms-rescue")
    b.ok("kms", "describe_key", other)
    with pytest.raises(UsageError, match="names different keys"):
        probe_identities([spec("a"), spec("b")], parse_key_ref("alias/payments", REGION),
                         settings_for({"a": a, "b": b}))


def _good_admin() -> Stubs:
    good = Stubs()
    good.whoami(ADMIN_SESSION)
    good.ok("kms", "describe_key", key_metadata())
    good.ok("kms", "get_key_policy", {"Policy": json.dumps(POLICY)})
    good.ok("kms", "list_grants", {"Grants": []})
    role_policies(good, "Admin")
    return good


def test_an_unexpected_error_in_a_call_is_recorded_and_others_go_on():
    class Exploding(Stubs):
        def factory(self, _session: Any, service: str, _region: str) -> Any:
            if service == "kms":
                raise RuntimeError("unexpected")
            return super().factory(_session, service, _region)

    bad = Exploding()
    bad.whoami()
    role_policies(bad, "App")
    good = _good_admin()
    probes, _, _ = probe_identities([spec("bad"), spec("good")], parse_key_ref(KEY_ARN),
                                    settings_for({"good": good, "bad": bad}))
    assert probes[1].key_policy == POLICY
    kms_calls = [c for c in probes[0].calls if c.operation.startswith("kms:")]
    assert kms_calls and all((c.outcome, c.error_code) == ("error", "RuntimeError") for c in kms_calls)


def test_an_unexpected_error_outside_calls_stays_with_its_identity(monkeypatch):
    original = IdentityRun.inspect

    def inspect(self: IdentityRun, ref: Any) -> None:
        if self.spec.name == "bad":
            raise RuntimeError("bug")
        original(self, ref)

    monkeypatch.setattr(IdentityRun, "inspect", inspect)
    bad = Stubs()
    bad.whoami()
    bad.ok("kms", "describe_key", key_metadata())
    good = _good_admin()
    probes, _, _ = probe_identities([spec("bad"), spec("good")], parse_key_ref(KEY_ARN),
                                    settings_for({"good": good, "bad": bad}))
    assert probes[1].key_policy == POLICY
    # Recorded with the identity (its own-policy reads run beside its key reads, so not necessarily last).
    assert ("internal", "error") in [(c.operation, c.outcome) for c in probes[0].calls]


def test_calls_carry_timing_and_target():
    s = Stubs()
    s.whoami()
    s.err("kms", "describe_key", "NotFoundException", f"Key '{KEY_ARN}' does not exist")
    s.err("kms", "get_key_policy", "NotFoundException", "does not exist")
    s.err("kms", "list_grants", "NotFoundException", "does not exist")
    role_policies(s, "App")
    run = IdentityRun(spec("app"), settings_for({"app": s}), REGION)
    run.describe(parse_key_ref(KEY_ARN))
    call = run.probe.last("kms:DescribeKey")
    assert call is not None
    assert (call.outcome, call.error_code, call.target) == ("not_found", "NotFoundException", KEY_ARN)
    assert call.at.endswith("Z") and call.duration_ms >= 0


# --- a whole investigation with stubs ---------------------------------------------------------------------------

def _history_page(events: list[dict[str, Any]], token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {"Events": events}
    if token:
        page["NextToken"] = token
    return page


def _event(name: str, event_id: str, time: str, policy: dict | None, actor: str) -> dict[str, Any]:
    params: dict[str, Any] = {"keyId": KEY_ID}
    if policy is not None:
        params["policy"] = json.dumps(policy)
    body = {"eventName": name, "eventTime": time, "userIdentity": {"arn": actor},
            "requestParameters": params, "recipientAccountId": ACCOUNT, "eventID": event_id}
    return {"EventId": event_id, "EventName": name, "EventTime": dt.datetime.fromisoformat(time.replace("Z", "+00:00")),
            "CloudTrailEvent": json.dumps(body)}


def test_unreadable_policy_is_reconstructed_from_paged_cloudtrail_history():
    """Nobody can read the policy; CloudTrail (two pages) has the last PutKeyPolicy: the analysis uses it."""
    s = Stubs()
    s.whoami()
    s.err("kms", "describe_key", "AccessDeniedException", "not authorized")
    s.err("kms", "get_key_policy", "AccessDeniedException", "not authorized")
    s.err("kms", "list_grants", "AccessDeniedException", "not authorized")
    role_policies(s, "App")
    # App's own role, for its permissions boundary (none).
    s.ok("iam", "get_role", {"Role": {"RoleName": "App", "Arn": f"arn:aws:iam::{ACCOUNT}:role/App", "Path": "/",
                                      "RoleId": "AROAEXAMPLEAPP123456", "CreateDate": dt.datetime(2026, 1, 1)}})
    first = {"Version": "2012-10-17", "Statement": [POLICY["Statement"][0]]}
    s.ok("cloudtrail", "lookup_events", _history_page(
        [_event("CreateKey", "e1", "2026-01-01T00:00:00Z", first, f"arn:aws:iam::{ACCOUNT}:user/terraform")], "t"))
    s.ok("cloudtrail", "lookup_events", _history_page(
        [_event("PutKeyPolicy", "e2", "2026-02-01T00:00:00Z", POLICY, ADMIN_SESSION)]))
    s.ok("iam", "get_role", {"Role": {"RoleName": "Admin", "Arn": f"arn:aws:iam::{ACCOUNT}:role/Admin", "Path": "/",
                                      "RoleId": "AROAEXAMPLEADMIN1234", "CreateDate": dt.datetime(2026, 1, 1)}})
    s.err("iam", "get_role", "NoSuchEntity", "The role with name App cannot be found.")
    settings = settings_for({"app": s})
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    opts = InvestigateOptions(open_session=settings.open_session, client_factory=settings.client_factory,
                              parallel_calls=False,
                              bucket=TokenBucket(2.0, clock=lambda: now[0], sleep=sleep))
    inv = investigate(KEY_ARN, opts, identities=[spec("app")])
    assert inv.history.outcome == "ok" and inv.history.requests == 2
    assert [e.event_id for e in inv.history.events] == ["e1", "e2"]
    assert slept, "the second LookupEvents request waited for the token bucket"
    report = build_report(inv)
    assert report.policy.source == "cloudtrail"
    assert report.policy.document == POLICY
    assert report.history.last_policy is not None and report.history.last_policy.event_id == "e2"
    exists = {p.value: p.exists for p in report.principals}
    assert exists[f"arn:aws:iam::{ACCOUNT}:role/Admin"] is True
    assert exists[f"arn:aws:iam::{ACCOUNT}:role/App"] is False
    assert report.verdict == "recoverable"
    assert any(step.action == "assume_role" and step.principal == f"arn:aws:iam::{ACCOUNT}:role/Admin"
               for step in report.next_steps)
    former = {f.principal for f in report.history.former_admins}
    assert f"arn:aws:iam::{ACCOUNT}:user/terraform" in former
    assert f"arn:aws:iam::{ACCOUNT}:role/Admin" in former
    s.assert_done()
