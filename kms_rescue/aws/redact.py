"""Scrub anything credential-like from text before it is stored in a result, printed or written.

Two layers (docs/report.md, "Secrets"):

- **Shapes.** Access key ids by their documented prefixes (``AKIA`` long-term, ``ASIA`` temporary, ``ABIA`` STS
  bearer tokens, ``ACCA`` context-specific credentials: IAM User Guide, "IAM identifiers", unique id prefixes);
  40-character secret access keys, standing alone or after a word naming a secret; session tokens and other long
  tokens, in the standard and the URL-safe base64 alphabets, also when JSON escapes their slashes; SigV4 signatures
  and ``Credential=`` scopes; ``Bearer`` tokens; ``key = value`` pairs naming a secret (config-file, JSON, header
  and query-string spellings).
- **Known values.** The exact credentials this run resolved, and every credential value found in the AWS config
  and credentials files, in the AWS CLI's and IAM Identity Center's caches (:mod:`kms_rescue.aws.known_secrets`),
  whatever they look like (a lab's do not look like AWS's).

IAM unique ids (``AIDA…``, ``AROA…``) are not credentials and are kept: a key policy shows deleted principals as
unique ids, and the report must show them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

REDACTED = "[REDACTED]"

#: Words that announce a secret value (the value follows ``=`` or ``:``).
_SECRET_WORDS = (
    r"(?:aws_)?(?:secret_?access_?key|session_?token|security_?token|access_?key_?id|access_?token|"
    r"refresh_?token|client_?secret|id_?token|x-amz-security-token|x-amz-signature|x-amz-credential|signature|"
    r"credential|password|secret|token)"
)


def _mixed(text: str) -> bool:
    """Random credentials mix upper case, lower case and digits; names and paths of the same length rarely do."""
    return any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text)


def _random40(match: re.Match[str]) -> str:
    """A standalone 40-character run is a secret access key when it looks random (a path of the same length, such
    as ``/srv/repos/tests/fixtures/lint/malformed``, does not)."""
    run = match.group(0)
    return REDACTED if _mixed(run) else run


def _token(match: re.Match[str]) -> str:
    run = match.group(0)
    if ("-" in run or "_" in run) and not _mixed(run):
        return run
    return REDACTED



_PATTERNS: tuple[tuple[re.Pattern[str], object], ...] = (
    # key = value pairs that name a secret (config-file, JSON, header and query-string spellings).
    (
        re.compile(rf"(?i)(\b{_SECRET_WORDS}\b[\"']?\s*[:=]\s*[\"']?)([^\s\"',&;]+)"),
        r"\1" + REDACTED,
    ),
    # An HTTP bearer token (IAM Identity Center access tokens travel this way).
    (re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/:=-]{8,})"), r"\1" + REDACTED),
    # Access key ids: AKIA (long-term), ASIA (temporary), ABIA (STS bearer token), ACCA (context-specific).
    (re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{12,}(?![A-Za-z0-9])"), REDACTED),
    # Session tokens and other long tokens: runs of 80 or more base64 characters, standard or URL-safe alphabet,
    # slashes possibly escaped as in JSON (``\\/``), ``=`` padding anywhere (tokens concatenated). A run with ``-``
    # or ``_`` must mix letters and digits (no IAM name is that long: at most 64 characters; a token is).
    (re.compile(r"(?<![A-Za-z0-9/+=_\\-])(?:[A-Za-z0-9+=_-]|\\?/){80,}(?![A-Za-z0-9/+=_-])"), _token),
    # Secret access keys: 40 base64 characters after a word naming a secret (either alphabet).
    (
        re.compile(rf"(?i)(\b{_SECRET_WORDS}\b[^\n]{{1,24}}?)(?<![A-Za-z0-9/+_=-])([A-Za-z0-9/+_-]{{40}})"
                   r"(?![A-Za-z0-9/+_=-])"),
        r"\1" + REDACTED,
    ),
    # Secret access keys: exactly 40 base64 characters standing alone.
    (re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"), _random40),
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
        """Remember exact credential values (an access key id, secret, token) to scrub wherever they appear
        (also with JSON-escaped slashes, as a JSON output spells them)."""
        with self._lock:
            for v in values:
                if v and len(v) >= 8:
                    self._secrets.add(v)
                    if "/" in v:
                        self._secrets.add(v.replace("/", "\\/"))

    def __len__(self) -> int:
        with self._lock:
            return len(self._secrets)

    def __repr__(self) -> str:  # never show the values
        return f"Redactor({len(self._secrets)} secrets)"

    def __call__(self, text: str | None) -> str | None:
        return self.scrub(text)

    def _known(self) -> list[str]:
        with self._lock:
            return sorted(self._secrets, key=len, reverse=True)

    def scrub_known(self, text: str) -> str:
        """Replace only the exact credential values known to this run (a last safety net over whole outputs,
        which must not be mangled by the shape patterns)."""
        for s in self._known():
            if s in text:
                text = text.replace(s, REDACTED)
        return text

    def scrub(self, text: str | None) -> str | None:
        if not text:
            return text
        return redact(self.scrub_known(text))


def redact(text: str) -> str:
    """Apply the credential patterns to ``text``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)  # type: ignore[call-overload]
    return text
