"""AWS partitions, read from botocore's partition data (without importing botocore).

A partition is a group of AWS Regions, and each AWS account is scoped to one partition; every ARN names its
partition (``arn:aws:…``, ``arn:aws-cn:…``, ``arn:aws-us-gov:…``; AWS General Reference, "Amazon Resource Names
(ARNs)"). botocore ships the table the SDKs resolve endpoints with, ``data/partitions.json``: each partition's id,
its DNS suffix, the regular expression its Region codes match, and its known Regions. This module answers from
that file, so a new partition or Region arrives with a botocore upgrade and no code change here:

>>> partition_for_region("cn-north-1").id
'aws-cn'
>>> partition_for_region("us-gov-west-1").dns_suffix
'amazonaws.com'
>>> account_root_arn("111122223333", partition_for_region("eusc-de-east-1").id)
'arn:aws-eusc:iam::111122223333:root'

Regions are matched strictly (whole string, ASCII only): ``"us-east-1\\n"``, ``" us-east-1"`` and ``"US-EAST-1"``
are not Region codes. A code that matches a partition's pattern but is not in its list of Regions is accepted (a
new Region may be newer than the installed botocore) and flagged by :func:`check_region` with a hint.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kms_rescue.policy.errors import PolicyInputError

__all__ = [
    "DEFAULT_PARTITION",
    "Partition",
    "RegionCheck",
    "account_root_arn",
    "check_region",
    "global_endpoint_region",
    "is_region_code",
    "partition_by_id",
    "partition_for_region",
    "partition_ids",
    "partition_of_arn",
    "partitions",
]

#: The partition of the commercial AWS Regions (botocore's default when nothing else matches).
DEFAULT_PARTITION = "aws"


@dataclass(frozen=True)
class Partition:
    """One partition of botocore's ``partitions.json``: ``id`` (the ARN's partition field), ``dns_suffix``
    (service endpoints are ``SERVICE.REGION.DNS_SUFFIX``), ``region_regex`` (the Region codes it serves) and the
    Regions it lists."""

    id: str
    dns_suffix: str
    region_regex: str
    regions: tuple[str, ...]
    implicit_global_region: str | None = None

    @functools.cached_property
    def _pattern(self) -> re.Pattern[str]:
        return re.compile(self.region_regex, re.ASCII)

    def matches(self, region: str) -> bool:
        """``region`` is in this partition's list or matches its Region pattern (the whole string, ASCII only)."""
        return region in self.regions or self._pattern.fullmatch(region) is not None

    @property
    def region_codes(self) -> tuple[str, ...]:
        """The listed Regions that are Region codes (the list also holds pseudo-Regions such as ``aws-global``)."""
        return tuple(r for r in self.regions if self._pattern.fullmatch(r))


@dataclass(frozen=True)
class RegionCheck:
    """What :func:`check_region` found: the partition, whether botocore lists the Region, and a hint when not."""

    region: str
    partition: Partition
    known: bool
    hint: str | None = None


def _data_dir() -> Path:
    spec = importlib.util.find_spec("botocore")  # finds the package without importing it
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise RuntimeError(
            "botocore is not installed, so the AWS partition data is unavailable "
            "(botocore is a dependency of kms-rescue: reinstall the package)"
        )
    return Path(locations[0]) / "data"


def _read_json(name: str) -> dict[str, Any]:
    path = _data_dir() / name
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"cannot read botocore's {name} ({exc}); reinstall botocore") from None
    if not isinstance(data, dict) or not isinstance(data.get("partitions"), list):
        raise RuntimeError(f"{path} is not botocore's partition data (no partitions list)")
    return data


@functools.lru_cache(maxsize=1)
def partitions() -> tuple[Partition, ...]:
    """Every partition in botocore's ``partitions.json``, in the file's order (the commercial one first)."""
    found: list[Partition] = []
    for entry in _read_json("partitions.json")["partitions"]:
        outputs = entry.get("outputs") or {}
        found.append(Partition(
            id=str(entry["id"]),
            dns_suffix=str(outputs.get("dnsSuffix", "amazonaws.com")),
            region_regex=str(entry.get("regionRegex", "^$")),
            regions=tuple(sorted(entry.get("regions") or {})),
            implicit_global_region=outputs.get("implicitGlobalRegion"),
        ))
    return tuple(found)


