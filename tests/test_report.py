"""build_report (pure) on synthetic investigations: one case per verdict rule, the next steps, the evidence, the
renderers (every format) and exit codes. Each case names the AWS fact it rests on (docs/engine.md, "Where each rule
comes from")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kms_rescue.aws.results import (
    CallResult,
    HistoryEvent,
    HistoryLookup,
    IdentityPolicies,
    IdentityProbe,
    IdentitySpec,
    Investigation,
    KeyFacts,
    PolicyDoc,
    PrincipalCheck,
)
from kms_rescue.cli.report import ReportFormat, render
from kms_rescue.report import (
    EXIT_CODES,
    Report,
    build_report,
    exempt_session,
    exit_code_for,
    policy_principals,
)
from tests.helpers.schema import validate_report

ACCOUNT = "111122223333"
OTHER = "444455556666"
REGION = "us-east-1"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/Admin"
KEYADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"


def session(role: str, account: str = ACCOUNT, name: str = "kms-rescue") -> str:
    return f"arn:aws:sts::{account}:assumed-role/{role}/{name}"


def stmt(sid: str, principal: Any, action: Any = "kms:*", effect: str = "Allow", **extra: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"Sid": sid, "Effect": effect, "Principal": principal, "Action": action, "Resource": "*"}
    s.update(extra)
    return s


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


DEFAULT = policy(stmt("Enable IAM User Permissions", {"AWS": ROOT}))
NAMED_ADMIN = policy(stmt("KeyAdministrators", {"AWS": ADMIN_ROLE}),
                     stmt("Use", {"AWS": f"arn:aws:iam::{ACCOUNT}:role/App"}, ["kms:Decrypt", "kms:GetKeyPolicy"]))
KMS_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
READ_POLICY = {"Version": "2012-10-17",
               "Statement": [{"Effect": "Allow", "Action": "kms:GetKeyPolicy", "Resource": "*"}]}
S3_ONLY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def probe(
    name: str,
    arn: str | None,
    *,
    key_policy: dict[str, Any] | None = None,
    identity_docs: list[dict[str, Any]] | None = None,
    identity_status: str = "read",
    status: str = "ok",
    source: str = "profile",
) -> IdentityProbe:
    account = arn.split(":")[4] if arn else None
    calls = [CallResult("credentials", "ok" if status == "ok" else status,  # type: ignore[arg-type]
                        at="2026-01-01T00:00:00.000Z")]
    if status == "ok":
        calls.append(CallResult("sts:GetCallerIdentity", "ok", at="2026-01-01T00:00:00.000Z"))
        calls.append(CallResult("kms:GetKeyPolicy", "ok" if key_policy else "access_denied",
                                "AccessDeniedException" if not key_policy else None, at="2026-01-01T00:00:00.100Z",
                                target=KEY_ARN))
    p = IdentityProbe(spec=IdentitySpec(name=name, source=source,  # type: ignore[arg-type]
                                        profile=name if source == "profile" else None, kind="static"),
                      status=status, arn=arn, account=account, calls=calls, key_policy=key_policy)  # type: ignore[arg-type]
    if arn and status == "ok":
        if identity_docs is None:
            p.identity_policies = IdentityPolicies("unknown", read_by=name, reason="iam:ListRolePolicies denied")
        elif arn.endswith(":root"):
            p.identity_policies = IdentityPolicies("not_needed", read_by=name)
        else:
            p.identity_policies = IdentityPolicies(
                identity_status,  # type: ignore[arg-type]
                [PolicyDoc(f"inline {i}", d) for i, d in enumerate(identity_docs)], read_by=name)
    return p


def investigation(
    *probes: IdentityProbe,
    state: str | None = "Enabled",
    history: list[HistoryEvent] | None = None,
    checks: dict[str, PrincipalCheck] | None = None,
    key_arn: str | None = KEY_ARN,
) -> Investigation:
    key = KeyFacts(input=key_arn or KEY_ID, arn=key_arn, key_id=KEY_ID if key_arn else None,
                   account=ACCOUNT if key_arn else None, region=REGION, state=state)
    return Investigation(
        key=key, identities=list(probes),
        history=HistoryLookup(True, REGION, tuple(history or ()), read_by=probes[0].spec.name if probes else None,
                              outcome="ok", requests=1),
        principal_checks=checks or {}, finished_at="2026-01-01T00:00:01Z",
    )


def checked(report: Report) -> Report:
    """Every report a test makes is rendered in every format and validated against the schema."""
    doc = report.to_dict()
    validate_report(doc)
    assert json.loads(render(report, ReportFormat.json)) == doc
    for fmt in ReportFormat:
        text = render(report, fmt, width=100)
        assert text.strip()
    return report


def make_report(verdict: str) -> Report:
    """A small report of the given verdict."""
    if verdict == "manageable":
        inv = investigation(probe("admin", session("Admin"), key_policy=NAMED_ADMIN, identity_docs=[]))
    elif verdict == "recoverable":
        inv = investigation(probe("app", session("App"), key_policy=NAMED_ADMIN, identity_docs=[]))
    elif verdict == "locked_out":
        orphaned = policy(stmt("Admin", {"AWS": "AROAEXAMPLEID12345678"}))
        inv = investigation(probe("app", session("App"), key_policy=orphaned, identity_docs=[]))
    elif verdict == "not_found":
        missing = probe("app", session("App"), identity_docs=[])
        missing.calls[-1] = CallResult("kms:GetKeyPolicy", "not_found", "NotFoundException",
                                       f"Key '{KEY_ARN}' does not exist", target=KEY_ARN)
        inv = investigation(missing, state=None)
    else:
        inv = investigation(probe("app", session("App"), identity_docs=[]))
    return checked(build_report(inv))


# --- verdicts --------------------------------------------------------------------------------------------------

def test_named_role_session_can_manage_now():
    """A key-policy Allow naming a role covers every session of that role, without an identity policy (rule 3)."""
    r = checked(build_report(investigation(probe("admin", session("Admin"), key_policy=NAMED_ADMIN,
                                                 identity_docs=[]))))
    assert (r.verdict, r.exit_code) == ("manageable", 0)
    admin = r.identity("admin")
    assert admin is not None and admin.can_manage is True and admin.grant == "direct"
    step = r.next_steps[0]
    assert step.action == "use_identity" and step.command and "--profile admin" in step.command
    assert any(e.identity == "admin" and e.statement == '"KeyAdministrators"' for e in r.evidence)


def test_delegation_with_identity_policy_is_manageable():
    """The account principal delegates to IAM: a principal whose identity policy allows is allowed (rule 2)."""
    r = checked(build_report(investigation(probe("ops", session("Ops"), key_policy=DEFAULT, identity_docs=[KMS_ALL]))))
    assert r.verdict == "manageable"
    ops = r.identity("ops")
    assert ops is not None and ops.grant == "delegated" and ops.can_manage is True


def test_delegation_without_identity_policy_is_recoverable_through_an_iam_admin():
    """Delegation alone grants nobody (rule 2): an IAM administrator must attach an identity policy; root can too."""
    r = checked(build_report(investigation(probe("intern", session("Intern"), key_policy=DEFAULT,
                                                 identity_docs=[S3_ONLY, READ_POLICY]))))
    assert (r.verdict, r.exit_code) == ("recoverable", 3)
    assert r.identity("intern").can_manage is False  # type: ignore[union-attr]
    actions = [s.action for s in r.next_steps]
    assert "attach_identity_policy" in actions and "sign_in_root" in actions
    attach = next(s for s in r.next_steps if s.action == "attach_identity_policy")
    assert attach.policy is not None and attach.policy["Statement"][0]["Resource"] == KEY_ARN
    # Root is the last resort, after the IAM route.
    assert actions.index("attach_identity_policy") < actions.index("sign_in_root")


def test_unreadable_identity_policies_are_unknown_not_denied():
    """Never claim more than we saw: with delegation and unreadable IAM policies, the identity *may* manage."""
    r = checked(build_report(investigation(probe("ops", session("Ops"), key_policy=DEFAULT, identity_docs=None))))
    ops = r.identity("ops")
    assert ops is not None and ops.can_manage is None and "could not be read" in (ops.why or "")
    assert r.verdict == "recoverable"
    assert r.next_steps[0].action == "check_identity_policy"
    assert any("unknown, not denied" in w for w in r.warnings)


def test_root_is_offered_only_when_the_policy_lets_root_in():
    """Root-user rescue is real only when the policy lets root in (rule 7): a root-less policy naming an existing
    role is recoverable through that role, and no step says "sign in as root"."""
    r = checked(build_report(investigation(probe("app", session("App"), key_policy=NAMED_ADMIN, identity_docs=[]))))
    assert r.verdict == "recoverable"
    actions = [s.action for s in r.next_steps]
    assert "sign_in_root" not in actions
    step = next(s for s in r.next_steps if s.action == "assume_role")
    assert step.principal == ADMIN_ROLE
    assert step.command and f"--role-arn {ADMIN_ROLE}" in step.command and "--base-profile app" in step.command


def test_root_identity_is_evaluated_through_the_account_principal():
    """The root user is covered by the account principal and needs no identity policy (rule 2)."""
    r = checked(build_report(investigation(probe("root", ROOT, key_policy=DEFAULT, identity_docs=[]))))
    assert r.verdict == "manageable"
    assert r.identity("root").can_manage is True  # type: ignore[union-attr]


def test_deleted_sole_admin_is_locked_out():
    """A deleted principal shows as a unique id and a new one of the same name does not match (rule 5): with no
    account principal, nobody in the account can manage the key; only AWS Support can help."""
    doc = policy(stmt("KeyAdministration", {"AWS": "AROAEXAMPLEID12345678"}),
                 stmt("Use", {"AWS": f"arn:aws:iam::{ACCOUNT}:role/App"}, ["kms:Decrypt", "kms:GetKeyPolicy"]))
    r = checked(build_report(investigation(probe("app", session("App"), key_policy=doc, identity_docs=[]),
                                           probe("root", ROOT, identity_docs=[]))))
    assert (r.verdict, r.exit_code) == ("locked_out", 4)
    assert [s.action for s in r.next_steps][:1] == ["contact_support"]
    principals = {p.value: p for p in r.principals}
    assert principals["AROAEXAMPLEID12345678"].exists is False
    assert principals[f"arn:aws:iam::{ACCOUNT}:role/App"].exists is True  # a live policy shows ARNs of live roles
    assert any(e.claim == "the root user cannot manage the key either" for e in r.evidence)
    assert any(p.kind == "orphaned_unique_id" for p in r.management_paths)


def test_management_only_by_another_account_is_locked_out():
    """PutKeyPolicy is not offered across accounts (rule 6): a policy that admits only another account locks the
    key out, and that account's probed identity cannot manage it."""
    doc = policy(stmt("Partner", {"AWS": f"arn:aws:iam::{OTHER}:root"}))
    r = checked(build_report(investigation(probe("partner", session("PartnerAdmin", OTHER), identity_docs=[KMS_ALL]),
                                           probe("local", session("Admin"), key_policy=doc, identity_docs=[KMS_ALL]))))
    assert r.verdict == "locked_out"
    partner = r.identity("partner")
    assert partner is not None and partner.can_manage is False and "another account" in (partner.why or "")


