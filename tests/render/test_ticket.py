"""The escalation ticket: formats against golden files, what it must name (docs/ticket.md), the escalation
address, ``--open-case`` and its fallback, the command against the lab, and the secrets scan.

Regenerate the golden files with ``KMS_RESCUE_UPDATE_GOLDEN=1 pytest tests/render/test_ticket.py`` and review the diff.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from kms_rescue.aws.results import (
    CallResult,
    HistoryEvent,
    HistoryLookup,
    IdentityPolicies,
    IdentityProbe,
    IdentitySpec,
    Investigation,
    KeyFacts,
    Outcome,
)
from kms_rescue.aws.support import CONSOLE_CASE_URL, choose_service, choose_severity, open_case
from kms_rescue.cli.app import main
from kms_rescue.cli.ticket import config_path, escalation_address
from kms_rescue.errors import UsageError
from kms_rescue.render.ticket import (
    CaseInfo,
    TicketFormat,
    build_ticket,
    plain_text,
    render,
    restore_policy_for,
    subject_for,
    valid_address,
)
from kms_rescue.report import build_report
from tests.helpers import paths
from tests.helpers.session import assert_no_secrets

GOLDEN = paths.GOLDEN / "ticket"
ACCOUNT = "111122223333"
KEY_ID = "0d5d6a3c-8d7e-4c1f-9b2a-6f1e2d3c4b5a"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_ID}"
APP = f"arn:aws:sts::{ACCOUNT}:assumed-role/App/app"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
T0 = "2026-11-02T09:30:00.000Z"
CREATED_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "KeyAdministration", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "AppUse", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/App"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GetKeyPolicy"], "Resource": "*"},
    ],
}
LIVE_POLICY = json.loads(json.dumps(CREATED_POLICY).replace(f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin",
                                                           "AROAEXAMPLEID0000000001"))


def call(op: str, outcome: Outcome = "ok", code: str | None = None, ms: int = 12, n: int = 0) -> CallResult:
    message = None if outcome == "ok" else f"User: {APP} is not authorized to perform: {op}"
    return CallResult(op, outcome, code, message, ms, f"2026-11-02T09:29:5{n}.000Z", KEY_ARN if "kms" in op else None)


def investigation(*, live: bool = True, history: bool = True) -> Investigation:
    """A fixed locked-out investigation (the sole administrator role was deleted)."""
    app = IdentityProbe(
        spec=IdentitySpec(name="app", source="profile", profile="app", kind="static"),
        status="ok", arn=APP, account=ACCOUNT,
        calls=[call("credentials", n=0), call("sts:GetCallerIdentity", n=1), call("kms:DescribeKey", n=2),
               call("kms:GetKeyPolicy", n=3) if live else call("kms:GetKeyPolicy", "access_denied",
                                                                 "AccessDeniedException", n=3),
               call("kms:ListGrants", "access_denied", "AccessDeniedException", n=4)],
        key_metadata={"Arn": KEY_ARN, "KeyState": "Enabled"}, key_arn=KEY_ARN,
        key_policy=LIVE_POLICY if live else None,
        identity_policies=IdentityPolicies("read", [], read_by="app"),
    )
    root = IdentityProbe(
        spec=IdentitySpec(name="root", source="profile", profile="root", kind="static"),
        status="ok", arn=ROOT, account=ACCOUNT,
        calls=[call("credentials", n=0), call("sts:GetCallerIdentity", n=1),
               call("kms:DescribeKey", "access_denied", "AccessDeniedException", n=2),
               call("kms:GetKeyPolicy", "access_denied", "AccessDeniedException", n=3)],
        identity_policies=IdentityPolicies("not_needed"),
    )
    events: tuple[HistoryEvent, ...] = ()
    if history:
        events = (HistoryEvent("11111111-2222-3333-4444-555555555555", "CreateKey", "2026-09-23T09:00:00Z",
                               f"arn:aws:sts::{ACCOUNT}:assumed-role/KeyAdmin/terraform", policy=CREATED_POLICY),)
    return Investigation(
        key=KeyFacts(input=KEY_ARN, arn=KEY_ARN, key_id=KEY_ID, account=ACCOUNT, region="us-east-1",
                     state="Enabled", aliases=("alias/payments",), multi_region=False, key_manager="CUSTOMER",
                     creation_date="2026-09-23T09:00:00Z", resolved_by="app kms:DescribeKey"),
        identities=[app, root],
        history=HistoryLookup(True, "us-east-1", events, read_by="app", outcome="ok", requests=1),
        started_at=T0, finished_at=T0,
    )


def normalise(text: str) -> str:
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z", "<TIME>", text)
    # The report's JSON attachment follows the report's schema (tested by parsing it, not byte for byte here).
    text = re.sub(r'(filename="kms-rescue-report.json"(?:\r?\n[^\r\n]+)*\r?\n\r?\n)[A-Za-z0-9+/=\r\n]+?(\r?\n--)',
                  r"\1<REPORT JSON, base64>\2", text)
    return text.replace("\r\n", "\n")


def check_golden(name: str, payload: str | bytes) -> None:
    text = normalise(payload.decode("utf-8") if isinstance(payload, bytes) else payload)
    path = GOLDEN / name
    if os.environ.get("KMS_RESCUE_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing golden file {path} (set KMS_RESCUE_UPDATE_GOLDEN=1 to create it)"
    assert text == path.read_text(encoding="utf-8")


EXTENSIONS = {TicketFormat.markdown: "md", TicketFormat.email: "email.txt", TicketFormat.eml: "eml"}


def fixed_report(**kwargs: Any) -> Any:
    """The report of :func:`investigation`, with the tool's version pinned (it is inside the eml's base64 part)."""
    import dataclasses

    return dataclasses.replace(build_report(investigation(**kwargs), generated_at=T0), tool_version="0.0.0")


@pytest.mark.parametrize("fmt", list(TicketFormat), ids=lambda f: f.value)
def test_every_format_matches_its_golden_file(fmt: TicketFormat) -> None:
    report = fixed_report()
    ticket = build_ticket(report, to="cloud-team@example.com")
    check_golden(f"locked-out.{EXTENSIONS[fmt]}", render(ticket, fmt))


def test_the_email_body_is_plain_text() -> None:
    """Issue 10: the email format is for a mail client: no Markdown pipe tables, headings or bold markers; the
    facts stay (key ARN, aliases) and the support process says it can take days and what to prepare."""
    ticket = build_ticket(fixed_report(), to="cloud-team@example.com")
    body = render(ticket, TicketFormat.email)
    assert isinstance(body, str)
    assert "|" not in body and "**" not in body and "\n## " not in body
    assert "Aliases: alias/payments" in body and KEY_ARN in body
    assert "It can take days" in body and "phone" in body


def test_undetermined_ticket_matches_its_golden_file() -> None:
    report = fixed_report(live=False, history=False)
    assert report.verdict == "undetermined"
    check_golden("undetermined.md", render(build_ticket(report), TicketFormat.markdown))


def test_ticket_names_everything_support_needs() -> None:
    """docs/ticket.md / issue 5: key ARN, id, account, Region, state, identities with each call's result and
    time, the last known policy and former administrators, the policy to restore, what AWS will ask for."""
    report = build_report(investigation(), generated_at=T0)
    body = build_ticket(report).body
    for needle in (KEY_ARN, f"| Key ID | {KEY_ID} |", f"| Account | {ACCOUNT} |", "| Region | us-east-1 |",
                   "| Key state | Enabled |", "| app | " + APP + " | kms:ListGrants | access_denied | "
                   "AccessDeniedException | 2026-11-02T09:29:54.000Z | 12 |",
                   "### Former administrators", f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin",
                   "### Last known key policy", "## The policy to restore", "phone number", "root user",
                   "recovery IAM user"):
        assert needle in body, needle
    restore, origin = restore_policy_for(report)
    assert restore is not None and "every statement kept" in origin
    assert restore["Statement"][-1]["Principal"] == {"AWS": ROOT}
    # The orphaned unique id is left out of the policy to restore (KMS would refuse it: AWS Knowledge Center,
    # "kms-policy-error-invalid-principals"), and the ticket says so.
    assert "Left out of statement KeyAdministration: AROA" in body
    assert not [v for s in restore["Statement"] for v in [s.get("Principal", {}).get("AWS")]
                if isinstance(v, str) and v.startswith("AROA")]
    assert "`kms-rescue ticket" not in body  # the ticket does not tell you to write the ticket


def test_eml_is_a_draft_with_attachments() -> None:
    report = build_report(investigation(), generated_at=T0)
    ticket = build_ticket(report, to="cloud-team@example.com")
    raw = render(ticket, TicketFormat.eml)
    assert isinstance(raw, bytes) and b"\r\n" in raw
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["To"] == "cloud-team@example.com"
    assert msg["Subject"] == ticket.subject
    assert msg["X-Unsent"] == "1"
    assert msg["Date"] == "Mon, 02 Nov 2026 09:30:00 +0000"
    parts = {p.get_filename(): p for p in msg.iter_attachments()}
    assert set(parts) == {"policy-to-restore.json", "kms-rescue-report.json"}
    assert json.loads(parts["policy-to-restore.json"].get_content()) == ticket.restore_policy
    assert json.loads(parts["kms-rescue-report.json"].get_content())["verdict"] == "locked_out"
    body = msg.get_body(("plain",))
    assert body is not None and KEY_ARN in body.get_content()


def test_email_has_headers_then_the_body() -> None:
    ticket = build_ticket(build_report(investigation(), generated_at=T0), to="ops@example.com")
    text = render(ticket, TicketFormat.email)
    assert isinstance(text, str)
    head, _, body = text.partition("\n\n")
    assert head == f"To: ops@example.com\nSubject: {ticket.subject}"
    assert body == plain_text(ticket.body)  # the body as plain text (issue 10)


@pytest.mark.parametrize(("verdict", "start"), [
    ("locked_out", "KMS key locked out"), ("undetermined", "KMS key policy unreadable"),
    ("recoverable", "KMS key needs its policy repaired"), ("manageable", "KMS key manageable"),
])
def test_subject_follows_the_verdict(verdict: str, start: str) -> None:
    import dataclasses

    report = dataclasses.replace(build_report(investigation(), generated_at=T0), verdict=verdict)  # type: ignore[arg-type]
    assert subject_for(report).startswith(start)
    assert KEY_ID in subject_for(report)


def test_case_section() -> None:
    report = build_report(investigation(), generated_at=T0)
    opened = build_ticket(report, case=CaseInfo(True, case_id="case-111122223333-2026-abc")).body
    assert "case case-111122223333-2026-abc" in opened
    fallback = build_ticket(report, case=CaseInfo(False, fallback_reason="no plan", console_url=CONSOLE_CASE_URL)).body
    assert "Not opened through the API: no plan" in fallback and CONSOLE_CASE_URL in fallback


# --- the escalation address ----------------------------------------------------------------------------------------


def test_address_precedence(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    cfg = config_path(env)
    assert cfg == tmp_path / ".config" / "kms-rescue" / "config.toml"
    assert escalation_address(None, env) is None
    cfg.parent.mkdir(parents=True)
    cfg.write_text('# team settings\nescalation_email = "from-config@example.com"\n')
    assert escalation_address(None, env) == "from-config@example.com"
    env["KMS_RESCUE_ESCALATION_EMAIL"] = "from-env@example.com"
    assert escalation_address(None, env) == "from-env@example.com"
    assert escalation_address("from-flag@example.com", env) == "from-flag@example.com"
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path / "x"), "HOME": "/nowhere"}) == \
        tmp_path / "x" / "kms-rescue" / "config.toml"


def test_config_without_tomllib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.10 has no tomllib: the one key is read by a minimal parser."""
    monkeypatch.setitem(sys.modules, "tomllib", None)
    cfg = config_path({"HOME": str(tmp_path)})
    cfg.parent.mkdir(parents=True)
    cfg.write_text("[other]\nx = 1\nescalation_email = 'single@example.com'  # comment\n")
    assert escalation_address(None, {"HOME": str(tmp_path)}) == "single@example.com"


