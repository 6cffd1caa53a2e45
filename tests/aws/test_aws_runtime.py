"""The AWS runtime (kms_rescue/aws/runtime.py): what one investigation builds once and shares, through botocore's
public API only (docs/architecture.md, "The AWS runtime")."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from botocore.credentials import ReadOnlyCredentials

from kms_rescue.aws.results import IdentitySpec
from kms_rescue.aws.runtime import AwsRuntime
from kms_rescue.aws.sessions import SessionOptions, create_client, discover_identities, load_profiles, open_session

KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CONFIG = f"""
[profile static]
region = us-east-1
aws_access_key_id = {KEY}
aws_secret_access_key = {SECRET}
"""


def write_config(home: Path, text: str = CONFIG) -> None:
    (home / "config").write_text(textwrap.dedent(text), encoding="utf-8")


def test_a_client_is_built_once_per_session_service_region_and_credentials(aws_home: Path, runtime: AwsRuntime):
    write_config(aws_home)
    session = open_session(IdentitySpec(name="static", source="profile", profile="static"),
                           SessionOptions(timeout=5), runtime=runtime)
    options = SessionOptions()
    kms = create_client(session, "kms", "us-east-1", options, runtime=runtime)
    assert create_client(session, "kms", "us-east-1", options, runtime=runtime) is kms
    assert create_client(session, "kms", "eu-west-1", options, runtime=runtime) is not kms
    assert create_client(session, "iam", "us-east-1", options, runtime=runtime) is not kms
    assert create_client(session, "kms", "us-east-1", SessionOptions(max_attempts=1), runtime=runtime) is not kms
    role = ReadOnlyCredentials("ASIAIOSFODNN7EXAMPLE", "role-secret", "role-token")
    as_role = create_client(session, "kms", "us-east-1", options, runtime=runtime, credentials=role)
    assert as_role is not kms
    assert create_client(session, "kms", "us-east-1", options, runtime=runtime, credentials=role) is as_role
    # Without a runtime, a new client every time.
    assert create_client(session, "kms", "us-east-1", options) is not create_client(session, "kms", "us-east-1",
                                                                                   options)


def test_concurrent_askers_get_the_one_client(aws_home: Path, runtime: AwsRuntime):
    write_config(aws_home)
    session = open_session(IdentitySpec(name="static", source="profile", profile="static"),
                           SessionOptions(timeout=5), runtime=runtime)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(
        create_client(session, "iam", "us-east-1", SessionOptions(), runtime=runtime))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 8 and all(c is got[0] for c in got)


def test_sessions_of_one_runtime_share_its_loader_and_emitter(runtime: AwsRuntime):
    a, b = runtime.session(), runtime.session("other")
    assert a.get_component("data_loader") is runtime.loader is b.get_component("data_loader")
    other = AwsRuntime()
    assert other.session().get_component("data_loader") is not runtime.loader, "no state shared across runtimes"


def test_discovery_parses_the_config_once_per_runtime(aws_home: Path, runtime: AwsRuntime):
    write_config(aws_home)
    assert "static" in load_profiles(runtime=runtime)
    # The runtime keeps its parse: a profile added later is seen by a new runtime, not by this one.
    write_config(aws_home, CONFIG + f"[profile added-later]\naws_access_key_id = {KEY}\n"
                           f"aws_secret_access_key = {SECRET}\n")
    assert "added-later" not in load_profiles(runtime=runtime)
    assert "added-later" in [s.name for s in discover_identities()]
    # Each caller gets its own copy.
    load_profiles(runtime=runtime)["static"]["region"] = "eu-west-1"
    assert load_profiles(runtime=runtime)["static"]["region"] == "us-east-1"


def test_warm_up_in_the_background_loads_on_the_pool_and_clients_still_build(aws_home: Path, runtime: AwsRuntime):
    write_config(aws_home)
    runtime.warm_up("us-east-1", SessionOptions().client_config(), ("sts", "kms", "iam"), background=True)
    session = open_session(IdentitySpec(name="static", source="profile", profile="static"),
                           SessionOptions(timeout=5), runtime=runtime)
    iam = create_client(session, "iam", "us-east-1", SessionOptions(), runtime=runtime)
    assert "GetRole" in iam.meta.service_model.operation_names
    assert runtime.loader.list_available_services("service-2")  # the shared loader answers


def test_a_closed_runtime_refuses_new_work_and_closing_twice_is_fine():
    rt = AwsRuntime()
    assert rt.submit(lambda: 42).result(5) == 42
    rt.close()
    rt.close()
    with pytest.raises(RuntimeError, match="closed"):
        rt.submit(lambda: 1)


def test_closing_kills_the_credential_processes_still_running(runtime: AwsRuntime):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    runtime.process_groups.add(proc)
    runtime.close()
    assert proc.poll() is not None, "the runtime's credential processes end with it"


def test_no_private_botocore_names_in_the_product():
    """The product uses botocore's public API only: no patched class, no private attribute of a botocore object
    (the project's own ``self._x`` attributes and the standard library's ``os._exit`` excepted)."""
    root = Path(__file__).resolve().parents[1] / "kms_rescue"
    offenders = []
    for path in root.rglob("*.py"):
        if "lab" in path.relative_to(root).parts:
            continue  # the lab's moto internals live in a module of its own
        text = path.read_text(encoding="utf-8")
        for name in ("_create_client_class", "_load_service_model", "EventAliaser", "_register_internal_component",
                     "_alias_name_cache", "_config_parser", "_ini_parser", "ClientCreator", "gc.freeze(",
                     "gc.disable("):
            if name in text:
                offenders.append(f"{path.relative_to(root)}: {name}")
    assert offenders == []
