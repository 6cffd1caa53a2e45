"""Starting and stopping labs: threads, ports, accounts, the AWS config file."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from kms_rescue.errors import UsageError
from kms_rescue.lab import Lab


def scenario(account: str, key_id: str) -> dict[str, Any]:
    return {
        "account": account,
        "region": "us-east-1",
        "identities": [
            {"profile": "admin", "role": "Admin", "policies": [
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}]},
            {"profile": "root", "root": True},
        ],
        "keys": [{"id": key_id, "alias": "alias/life"}],
    }


A = scenario("123456789012", "cccccccc-0000-4000-8000-000000000001")
B = scenario("111122223333", "cccccccc-0000-4000-8000-000000000002")


def settle(before: set[threading.Thread], timeout: float = 5.0) -> set[threading.Thread]:
    deadline = time.monotonic() + timeout
    while True:
        extra = set(threading.enumerate()) - before
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.05)


def test_clean_start_and_stop() -> None:
    before = set(threading.enumerate())
    with Lab(A) as lab:
        port = int(lab.endpoint.rsplit(":", 1)[1])
        kms = lab.client("admin", "kms")
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(10):
                    assert kms.describe_key(KeyId="alias/life")["KeyMetadata"]["KeyState"] == "Enabled"
            except BaseException as exc:  # reported below
                errors.append(exc)

        workers = [threading.Thread(target=work) for _ in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert errors == []
        assert lab.admin.stats()["requests"] == 80
    assert settle(before) == set()  # no server or request thread outlives the lab
    with socket.socket() as s:  # and the port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    # A new lab can use the same port at once.
    with Lab(A, port=port) as again:
        assert again.endpoint.endswith(f":{port}")


def test_stop_twice_and_use_after_stop() -> None:
    lab = Lab(A).start()
    lab.stop()
    lab.stop()
    with pytest.raises(UsageError):
        lab.admin.raw_key_policy("alias/life")


def test_labs_for_the_same_account_are_isolated() -> None:
    # Same account, different keys: each lab serves its own state, even while both run.
    same = scenario("123456789012", "cccccccc-0000-4000-8000-000000000003")
    with Lab(A) as first, Lab(same) as second, Lab(B) as other:
        clients = [lab.client("admin", "kms") for lab in (first, second, other)]
        for _ in range(3):  # interleaved requests
            got = [[k["KeyId"] for k in c.list_keys()["Keys"]] for c in clients]
            assert got == [[A["keys"][0]["id"]], [same["keys"][0]["id"]], [B["keys"][0]["id"]]]
        second.admin.delete_principal("role/Admin")
        assert first.client("admin", "kms").describe_key(KeyId="alias/life")  # untouched in the first lab
    with Lab(A) as lab:  # a new lab starts empty
        assert len(lab.client("admin", "kms").list_keys()["Keys"]) == 1


def test_moto_resets_elsewhere_do_not_touch_a_running_lab() -> None:
    from moto import mock_aws

    with Lab(A) as lab:
        client = lab.client("admin", "kms")
        with mock_aws():  # moto's own mock resets every backend when it starts and stops
            import boto3

            boto3.client("kms", region_name="us-east-1").create_key()
        assert [k["KeyId"] for k in client.list_keys()["Keys"]] == [A["keys"][0]["id"]]


def test_moto_account_override_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "999999999999")
    with pytest.raises(UsageError, match="MOTO_ACCOUNT_ID"):
        Lab(A).start()
    monkeypatch.delenv("MOTO_ACCOUNT_ID")
    with Lab(A):  # nothing was left claimed by the failed start
        pass


def test_port_in_use() -> None:
    with Lab(A) as lab:
        port = int(lab.endpoint.rsplit(":", 1)[1])
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}"):
            Lab(B, port=port).start()


@pytest.mark.parametrize(
    ("option", "value"),
    [("fault_rate", 1.5), ("fault", "explode"), ("port", 70000), ("latency_ms", -1)],
)
def test_bad_options(option: str, value: Any) -> None:
    with pytest.raises(UsageError):
        Lab(A, **{option: value})


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "lab.ini"
    with Lab(A, config_path=path) as lab:
        assert lab.config_path == path.resolve()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        text = path.read_text()
        for profile in ("admin", "root"):
            assert f"[profile {profile}]" in text
        assert text.count(f"endpoint_url = {lab.endpoint}") == 3  # default + two profiles
        assert "aws_session_token" in text  # the admin profile is a role session
    # Its profiles would point at a port nobody serves any more: the config the lab wrote goes with it (lab.md).
    assert not path.exists()
    with Lab(A) as lab:
        temporary = lab.config_path
        assert temporary is not None and temporary.exists()
        assert stat.S_IMODE(temporary.stat().st_mode) == 0o600
    assert not temporary.exists()  # the default one is removed


def test_config_works_for_plain_boto3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    with Lab(A, config_path=tmp_path / "lab.ini") as lab:
        monkeypatch.setenv("AWS_CONFIG_FILE", str(lab.config_path))
        for profile, arn in lab.identities.items():
            session = boto3.Session(profile_name=profile)
            assert session.client("sts").get_caller_identity()["Arn"] == arn
        assert boto3.Session(profile_name="admin").client("kms").describe_key(KeyId="alias/life")