def test_no_policy_anywhere_is_undetermined():
    r = checked(build_report(investigation(probe("app", session("App"), identity_docs=[]))))
    assert (r.verdict, r.exit_code) == ("undetermined", 5)
    assert r.policy.source == "none"
    assert [s.action for s in r.next_steps] == ["read_policy", "athena_history"]


def test_unresolved_key_is_undetermined():
    r = checked(build_report(investigation(probe("app", session("App"), identity_docs=[]), key_arn=None)))
    assert r.verdict == "undetermined" and r.key.arn is None


def test_policy_from_cloudtrail_with_a_deleted_admin_is_locked_out():
    """CloudTrail records PutKeyPolicy with its policy (docs/engine.md: history); IAM says the role it names no longer
    exists."""
    ev = HistoryEvent("e1", "PutKeyPolicy", "2026-01-01T00:00:00Z", session("KeyAdmin", name="alice"),
                      policy=policy(stmt("KeyAdministrators", {"AWS": KEYADMIN_ROLE})))
    checks = {KEYADMIN_ROLE: PrincipalCheck(KEYADMIN_ROLE, False, "iam:GetRole by app: no such entity", "app")}
    r = checked(build_report(investigation(probe("app", session("App"), identity_docs=[]), history=[ev],
                                           checks=checks)))
    assert r.policy.source == "cloudtrail" and r.policy.event is not None and r.policy.event.event_id == "e1"
    assert r.verdict == "locked_out"
    assert r.history.former_admins[0].principal == KEYADMIN_ROLE
    assert "session alice" in r.history.former_admins[0].evidence


