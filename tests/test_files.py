"""Every file kms-rescue writes is created with O_EXCL | O_NOFOLLOW, mode 0600, never over an existing file:
``report``/``ticket --output`` refuse an existing path (one line, exit 2) unless ``--force``, which replaces it
atomically (a symlink itself, never its target); drafts and backups take a numbered name; ``lab --aws-config``
replaces only a config a lab wrote and removes it when it stops (docs/report.md, "Files"; docs/lab.md)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from kms_rescue import files
from kms_rescue.aws.apply import write_backup
from kms_rescue.cli.app import main
from kms_rescue.cli.ticket import save_draft
from kms_rescue.lab import Lab
from tests.helpers.cli import clean_env
from tests.helpers.paths import DOCS, SCRIPT

KEY = "arn:aws:kms:us-east-1:111122223333:key/0d5d6a3c-8d7e-4c1f-9b2a-6f1e2d3c4b5a"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# --- the primitives --------------------------------------------------------------------------------------------


def test_create_new_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = files.create_new(tmp_path / "a.json", b"{}")
    finally:
        os.umask(old)
    assert mode(path) == 0o600 and path.read_bytes() == b"{}"


def test_create_new_refuses_files_and_symlinks(tmp_path: Path) -> None:
    existing = tmp_path / "mine.md"
    existing.write_text("my notes")
    with pytest.raises(FileExistsError):
        files.create_new(existing, b"x")
    target = tmp_path / "target"
    target.write_text("precious")
    link = tmp_path / "link"
    link.symlink_to(target)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    for path in (link, dangling):
        with pytest.raises(FileExistsError):
            files.create_new(path, b"x")
    assert existing.read_text() == "my notes" and target.read_text() == "precious"
    assert not (tmp_path / "nowhere").exists()


def test_numbered_names_skip_what_exists(tmp_path: Path) -> None:
    first = save_draft("one", tmp_path / "ticket.md")
    (tmp_path / "ticket-2.md").symlink_to(tmp_path / "elsewhere")
    second = save_draft("two", tmp_path / "ticket.md")
    assert (first.name, second.name) == ("ticket.md", "ticket-3.md")
    assert first.read_text() == "one" and second.read_text() == "two" and mode(second) == 0o600
    assert not (tmp_path / "elsewhere").exists()


def test_replace_swaps_a_symlink_not_its_target(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("precious")
    link = tmp_path / "out.json"
    link.symlink_to(target)
    files.replace(link, b"new")
    assert not link.is_symlink() and link.read_text() == "new" and mode(link) == 0o600
    assert target.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "target"]  # no temporary left


def test_backups_never_follow_a_symlink(tmp_path: Path) -> None:
    import datetime as dt

    now = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    first_name = "kms-key-policy-k1-20250102T030405Z.json"
    (tmp_path / first_name).symlink_to(tmp_path / "victim")
    path = write_backup("{}", key_id="k1", directory=tmp_path, now=now)
    assert path.name == "kms-key-policy-k1-20250102T030405Z-2.json" and mode(path) == 0o600
    assert not (tmp_path / "victim").exists()


# --- --output --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["report", "ticket"])
@pytest.mark.parametrize("kind", ["file", "symlink", "dangling symlink"])
def test_output_refuses_an_existing_path_before_any_work(command: str, kind: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """ticket --output existing.md used to overwrite it and keep its mode 0644; a symlink was followed."""
    target = tmp_path / "existing.md"
    target.write_text("the user's own file\n")
    target.chmod(0o644)
    out = target
    if kind != "file":
        out = tmp_path / "link.md"
        out.symlink_to(target if kind == "symlink" else tmp_path / "nowhere")
    assert main([command, KEY, "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "never overwrites" in err[0] and "--force" in err[0]
    assert target.read_text() == "the user's own file\n" and mode(target) == 0o644
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("command", ["report", "ticket"])
def test_output_writes_0600_and_force_replaces(command: str, tmp_path: Path) -> None:
    with Lab("sole-admin-deleted") as lab:
        assert lab.config_path is not None
        env = clean_env(tmp_path, lab.config_path)
        key = lab.key_arn(lab.scenario.keys[0].id)
        fmt = "json" if command == "report" else "markdown"
        out = tmp_path / "out"

        def run(*extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([str(SCRIPT), command, key, "-f", fmt, "--no-history" if command == "report"
                                   else "--timeout=10", "--output", str(out), *extra], env=env,
                                  capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)

        first = run()
        assert first.returncode == 4, first.stderr
        assert mode(out) == 0o600
        body = out.read_text()
        if command == "report":
            json.loads(body)
        again = run()
        assert again.returncode == 2 and "never overwrites" in again.stderr
        assert out.read_text() == body
        target = tmp_path / "precious"
        target.write_text("keep me")
        out.unlink()
        out.symlink_to(target)
        forced = run("--force")
        assert forced.returncode == 4, forced.stderr
        assert not out.is_symlink() and mode(out) == 0o600 and target.read_text() == "keep me"


# --- lab --aws-config ------------------------------------------------------------------------------------------


def test_lab_refuses_the_users_own_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lab --aws-config ~/.aws/config` used to replace the user's config (their profiles were gone)."""
    config = tmp_path / "config"
    config.write_text("[profile work]\nregion = eu-west-1\n")
    link = tmp_path / "lab.ini"
    link.symlink_to(config)
    for path in (config, link):
        assert main(["lab", "sole-admin-deleted", "--aws-config", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "not a config the lab wrote" in err[0]
    assert config.read_text() == "[profile work]\nregion = eu-west-1\n"
    assert link.is_symlink()


def test_lab_replaces_its_own_config_and_removes_it_when_it_stops(tmp_path: Path) -> None:
    path = tmp_path / "lab.ini"
    with Lab("sole-admin-deleted", config_path=path) as lab:
        first_endpoint = lab.endpoint
        assert path.read_text().splitlines()[0].startswith("# kms-rescue lab:")
        assert mode(path) == 0o600
        # A second lab (e.g. after a crash of the first) may replace the config a lab wrote.
        with Lab("sole-admin-deleted", config_path=path) as second:
            assert f"endpoint_url = {second.endpoint}" in path.read_text()
            assert second.endpoint != first_endpoint
        assert not path.exists()
    assert not path.exists()


@pytest.mark.parametrize("command", ["report", "ticket"])
def test_an_output_path_that_cannot_be_written_is_refused_before_any_work(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for out in (tmp_path / "missing-dir" / "out.md", tmp_path / ("x" * 300), tmp_path):
        assert main([command, KEY, "--output", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("kms-rescue: error: --output")


def test_lint_output_is_created_new_and_force_replaces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = DOCS / "examples" / "default-key-policy.json"
    out = tmp_path / "lint.sarif"
    assert main(["lint", str(policy), "--account", "111122223333", "--format", "sarif", "--output", str(out)]) == 0
    assert mode(out) == 0o600
    first = out.read_text()
    assert main(["lint", str(policy), "--account", "111122223333", "--format", "sarif", "--output", str(out)]) == 2
    assert "never overwrites" in capsys.readouterr().err
    assert out.read_text() == first
    assert main(["lint", str(policy), "--account", "111122223333", "--format", "sarif", "--output", str(out),
                 "--force"]) == 0
    json.loads(out.read_text())
