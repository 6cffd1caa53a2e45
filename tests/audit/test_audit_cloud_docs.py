"""docs/audit-cloud.md: every example runs against the lab and exits as documented; the deploy commands are real
AWS CLI commands whose parameters the template has."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cfnlint.decode import decode_str

from kms_rescue.audit.lambda_handler import handler

pytest.importorskip("moto")

from kms_rescue.lab import Lab
from tests.helpers.paths import REPO

PAGE = REPO / "docs" / "audit-cloud.md"
SCENARIO = REPO / "docs" / "examples" / "audit-cloud-scenario.json"
SCRIPT = Path(sys.executable).parent / "kms-rescue"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
#: AWS CLI commands that are the CLI's own (not an API operation): "aws s3 cp", "aws cloudformation deploy".
CLI_CUSTOMIZATIONS = {("s3", "cp"), ("cloudformation", "deploy")}


def _blocks(lang: str) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(PAGE.read_text(encoding="utf-8")) if m.group(1) == lang]


def examples() -> list[tuple[str, int]]:
    out = []
    for body in _blocks("console"):
        for line in body.splitlines():
            m = re.fullmatch(r"\$ (.+?)\s+# exit (\d+)", line.strip())
            assert m, f"every example documents its exit status: {line!r}"
            out.append((m.group(1), int(m.group(2))))
    return out


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, as_lambda) -> Iterator[Lab]:
    home = tmp_path_factory.mktemp("home")
    with Lab(str(SCENARIO)) as running, pytest.MonkeyPatch.context() as mp:
        running.client("operator", "s3").create_bucket(Bucket="kms-rescue-results")
        as_lambda(mp, running, home)
        handler({"account": "111122223333", "run_id": "run-1", "bucket": "kms-rescue-results",
                 "prefix": "audits", "member_role_name": "AuditMember"}, None)
        yield running


def test_the_page_has_examples() -> None:
    assert len(examples()) >= 4


@pytest.mark.parametrize(("command", "status"), examples(), ids=lambda v: str(v)[:70])
def test_documented_example(command: str, status: int, lab: Lab, tmp_path: Path) -> None:
    argv = shlex.split(command)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HOME": str(tmp_path), "AWS_CONFIG_FILE": str(lab.config_path), "NO_COLOR": "1",
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials")})
    while "=" in argv[0]:
        name, _, value = argv.pop(0).partition("=")
        env[name] = value
    assert argv[0] == "kms-rescue"
    argv = [a if not a.startswith("tests/") else str(REPO / a) for a in argv]
    done = subprocess.run([str(SCRIPT), *argv[1:]], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL)
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    if "--output" in argv:
        report = json.loads((tmp_path / argv[argv.index("--output") + 1]).read_text())
        jsonschema.validate(report, json.loads((REPO / "kms_rescue" / "audit.schema.json").read_text()))
        assert len(report["keys"]) == 4


def _template() -> dict[str, Any]:
    document, matches = decode_str((REPO / "deploy" / "audit-org.yaml").read_text(encoding="utf-8"))
    assert not matches and document is not None
    return dict(document)


def test_deploy_commands_are_real() -> None:
    """Each `aws SERVICE COMMAND` is an operation of botocore's service model or one of the AWS CLI's own
    commands; the template file and every parameter the deploy command overrides exist."""
    import botocore.session

    session = botocore.session.get_session()
    lines = [line for body in _blocks("shell") for line in body.splitlines() if line.startswith("aws ")]
    assert len(lines) >= 5
    parameters = set(_template()["Parameters"])
    for line in lines:
        argv = shlex.split(line)
        service, command = argv[1], argv[2]
        if (service, command) not in CLI_CUSTOMIZATIONS:
            model = session.get_service_model(service)
            operation = "".join(part.capitalize() for part in command.split("-"))
            assert operation in model.operation_names, line
        if "--template-file" in argv:
            assert (REPO / argv[argv.index("--template-file") + 1]).is_file()
        if "--parameter-overrides" in argv:
            overrides = argv[argv.index("--parameter-overrides") + 1:]
            overrides = overrides[: next((i for i, a in enumerate(overrides) if a.startswith("--")), None)]
            assert overrides and {o.split("=", 1)[0] for o in overrides} <= parameters, line