def test_policy_from_cloudtrail_with_an_existing_admin_is_recoverable():
    ev = HistoryEvent("e1", "PutKeyPolicy", "2026-01-01T00:00:00Z", session("KeyAdmin", name="alice"),
                      policy=policy(stmt("KeyAdministrators", {"AWS": KEYADMIN_ROLE})))
    failed = HistoryEvent("e2", "PutKeyPolicy", "2026-01-02T00:00:00Z", session("App"), error_code="AccessDenied",
                          policy=DEFAULT)
    checks = {KEYADMIN_ROLE: PrincipalCheck(KEYADMIN_ROLE, True, "iam:GetRole by app found it", "app")}
    r = checked(build_report(investigation(probe("app", session("App"), identity_docs=[]), history=[ev, failed],
                                           checks=checks)))
    assert r.verdict == "recoverable"
    assert r.policy.document == ev.policy, "a failed PutKeyPolicy never changed the policy"
    assert any("CloudTrail" in w for w in r.warnings)


def test_nitro_enclave_lock_is_reported_as_intentional():
    """Keys locked to Nitro Enclaves attestation are locked on purpose (docs/rescue.md, "Intentional locks"): say so,
    do not offer a fix."""
    doc = policy(stmt("EnclaveOnly", {"AWS": f"arn:aws:iam::{ACCOUNT}:role/EnclaveApp"},
                      Condition={"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": "ab" * 48}}))
    r = checked(build_report(investigation(probe("builder", session("EnclaveBuilder"), key_policy=doc,
                                                 identity_docs=[]))))
    assert r.verdict == "locked_out" and r.intentional_lock
    assert [s.action for s in r.next_steps] == ["intentional"]
    assert "on purpose" in r.summary


