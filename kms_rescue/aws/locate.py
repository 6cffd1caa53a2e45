"""Where is a key that is not where it was asked? Its id (or alias) in the account's other enabled Regions.

``NotFoundException`` means the key or alias does not exist in that Region (KMS API reference, DescribeKey,
Errors: "The request was rejected because the specified entity or resource could not be found"), which after a typo
or the wrong ``--region`` is the usual case; ``AccessDeniedException`` means it exists. A key id is unique to its
key; a multi-Region key's replicas share their id (``mrk-…``) in other Regions, and an alias name is per Region.
The enabled Regions come from ``ec2:DescribeRegions`` (EC2 API reference: without ``AllRegions`` it lists the Regions
enabled for the account); when that is not allowed, every Region of the partition botocore knows is tried (a Region
not enabled answers with an error, which is not a finding).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kms_rescue.aws.keyref import KeyRef
from kms_rescue.aws.probe import IdentityRun
from kms_rescue.observations import FoundElsewhere, KeyLocation
from kms_rescue.verdict.overall import NOT_FOUND_OUTCOMES, SEEN_OUTCOMES, search_target

#: Regions searched at once (each is one DescribeKey).
SEARCH_WORKERS = 8


def enabled_regions(run: IdentityRun) -> tuple[list[str], str]:
    """The account's enabled Regions (and where the list came from)."""
    got, _rec = run.call("ec2:DescribeRegions", None, lambda: run.client("ec2").describe_regions())
    if got is not None:
        names = sorted(r["RegionName"] for r in got.get("Regions", []) if r.get("RegionName"))
        if names:
            return names, "ec2:DescribeRegions"
    try:
        partition = run.session.get_partition_for_region(run.region)
    except Exception:  # a Region botocore does not know: its partition is unknown, so assume the commercial one
        partition = "aws"
    return sorted(run.session.get_available_regions("kms", partition_name=partition)), "partition"


def locate_elsewhere(ref: KeyRef, runs: Sequence[IdentityRun]) -> KeyLocation:
    """Search the other Regions for ``ref`` with the first usable identity (of the key's account, when known)."""
    usable = [r for r in runs if r.probe.usable and r.session is not None]
    if ref.account:
        usable = [r for r in usable if r.probe.account == ref.account]
    if not usable:
        return KeyLocation(note="no identity of the key's account had working credentials to search other Regions")
    run = usable[0]
    regions, source = enabled_regions(run)
    others = [r for r in regions if r != ref.region]
    wanted = ref.key_id or ref.alias or ref.raw

    def look(region: str) -> FoundElsewhere | None:
        def describe() -> Any:
            return run.client("kms", region).describe_key(KeyId=wanted)

        got, _rec = run.call("kms:DescribeKey", search_target(wanted, region), describe)
        if got is None:
            return None
        arn = (got.get("KeyMetadata") or {}).get("Arn")
        return FoundElsewhere(region, arn, run.spec.name) if isinstance(arn, str) else None

    with ThreadPoolExecutor(max_workers=SEARCH_WORKERS, thread_name_prefix="kms-rescue-locate") as pool:
        found = [f for f in pool.map(look, others) if f is not None]
    return KeyLocation(tuple(others), tuple(found), run.spec.name, source)


def not_found_everywhere(ref: KeyRef, runs: Sequence[IdentityRun]) -> bool:
    """Every identity that could look (of the key's account, when known) was told the key or alias does not exist,
    and none saw it (no call on it succeeded or was denied)."""
    looked = [r for r in runs if r.probe.usable]
    if ref.account:
        looked = [r for r in looked if r.probe.account == ref.account] or looked
    if not looked:
        return False
    for run in looked:
        outcomes = {c.outcome for c in run.probe.calls if c.operation.startswith("kms:")}
        if not outcomes & NOT_FOUND_OUTCOMES or outcomes & SEEN_OUTCOMES:
            return False
    return True
