"""``kms-rescue lab``: serve a scenario on 127.0.0.1 behind the enforcement gate until Ctrl-C or SIGTERM."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from kms_rescue import files
from kms_rescue.cli import _say
from kms_rescue.cli._extras import require_lab_extra
from kms_rescue.cli.options import bounded_number, fraction
from kms_rescue.cli.options import port as check_port
from kms_rescue.errors import UsageError

#: The longest delay --latency-ms may add to each request (a minute: enough to rehearse any slow network).
MAX_LATENCY_MS = 60_000.0
#: Above this many keys, the ready text counts keys per account and Region instead of listing each.
LIST_KEYS_UP_TO = 40


class FaultKind(str, Enum):
    throttle = "throttle"
    server_error = "5xx"
    hang = "hang"


def _summary(description: str, width: int = 96) -> str:
    first = description.split(". ")[0].strip().rstrip(".")
    return first if len(first) <= width else first[: width - 1].rstrip() + "…"


def list_text() -> str:
    from kms_rescue.lab import builtin_names, load_scenario

    rows = []
    for name in builtin_names():
        sc = load_scenario(name)
        rows.append((name, sc.expected_verdict or "-", _summary(sc.description)))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    return "\n".join(f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows) + "\n"


def ready_text(lab: Any) -> str:
    """What stdout shows once the lab serves: a line to paste, then (as shell comments) profiles and keys."""
    import shlex

    lines = [f"export AWS_CONFIG_FILE={shlex.quote(str(lab.config_path))}", f"# endpoint {lab.endpoint}",
             f"# regions {', '.join(lab.regions)} (profiles: {lab.region})"]
    if lab.scenario.expected_verdict:
        lines.append(f"# scenario {lab.scenario.name}: expected verdict {lab.scenario.expected_verdict}")
    profiles = list(lab.identities.items())
    wp = max([len("PROFILE"), *(len(p) for p, _ in profiles)])
    lines += ["#", f"# {'PROFILE':<{wp}}  CALLER"]
    lines += [f"# {p:<{wp}}  {arn}" for p, arn in profiles]
    if len(lab.scenario.keys) > LIST_KEYS_UP_TO:
        counts = Counter((k.account, k.region) for k in lab.scenario.keys)
        lines += ["#", f"# {'ACCOUNT':<12}  {'REGION':<14}  KEYS"]
        lines += [f"# {a:<12}  {r:<14}  {n}" for (a, r), n in counts.items()]
        return "\n".join(lines) + "\n"
    several = len({k.account for k in lab.scenario.keys}) > 1
    keys = [(k.id, k.account, k.region, ", ".join(k.aliases) or "-", lab.admin.key(k.id).state)
            for k in lab.scenario.keys]
    wr = max([len("REGION"), *(len(r) for _, _, r, _, _ in keys)])
    wa = max([len("ALIAS"), *(len(a) for _, _, _, a, _ in keys)])
    account_head = f"{'ACCOUNT':<12}  " if several else ""
    lines += ["#", f"# {'KEY':<36}  {account_head}{'REGION':<{wr}}  {'ALIAS':<{wa}}  STATE"]
    lines += [f"# {k:<36}  {f'{acct:<12}  ' if several else ''}{r:<{wr}}  {a:<{wa}}  {s}"
              for k, acct, r, a, s in keys]
    return "\n".join(lines) + "\n"


def write_generated(path: Path, keys: int, seed: int | None) -> str:
    """Write the generated scenario to a new file (never replacing one); returns the summary line."""
    from kms_rescue.lab.generate import generate_scenario  # deferred: see register()

    generated = generate_scenario(keys, seed=seed or 0)
    try:
        files.create_new(path, (json.dumps(generated.scenario, indent=1) + "\n").encode("utf-8"))
    except FileExistsError:
        raise UsageError(f"--write-scenario {path}: the file exists; the lab never replaces a file") from None
    except OSError as exc:
        raise UsageError(f"--write-scenario {path}: {exc.strerror or exc}") from None
    shares = ", ".join(f"{risk} {n}" for risk, n in generated.counts.items())
    return f"wrote {path}: {keys} keys (seed {seed or 0}): {shares}"


def register(app: typer.Typer) -> None:
    @app.command(
        "lab",
        epilog=(
            "Example: kms-rescue lab sole-admin-deleted --aws-config lab.ini   "
            "(then, in another shell: export AWS_CONFIG_FILE=lab.ini; "
            "aws --profile app kms describe-key --key-id alias/payments)"
        ),
    )
    def lab(
        scenario: str | None = typer.Argument(
            None, metavar="SCENARIO", help="A built-in scenario (see --list) or a scenario JSON file."
        ),
        aws_config: Path | None = typer.Option(
            None, "--aws-config", metavar="FILE", help="Write the AWS config (one profile per identity) here."
        ),
        port: int = typer.Option(0, "--port", help="Port on 127.0.0.1; 0 picks a free one."),
        latency_ms: float = typer.Option(0.0, "--latency-ms", metavar="N", help="Delay every request by N ms."),
        fault_rate: float = typer.Option(
            0.0, "--fault-rate", metavar="F", help="Fail this fraction of requests (0 to 1) with --fault."
        ),
        fault: FaultKind = typer.Option(
            FaultKind.throttle, "--fault",
            help="throttle: 400 ThrottlingException; 5xx: 500 KMSInternalException; hang: no answer.",
        ),
        seed: int | None = typer.Option(
            None, "--seed", metavar="N", help="Seed the fault draws and --generate (reproducible)."
        ),
        generate: int | None = typer.Option(
            None, "--generate", metavar="N",
            help="Serve a generated scenario of N keys over 4 Regions and 3 accounts, with every audit risk.",
        ),
        write_scenario: Path | None = typer.Option(
            None, "--write-scenario", metavar="FILE",
            help="With --generate: write the scenario JSON to FILE (a new file) and exit.",
        ),
        list_builtins: bool = typer.Option(False, "--list", help="List the built-in scenarios and exit."),
    ) -> None:
        """Serve a local AWS account (KMS, IAM, STS, CloudTrail) that really enforces key policies.

        Writes an AWS config with one profile per scenario identity, prints the export line, and serves until Ctrl-C.
        """
        require_lab_extra("lab")
        if list_builtins:
            typer.echo(list_text(), nl=False)
            return
        bounded_number(latency_ms, "--latency-ms", low=0.0, high=MAX_LATENCY_MS, unit="ms")
        fraction(fault_rate, "--fault-rate")
        check_port(port, "--port")
        if generate is not None:
            from kms_rescue.lab.generate import MAX_KEYS  # deferred like every lab import: `--help` stays fast

            bounded_number(generate, "--generate", low=1, high=MAX_KEYS, unit="keys")
            if scenario is not None:
                raise UsageError("name a scenario or --generate N, not both")
            if write_scenario is not None:
                typer.echo(write_generated(write_scenario, generate, seed))
                return
        elif write_scenario is not None:
            raise UsageError("--write-scenario needs --generate N")
        if scenario is None and generate is None:
            raise UsageError("name a scenario (a built-in, see `kms-rescue lab --list`, or a JSON file)")
        if aws_config is None:
            raise UsageError("--aws-config FILE is required: where to write the AWS config for the lab's profiles")
        from kms_rescue.lab import Lab
        from kms_rescue.lab.generate import generate_scenario

        served: Any = generate_scenario(generate, seed=seed or 0).scenario if generate is not None else scenario
        lab_ = Lab(
            served, port=port, latency_ms=latency_ms, fault_rate=fault_rate, fault=fault.value, seed=seed,
            config_path=aws_config,
        )
        stop = threading.Event()
        previous: dict[signal.Signals, Any] = {}

        def on_signal(signum: int, frame: Any) -> None:
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, on_signal)
            except ValueError:  # not the main thread: rely on the caller to stop us
                pass
        try:
            lab_.start()
            try:
                typer.echo(ready_text(lab_), nl=False)
                sys.stdout.flush()
                _say.note(f"kms-rescue lab: serving scenario {lab_.scenario.name} at {lab_.endpoint} (Ctrl-C to stop)")
                while not stop.wait(0.2):
                    pass
            finally:
                lab_.stop()
            _say.note("kms-rescue lab: stopped")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
