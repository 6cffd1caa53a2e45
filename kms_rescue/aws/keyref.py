"""Parse the key a user names: a key ARN, a key id, an alias name or alias ARN, multi-Region ``mrk-`` keys.

KMS accepts these four forms as ``KeyId`` (KMS API reference, DescribeKey: "To specify a KMS key, use its key ID,
key ARN, alias name, or alias ARN"); GetKeyPolicy and ListGrants take only a key id or key ARN. A key id or alias
name is resolved in the caller's own account, so without an ARN the account is learnt from the probes. The region
comes from the ARN; a key id or alias name needs a Region (``--region`` or the AWS CLI's Region chain, see
:mod:`kms_rescue.aws.conventions`). Regions and partitions come from botocore's partition data
(:mod:`kms_rescue.policy.partitions`): a Region must match its partition's pattern exactly, and a key ARN's
partition must be its Region's. This module does no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from kms_rescue.errors import UsageError
from kms_rescue.keyids import KEY_ID_RE, MRK, UUID
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.partitions import is_region_code, partition_for_region

KeyRefKind = Literal["key_arn", "key_id", "alias_arn", "alias_name"]

_UUID, _MRK = UUID, MRK
# Alias names: alias/ followed by letters, digits, slashes, underscores and dashes (KMS API reference, CreateAlias).
ALIAS_NAME_RE = re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$")
_KMS_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-zA-Z-]*):kms:(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.*)$"
)
#: A key ARN anywhere in a text (KMS puts the key's ARN in its AccessDenied messages).
KEY_ARN_IN_TEXT_RE = re.compile(
    rf"arn:aws[a-zA-Z-]*:kms:[a-z0-9-]+:\d{{12}}:key/(?:{_UUID}|{_MRK})"
)

EXPECTED = (
    "expected a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), a key id (1234abcd-12ab-34cd-56ef-1234567890ab or "
    "mrk-…) or alias name (alias/NAME) with --region, or an alias ARN"
)


@dataclass(frozen=True)
class KeyRef:
    """A parsed key reference. ``request_id`` is what to send as ``KeyId``."""

    raw: str
    kind: KeyRefKind
    region: str
    partition: str = "aws"
    account: str | None = None
    key_id: str | None = None
    alias: str | None = None

    @property
    def multi_region(self) -> bool:
        return bool(self.key_id and self.key_id.startswith("mrk-"))

    @property
    def key_arn(self) -> str | None:
        if self.key_id and self.account:
            return f"arn:{self.partition}:kms:{self.region}:{self.account}:key/{self.key_id}"
        return None

    @property
    def request_id(self) -> str:
        return self.key_arn or self.raw

    def with_arn(self, arn: str) -> KeyRef:
        """The same reference, resolved to a key ARN (keeping the alias it was given by)."""
        resolved = parse_key_ref(arn)
        return KeyRef(
            raw=self.raw, kind=self.kind, region=resolved.region, partition=resolved.partition,
            account=resolved.account, key_id=resolved.key_id, alias=self.alias,
        )


def parse_key_ref(value: str, region: str | None = None) -> KeyRef:
    """Parse ``value`` (see the module docstring). ``region`` is ``--region``; it must agree with an ARN's.

    Raises :class:`UsageError` with one line naming what was expected."""
    text = (value or "").strip()
    if region is not None and not is_region_code(region):
        raise UsageError(f"--region {region!r} is not an AWS Region code (e.g. us-east-1, cn-north-1)")
    if not text:
        raise UsageError(f"no key given: {EXPECTED}")
    if text.startswith("arn:"):
        m = _KMS_ARN_RE.match(text)
        if not m:
            raise UsageError(f"{text!r} is not a KMS ARN: {EXPECTED}")
        arn_region, account, resource = m["region"], m["account"], m["resource"]
        if not is_region_code(arn_region):
            raise UsageError(f"the ARN {text!r} has no valid region: {EXPECTED}")
        expected_partition = _partition(arn_region)
        if m["partition"] != expected_partition:
            raise UsageError(f"the ARN {text!r} says partition {m['partition']}, but {arn_region} is in "
                             f"{expected_partition} (arn:{expected_partition}:kms:…)")
        if not re.fullmatch(r"[0-9]{12}", account):
            raise UsageError(f"the ARN {text!r} has no 12-digit account id: {EXPECTED}")
        if region is not None and region != arn_region:
            raise UsageError(f"the ARN is in {arn_region} but --region says {region}: drop --region or fix it")
        if resource.startswith("key/"):
            key_id = resource[4:]
            if not KEY_ID_RE.match(key_id):
                raise UsageError(f"{key_id!r} in the ARN is not a key id: {EXPECTED}")
            return KeyRef(text, "key_arn", arn_region, m["partition"], account, key_id=key_id.lower())
        if resource.startswith("alias/"):
            if not ALIAS_NAME_RE.match(resource):
                raise UsageError(f"{resource!r} in the ARN is not an alias name: {EXPECTED}")
            return KeyRef(text, "alias_arn", arn_region, m["partition"], account, alias=resource)
        raise UsageError(f"the ARN {text!r} names neither a key nor an alias: {EXPECTED}")
    if KEY_ID_RE.match(text):
        if region is None:
            raise UsageError(f"the key id {text} needs --region (or AWS_REGION, AWS_DEFAULT_REGION, the profile's "
                             "region; or give the key ARN)")
        return KeyRef(text, "key_id", region, _partition(region), key_id=text.lower())
    if text.startswith("alias/"):
        if not ALIAS_NAME_RE.match(text):
            raise UsageError(f"{text!r} is not an alias name (letters, digits, / _ - after alias/)")
        if region is None:
            raise UsageError(f"the alias {text} needs --region (or AWS_REGION, AWS_DEFAULT_REGION, the profile's "
                             "region; or give the alias ARN)")
        return KeyRef(text, "alias_name", region, _partition(region), alias=text)
    raise UsageError(f"cannot read the key {text!r}: {EXPECTED}")


def _partition(region: str) -> str:
    try:
        return partition_for_region(region).id
    except PolicyInputError as exc:
        raise UsageError(str(exc)) from None


def key_arn_in_text(text: str | None) -> str | None:
    """The first key ARN in ``text`` (e.g. an AccessDenied message), or None."""
    if not text:
        return None
    m = KEY_ARN_IN_TEXT_RE.search(text)
    return m.group(0) if m else None
