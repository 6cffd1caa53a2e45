"""AWS Regions for the lab: which names are Regions, which are enabled by default, what EC2 says of each.

- Region names: the ``aws`` partition of botocore's partition data (``botocore/data/partitions.json``, the same
  data botocore resolves endpoints with), read as a file without importing botocore, so that loading a scenario
  stays fast. The lab's ARNs are ``arn:aws:...``, so only that partition's Regions are served.
- Default and opt-in Regions (AWS Account Management Reference Guide, "Enable or disable AWS Regions in your
  account"): Regions launched before March 20, 2019 are enabled by default and cannot be disabled; every Region
  launched since is an opt-in Region, disabled until the account enables it. The first list is closed, so it is
  written down here; every other Region is opt-in.
- ``DescribeRegions`` (Amazon EC2 API Reference, "DescribeRegions" and "Region"): each Region has ``regionName``,
  ``regionEndpoint`` (``ec2.REGION.amazonaws.com``) and ``optInStatus``, one of ``opt-in-not-required`` (a default
  Region), ``opted-in`` (an enabled opt-in Region) and ``not-opted-in`` (a disabled one, listed only with
  ``AllRegions``).
"""

from __future__ import annotations

import difflib
import gzip
import importlib.util
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PARTITION = "aws"

#: Regions launched before March 20, 2019: enabled in every account, and they cannot be disabled.
DEFAULT_REGIONS = frozenset({
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1",
    "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2",
})


@dataclass(frozen=True)
class RegionInfo:
    """One entry of EC2's DescribeRegions answer."""

    name: str
    endpoint: str
    opt_in_status: str  # opt-in-not-required | opted-in | not-opted-in


def _partitions_file() -> Path:
    spec = importlib.util.find_spec("botocore")  # finds the package without importing it
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        for name in ("partitions.json", "partitions.json.gz"):
            candidate = Path(location) / "data" / name
            if candidate.is_file():
                return candidate
    raise RuntimeError("botocore's partition data (botocore/data/partitions.json) was not found; reinstall botocore")


@lru_cache(maxsize=1)
def _partition() -> tuple[frozenset[str], str]:
    """The Region names of the ``aws`` partition and its DNS suffix."""
    path = _partitions_file()
    raw = path.read_bytes()
    data = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
    for partition in data.get("partitions", ()):
        if partition.get("id") != PARTITION:
            continue
        pattern = re.compile(partition.get("regionRegex") or r"^[a-z]{2}(-[a-z]+)+-\d+$")
        names = frozenset(name for name in partition.get("regions", {}) if pattern.match(name))
        suffix = str(partition.get("outputs", {}).get("dnsSuffix") or "amazonaws.com")
        return names, suffix
    raise RuntimeError(f"{path} has no {PARTITION!r} partition")


def known_regions() -> frozenset[str]:
    """Every Region of the ``aws`` partition botocore knows."""
    return _partition()[0]


def is_region(name: str) -> bool:
    return name in known_regions()


def region_problem(name: str) -> str | None:
    """None for a Region name; otherwise what is wrong with it, for a one-line error."""
    if is_region(name):
        return None
    close = difflib.get_close_matches(name, sorted(known_regions()), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{json.dumps(name)} is not an AWS Region{hint}"


def is_opt_in(name: str) -> bool:
    return name not in DEFAULT_REGIONS


def describe(name: str, *, enabled: bool) -> RegionInfo:
    """What DescribeRegions says of Region ``name`` for an account where it is (or is not) enabled."""
    status = "opted-in" if enabled else "not-opted-in"
    if not is_opt_in(name):
        status = "opt-in-not-required"
    return RegionInfo(name=name, endpoint=f"ec2.{name}.{_partition()[1]}", opt_in_status=status)
