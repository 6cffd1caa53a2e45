"""The aliases of a key, for the ticket: kms:ListAliases with ``KeyId`` (KMS API Reference, ListAliases: "KeyId:
lists only aliases that are associated with the specified KMS key"; it lists the caller's own account only)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from kms_rescue.aws.apply import ApplyError, kms_client_for
from kms_rescue.aws.runtime import AwsRuntime

#: Below this many seconds left, another identity's session and ListAliases are not started.
MIN_SECONDS = 0.5


def key_aliases(specs: Sequence[Any], key_arn: str, *, account: str | None, region: str, timeout: float = 10.0,
                environ: Mapping[str, str] | None = None, runtime: AwsRuntime | None = None,
                until: float | None = None) -> tuple[str, ...] | None:
    """The alias names of ``key_arn``, asked as the first of ``specs`` (identities of the key's account) that
    can list them; None when none could. ``until`` (a ``time.monotonic()`` value: what is left of the command's
    ``--deadline``) ends the search: no identity is tried once it has passed, and each one's calls time out by it."""
    for spec in specs:
        left = timeout if until is None else min(timeout, until - time.monotonic())
        if left < MIN_SECONDS:
            return None
        try:
            kms, arn = kms_client_for(spec, region, timeout=left, environ=environ, runtime=runtime)
        except ApplyError:
            continue
        if account and arn and arn.split(":")[4] != account:
            continue  # ListAliases lists the caller's own account only
        try:
            names: list[str] = []
            for page in kms.get_paginator("list_aliases").paginate(KeyId=key_arn):
                names += [a["AliasName"] for a in page.get("Aliases", []) if a.get("AliasName")]
        except Exception:  # denied or throttled: the next identity may be allowed
            continue
        return tuple(sorted(names))
    return None


__all__ = ["key_aliases"]
