"""Bounded input and strict option values (issue 11): every measured case is a one-line error and exit 2.

Limits (docs/limits.md): a key policy is at most 32,768 bytes (KMS API reference, PutKeyPolicy: the Policy
parameter's maximum length is 32768); a plan, template or scenario file at most 32 MiB; JSON numbers at most 100
characters; nesting at most 128 levels; no YAML aliases; only regular files are read.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import socket
import subprocess
from pathlib import Path

import pytest

from kms_rescue.cli.app import main
from kms_rescue.lab.scenario import builtin_text
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.input_limits import (
    DOCUMENT_MAX_BYTES,
    KEY_POLICY_MAX_BYTES,
    check_depth,
    loads_json,
    read_bounded_text,
    read_stream,
    refuse_yaml_aliases,
)
from kms_rescue.policy.sources import load_policies, read_source
from tests.helpers import paths
from tests.helpers.paths import SCRIPT

ACCOUNT = "111122223333"
DOCS = paths.DOCS / "examples"
POLICY = DOCS / "default-key-policy.json"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("kms-rescue: error: ") and expected in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


# --- files ------------------------------------------------------------------------------------------------------


def _billion_laughs_template() -> str:
    """A CloudFormation template of about 600 bytes whose aliases expand to 9**8 strings once resolved (the
    issue measured 28 s and 1 GB, or a MemoryError)."""
    lines = ["AWSTemplateFormatVersion: '2010-09-09'", "Mappings:", "  M:", "    a0: &a0 [lol, lol, lol, lol, lol,"
             " lol, lol, lol, lol]"]
    for level in range(1, 8):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"    a{level}: &a{level} [{refs}]")
    lines += ["Resources:", "  Key:", "    Type: AWS::KMS::Key", "    Properties:", "      KeyPolicy:",
              "        Statement:", "          - Effect: Allow", "            Principal: {AWS: *a7}",
              "            Action: kms:*", "            Resource: '*'"]
    return "\n".join(lines) + "\n"


def test_cloudformation_yaml_aliases_are_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(_billion_laughs_template())
    assert path.stat().st_size < 1024
    run = subprocess.run([str(SCRIPT), "lint", str(path), "--account", ACCOUNT], capture_output=True, text=True,
                         timeout=20)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "YAML aliases (*a0) are not accepted" in run.stderr


def test_plain_yaml_policy_aliases_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("Statement:\n  - &s {Effect: Allow, Principal: '*', Action: 'kms:*', Resource: '*'}\n  - *s\n")
    with pytest.raises(PolicyInputError, match=r"policy.yaml:3:5: YAML aliases \(\*s\)"):
        load_policies(str(path), account=ACCOUNT)


def test_refuse_yaml_aliases_ignores_stars_that_are_not_aliases() -> None:
    refuse_yaml_aliases("Action: 'kms:*'\nResource: \"*\"\nNote: a * b\n", "t.yaml")
    refuse_yaml_aliases("a: [unclosed\n  *", "t.yaml")  # malformed: left to the parser, which reports it


def test_json_number_with_absurd_digits(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "digits.json"
    path.write_text('{"Statement": [], "Id": ' + "9" * 5000 + "}")  # Python refuses ints over 4,300 digits
    one_line_error(capsys, ["lint", str(path), "--account", ACCOUNT], "a JSON number of 5,000 characters")
    one_line_error(capsys, ["explain", "--policy", str(path), "--principal", ROOT, "--action", "kms:PutKeyPolicy"],
                   "a JSON number of 5,000 characters")


def test_yaml_number_with_absurd_digits(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "digits.yaml"
    path.write_text("Statement: []\nId: " + "9" * 5000 + "\n")
    one_line_error(capsys, ["lint", str(path), "--account", ACCOUNT], "digits.yaml:2:5: a number of 5,000 characters")


@pytest.mark.parametrize("depth", [129, 100_000])
def test_nesting_depth(depth: int, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"Statement": [], "x": ' + "[" * depth + "]" * depth + "}")
    one_line_error(capsys, ["lint", str(path), "--account", ACCOUNT], "nested more than 128 levels deep")


def test_depth_check_is_iterative_and_limits_are_inclusive() -> None:
    nested: list[object] = []  # one level
    for _ in range(126):
        nested = [nested]  # 127 levels
    check_depth({"a": nested}, "x")  # 128 levels: accepted
    with pytest.raises(PolicyInputError, match="nested more than 128"):
        check_depth([{"a": nested}], "x")
    assert loads_json('{"n": ' + "1" * 100 + "}", "x")["n"] > 0
    with pytest.raises(PolicyInputError, match="NaN is not a JSON value"):
        loads_json('{"n": NaN}', "x")


def test_file_name_too_long(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    name = str(tmp_path / ("p" * 300 + ".json"))
    err = one_line_error(capsys, ["lint", name, "--account", ACCOUNT], "file name too long")
    assert len(err) < 200, "the name is shortened in the message"


def test_dev_zero_is_refused_without_reading(capsys: pytest.CaptureFixture[str]) -> None:
    one_line_error(capsys, ["lint", "/dev/zero", "--account", ACCOUNT], "/dev/zero: is a device")
    one_line_error(capsys, ["explain", "--policy", "/dev/zero", "--principal", ROOT, "--action",
                            "kms:PutKeyPolicy"], "is a device")


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "policy.json"
    os.mkfifo(fifo)
    run = subprocess.run([str(SCRIPT), "lint", str(fifo), "--account", ACCOUNT], capture_output=True, text=True,
                         timeout=20)  # a blocking open would wait for a writer forever
    assert run.returncode == 2 and "is a FIFO (named pipe)" in run.stderr
    assert run.stderr.strip().count("\n") == 0


def test_socket_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "s"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        one_line_error(capsys, ["lint", str(path), "--account", ACCOUNT], "not a regular file")
    finally:
        server.close()


def test_directory_where_a_file_is_expected(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    one_line_error(capsys, ["explain", "--policy", str(tmp_path), "--principal", ROOT, "--action",
                            "kms:PutKeyPolicy"], "is a directory")
    one_line_error(capsys, ["lab", str(tmp_path), "--aws-config", str(tmp_path / "lab.ini")], "is a directory")
    with pytest.raises(PolicyInputError, match="is a directory"):
        read_source(str(tmp_path))  # lint's per-file reader; lint itself may walk directories


def test_size_is_checked_before_reading(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sparse = tmp_path / "plan.json"
    with sparse.open("wb") as fh:
        fh.truncate(DOCUMENT_MAX_BYTES + 1)  # sparse: no disk used, and nothing is read
    one_line_error(capsys, ["lint", str(sparse), "--account", ACCOUNT], f"the limit is {DOCUMENT_MAX_BYTES:,} bytes")
    one_line_error(capsys, ["lab", str(sparse), "--aws-config", str(tmp_path / "lab.ini")], "the limit is")


def test_key_policy_over_kms_limit_for_explain(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = json.loads(POLICY.read_text())
    doc["Statement"][0]["Sid"] = "x" * KEY_POLICY_MAX_BYTES
    path = tmp_path / "big.json"
    path.write_text(json.dumps(doc))
    one_line_error(capsys, ["explain", "--policy", str(path), "--principal", ROOT, "--action", "kms:PutKeyPolicy"],
                   "KMS accepts key policies of at most 32,768 bytes")


def test_reader_never_reads_past_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("x" * 11)
    with pytest.raises(PolicyInputError, match="11 bytes; the limit is 10 bytes"):
        read_bounded_text(str(path), max_bytes=10)
    assert read_bounded_text(str(path), max_bytes=11) == "x" * 11
    with pytest.raises(PolicyInputError, match="the limit is 10 bytes"):
        read_stream(io.TextIOWrapper(io.BytesIO(b"y" * 11)), "-", max_bytes=10)
    assert read_stream(io.StringIO("y" * 10), "-", max_bytes=10) == "y" * 10


def test_not_utf8(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"Statement": [], "Id": "\xe9"}')
    one_line_error(capsys, ["lint", str(path), "--account", ACCOUNT], "not UTF-8 text")


@pytest.mark.parametrize("when", ["-99999999999999d", "-" + "9" * 5000 + "d"])
def test_scenario_time_out_of_range(when: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Found by fuzzing: a relative time beyond a datetime's range was an OverflowError (internal error)."""
    doc = json.loads(builtin_text("sole-admin-deleted"))
    doc["history"][0]["time"] = when
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(doc))
    one_line_error(capsys, ["lab", str(path), "--aws-config", str(tmp_path / "lab.ini")], ".time: not a valid time")


