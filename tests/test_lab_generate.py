"""The generated benchmark scenario: seeded, with known shares of every audit risk, served by the lab and checked
through real boto3 clients against its HTTP endpoint. Load time and memory are measured in ``make bench``
(bench/lab_scale_bench.py), not here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kms_rescue.cli.app import main
from kms_rescue.lab import Lab, load_scenario
from kms_rescue.lab.generate import (
    ACCESS_ROLE,
    DEFAULT_ACCOUNTS,
    DEFAULT_REGIONS,
    EXPECTED_VERDICTS,
    RISKS,
    SSO_PATH,
    SSO_ROLE,
    generate_scenario,
    risk_counts,
)

KEYS = 2000
SEED = 7
NO_RETRY = Config(retries={"total_max_attempts": 1})
MGMT = DEFAULT_ACCOUNTS[0]

#: For 2,000 keys, each share rounded down, the rest healthy: the counts an audit of this scenario must find.
EXPECTED_2000 = {
    "healthy": 800, "one_manager": 160, "orphaned_principal": 160, "sso_reserved_role": 140,
    "no_account_principal": 140, "window_closes": 120, "pending_deletion": 120, "policy_unreadable": 120,
    "locked_out": 240,
}


@pytest.fixture(scope="module")
def generated() -> Any:
    return generate_scenario(KEYS, seed=SEED)


@pytest.fixture(scope="module")
def lab(generated: Any) -> Iterator[Lab]:
    with Lab(generated.scenario) as running:
        yield running
        assert running.admin.internal_errors == []


def err(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    e = exc.value.response["Error"]
    return e["Code"], e.get("Message", "")


def test_the_shares_are_known_and_seeded(generated: Any) -> None:
    assert generated.counts == EXPECTED_2000 == risk_counts(KEYS)
    assert set(generated.counts) == set(RISKS)
    keys = generated.scenario["keys"]
    assert Counter(k["tags"]["risk"] for k in keys) == Counter(EXPECTED_2000)
    assert {k["id"]: k["tags"]["risk"] for k in keys} == dict(generated.risks)
    again = generate_scenario(KEYS, seed=SEED)
    assert again.scenario["keys"] == keys  # the same seed: the same keys, ids and all
    other = generate_scenario(KEYS, seed=SEED + 1)
    assert other.counts == generated.counts and [k["id"] for k in other.scenario["keys"]] != [k["id"] for k in keys]
    # Small scenarios keep every risk's share rounded down.
    assert risk_counts(10) == {"healthy": 10 - 1, **{r: 0 for r in RISKS if r not in ("healthy", "locked_out")},
                               "locked_out": 1}


def test_keys_are_spread_evenly_over_accounts_and_regions(generated: Any) -> None:
    sc = load_scenario(generated.scenario)
    assert sc.accounts == DEFAULT_ACCOUNTS and sc.regions == DEFAULT_REGIONS
    per_place = Counter((k.account, k.region) for k in sc.keys)
    assert per_place == Counter(generated.placement)
    assert len(per_place) == 12 and set(per_place.values()) == {166, 167}  # 2,000 over 3 accounts x 4 Regions


def test_bad_generator_arguments() -> None:
    for bad in ({"keys": 0}, {"keys": 20_001}, {"keys": 10, "accounts": ()}, {"keys": 10, "regions": ("a", "a")}):
        with pytest.raises(ValueError):
            generate_scenario(**bad)


def _members(lab: Lab, service: str, region: str) -> dict[str, Any]:
    """A client per account in ``region``: the auditor's own, and the access role's in each member account."""
    sts = lab.client("auditor", "sts", config=NO_RETRY)
    clients = {MGMT: lab.client("auditor", service, region_name=region, config=NO_RETRY)}
    for account in DEFAULT_ACCOUNTS[1:]:
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ACCESS_ROLE}",
                                RoleSessionName="audit")["Credentials"]
        clients[account] = lab.assumed_client(creds, service, region_name=region, config=NO_RETRY)
    return clients


def test_every_key_is_listed_page_by_page_in_its_account_and_region(lab: Lab, generated: Any) -> None:
    # KMS API reference, ListKeys: the keys of the caller's account and Region, at most Limit (default 100) a page.
    found: Counter[tuple[str, str]] = Counter()
    ids: set[str] = set()
    for region in DEFAULT_REGIONS:
        for account, kms in _members(lab, "kms", region).items():
            for page in kms.get_paginator("list_keys").paginate():
                assert len(page["Keys"]) <= 100
                for key in page["Keys"]:
                    assert key["KeyArn"] == f"arn:aws:kms:{region}:{account}:key/{key['KeyId']}"
                    found[(account, region)] += 1
                    ids.add(key["KeyId"])
    assert found == Counter(generated.placement)
    assert ids == set(generated.risks)


def _one(generated: Any, risk: str) -> tuple[str, str, str]:
    """(key id, account, region) of the first key with ``risk``."""
    doc = next(k for k in generated.scenario["keys"] if k["tags"]["risk"] == risk)
    return doc["id"], doc.get("account", MGMT), doc.get("region", DEFAULT_REGIONS[0])


def _client(lab: Lab, account: str, region: str, service: str = "kms") -> Any:
    return _members(lab, service, region)[account]


def _can_put(lab: Lab, client: Any, key: str) -> bool:
    policy = lab.admin.raw_key_policy(key)
    try:
        client.put_key_policy(KeyId=key, PolicyName="default", Policy=policy)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] in ("AccessDeniedException", "MalformedPolicyDocumentException")
        return False
    return True


def _sign_in(lab: Lab, ref: str, account: str, region: str) -> Any:
    return lab.client_for(lab.admin.sign_in(ref, account=account), "kms", region_name=region, config=NO_RETRY)


def test_each_risk_behaves_as_its_policy_says(lab: Lab, generated: Any) -> None:
    # KMS Developer Guide, "Key policies": the key policy decides, and a deleted principal shows as its unique id.
    key, account, region = _one(generated, "healthy")
    assert _can_put(lab, _client(lab, account, region), key)  # the account principal lets IAM admins in

    key, account, region = _one(generated, "one_manager")
    assert not _can_put(lab, _client(lab, account, region), key)
    assert _can_put(lab, _sign_in(lab, "role/KeyAdmin", account, region), key)  # the one manager

    key, account, region = _one(generated, "no_account_principal")
    assert not _can_put(lab, lab.client_for(lab.admin.sign_in("root", account=account), "kms", region_name=region,
                                            config=NO_RETRY), key)  # no account principal: not even root
    assert _can_put(lab, _sign_in(lab, "role/BreakGlass", account, region), key)

    for risk in ("orphaned_principal", "locked_out"):
        key, account, region = _one(generated, risk)
        policy = json.loads(_client(lab, account, region).get_key_policy(KeyId=key)["Policy"])
        named = [st["Principal"]["AWS"] for st in policy["Statement"]]
        assert any(isinstance(p, str) and p.startswith("AROA") for p in named), named  # a deleted role's id
        assert (f"arn:aws:iam::{account}:root" in named) == (risk == "orphaned_principal")
    assert not _can_put(lab, _client(lab, account, region), key)  # locked_out: nobody manages it

    key, account, region = _one(generated, "sso_reserved_role")
    policy = json.loads(_client(lab, account, region).get_key_policy(KeyId=key)["Policy"])
    assert f"arn:aws:iam::{account}:role{SSO_PATH}{SSO_ROLE}" in [st["Principal"]["AWS"] for st in policy["Statement"]]

    key, account, region = _one(generated, "window_closes")
    policy = json.loads(_client(lab, account, region).get_key_policy(KeyId=key)["Policy"])
    assert "DateLessThan" in policy["Statement"][0]["Condition"]
    assert _can_put(lab, _sign_in(lab, "role/KeyAdmin", account, region), key)  # still open today

    key, account, region = _one(generated, "pending_deletion")
    meta = _client(lab, account, region).describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion"

    key, account, region = _one(generated, "policy_unreadable")
    code, message = err(_client(lab, account, region).get_key_policy, KeyId=key, PolicyName="default")
    assert code == "AccessDeniedException" and "explicit deny in a resource-based policy" in message


def test_the_cli_writes_a_generated_scenario_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "generated.json"
    assert main(["lab", "--generate", "30", "--seed", "5", "--write-scenario", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: 30 keys (seed 5): healthy ")
    assert json.loads(out.read_text()) == generate_scenario(30, seed=5).scenario
    assert load_scenario(str(out)).name == "generated-30-keys"
    before = out.read_bytes()
    assert main(["lab", "--generate", "30", "--write-scenario", str(out)]) == 2  # never replaces a file
    assert "the file exists" in capsys.readouterr().err and out.read_bytes() == before


@pytest.mark.parametrize(("args", "message"), [
    (["lab", "--generate", "0", "--aws-config", "x.ini"], "--generate must be a number from 1 to 20000"),
    (["lab", "healthy-default", "--generate", "5", "--aws-config", "x.ini"], "not both"),
    (["lab", "--write-scenario", "x.json"], "--write-scenario needs --generate N"),
])
def test_generator_usage_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_the_installed_cli_serves_a_generated_scenario(tmp_path: Path) -> None:
    config = tmp_path / "lab.ini"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "MOTO_ACCOUNT_ID"}
    script = Path(sys.executable).with_name("kms-rescue")
    proc = subprocess.Popen([str(script), "lab", "--generate", "60", "--seed", "2", "--aws-config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(4)]
        assert lines[0] == f"export AWS_CONFIG_FILE={config}"
        assert lines[2] == f"# regions {', '.join(DEFAULT_REGIONS)} (profiles: {DEFAULT_REGIONS[0]})"
        while not proc.stdout.readline().startswith("# ACCOUNT"):
            pass
        rows = [proc.stdout.readline().split() for _ in range(12)]  # more than 40 keys: counted, not listed
        placement = generate_scenario(60, seed=2).placement
        assert {(a, r): int(n) for _, a, r, n in rows} == dict(placement)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


def test_the_report_reaches_each_risks_expected_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # What `kms-rescue report` concludes from the auditor's evidence (docs/report.md, "The verdict"), per risk.
    assert set(EXPECTED_VERDICTS) == set(RISKS)
    small = generate_scenario(60, seed=3)
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
    with Lab(small.scenario) as lab:
        monkeypatch.setenv("AWS_CONFIG_FILE", str(lab.config_path))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        for risk, verdict in EXPECTED_VERDICTS.items():
            key = next(k["id"] for k in small.scenario["keys"] if k["tags"]["risk"] == risk and "account" not in k)
            main(["report", lab.key_arn(key), "--profile", "auditor", "--format", "json"])
            assert (risk, json.loads(capsys.readouterr().out)["verdict"]) == (risk, verdict)
