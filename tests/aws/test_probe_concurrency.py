"""The probe's concurrency: an identity's independent calls overlap (fan_out), the result does not depend on it
(parallel and one-at-a-time reads of the same identity agree, in the same order), the background warm-up, and the
CloudTrail lookup's informed choice of identity (no request spent on an identity whose policies deny it when a
better one is known)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kms_rescue.aws import iam as iam_reads
from kms_rescue.aws import sessions
from kms_rescue.aws.fanout import fan_out
from kms_rescue.aws.investigate import InvestigateOptions, _history_order, investigate
from kms_rescue.aws.probe import IdentityRun, ProbeSettings
from kms_rescue.aws.results import CallResult, IdentityPolicies, IdentitySpec, PolicyDoc
from kms_rescue.lab import Lab
from tests.helpers.lab import scenario_doc
from tests.helpers.schema import validate_report

pytest.importorskip("moto")


# --- fan_out -----------------------------------------------------------------------------------------------------

def test_fan_out_overlaps_and_keeps_order():
    barrier = threading.Barrier(3, timeout=5)

    def meet(i: int) -> int:
        barrier.wait()  # only passes when all three run at the same time
        return i * 10

    assert fan_out([lambda i=i: meet(i) for i in range(3)]) == [0, 10, 20]


def test_fan_out_one_at_a_time_when_asked():
    running: list[int] = []
    seen_together: list[int] = []

    def work(i: int) -> int:
        running.append(i)
        seen_together.append(len(running))
        time.sleep(0.01)
        running.remove(i)
        return i

    assert fan_out([lambda i=i: work(i) for i in range(4)], parallel=False) == [0, 1, 2, 3]
    assert max(seen_together) == 1


def test_fan_out_raises_the_first_error_after_every_thunk_finished():
    finished: list[int] = []

    def ok(i: int) -> int:
        time.sleep(0.02)
        finished.append(i)
        return i

    def boom(message: str) -> int:
        raise ValueError(message)

    with pytest.raises(ValueError, match="first"):
        fan_out([lambda: ok(0), lambda: boom("first"), lambda: boom("second"), lambda: ok(3)])
    assert sorted(finished) == [0, 3]


# --- identity-policy reads: parallel == sequential ---------------------------------------------------------------

class _Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, operation: str, target: str | None, thunk: Any) -> tuple[Any, CallResult]:
        try:
            result = thunk()
        except Exception as exc:  # the probe classifies; here a failure is enough
            rec = CallResult(operation, "access_denied", type(exc).__name__, str(exc), 0, "t", target)
            with self.lock:
                self.calls.append(operation)
            return None, rec
        with self.lock:
            self.calls.append(operation)
        return result, CallResult(operation, "ok", None, None, 0, "t", target)


@pytest.fixture(scope="module")
def busy() -> Iterator[Lab]:
    with Lab("busy-account") as lab:
        yield lab


def _iam_client(lab: Lab, profile: str) -> Any:
    """A real botocore IAM client of ``profile`` against the lab (AWS_CONFIG_FILE points at the lab's config)."""
    options = sessions.SessionOptions()
    session = sessions.open_session(IdentitySpec(name=profile, source="profile", profile=profile, kind="static"),
                                    options)
    return sessions.create_client(session, "iam", lab.region, options)


@pytest.mark.parametrize("who", ["admin", "auditor-1"])
def test_parallel_and_sequential_reads_agree(busy: Lab, isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                             who: str):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(busy.config_path))
    iam = _iam_client(busy, "admin")  # the admin can read every role's and user's policies
    ident = next(i for i in scenario_doc("busy-account")["identities"] if i["profile"] == who)
    arn = (f"arn:aws:iam::{busy.account}:user/{ident['user']}" if "user" in ident
           else f"arn:aws:sts::{busy.account}:assumed-role/{ident['role']}/s")
    results: dict[bool, IdentityPolicies] = {}
    calls: dict[bool, list[str]] = {}
    for parallel in (False, True):
        rec = _Recorder()
        results[parallel] = iam_reads.read_identity_policies(iam, arn, rec, read_by="admin", parallel=parallel)
        calls[parallel] = rec.calls
    seq, par = results[False], results[True]
    assert seq.status == par.status == "read"
    assert [d.source for d in par.documents] == [d.source for d in seq.documents], "same documents, same order"
    assert [d.document for d in par.documents] == [d.document for d in seq.documents]
    assert sorted(calls[True]) == sorted(calls[False]), "the same calls, only overlapped"
    if "user" in ident:
        assert any(d.source.startswith("managed") for d in par.documents), "group policies were followed"


