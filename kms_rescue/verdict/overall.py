"""The report's verdict from the per-identity decisions and the management analysis.

An observed outcome outranks an inference from policy text: an identity that can call kms:PutKeyPolicy in every
world the observations leave makes the key ``manageable`` whatever the static analysis says. Otherwise the
analysis of the policy (every way in, ``kms_rescue.policy.management``) decides between ``recoverable`` and
``locked_out``; a probed identity whose access rests on one unknown keeps the key ``recoverable``. ``not_found``
comes first: a key nobody can find is never a lockout (docs/report.md, "The verdict").
"""

from __future__ import annotations

from collections.abc import Sequence

from kms_rescue.contract import PathEntry, Verdict
from kms_rescue.observations import Investigation
from kms_rescue.policy.management import ManagementAnalysis
from kms_rescue.verdict.paths import blocked_by_guardrails

#: Outcomes that say the key (or alias) does not exist in the Region asked.
NOT_FOUND_OUTCOMES = frozenset({"not_found", "wrong_region"})
#: Outcomes that say it exists (the call reached the key).
SEEN_OUTCOMES = frozenset({"ok", "access_denied", "key_disabled", "pending_deletion"})


#: How a call made while searching other Regions names its target: ``"KEY in REGION"``.
SEARCH_MARK = " in "


def search_target(wanted: str, region: str) -> str:
    return f"{wanted}{SEARCH_MARK}{region}"


def is_search_elsewhere(target: str | None) -> bool:
    return bool(target) and SEARCH_MARK in str(target)


def key_not_found(inv: Investigation) -> bool:
    """Every identity that could look (those of the key's account, when it is known and any of them connected)
    was told the key or alias does not exist, and no call reached it."""
    if inv.key.state is not None:
        return False
    looked = [p for p in inv.identities if p.arn is not None]
    account = inv.key.account
    if account:
        looked = [p for p in looked if p.account == account] or looked
    if not looked:
        return False
    for probe in looked:
        outcomes = {c.outcome for c in probe.calls if c.operation.startswith("kms:")
                    and not is_search_elsewhere(c.target)}
        if not outcomes & NOT_FOUND_OUTCOMES or outcomes & SEEN_OUTCOMES:
            return False
    return True


def choose_verdict(have_policy: bool, analysis: ManagementAnalysis | None, can_manage: Sequence[bool | None],
                   paths: Sequence[PathEntry] = ()) -> Verdict:
    """``manageable`` | ``recoverable`` | ``locked_out`` | ``undetermined`` (not_found is decided before).

    ``paths`` are the analysis' ways in after the guardrails that were read (:mod:`kms_rescue.verdict.paths`)."""
    if not have_policy or analysis is None:
        return "undetermined"
    if any(c is True for c in can_manage):
        return "manageable"
    if any(c is None for c in can_manage):
        return "recoverable"
    ways = paths or analysis.paths
    if any(p.can_manage or p.opens_at for p in ways):  # some way in manages now, or opens on a date
        return "recoverable"
    if blocked_by_guardrails(paths):  # closed only by an SCP or RCP, which the management account can change
        return "recoverable"
    return "locked_out"