@pytest.mark.parametrize("bad", ["not-an-address", "a@b", "two@example.com, three@example.com"])
def test_bad_address_is_a_usage_error(bad: str) -> None:
    assert not valid_address(bad)
    with pytest.raises(UsageError, match="--to"):
        escalation_address(bad, {})


def test_bad_config_is_a_usage_error(tmp_path: Path) -> None:
    cfg = config_path({"HOME": str(tmp_path)})
    cfg.parent.mkdir(parents=True)
    cfg.write_text("escalation_email = \n")
    with pytest.raises(UsageError, match="not valid TOML"):
        escalation_address(None, {"HOME": str(tmp_path)})


# --- AWS Support -------------------------------------------------------------------------------------------------

SERVICES = {"services": [
    {"code": "amazon-elastic-compute-cloud-linux", "name": "EC2 (Linux)",
     "categories": [{"code": "general-guidance", "name": "General Guidance"}]},
    {"code": "key-management-service", "name": "Key Management Service",
     "categories": [{"code": "general-guidance", "name": "General Guidance"},
                    {"code": "key-policy-access", "name": "Key Policy / Access"}]},
]}
LEVELS = {"severityLevels": [{"code": "low", "name": "General guidance"}, {"code": "normal", "name": "System impaired"},
                             {"code": "high", "name": "Production system impaired"}]}