# --- option values ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "account", ["111122223333\n", "１１１１２２２２３３３３", "11112222333", " 111122223333", "١١١١٢٢٢٢٣٣٣٣"]
)
def test_account_is_exactly_12_ascii_digits(account: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue: a trailing newline and full-width digits passed ^\\d{12}$ and gave a false LOCKED OUT (exit 4)."""
    one_line_error(capsys, ["lint", str(POLICY), "--account", account], "--account must be a 12-digit")


def test_account_ids_inside_arns_are_ascii_digits(capsys: pytest.CaptureFixture[str]) -> None:
    wide = "１１１１２２２２３３３３"
    one_line_error(capsys, ["explain", "--policy", str(POLICY), "--principal", f"arn:aws:iam::{wide}:role/Admin",
                            "--action", "kms:PutKeyPolicy"], "not a principal ARN")
    one_line_error(capsys, ["report", f"arn:aws:kms:us-east-1:{wide}:key/1234abcd-12ab-34cd-56ef-1234567890ab"],
                   "has no 12-digit account id")
    one_line_error(capsys, ["report", "alias/x", "--region", "us-east-1", "--role-arn",
                            f"arn:aws:iam::{wide}:role/Admin"], "--role-arn")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e309", "0", "-1", "3601"])
@pytest.mark.parametrize("command", [["report", "alias/x", "--region", "us-east-1"],
                                     ["ticket", "alias/x", "--region", "us-east-1"],
                                     ["alias/x", "--region", "us-east-1", "--no-input"]])
def test_timeouts_are_finite_and_positive(command: list[str], value: str, capsys: pytest.CaptureFixture[str]) -> None:
    one_line_error(capsys, [*command, "--timeout", value], "--timeout must be a positive number of seconds")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--latency-ms", "nan", "--latency-ms must be a number from 0 to 60000 ms"),
        ("--latency-ms", "inf", "--latency-ms must be a number from 0 to 60000 ms"),
        ("--latency-ms", "-5", "--latency-ms must be a number from 0 to 60000 ms"),
        ("--fault-rate", "nan", "--fault-rate is a fraction from 0 to 1"),
        ("--fault-rate", "1.01", "--fault-rate is a fraction from 0 to 1"),
        ("--fault-rate", "-0.1", "--fault-rate is a fraction from 0 to 1"),
        ("--port", "65536", "--port must be a TCP port"),
        ("--port", "-1", "--port must be a TCP port"),
    ],
)
def test_lab_options(option: str, value: str, message: str, capsys: pytest.CaptureFixture[str],
                     tmp_path: Path) -> None:
    one_line_error(capsys, ["lab", "healthy-default", "--aws-config", str(tmp_path / "lab.ini"), option, value],
                   message)
    assert not (tmp_path / "lab.ini").exists()


# --- docs/limits.md ---------------------------------------------------------------------------------------------

LIMITS_PAGE = paths.DOCS / "limits.md"


def _page_examples() -> list[tuple[str, int, str | None]]:
    """(command, documented exit status, the text block after its sh block or None) for each example."""
    text = LIMITS_PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"```(sh|text)\n(.*?)```", text, re.DOTALL)
    out: list[tuple[str, int, str | None]] = []
    for index, (kind, body) in enumerate(blocks):
        if kind != "sh":
            continue
        following = blocks[index + 1][1] if index + 1 < len(blocks) and blocks[index + 1][0] == "text" else None
        lines = body.strip().splitlines()
        for line in lines:
            command, _, comment = line.partition("  # exits ")
            out.append((command, int(comment), following if len(lines) == 1 else None))
    return out


@pytest.mark.parametrize(("command", "code", "shown"), _page_examples())
def test_limits_page_examples(command: str, code: int, shown: str | None, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(LIMITS_PAGE.parent.parent)
    argv = shlex.split(command)
    assert argv[0] == "kms-rescue"
    assert main(argv[1:]) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    if shown is not None:
        assert err == shown
