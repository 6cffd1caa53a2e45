"""``kms-rescue explain``: the policy engine's decision for one request, with its reasons."""

from __future__ import annotations

import json
from enum import Enum
from typing import TYPE_CHECKING

import typer

from kms_rescue.cli import _say
from kms_rescue.cli._io import read_text
from kms_rescue.errors import UsageError
from kms_rescue.policy import Guardrails, OrgLevel, evaluate, parse_policy
from kms_rescue.policy.model import KEY_POLICY_MAX_BYTES
from kms_rescue.policy.partitions import partition_by_id
from kms_rescue.policy.principals import parse_caller
from kms_rescue.status import ExitStatus

if TYPE_CHECKING:
    from kms_rescue.policy import Guardrails


class ExplainFormat(str, Enum):
    text = "text"
    json = "json"


class Expectation(str, Enum):
    allow = "allow"
    deny = "deny"


def parse_context(pairs: list[str]) -> dict[str, list[str]]:
    """``KEY=VALUE`` pairs; a key given more than once is multi-valued."""
    out: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--context takes KEY=VALUE (e.g. aws:SourceIp=192.0.2.10), not {pair!r}")
        out.setdefault(key.strip(), []).append(value)
    return out


def render_text(result: dict[str, object]) -> str:
    lines = [
        f"Decision: {str(result['decision']).upper().replace('_', ' ')}",
        f"  principal  {result['principal']}",
        f"  action     {result['action']}",
        f"  resource   {result['resource']}",
        "Why:",
    ]
    if result.get("guardrail"):
        lines.insert(1, f"  decided by the {result['guardrail']}")
    assumed = result.get("assumed") or []
    assert isinstance(assumed, list)
    if assumed:
        lines.insert(1, f"  assumed to allow (not given): {', '.join(assumed)}")
    reasons = result["reasons"]
    assert isinstance(reasons, list)
    for r in reasons:
        where = f"{r['policy']} {r['statement']}" if r["statement"] else "→"
        lines.append(f"  - {where}: {r['detail']}")
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    @app.command(
        "explain",
        epilog=(
            "Example: kms-rescue explain --policy key-policy.json "
            "--principal arn:aws:iam::111122223333:role/Admin --action kms:PutKeyPolicy "
            "--key-arn arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab --expect allow"
        ),
    )
    def explain(
        policy: str = typer.Option(..., "--policy", help="The key policy (JSON file)."),
        principal: str = typer.Option(..., "--principal", help="The caller: a user, role, session or root ARN."),
        action: str = typer.Option(..., "--action", help="The action, e.g. kms:PutKeyPolicy."),
        key_arn: str | None = typer.Option(
            None, "--key-arn", help="The key's ARN (default: a key in the principal's account, us-east-1)."
        ),
        identity_policy: list[str] = typer.Option(
            [], "--identity-policy", help="An identity policy of the caller (JSON file); repeatable."
        ),
        context: list[str] = typer.Option(
            [], "--context", help="A request-context key, KEY=VALUE; repeat a key for several values."
        ),
        boundary: str | None = typer.Option(
            None, "--permissions-boundary", help="The caller's permissions boundary policy (JSON file)."
        ),
        scp: list[str] = typer.Option(
            [], "--scp", help="An SCP that applies to the caller's account, beside FullAWSAccess (JSON file); "
            "repeatable."
        ),
        rcp: list[str] = typer.Option(
            [], "--rcp", help="An RCP that applies to the key's account, beside RCPFullAWSAccess (JSON file); "
            "repeatable."
        ),
        fmt: ExplainFormat = typer.Option(ExplainFormat.text, "--format", help="Output format."),
        expect: Expectation | None = typer.Option(
            None, "--expect", help="Exit 0 when the decision matches (deny = either kind of deny), 10 otherwise."
        ),
    ) -> None:
        """Explain whether PRINCIPAL may perform ACTION on a key under a key policy, and why."""

        kms_limit = "KMS accepts key policies of at most 32,768 bytes"
        key_doc = parse_policy(
            read_text(policy, "policy file", max_bytes=KEY_POLICY_MAX_BYTES, why=kms_limit),
            source=policy, max_bytes=KEY_POLICY_MAX_BYTES,
        )
        identity_docs = [
            parse_policy(read_text(p, "identity policy", max_bytes=KEY_POLICY_MAX_BYTES), source=p)
            for p in identity_policy
        ]
        if key_arn is None:
            caller = parse_caller(principal)
            if not caller.account:
                raise UsageError("--key-arn is required when the principal has no account (a service or '*')")
            home = partition_by_id(caller.partition)  # a key of the principal's partition, in its default Region
            key_arn = (f"arn:{home.id}:kms:{home.implicit_global_region or 'us-east-1'}:{caller.account}:key/"
                       "00000000-0000-0000-0000-000000000000")
            _say.note(f"note: no --key-arn; assuming a key in the principal's account ({caller.account})")
        result = evaluate(
            principal=principal,
            action=action,
            resource=key_arn,
            key_policy=key_doc,
            identity_policies=identity_docs,
            context=parse_context(context),
            guardrails=_guardrails(boundary, scp, rcp),
        )
        data = result.to_dict()
        if fmt is ExplainFormat.json:
            typer.echo(json.dumps(data, indent=2))
        else:
            typer.echo(render_text(data), nl=False)
        if expect is not None:
            matched = result.allowed if expect is Expectation.allow else not result.allowed
            if not matched:
                typer.echo(f"expected {expect.value}, got {result.decision.value}", err=True)
            raise typer.Exit(ExitStatus.OK if matched else ExitStatus.EXPECTATION_FAILED)


#: What AWS attaches to every level when the policy type is enabled (AWS Organizations User Guide, "SCP
#: evaluation", "RCP evaluation"): the files given with --scp / --rcp sit beside it.
_FULL_ACCESS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
_RCP_FULL_ACCESS = {"Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}


def _guardrails(boundary: str | None, scps: list[str], rcps: list[str]) -> Guardrails | None:
    """The guardrails given on the command line (docs/engine.md, Guardrails), None when none were."""

    if boundary is None and not scps and not rcps:
        return None

    def level(files: list[str], full: object, what: str) -> tuple[OrgLevel, ...] | None:
        if not files:
            return None
        docs = [parse_policy(read_text(f, what), source=f) for f in files]
        return (OrgLevel(target="command line", policies=(full, *docs)),)

    return Guardrails(
        permissions_boundary=parse_policy(read_text(boundary, "permissions boundary"), source=boundary)
        if boundary is not None else None,
        scps=level(scps, _FULL_ACCESS, "SCP"),
        rcps=level(rcps, _RCP_FULL_ACCESS, "RCP"),
    )