def partition_ids() -> tuple[str, ...]:
    return tuple(p.id for p in partitions())


def partition_by_id(partition_id: str) -> Partition:
    """The partition named ``partition_id`` (``aws-cn``); :class:`PolicyInputError` for an unknown one."""
    return _by_id(partition_id)


def _by_id(partition_id: str) -> Partition:
    for p in partitions():
        if p.id == partition_id:
            return p
    raise PolicyInputError(f"unknown AWS partition {partition_id!r} (known: {', '.join(partition_ids())})")


def is_region_code(region: str) -> bool:
    """``region`` has the shape of a Region code of some partition (see :func:`partition_for_region`)."""
    return _find(region) is not None


def _find(region: str) -> Partition | None:
    if not isinstance(region, str) or not region:
        return None
    every = partitions()
    # A listed Region first, then a pattern, each in the file's order (as botocore's endpoint resolver does).
    for p in every:
        if region in p.region_codes:
            return p
    for p in every:
        if p._pattern.fullmatch(region):
            return p
    return None


def partition_for_region(region: str) -> Partition:
    """The partition whose Regions include ``region``. Raises :class:`PolicyInputError` when no partition's
    pattern matches (``"us-east-1\\n"``, ``"US-EAST-1"``, ``"mars-1"``)."""
    found = _find(region)
    if found is None:
        raise PolicyInputError(f"{region!r} is not an AWS Region code (e.g. us-east-1, cn-north-1, us-gov-west-1)")
    return found


def check_region(region: str) -> RegionCheck:
    """The partition of ``region``, whether botocore lists it, and for an unlisted one a hint naming the closest
    listed Region codes (a typo such as ``us-esat-1`` matches the pattern too). Raises :class:`PolicyInputError`
    for a value that is no Region code at all."""
    partition = partition_for_region(region)
    if region in partition.region_codes:
        return RegionCheck(region, partition, known=True)
    every = [r for p in partitions() for r in p.region_codes]
    close = difflib.get_close_matches(region, every, n=2, cutoff=0.75)
    hint = f"{region} is not a Region botocore knows"
    hint += f": did you mean {' or '.join(close)}?" if close else " (a Region newer than botocore is fine)"
    return RegionCheck(region, partition, known=False, hint=hint)


def partition_of_arn(arn: str) -> str | None:
    """The partition field of an ARN (``arn:PARTITION:…``) when it is a known partition, else None."""
    parts = arn.split(":", 2) if isinstance(arn, str) else []
    if len(parts) >= 3 and parts[0] == "arn" and parts[1] in partition_ids():
        return parts[1]
    return None


def account_root_arn(account: str, partition: str = DEFAULT_PARTITION) -> str:
    """The account principal's ARN in ``partition`` (IAM User Guide, "AWS JSON policy elements: Principal")."""
    return f"arn:{_by_id(partition).id}:iam::{account}:root"


@functools.lru_cache(maxsize=32)
def global_endpoint_region(service: str, partition: str) -> str | None:
    """The Region that signs requests to ``service``'s one endpoint in ``partition`` (its ``partitionEndpoint``'s
    credential scope in botocore's ``endpoints.json``), for global services such as AWS Support and IAM; None when
    the service has no global endpoint in that partition."""
    for entry in _read_json("endpoints.json")["partitions"]:
        if entry.get("partition") != partition:
            continue
        service_data = (entry.get("services") or {}).get(service) or {}
        endpoint = service_data.get("partitionEndpoint")
        if not endpoint:
            return None
        scope = ((service_data.get("endpoints") or {}).get(endpoint) or {}).get("credentialScope") or {}
        region = scope.get("region")
        return str(region) if region else None
    return None
