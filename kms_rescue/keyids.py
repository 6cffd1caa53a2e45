"""The shape of a KMS key id (KMS API reference, DescribeKey, KeyId: a UUID, or ``mrk-`` and 32 hex digits for a
multi-Region key). Pure and imports nothing, so the command line can tell a key from a misspelt command without
loading the policy engine (start-up time)."""

from __future__ import annotations

import re

UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
MRK = r"mrk-[0-9a-fA-F]{32}"
KEY_ID_RE = re.compile(rf"^(?:{UUID}|{MRK})$")
