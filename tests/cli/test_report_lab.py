"""`kms-rescue report` end to end against the lab: every built-in scenario reaches its documented verdict and exit
code through the installed CLI; no output (any format, stderr included) ever contains a lab credential; the report
still completes, validates and classifies every identity under 30% throttling, under hanging requests, and with a
credential_process that hangs. The AWS config is the lab's; HOME is private and AWS_* variables are unset, so the
developer's real configuration is never read."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kms_rescue.lab import Lab, builtin_names
from tests.helpers.cli import assert_no_secrets, clean_env, in_process, lab_secrets, run_cli
from tests.helpers.lab import lab_stats, scenario_doc
from tests.helpers.schema import check_classified, validate_report

pytest.importorskip("moto")

#: Scenarios whose verdict turns on a guardrail (permissions boundary, SCP, RCP): the lab enforces them, and the
#: investigation reads them (Investigation.guardrails_for), but the report does not pass them to the engine yet.
#: Strict: when the report does, these pass, and the marks must go.
SCENARIOS = sorted(builtin_names())


# --- every scenario, through the installed script ----------------------------------------------------------------

@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_reaches_its_documented_verdict(name: str, tmp_path: Path, isolated: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch):
    doc = scenario_doc(name)
    expected = doc["expected_verdict"]
    with Lab(name) as lab:
        assert lab.config_path is not None
        key = lab.key_arn(doc["keys"][0]["id"])
        if expected == "not_found":  # the key as the user gave it: its ARN in the profiles' Region, where it is not
            key = f"arn:aws:kms:{lab.region}:{lab.account}:key/{doc['keys'][0]['id']}"
        secrets = lab_secrets(lab.config_path)
        proc = run_cli(["report", key, "--format", "json"], clean_env(tmp_path, lab.config_path))
        assert proc.stdout, proc.stderr
        report = json.loads(proc.stdout)
        assert report["verdict"] == expected, report["summary"]
        assert proc.returncode == {"manageable": 0, "recoverable": 3, "locked_out": 4, "undetermined": 5,
                                   "not_found": 6}[expected]
        check_classified(report)
        outputs = [proc.stdout, proc.stderr]
        # The other formats, in process (same lab): the same verdict, and no secrets either. (The busy account's
        # 18 identities make it the slow one; the other scenarios cover the formats.)
        for fmt in ("text", "markdown") if name != "busy-account" else ():
            code, out, err = in_process([key, "--format", fmt], lab.config_path, capsys, monkeypatch)
            assert code == proc.returncode
            assert expected.replace("_", " ").upper() in out
            outputs += [out, err]
        assert_no_secrets(outputs, secrets)


@pytest.mark.parametrize(
    ("name", "verdict", "opens_at", "why"),
    [
        ("date-deny-lockout", "locked_out", None, "never opens again"),
        ("admin-window-closed", "locked_out", None, "never opens again"),
        ("admin-window-opens", "recoverable", "2100-01-01T00:00:01Z", "opens at 2100-01-01T00:00:01Z"),
        ("principalarn-literal-star", "locked_out", None, "no role name can be '*'"),
    ],
)
def test_dates_and_literals_through_the_installed_cli(name: str, verdict: str, opens_at: str | None, why: str,
                                                      tmp_path: Path) -> None:
    """IAM User Guide, global condition keys: aws:CurrentTime is in every request (a past window never counts, a
    future one opens on a date); Condition operators: StringEquals is exact (no role name holds *)."""
    doc = scenario_doc(name)
    with Lab(name) as lab:
        assert lab.config_path is not None
        proc = run_cli(["report", lab.key_arn(doc["keys"][0]["id"]), "--format", "json"],
                       clean_env(tmp_path, lab.config_path))
    report = json.loads(proc.stdout)
    validate_report(report)
    assert report["verdict"] == verdict, report["summary"]
    assert proc.returncode == {"recoverable": 3, "locked_out": 4}[verdict]
    paths = report["management_paths"]
    assert paths and not any(p["can_manage"] for p in paths)
    assert [p["opens_at"] for p in paths if p["opens_at"]] == ([opens_at] if opens_at else [])
    assert any(why in p["why"] for p in paths), [p["why"] for p in paths]
    if opens_at:  # the report says which date, and what to do then
        assert f"recoverable on {opens_at}" in report["summary"]
        assert report["next_steps"][0]["action"] == "assume_role" and opens_at in report["next_steps"][0]["detail"]
    else:
        assert report["next_steps"][0]["action"] == "contact_support"


def test_sole_admin_deleted_evidence(tmp_path: Path, isolated: Path, capsys, monkeypatch):
    """The deleted admin shows as a unique id, the app profile read the policy, root cannot help: AWS Support."""
    with Lab("sole-admin-deleted") as lab:
        key = lab.key_arn(scenario_doc("sole-admin-deleted")["keys"][0]["id"])
        code, out, _ = in_process([key, "-f", "json"], lab.config_path or "", capsys, monkeypatch)
    report = json.loads(out)
    assert code == 4
    assert report["policy"]["source"] == "live"
    deleted = [p for p in report["principals"] if p["kind"] == "unique_id"]
    assert deleted and deleted[0]["exists"] is False and deleted[0]["value"].startswith("AROA")
    assert report["next_steps"][0]["action"] == "contact_support"
    root = next(i for i in report["identities"] if i["name"] == "root")
    assert root["can_manage"] is False


def test_explicit_deny_trap_step_is_runnable_and_makes_the_key_manageable(tmp_path: Path):
    """The recoverable step says: assume BreakGlass with session name break-glass. Run that exact command."""
    name = "explicit-deny-trap"
    with Lab(name) as lab:
        env = clean_env(tmp_path, lab.config_path or "")
        key = lab.key_arn(scenario_doc(name)["keys"][0]["id"])
        first = json.loads(run_cli(["report", key, "-f", "json", "--no-history"], env).stdout)
        step = next(s for s in first["next_steps"] if s["action"] == "assume_role")
        args = shlex.split(step["command"])
        assert args[:2] == ["kms-rescue", "report"] and "--role-session-name" in args
        proc = run_cli([*args[1:], "-f", "json", "--no-history"], env)
        again = json.loads(proc.stdout)
    assert proc.returncode == 0, again["summary"]
    assumed = [i for i in again["identities"] if i["source"] == "assume_role"]
    assert assumed and assumed[0]["can_manage"] is True
    assert assumed[0]["arn"].endswith(":assumed-role/BreakGlass/break-glass")


def test_history_reconstructs_an_unreadable_policy(tmp_path: Path, isolated: Path, capsys, monkeypatch):
    name = "policy-unreadable-history"
    with Lab(name) as lab:
        key = lab.key_arn(scenario_doc(name)["keys"][0]["id"])
        code, out, _ = in_process([key, "-f", "json", "--trail-bucket", "corp-trail"], lab.config_path or "", capsys,
                                  monkeypatch)
    report = json.loads(out)
    assert code == 3
    assert report["policy"]["source"] == "cloudtrail"
    assert all(c["outcome"] != "ok" for i in report["identities"] for c in i["calls"]
               if c["operation"] == "kms:GetKeyPolicy")
    assert report["history"]["last_policy"]["name"] == "PutKeyPolicy"
    assert "s3://corp-trail/" in report["history"]["athena_query"]
    keyadmin = next(p for p in report["principals"] if p["value"].endswith(":role/KeyAdmin"))
    assert keyadmin["exists"] is True and "iam:GetRole" in keyadmin["evidence"]


class TestBusyAccount:
    """Several runs against one busy-account lab (class scope: the lab's account is free again afterwards)."""

    @pytest.fixture(scope="class")
    @classmethod
    def busy_lab(cls) -> Iterator[Lab]:
        with Lab("busy-account") as lab:
            yield lab

    @pytest.mark.parametrize("index", [20, 22])
    def test_keys_carry_their_own_verdicts(self, index: int, busy_lab: Lab, isolated: Path, capsys, monkeypatch):
        key = scenario_doc("busy-account")["keys"][index]
        code, out, _ = in_process([busy_lab.key_arn(key["id"]), "-f", "json"], busy_lab.config_path or "", capsys,
                                  monkeypatch)
        verdict = json.loads(out)["verdict"]
        assert verdict == key["expected_verdict"]
        assert code == {"manageable": 0, "recoverable": 3, "locked_out": 4, "undetermined": 5}[verdict]

    @pytest.mark.parametrize("form", ["alias", "alias_arn", "key_id"])
    def test_alias_and_key_id_inputs_resolve(self, form: str, busy_lab: Lab, isolated: Path, capsys, monkeypatch):
        key = scenario_doc("busy-account")["keys"][0]
        arn = busy_lab.key_arn(key["id"])
        value = {"alias": key["alias"],
                 "alias_arn": f"arn:aws:kms:{busy_lab.region}:{busy_lab.account}:{key['alias']}",
                 "key_id": key["id"]}[form]
        extra = [] if form == "alias_arn" else ["--region", busy_lab.region]
        code, out, _ = in_process([value, *extra, "-f", "json", "--no-history", "-p", "admin", "-p", "intern"],
                                  busy_lab.config_path or "", capsys, monkeypatch)
        report = json.loads(out)
        assert (code, report["key"]["arn"]) == (0, arn)
        if form != "key_id":
            assert key["alias"] in report["key"]["aliases"]

    def test_progress_goes_to_stderr_on_a_terminal_only(self, busy_lab: Lab, isolated: Path, capsys, monkeypatch):
        from kms_rescue.cli import report as report_cli
        from kms_rescue.cli._progress import ProbeProgress

        key = busy_lab.key_arn(scenario_doc("busy-account")["keys"][0]["id"])
        args = [key, "-f", "json", "-p", "admin", "--no-history"]
        events: list[object] = []
        original = ProbeProgress.__call__

        def spy(self: object, event: object) -> None:
            events.append(event)
            original(self, event)  # type: ignore[arg-type]

        monkeypatch.setattr(ProbeProgress, "__call__", spy)
        code, out, err = in_process(args, busy_lab.config_path or "", capsys, monkeypatch)
        assert code == 0 and events == [] and err == "", "no terminal: no progress bar, nothing on stderr"
        monkeypatch.setattr(report_cli, "_isatty", lambda stream: stream is sys.stderr)
        code, out, _ = in_process(args, busy_lab.config_path or "", capsys, monkeypatch)
        assert code == 0 and json.loads(out)["verdict"] == "manageable", "the payload stays clean on stdout"
        kinds = [getattr(e, "kind", None) for e in events]
        assert kinds[0] == "plan" and "call" in kinds and "step" in kinds

    def test_output_file_and_usage_errors(self, busy_lab: Lab, isolated: Path, tmp_path: Path, capsys, monkeypatch):
        key = busy_lab.key_arn(scenario_doc("busy-account")["keys"][0]["id"])
        target = tmp_path / "report.md"
        code, out, err = in_process([key, "-f", "markdown", "-o", str(target), "-p", "admin", "--no-history"],
                                    busy_lab.config_path or "", capsys, monkeypatch)
        assert code == 0 and out == ""
        assert target.read_text().startswith("# KMS key report: MANAGEABLE")
        assert "wrote the report" in err
        for args, message in [
            ([key, "-p", "nobody"], "no profile named 'nobody'"),
            ([key, "--timeout", "0"], "--timeout must be a positive number"),
            (["alias/x", "--region", "US-EAST-1"], "is not an AWS Region code"),  # the config's region would do
            ([key, "--region", "eu-west-1"], "the ARN is in"),
        ]:
            code, _, err = in_process(args, busy_lab.config_path or "", capsys, monkeypatch)
            assert code == 2
            assert err.startswith("kms-rescue: error: ") and message in err and err.count("\n") <= 2


# --- resilience (functional assertions, fixed seeds, no timing) --------------------------------------------------

def test_thirty_percent_throttling_still_completes(tmp_path: Path):
    with Lab("sole-admin-deleted", fault_rate=0.3, fault="throttle", seed=7) as lab:
        key = lab.key_arn(scenario_doc("sole-admin-deleted")["keys"][0]["id"])
        proc = run_cli(["report", key, "-f", "json", "--timeout", "5"], clean_env(tmp_path, lab.config_path or ""))
        throttled = lab_stats(lab).get("fault:throttle", 0)
        profiles = set(lab.profiles)
    report = json.loads(proc.stdout)
    check_classified(report)
    assert proc.returncode in (0, 3, 4, 5)
    assert throttled > 0, "the lab injected throttling"
    assert {i["name"] for i in report["identities"]} == profiles


def test_hanging_requests_time_out_per_call(tmp_path: Path):
    """Requests that never get an answer time out on their own (read timeout, retried), and the report still
    completes and classifies every identity."""
    with Lab("healthy-default", fault_rate=0.1, fault="hang", seed=3, hang_seconds=30) as lab:
        key = lab.key_arn(scenario_doc("healthy-default")["keys"][0]["id"])
        proc = run_cli(["report", key, "-f", "json", "--timeout", "1", "--no-history"],
                       clean_env(tmp_path, lab.config_path or ""))
        hung = lab_stats(lab).get("fault:hang", 0)
    assert hung > 0, "the lab left some requests hanging"
    report = json.loads(proc.stdout)
    check_classified(report)
    assert proc.returncode in (0, 3, 4, 5)


def test_one_hanging_credential_process_times_out_alone(tmp_path: Path):
    name = "healthy-default"
    with Lab(name) as lab:
        assert lab.config_path is not None
        config = tmp_path / "config"
        hang = tmp_path / "hang.py"
        hang.write_text("import time\ntime.sleep(60)\n", encoding="utf-8")
        config.write_text(Path(lab.config_path).read_text() + f"\n[profile stuck]\nregion = {lab.region}\n"
                          f"endpoint_url = {lab.endpoint}\ncredential_process = {sys.executable} {hang}\n")
        key = lab.key_arn(scenario_doc(name)["keys"][0]["id"])
        proc = run_cli(["report", key, "-f", "json", "--timeout", "2"], clean_env(tmp_path, config))
        secrets = lab_secrets(lab.config_path)
    report = json.loads(proc.stdout)
    check_classified(report)
    assert report["verdict"] == scenario_doc(name)["expected_verdict"]
    stuck = next(i for i in report["identities"] if i["name"] == "stuck")
    assert stuck["status"] == "timeout"
    others = [i for i in report["identities"] if i["name"] != "stuck"]
    assert all(i["status"] == "ok" for i in others)
    assert_no_secrets([proc.stdout, proc.stderr], secrets)


# --- verdicts from evidence (docs/engine.md, "Deciding under uncertainty") -----------------------------------------

def test_runbook_policy_is_manageable_from_the_observed_read(tmp_path: Path, isolated: Path):
    """The runbook's own policy, an admin role with no identity policies (so no iam:GetRole): its GetKeyPolicy
    succeeded through the aws:PrincipalArn statement, which leaves only the path /. The report quotes that
    observation, never claims the policy delegates to IAM, and never invents a session ARN."""
    with Lab("runbook-policy") as lab:
        key = lab.key_arn(scenario_doc("runbook-policy")["keys"][0]["id"])
        proc = run_cli(["report", key, "--format", "json"], clean_env(tmp_path, lab.config_path or ""))
    report = json.loads(proc.stdout)
    assert (report["verdict"], proc.returncode) == ("manageable", 0)
    admin = next(i for i in report["identities"] if i["name"] == "admin")
    assert admin["can_manage"] is True and admin["worlds_left"] == 1 < admin["worlds"]
    assert any(o.startswith("kms:GetKeyPolicy by admin succeeded") for o in admin["observations"])
    text = json.dumps(report)
    assert "assumed-role/shib-admin/session" not in text
    assert "delegates to IAM" not in text
    assert {p["principal"] for p in report["management_paths"]} >= {"arn:aws:iam::111122223333:role/shib-admin"}


@pytest.mark.parametrize("ref", ["11111111-2222-3333-4444-555555555555", "alias/no-such-alias"])
def test_a_mistyped_key_is_not_found_not_a_support_case(ref: str, tmp_path: Path, isolated: Path):
    """Every identity gets NotFoundException: verdict not_found (exit 6), the other Regions searched, and no
    advice to contact AWS Support."""
    with Lab("healthy-default") as lab:
        env = clean_env(tmp_path, lab.config_path or "")
        proc = run_cli(["report", ref, "--region", "us-east-1", "--format", "json"], env)
        text_proc = run_cli(["report", ref, "--region", "us-east-1"], env)
    report = json.loads(proc.stdout)
    check_classified(report)
    assert (report["verdict"], proc.returncode, report["exit_code"]) == ("not_found", 6, 6)
    assert [s["action"] for s in report["next_steps"]] == ["check_key_reference"]
    assert report["location"]["searched"] and not report["location"]["found"]
    for out in (proc.stdout, text_proc.stdout):
        assert "contact_support" not in out and "AWS Support with the key" not in out
        assert "CloudTrail was not searched: no identity" not in out
    assert "NOT FOUND" in text_proc.stdout and text_proc.returncode == 6


def test_a_key_in_another_region_is_found_there(tmp_path: Path, isolated: Path):
    """key-in-other-region: the key is in eu-west-1, the profiles' Region is us-east-1. Every identity is told
    NotFoundException; the report searches the Regions DescribeRegions lists and says where the key is, with the
    command for that Region, and never advises AWS Support."""
    with Lab("key-in-other-region") as lab:
        env = clean_env(tmp_path, lab.config_path or "")
        key_id = scenario_doc("key-in-other-region")["keys"][0]["id"]
        results = {ref: run_cli(["report", ref, "--region", "us-east-1", "--format", "json"], env)
                   for ref in (key_id, "alias/payments")}
    for ref, proc in results.items():
        report = json.loads(proc.stdout)
        assert (report["verdict"], proc.returncode) == ("not_found", 6), ref
        loc = report["location"]
        assert loc["regions_from"] == "ec2:DescribeRegions"
        assert set(loc["searched"]) == {"us-west-2", "eu-west-1"}
        assert [f["region"] for f in loc["found"]] == ["eu-west-1"]
        assert loc["found"][0]["key_arn"].endswith(key_id)
        step = report["next_steps"][0]
        assert step["action"] == "use_region" and "eu-west-1" in step["command"]
        assert "is in eu-west-1" in report["summary"] or "it is in eu-west-1" in report["summary"]
        assert "Support" not in json.dumps(report["next_steps"])


def test_an_scp_closes_the_root_users_way_in(tmp_path: Path, isolated: Path):
    """scp-break-glass-only: the SCP denies kms:PutKeyPolicy to all but BreakGlass, root included (SCPs restrict a
    member account's root user). Read by the management account's profile, it blocks the root path: the report
    never advises signing in as root, and names the SCP."""
    doc = scenario_doc("scp-break-glass-only")
    with Lab("scp-break-glass-only") as lab:
        key = f"arn:aws:kms:{lab.region}:{lab.account}:key/{doc['keys'][0]['id']}"
        proc = run_cli(["report", key, "--format", "json"], clean_env(tmp_path, lab.config_path or ""))
    report = json.loads(proc.stdout)
    validate_report(report)
    assert (report["verdict"], proc.returncode) == ("recoverable", 3)
    root = next(p for p in report["management_paths"] if p["kind"] == "root_user")
    assert root["can_manage"] is False and root["blocked_by"] == ["service control policies"]
    assert "sign_in_root" not in [s["action"] for s in report["next_steps"]]
    admin = next(i for i in report["identities"] if i["name"] == "admin")
    assert admin["can_manage"] is False and "SCP" in admin["why"]