def support_client() -> Any:
    return botocore.session.Session().create_client("support", region_name="us-east-1",
                                                    aws_access_key_id="testing", aws_secret_access_key="testing")


def test_support_client_endpoint_is_us_east_1() -> None:
    assert support_client().meta.endpoint_url == "https://support.us-east-1.amazonaws.com"


def test_open_case_looks_up_codes_and_creates_the_case() -> None:
    client = support_client()
    with Stubber(client) as stub:
        stub.add_response("describe_services", SERVICES, {"language": "en"})
        stub.add_response("describe_severity_levels", LEVELS, {"language": "en"})
        stub.add_response("create_case", {"caseId": "case-111122223333-muen-2026-1"}, {
            "subject": "s", "serviceCode": "key-management-service", "categoryCode": "key-policy-access",
            "severityCode": "high", "communicationBody": "b", "language": "en", "issueType": "technical",
            "ccEmailAddresses": ["cloud-team@example.com"]})
        result = open_case(client, subject="s", body="b", cc=["cloud-team@example.com"])
    assert result.opened and result.case_id == "case-111122223333-muen-2026-1"


def test_no_support_plan_falls_back() -> None:
    """Without a Business, Enterprise On-Ramp or Enterprise Support plan the API answers
    SubscriptionRequiredException (AWS Support API reference): fall back to the draft and the console link."""
    client = support_client()
    with Stubber(client) as stub:
        stub.add_client_error("describe_services", service_error_code="SubscriptionRequiredException",
                              service_message="AWS Premium Support Subscription is required to use this service.",
                              http_status_code=400)
        result = open_case(client, subject="s", body="b")
    assert not result.opened
    assert result.error_code == "SubscriptionRequiredException"
    assert "Business" in (result.fallback_reason or "") and result.console_url == CONSOLE_CASE_URL


