"""Shell completion of option values: profile names from the AWS config (as botocore reads it) and Region codes
from botocore's partition data. typer calls these while completing (see docs/report.md, "Flags every command
takes"); a broken config completes nothing rather than failing the shell."""

from __future__ import annotations

from kms_rescue.policy.partitions import partitions


def complete_profile(incomplete: str) -> list[str]:
    """Profile names (and ``env``) that start with ``incomplete``."""
    from kms_rescue.aws.sessions import ENV_IDENTITY, load_profiles  # deferred: imports botocore (completion only)

    try:
        names = sorted(load_profiles())
    except Exception:  # a config botocore cannot read: no suggestions
        return []
    return [n for n in [*names, ENV_IDENTITY] if n.startswith(incomplete)]


def complete_region(incomplete: str) -> list[str]:
    """Region codes botocore lists that start with ``incomplete``."""
    return sorted(r for p in partitions() for r in p.region_codes if r.startswith(incomplete))