# --- the CloudTrail lookup's choice ------------------------------------------------------------------------------

def _run(name: str, arn: str, status: str | None, docs: list[dict[str, Any]]) -> IdentityRun:
    run = IdentityRun(IdentitySpec(name=name, source="profile", profile=name), ProbeSettings(), "us-east-1")
    run.probe.arn = arn
    if status is not None:
        run.probe.identity_policies = IdentityPolicies(status, [PolicyDoc(f"inline {name}", d) for d in docs])  # type: ignore[arg-type]
    return run


def test_history_order_prefers_allowed_then_unknown_then_denied():
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "cloudtrail:Lookup*",
                                                     "Resource": "*"}]}
    kms_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    denied = _run("app", "arn:aws:sts::111122223333:assumed-role/App/s", "read", [kms_only])
    unknown = _run("ops", "arn:aws:sts::111122223333:assumed-role/Ops/s", None, [])
    allowed = _run("admin", "arn:aws:sts::111122223333:assumed-role/Admin/s", "read", [allow])
    root = _run("root", "arn:aws:iam::111122223333:root", "not_needed", [])
    order = [r.spec.name for r in _history_order([denied, unknown, allowed, root])]
    assert order == ["admin", "root", "ops", "app"]


def test_history_spends_no_request_on_a_denied_identity(busy: Lab, isolated: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    """busy-account: the app roles may not read CloudTrail, the admin may. Whichever identity connects first, the
    lookup waits until it knows whom to ask and asks once."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(busy.config_path))
    key = busy.key_arn(scenario_doc("busy-account")["keys"][0]["id"])
    names = [f"app-{i:02d}" for i in range(1, 9)] + ["admin"]
    for _ in range(2):
        inv = investigate(key, InvestigateOptions(profiles=names))
        assert inv.history.outcome == "ok" and inv.history.read_by == "admin"
        assert inv.history.requests == 1
        lookups = [(p.spec.name, c.outcome) for p in inv.identities for c in p.calls
                   if c.operation == "cloudtrail:LookupEvents"]
        assert lookups == [("admin", "ok")]


# --- managed policies: the first version fetched ahead ------------------------------------------------------------

class _FakeIam:
    """An IAM client's answers for one role with three attached policies (a stand-in for AWS's responses, shaped
    as botocore returns them)."""

    ACCOUNT_POLICY_EDITED = "arn:aws:iam::111122223333:policy/Edited"
    ACCOUNT_POLICY_FRESH = "arn:aws:iam::111122223333:policy/Fresh"
    AWS_POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"

    def __init__(self) -> None:
        def doc(effect: str, action: str) -> dict[str, Any]:
            return {"Statement": [{"Effect": effect, "Action": action, "Resource": "*"}]}

        self.versions = {
            (self.ACCOUNT_POLICY_EDITED, "v1"): doc("Allow", "kms:*"),
            (self.ACCOUNT_POLICY_EDITED, "v3"): doc("Deny", "kms:*"),
            (self.ACCOUNT_POLICY_FRESH, "v1"): doc("Allow", "s3:*"),
            (self.AWS_POLICY, "v9"): doc("Allow", "iam:Get*"),
        }
        self.defaults = {self.ACCOUNT_POLICY_EDITED: "v3", self.ACCOUNT_POLICY_FRESH: "v1", self.AWS_POLICY: "v9"}
        self.asked: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def get_paginator(self, operation: str) -> Any:
        pages = {
            "list_role_policies": [{"PolicyNames": []}],
            "list_attached_role_policies": [{"AttachedPolicies": [
                {"PolicyName": a.rsplit("/", 1)[1], "PolicyArn": a}
                for a in (self.ACCOUNT_POLICY_EDITED, self.ACCOUNT_POLICY_FRESH, self.AWS_POLICY)]}],
        }[operation]

        class _P:
            def paginate(self, **_kw: Any) -> list[dict[str, Any]]:
                return pages

        return _P()

    def get_policy(self, PolicyArn: str) -> dict[str, Any]:
        time.sleep(0.01)
        return {"Policy": {"Arn": PolicyArn, "DefaultVersionId": self.defaults[PolicyArn]}}

    def get_policy_version(self, PolicyArn: str, VersionId: str) -> dict[str, Any]:
        with self.lock:
            self.asked.append((PolicyArn, VersionId))
        doc = self.versions.get((PolicyArn, VersionId))
        if doc is None:
            raise LookupError("NoSuchEntity")
        return {"PolicyVersion": {"Document": json.dumps(doc), "VersionId": VersionId}}


@pytest.mark.parametrize("parallel", [False, True])
def test_first_version_fetched_ahead_is_used_only_when_it_is_the_default(parallel: bool):
    iam = _FakeIam()
    got = iam_reads.read_identity_policies(iam, "arn:aws:iam::111122223333:role/App", _Recorder(), read_by="x",
                                           parallel=parallel)
    assert got.status == "read"
    docs = {d.source.split(" ", 1)[1]: d.document for d in got.documents}
    assert docs[iam.ACCOUNT_POLICY_EDITED] == iam.versions[(iam.ACCOUNT_POLICY_EDITED, "v3")], "the default, not v1"
    assert docs[iam.ACCOUNT_POLICY_FRESH] == iam.versions[(iam.ACCOUNT_POLICY_FRESH, "v1")]
    assert docs[iam.AWS_POLICY] == iam.versions[(iam.AWS_POLICY, "v9")]
    asked = sorted(iam.asked)
    if parallel:
        assert asked == sorted([(iam.ACCOUNT_POLICY_EDITED, "v1"), (iam.ACCOUNT_POLICY_EDITED, "v3"),
                                (iam.ACCOUNT_POLICY_FRESH, "v1"), (iam.AWS_POLICY, "v9")]), \
            "v1 of account policies goes ahead (once); AWS managed ones are never guessed"
    else:
        assert asked == sorted([(iam.ACCOUNT_POLICY_EDITED, "v3"), (iam.ACCOUNT_POLICY_FRESH, "v1"),
                                (iam.AWS_POLICY, "v9")])


# --- a session's aws:PrincipalArn carries its role's path ----------------------------------------------------------

def _principalarn_variant(keep: set[str]) -> dict[str, Any]:
    from kms_rescue.lab.scenario import builtin_text

    doc = json.loads(builtin_text("principalarn-condition"))
    doc["name"] = "principalarn-condition-variant"
    doc["identities"] = [i for i in doc["identities"] if i["profile"] in keep]
    return doc


def _report(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from kms_rescue.aws.investigate import investigate as run_investigation
    from kms_rescue.report import build_report

    monkeypatch.setenv("AWS_CONFIG_FILE", str(lab.config_path))
    inv = run_investigation(lab.key_arn(lab.scenario.keys[0].id), InvestigateOptions(history=False))
    doc = build_report(inv).to_dict()
    validate_report(doc)
    return doc


def test_session_of_a_role_with_a_path_is_judged_by_the_roles_arn(isolated: Path,
                                                                   monkeypatch: pytest.MonkeyPatch):
    """principalarn-condition: the admin profile is a session of role/admins/KmsAdmin, let in by a condition on
    aws:PrincipalArn matching role/admins/*. Its session ARN has no path; iam:GetRole (here by the root user, as
    the admin may not read IAM) supplies it, and the report agrees with the lab, which lets the admin in."""
    with Lab("principalarn-condition") as lab:
        doc = _report(lab, monkeypatch)
        can = {i["name"]: i["can_manage"] for i in doc["identities"]}
        assert can == {"admin": True, "app": False, "root": True}
        admin = next(i for i in doc["identities"] if i["name"] == "admin")
        assert admin["arn"].endswith(":assumed-role/KmsAdmin/admin")
        # the lab agrees: the admin can put the policy back as it is
        kms = lab.client("admin", "kms")
        key = lab.key_arn(lab.scenario.keys[0].id)
        kms.put_key_policy(KeyId=key, PolicyName="default",
                           Policy=kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])


def test_unknown_role_path_is_narrowed_by_what_the_probes_observed(isolated: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    """Without any identity that may call iam:GetRole, the role's path cannot be read. The admin's own
    kms:GetKeyPolicy succeeded, and only the statement matching role/admins/* lets it read the policy: of the
    candidate paths (/, /admins/, a path no policy names) only /admins/ is consistent with that, so the admin can
    manage the key, with the observation as evidence, not a guess."""
    with Lab(_principalarn_variant({"admin", "app"})) as lab:
        doc = _report(lab, monkeypatch)
        admin = next(i for i in doc["identities"] if i["name"] == "admin")
        assert admin["can_manage"] is True
        assert (admin["worlds"], admin["worlds_left"]) == (3, 1)
        assert any(o.startswith("kms:GetKeyPolicy by admin succeeded") for o in admin["observations"])
        assert doc["verdict"] == "manageable"


def test_no_role_lookup_when_no_policy_tests_principalarn(isolated: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    """The path only matters to conditions on aws:PrincipalArn: without one, no iam:GetRole is spent on it. Each
    role session's own GetRole (which shows its permissions boundary) is the only one: never a second."""
    with Lab("healthy-default") as lab:
        doc = _report(lab, monkeypatch)
        assert doc["verdict"] == "manageable"
        calls = [c["operation"] for i in doc["identities"] for c in i["calls"]]
        assert "kms:GetKeyPolicy" in calls
        for ident in doc["identities"]:
            get_role = [c for c in ident["calls"] if c["operation"] == "iam:GetRole"]
            assert len(get_role) <= 1, ident["name"]


# --- clients made while GetCallerIdentity is in flight -------------------------------------------------------------

def test_prepared_clients_are_reused_and_a_failure_is_left_for_the_real_use():
    made: list[str] = []
    fail_once = {"iam"}

    class _Client:
        def __init__(self, service: str) -> None:
            self.service = service

        def can_paginate(self, _name: str) -> bool:
            return False

    def factory(_session: Any, service: str, _region: str) -> Any:
        made.append(service)
        if service in fail_once:
            fail_once.discard(service)
            raise RuntimeError("endpoint not resolvable yet")
        return _Client(service)

    run = IdentityRun(IdentitySpec(name="a", source="profile", profile="a"),
                      ProbeSettings(client_factory=factory), "us-east-1")
    run.prepare_clients(("kms", "iam")).result(5)
    assert made == ["kms", "iam"]
    kms = run.client("kms")
    assert kms.service == "kms" and made == ["kms", "iam"], "the prepared client is the one used"
    assert run.client("iam").service == "iam" and made == ["kms", "iam", "iam"], "made again when really needed"


# --- group and managed policy reads are shared by the identities of one investigation ----------------------------

GROUP_CALLS = ("iam:ListGroupPolicies", "iam:ListAttachedGroupPolicies", "iam:GetPolicy")


def test_users_of_one_group_read_its_policies_once(busy: Lab, isolated: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    """busy-account: the three auditors are users of one group, whose attached policy is KmsReadOnly. The group's
    lists and the policy's document are read once; every auditor's policies are still read, with that document."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(busy.config_path))
    key = busy.key_arn(scenario_doc("busy-account")["keys"][0]["id"])
    inv = investigate(key, InvestigateOptions(profiles=["auditor-1", "auditor-2", "auditor-3"], history=False))
    made = [c.operation for p in inv.identities for c in p.calls]
    for operation in GROUP_CALLS:
        assert made.count(operation) == 1, (operation, made)
    for probe in inv.identities:
        pols = probe.identity_policies
        assert pols is not None and pols.status == "read", probe.spec.name
        assert [d.source for d in pols.documents] == ["managed arn:aws:iam::111122223333:policy/KmsReadOnly"]
    assert made.count("iam:ListGroupsForUser") == 3, "each user's own groups are still listed"


def test_a_failed_read_is_not_shared_and_a_good_one_is():
    shared = iam_reads.SharedReads()
    doc = PolicyDoc("managed arn:aws:iam::111122223333:policy/P", {"Version": "2012-10-17", "Statement": []})
    denied = shared.read(("managed policy", "P"), lambda: ([], ["iam:GetPolicy: access_denied"]))
    assert denied == ([], ["iam:GetPolicy: access_denied"])
    tries: list[str] = []

    def allowed() -> tuple[list[PolicyDoc], list[str]]:
        tries.append("read")
        return [doc], []

    assert shared.read(("managed policy", "P"), allowed) == ([doc], []), "a denial left nothing to reuse"
    assert shared.read(("managed policy", "P"), allowed) == ([doc], [])
    assert tries == ["read"], "the second identity reused the first's read"


def test_identities_waiting_for_a_read_in_flight_reuse_it():
    shared = iam_reads.SharedReads()
    doc = PolicyDoc("inline group/G:p", {"Version": "2012-10-17", "Statement": []})
    started, release = threading.Event(), threading.Event()
    tries: list[int] = []

    def slow() -> tuple[list[PolicyDoc], list[str]]:
        tries.append(1)
        started.set()
        release.wait(5)
        return [doc], []

    first = threading.Thread(target=shared.read, args=(("group inline", "111122223333", "G"), slow))
    first.start()
    started.wait(5)
    results: list[tuple[list[PolicyDoc], list[str]]] = []
    waiters = [threading.Thread(target=lambda: results.append(shared.read(("group inline", "111122223333", "G"),
                                                                          slow))) for _ in range(3)]
    for t in waiters:
        t.start()
    release.set()
    for t in [first, *waiters]:
        t.join(5)
    assert tries == [1] and results == [([doc], [])] * 3


# --- who reads for whom after the probe ----------------------------------------------------------------------------

def test_late_fill_reads_only_through_identities_that_read_their_own(busy: Lab, isolated: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    """After the probe, an identity still without its policies is read by one that read its own. An identity
    whose policies another identity read proved nothing about its own IAM permissions, and is not asked."""
    from kms_rescue.aws.investigate import fill_identity_policies, key_facts
    from kms_rescue.aws.keyref import parse_key_ref

    monkeypatch.setenv("AWS_CONFIG_FILE", str(busy.config_path))
    ref = parse_key_ref(busy.key_arn(scenario_doc("busy-account")["keys"][0]["id"]))
    settings = ProbeSettings(read_identity_policies=False)
    runs = [IdentityRun(IdentitySpec(name=n, source="profile", profile=n), settings, busy.region)
            for n in ("app-01", "admin", "app-02")]
    for run in runs:
        assert run.connect()
    app1, admin, app2 = runs
    admin.probe.identity_policies = IdentityPolicies("read", [], read_by="admin")
    app1.probe.identity_policies = IdentityPolicies("read", [], read_by="admin")  # read for it, in the probe
    app2.probe.identity_policies = IdentityPolicies("unknown", [], read_by="app-02")
    assert [r.reads_iam() for r in runs] == [False, True, False]
    before = len(app1.probe.calls)
    fill_identity_policies(runs, key_facts(ref, runs))
    pols = app2.probe.identity_policies
    assert pols is not None and pols.status == "read" and pols.read_by == "admin"
    assert len(app1.probe.calls) == before, "app-01 was not tried as a reader"