def test_long_body_is_truncated_to_the_api_limit() -> None:
    client = support_client()
    with Stubber(client) as stub:
        stub.add_response("describe_services", SERVICES, None)
        stub.add_response("describe_severity_levels", LEVELS, None)
        stub.add_response("create_case", {"caseId": "c"}, None)
        result = open_case(client, subject="s", body="x" * 9000)
    assert result.opened and result.truncated


@pytest.mark.parametrize(("services", "expected"), [
    (SERVICES["services"], ("key-management-service", "key-policy-access")),
    ([{"code": "aws-kms", "name": "AWS KMS", "categories": [{"code": "other", "name": "Other"},
                                                              {"code": "general-guidance",
                                                               "name": "General Guidance"}]}],
     ("aws-kms", "general-guidance")),
    ([{"code": "ec2", "name": "EC2", "categories": [{"code": "x", "name": "x"}]}], None),
])
def test_choose_service(services: list[dict[str, Any]], expected: tuple[str, str] | None) -> None:
    assert choose_service(services) == expected


def test_choose_severity() -> None:
    assert choose_severity(LEVELS["severityLevels"]) == "high"
    assert choose_severity([{"code": "low"}]) == "low"
    assert choose_severity([]) is None


# --- the command, against the lab -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(TicketFormat), ids=lambda f: f.value)
def test_ticket_command_every_format(lab_for: Any, clean_env: Path, capsys: pytest.CaptureFixture[str],
                                     fmt: TicketFormat) -> None:
    lab = lab_for("sole-admin-deleted")
    key = lab.key_arn("alias/payments")
    out_file = clean_env / f"ticket.{EXTENSIONS[fmt]}"
    code = main(["ticket", key, "--format", fmt.value, "--to", "cloud-team@example.com", "--output", str(out_file)])
    _, err = capsys.readouterr()
    assert code == 4
    data = out_file.read_bytes()
    assert key.encode() in data.replace(b"=\r\n", b"")
    assert f"wrote the ticket to {out_file}" in err
    assert_no_secrets(lab, data, err)


