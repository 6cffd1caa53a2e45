"""The collector policy of the CLI (kms_rescue/cli/_gc.py): the cyclic collector is off while identities are probed
and back afterwards, nothing is kept alive for good, and the console script skips the final sweep at exit."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from importlib.metadata import entry_points

import pytest

from kms_rescue.cli._gc import collector_paused


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    """A two-object reference cycle that nothing else references: only the cyclic collector can free it."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_paused_inside_and_back_on_after(collector_on):
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_back_on_after_an_exception(collector_on):
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("probe failed")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    was = gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


def test_garbage_waits_during_the_block_and_is_collectable_after(collector_on):
    with collector_paused():
        ref = cycle()
        for _ in range(50_000):  # plenty of allocations: an enabled collector would have run meanwhile
            Node()
        assert ref() is not None, "no collection ran inside the block"
    assert gc.get_freeze_count() == 0, "nothing is left frozen"
    gc.collect()
    assert ref() is None, "the block's cyclic garbage is freed by the next full collection"


def test_objects_frozen_by_someone_else_stay_frozen(collector_on):
    held = [Node() for _ in range(10)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collector_paused():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    assert held


def test_report_probes_with_the_collector_paused(tmp_path, monkeypatch, capsys, collector_on):
    pytest.importorskip("moto")
    import kms_rescue.aws.investigate as inv_mod
    from kms_rescue.cli.app import main
    from kms_rescue.lab import Lab

    seen: list[bool] = []
    real = inv_mod.investigate

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(inv_mod, "investigate", spy)
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with Lab("sole-admin-deleted") as lab:
        monkeypatch.setenv("AWS_CONFIG_FILE", str(lab.config_path))
        key = lab.key_arn(lab.scenario.keys[0].id)
        code = main(["report", key, "-f", "json", "--no-history"])
    capsys.readouterr()
    assert code in (0, 3, 4, 5)
    assert seen == [False], "the investigation ran with the collector off"
    assert gc.isenabled(), "and it is back on afterwards"


def test_console_script_is_the_exiting_entry_point():
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts["kms-rescue"] == "kms_rescue.cli.app:run"


def test_run_returns_the_exit_code_with_the_heap_frozen():
    code = (
        "import gc, sys\n"
        "sys.argv = ['kms-rescue', '--version']\n"
        "from kms_rescue.cli.app import run\n"
        "code = run()\n"
        "print(code, gc.get_freeze_count() > 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 True"
