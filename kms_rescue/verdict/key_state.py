"""The key's state, stated first: what it means, how urgent it is, and what to do before anything else.

States and their meaning follow the KMS Developer Guide ("Key states of AWS KMS keys"): a key pending deletion is
destroyed on its deletion date with everything encrypted under it unless the deletion is cancelled
(kms:CancelKeyDeletion); a disabled key cannot be used but can still be managed; a key pending import has no key
material yet; an unavailable key's custom key store is disconnected; a multi-Region replica has a key policy of its
own (KMS Developer Guide, "Multi-Region keys": key policies are not shared between related keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kms_rescue.observations import KeyFacts

Urgency = Literal["critical", "high", "notice"]


@dataclass(frozen=True)
class KeyStateNotice:
    """One thing about the key's state the reader must see first."""

    state: str
    urgency: Urgency
    message: str
    deletion_date: str | None = None
    can_cancel: tuple[str, ...] = ()  # identities that can call kms:CancelKeyDeletion (PendingDeletion only)
    cancel_unknown: tuple[str, ...] = ()  # identities for which that could not be decided


def state_notices(key: KeyFacts, *, can_cancel: tuple[str, ...] = (), cancel_unknown: tuple[str, ...] = ()
                  ) -> tuple[KeyStateNotice, ...]:
    """The notices for ``key``, most urgent first."""
    out: list[KeyStateNotice] = []
    state = key.state
    if state in ("PendingDeletion", "PendingReplicaDeletion"):
        when = f" on {key.deletion_date}" if key.deletion_date else ""
        who = (f"; {', '.join(can_cancel)} can cancel it now (kms:CancelKeyDeletion)" if can_cancel else
               "; none of the probed identities can cancel it" + (
                   f" for certain ({', '.join(cancel_unknown)}: unknown)" if cancel_unknown else ""))
        out.append(KeyStateNotice(
            state, "critical",
            f"The key is scheduled for deletion{when}. When it is deleted, the key and all data encrypted under it "
            f"are lost for good: cancel the deletion before anything else{who}.",
            deletion_date=key.deletion_date, can_cancel=can_cancel, cancel_unknown=cancel_unknown,
        ))
    elif state == "Disabled":
        out.append(KeyStateNotice(state, "high", "The key is disabled: nothing can encrypt or decrypt with it until "
                                                 "it is enabled (kms:EnableKey); its policy can still be managed."))
    elif state == "PendingImport":
        out.append(KeyStateNotice(state, "high", "The key has no key material yet (origin EXTERNAL, pending "
                                                 "import): it cannot be used until key material is imported."))
    elif state == "Unavailable":
        out.append(KeyStateNotice(state, "high", "The key is unavailable: its custom key store"
                                  + (f" ({key.custom_key_store_id})" if key.custom_key_store_id else "")
                                  + " is disconnected; reconnect the key store to use the key."))
    elif state in ("Creating", "Updating"):
        out.append(KeyStateNotice(state, "notice", f"The key is {state.lower()}: try again in a few minutes."))
    if key.multi_region_type == "REPLICA":
        primary = f" ({key.primary_arn})" if key.primary_arn else ""
        out.append(KeyStateNotice(
            state or "unknown", "notice",
            f"This is a multi-Region replica key{primary}: its key policy is its own, not shared with the primary "
            "or other replicas, so a fix applies to this Region's key only.",
        ))
    elif key.multi_region_type == "PRIMARY":
        out.append(KeyStateNotice(state or "unknown", "notice", "This is a multi-Region primary key: each replica "
                                                                "has a key policy of its own."))
    return tuple(out)