def test_ticket_for_a_key_arn_lists_its_aliases(lab_for: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 10: DescribeKey of a key ARN does not name its aliases; the ticket asks kms:ListAliases with KeyId
    (KMS API Reference, ListAliases) so "Aliases" is not "—" for a key that has one."""
    lab = lab_for("sole-admin-deleted")
    key = lab.key_arn(lab.scenario.keys[0].id)
    assert "alias/" not in key
    assert main(["ticket", key]) == 4
    out = capsys.readouterr().out
    assert "| Aliases | alias/payments |" in out


def test_ticket_command_exit_code_follows_the_verdict(lab_for: Any, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_for("healthy-default")
    assert main(["ticket", lab.key_arn("alias/payments")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# KMS key manageable")
    assert "What AWS will ask for" not in out


def test_ticket_address_from_env(lab_for: Any, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    lab = lab_for("sole-admin-deleted")
    monkeypatch.setenv("KMS_RESCUE_ESCALATION_EMAIL", "kms-oncall@example.com")
    assert main(["ticket", lab.key_arn("alias/payments"), "--format", "email"]) == 4
    assert capsys.readouterr().out.startswith("To: kms-oncall@example.com\nSubject: ")


def test_ticket_open_case_falls_back_when_unavailable(lab_for: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The lab serves no AWS Support API (like an account without a support plan): the command says so, and the
    draft carries the console link."""
    lab = lab_for("sole-admin-deleted")
    assert main(["ticket", lab.key_arn("alias/payments"), "--open-case"]) == 4
    out, err = capsys.readouterr()
    assert "no AWS Support case was opened" in err
    assert CONSOLE_CASE_URL in out
    assert_no_secrets(lab, out, err)


def test_ticket_bad_address_exit_2(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ticket", KEY_ARN, "--to", "nobody"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kms-rescue: error: --to: 'nobody' is not an email address")


def test_ticket_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ticket", "--help"]) == 0
    assert "Example" in capsys.readouterr().out


def test_installed_script_writes_eml_to_stdout(lab_for: Any, clean_env: Path) -> None:
    """The installed console script, in a subprocess with HOME isolated and only the lab's AWS settings."""
    lab = lab_for("sole-admin-deleted")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(clean_env), AWS_CONFIG_FILE=str(lab.config_path),
               AWS_SHARED_CREDENTIALS_FILE=str(clean_env / "none"), AWS_EC2_METADATA_DISABLED="true")
    script = Path(sys.executable).parent / "kms-rescue"
    proc = subprocess.run([str(script), "ticket", lab.key_arn("alias/payments"), "--format", "eml", "--to",
                           "cloud-team@example.com"], env=env, capture_output=True, timeout=120, check=False)
    assert proc.returncode == 4, proc.stderr
    msg = email.message_from_bytes(proc.stdout, policy=email.policy.default)
    assert msg["To"] == "cloud-team@example.com"
    assert_no_secrets(lab, proc.stdout, proc.stderr)
