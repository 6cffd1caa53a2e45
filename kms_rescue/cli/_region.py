"""The Region and profile a key command uses, chosen as the AWS CLI chooses them (docs/report.md, "Region and
profile"): ``--region``, else ``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else the region of the profile in use.

A Region must match its partition's pattern in botocore's partition data exactly (``us-east-1`` with a trailing
newline or space, or in capitals, is refused with exit 2); one that matches but that botocore does not list is
used, with a hint on stderr (a typo, or a Region newer than botocore).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kms_rescue.cli import _say
from kms_rescue.errors import UsageError
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.partitions import check_region


def key_region(
    key: str, region: str | None, profiles: Sequence[str] = (), environ: Mapping[str, str] | None = None
) -> str | None:
    """The Region to resolve ``key`` in: ``region`` (``--region``) when given; for a key id or alias name without
    it, the AWS CLI's Region chain; for an ARN, None (the ARN carries its Region). Raises :class:`UsageError` for a
    value that is no Region code, naming where it came from."""
    from kms_rescue.aws.conventions import choose_region  # deferred: imports botocore (keeps --help fast)

    if region is None and (key or "").strip().startswith("arn:"):
        return None
    choice = choose_region(region, profiles=profiles, environ=environ)
    if choice.region is None:
        return None
    try:
        checked = check_region(choice.region)
    except PolicyInputError:
        raise UsageError(
            f"{choice.source} {choice.region!r} is not an AWS Region code (e.g. us-east-1, cn-north-1, "
            "us-gov-west-1: lower case, nothing around it)"
        ) from None
    if checked.hint:
        _say.hint(checked.hint)
    if choice.source != "--region":
        _say.verbose(f"Region {choice.region} from {choice.source}")
    return choice.region


def chosen_identities(options: Any) -> list[Any]:
    """The identities an investigation with these :class:`~kms_rescue.aws.investigate.InvestigateOptions` probes
    (discovered once, here, so that ``--verbose`` can list them)."""
    from kms_rescue.aws.sessions import discover_identities  # deferred: imports botocore (keeps --help fast)

    specs = discover_identities(options.profiles, options.role_arns, options.base_profile,
                                role_session_name=options.role_session_name, environ=options.environ)
    _say.verbose(f"{len(specs)} {'identity' if len(specs) == 1 else 'identities'} to probe: "
                 + ", ".join(f"{s.name} ({s.kind})" for s in specs))
    return specs


def describe_key(ref: Any) -> None:
    """``--verbose``: the key as parsed, with its partition."""
    _say.verbose(f"key {ref.raw}: Region {ref.region}, partition {ref.partition}")


def announce_aws_profile(profiles: Sequence[str], environ: Mapping[str, str] | None = None) -> None:
    """Say on stderr that AWS_PROFILE's identity is probed first, with the others (unless ``--profile`` narrows)."""
    from kms_rescue.aws.conventions import aws_profile  # deferred: imports botocore (keeps --help fast)
    from kms_rescue.aws.sessions import load_profiles

    named = aws_profile(environ)
    if named is None or profiles or named not in load_profiles():
        return
    _say.note(f"kms-rescue: AWS_PROFILE={named}: probing it first, with every other identity "
              f"(--profile {named} probes it alone)")
