"""The AWS runtime (kms_rescue/aws/runtime.py): what one investigation builds once and shares, through botocore's
public API only (docs/architecture.md, "The AWS runtime")."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import botocore
import pytest
from botocore.credentials import ReadOnlyCredentials

from kms_rescue.aws import botocore_speedups
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
        if "lab" in path.relative_to(root).parts or path.name == "botocore_speedups.py":
            continue  # the lab's moto internals, and the one measured speed-up, live in modules of their own
        text = path.read_text(encoding="utf-8")
        for name in ("_create_client_class", "_load_service_model", "EventAliaser", "_register_internal_component",
                     "_alias_name_cache", "_config_parser", "_ini_parser", "gc.freeze(", "gc.disable("):
            if name in text:
                offenders.append(f"{path.relative_to(root)}: {name}")
    assert offenders == []


# --- aws/botocore_speedups.py: the one module with botocore internals, pinned and with a fallback -----------------

def test_the_installed_botocore_is_in_the_tested_range_and_pyproject_pins_it():
    assert botocore_speedups.supported(), f"botocore {botocore.__version__} is outside {botocore_speedups.TESTED_RANGE}"
    high = botocore_speedups.TESTED_RANGE[1]
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"botocore>=1.34,<{high[0]}.{high[1]}"' in pyproject


def _kms_class(rt: AwsRuntime) -> type:
    session = rt.session()
    session.set_credentials("AKIAIOSFODNN7EXAMPLE", "secret")
    return type(rt.client(session, "kms", "us-east-1", SessionOptions().client_config()))


def test_client_classes_are_built_once_per_runtime_and_not_shared_across_runtimes():
    with AwsRuntime() as a, AwsRuntime() as b:
        assert a.shares_client_classes and b.shares_client_classes
        one = a.session()
        one.set_credentials("AKIAIOSFODNN7EXAMPLE", "secret")
        two = a.session()
        two.set_credentials("AKIAI44QH8DHBEXAMPLE", "secret")
        config = SessionOptions().client_config()
        k1, k2 = a.client(one, "kms", "us-east-1", config), a.client(two, "kms", "us-east-1", config)
        assert k1 is not k2 and type(k1) is type(k2) and k1.meta.service_model is k2.meta.service_model
        assert _kms_class(b) is not type(k1)


def test_outside_the_tested_range_clients_are_built_the_plain_way(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(botocore_speedups, "TESTED_RANGE", ((0, 1), (0, 2)))
    assert not botocore_speedups.supported()
    with AwsRuntime() as rt:
        assert not rt.shares_client_classes
        first = _kms_class(rt)
        again = rt.session()
        again.set_credentials("AKIAI44QH8DHBEXAMPLE", "secret")
        other = type(rt.client(again, "kms", "us-east-1", SessionOptions().client_config()))
        assert other is not first, "plain botocore: a class per client"
        assert "PutKeyPolicy" in other.__dict__ or hasattr(other, "put_key_policy")
