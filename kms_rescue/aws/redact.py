"""Scrub anything credential-like from text before it is stored in a result, printed or written.

Two layers: patterns for the shapes AWS credentials take (access key ids ``AKIA…``/``ASIA…``, 40-character
secret keys, long session tokens, SigV4 signatures and ``Credential=`` scopes, ``key = value`` pairs naming a
secret), and the exact values of the credentials this run resolved (which may not look like AWS's, e.g. a lab's).
IAM unique ids (``AIDA…``, ``AROA…``) are not credentials and are kept: a key policy shows deleted principals as
unique ids, and the report must show them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

REDACTED = "[REDACTED]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # key = value pairs that name a secret (config-file, JSON, header and query-string spellings).
    (
        re.compile(
            r"(?i)(\b(?:aws_)?(?:secret_?access_?key|session_?token|security_?token|access_?key_?id|"
            r"x-amz-security-token|x-amz-signature|x-amz-credential|signature|credential|password)"
            r"\b[\"']?\s*[:=]\s*[\"']?)([^\s\"',&;]+)"
        ),
        r"\1" + REDACTED,
    ),
    # Access key ids: AKIA (long-term), ASIA (temporary), and the other key-id prefixes.
    (re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{12,}(?![A-Za-z0-9])"), REDACTED),
    # Session tokens: long base64 runs.
    (re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{80,}={0,2}(?![A-Za-z0-9/+=])"), REDACTED),
    # Secret access keys: exactly 40 base64 characters standing alone.
    (re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"), REDACTED),
    # SigV4 signatures: 64 hex characters.
    (re.compile(r"(?<![0-9a-fA-F])[0-9a-f]{64}(?![0-9a-fA-F])"), REDACTED),
)


class Redactor:
    """Thread-safe: identities add the credentials they resolve while others redact messages."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        for s in secrets:
            self.add(s)

    def add(self, *values: str | None) -> None:
        """Remember exact credential values (an access key id, secret, token) to scrub wherever they appear."""
        with self._lock:
            for v in values:
                if v and len(v) >= 8:
                    self._secrets.add(v)

    def __repr__(self) -> str:  # never show the values
        return f"Redactor({len(self._secrets)} secrets)"

    def __call__(self, text: str | None) -> str | None:
        return self.scrub(text)

    def scrub_known(self, text: str) -> str:
        """Replace only the exact credential values seen in this run (a last safety net over whole outputs,
        which must not be mangled by the shape patterns)."""
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for s in secrets:
            if s in text:
                text = text.replace(s, REDACTED)
        return text

    def scrub(self, text: str | None) -> str | None:
        if not text:
            return text
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for s in secrets:
            if s in text:
                text = text.replace(s, REDACTED)
        return redact(text)


def redact(text: str) -> str:
    """Apply the credential patterns to ``text``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