def test_pending_deletion_key_cancel_first():
    r = checked(build_report(investigation(probe("admin", session("Admin"), key_policy=NAMED_ADMIN, identity_docs=[]),
                                           state="PendingDeletion")))
    assert r.verdict == "manageable"
    assert r.next_steps[0].action == "cancel_key_deletion"
    assert r.next_steps[0].command and "cancel-key-deletion" in r.next_steps[0].command


def test_break_glass_session_name_is_part_of_the_step():
    """A Deny with NotPrincipal exempts a role session only when every layer (account, role, session) is listed
    (rule 4): the next step must assume the role under that exact session name."""
    bg_role = f"arn:aws:iam::{ACCOUNT}:role/BreakGlass"
    bg_session = session("BreakGlass", name="break-glass")
    doc = policy(
        stmt("EnableIAMPolicies", {"AWS": ROOT}),
        stmt("BreakGlassAdministration", {"AWS": bg_role}),
        {"Sid": "DenyManagementExceptBreakGlass", "Effect": "Deny",
         "NotPrincipal": {"AWS": [ROOT, bg_role, bg_session]}, "Action": "kms:PutKeyPolicy", "Resource": "*"},
    )
    assert exempt_session(doc, bg_role) == ("break-glass", '"DenyManagementExceptBreakGlass"')
    r = checked(build_report(investigation(probe("admin", session("Admin"), key_policy=doc, identity_docs=[KMS_ALL]))))
    assert r.verdict == "recoverable"
    admin = r.identity("admin")
    assert admin is not None and admin.decision == "explicit_deny"
    step = next(s for s in r.next_steps if s.action == "assume_role")
    assert step.command and "--role-session-name break-glass" in step.command


def test_credential_failures_get_their_own_steps():
    sso = probe("dev", None, status="sso_expired")
    sso.hint = "aws sso login --profile dev"
    mfa = probe("prod", None, status="needs_mfa")
    r = checked(build_report(investigation(probe("admin", session("Admin"), key_policy=NAMED_ADMIN, identity_docs=[]),
                                           sso, mfa)))
    steps = {s.action: s for s in r.next_steps}
    assert steps["sso_login"].command == "aws sso login --profile dev"
    assert "mfa" in steps
    assert r.identity("dev").can_manage is None  # type: ignore[union-attr]


def test_principals_of_conditions_are_listed():
    doc = policy(stmt("Runbook", "*", Condition={"StringLike": {"aws:PrincipalArn": [
        f"arn:aws:iam::{ACCOUNT}:role/admins/*", KEYADMIN_ROLE]}}))
    found = {p.value: p for p in policy_principals(doc)}
    assert found["*"].kind == "wildcard"
    assert found[KEYADMIN_ROLE].in_condition and f"arn:aws:iam::{ACCOUNT}:role/admins/*" not in found


@pytest.mark.parametrize(("verdict", "code"), sorted(EXIT_CODES.items()))
def test_exit_codes(verdict, code):
    assert exit_code_for(verdict) == code
    assert make_report(verdict).exit_code == code


def test_unknown_verdict_has_no_exit_code():
    with pytest.raises(ValueError):
        exit_code_for("fine")


# --- renderers ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", list(ReportFormat))
@pytest.mark.parametrize("verdict", ["manageable", "recoverable", "locked_out", "undetermined", "not_found"])
def test_every_format_shows_the_verdict_and_the_next_step(fmt, verdict):
    report = make_report(verdict)
    out = render(report, fmt, width=100)
    if fmt is ReportFormat.json:
        assert json.loads(out)["verdict"] == verdict
    else:
        assert verdict.replace("_", " ").upper() in out
        assert report.next_steps[0].detail.split(":")[0][:30] in " ".join(out.split())


def test_text_is_rendered_at_the_given_width_without_colour():
    out = render(make_report("recoverable"), ReportFormat.text, width=90)
    assert max(len(line) for line in out.splitlines()) <= 90
    assert "\x1b[" not in out
    coloured = render(make_report("recoverable"), ReportFormat.text, width=90, color=True)
    assert "\x1b[" in coloured


def test_markdown_has_the_sections_a_ticket_needs():
    out = render(make_report("locked_out"), ReportFormat.markdown)
    for heading in ("# KMS key report: LOCKED OUT", "## Identities and calls", "## Next steps", "## Evidence",
                    "## Older history (Athena)"):
        assert heading in out
    assert f"`{KEY_ARN}`" in out


def test_a_key_in_an_account_none_of_the_identities_belongs_to_is_said_so():
    """Only principals of the key's account can read or change its policy (KMS API reference, GetKeyPolicy and
    PutKeyPolicy: "Cross-account use: No"): the report says none of the identities belongs to it."""
    r = checked(build_report(investigation(probe("other", session("App", account=OTHER), identity_docs=[]))))
    assert r.verdict == "undetermined"
    assert f"belongs to the key's account {ACCOUNT}" in r.summary
    assert r.next_steps[0].action == "read_policy" and f"a profile or role of {ACCOUNT}" in r.next_steps[0].detail
    assert any(f"belongs to account {ACCOUNT}" in w for w in r.warnings)


def test_a_report_missing_a_field_is_rejected():
    doc = make_report("manageable").to_dict()
    del doc["key"]
    with pytest.raises(AssertionError, match="key"):
        validate_report(doc)
