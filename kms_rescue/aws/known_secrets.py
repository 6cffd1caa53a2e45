"""Every credential value this machine's AWS configuration holds, for the redactor's exact-value layer.

The shape patterns of :mod:`kms_rescue.aws.redact` catch what looks like an AWS credential; these are the values
that need not look like one. They come from every profile of the AWS config and credentials files (not only the
profiles probed in this run: a failing ``credential_process`` may print another profile's secret), the
environment's ``AWS_*`` credentials, and the caches the AWS CLI and IAM Identity Center keep under ``~/.aws``
(assumed-role credentials, SSO access and refresh tokens). Reading is bounded: at most :data:`MAX_CACHE_FILES`
cache files of at most :data:`MAX_CACHE_BYTES` each, regular files only, symlinks not followed.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Mapping
from typing import Any

from kms_rescue.aws.runtime import AwsRuntime
from kms_rescue.aws.sessions import load_profiles

#: Config keys whose values are credentials (the AWS CLI's names; ``aws_security_token`` is the legacy spelling).
CONFIG_KEYS = frozenset({"aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_security_token"})
ENV_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
#: JSON fields of the AWS CLI's and IAM Identity Center's cache files that hold credentials.
CACHE_FIELDS = frozenset({"AccessKeyId", "SecretAccessKey", "SessionToken", "accessToken", "refreshToken",
                          "clientSecret", "idToken"})
CACHE_DIRS = (os.path.join("~", ".aws", "cli", "cache"), os.path.join("~", ".aws", "sso", "cache"))
MAX_CACHE_FILES = 200
MAX_CACHE_BYTES = 1 << 20


def _is_secret_key(name: str) -> bool:
    low = name.lower()
    if low.endswith(("_file", "_url", "_path", "_process")):
        return False
    return low in CONFIG_KEYS or "secret" in low or "password" in low


def _config_values(profiles: Mapping[str, Mapping[str, Any]]) -> Iterator[str]:
    for cfg in profiles.values():
        for name, value in cfg.items():
            if isinstance(value, str) and _is_secret_key(str(name)):
                yield value.strip()


def _json_values(doc: Any) -> Iterator[str]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k in CACHE_FIELDS and isinstance(v, str):
                yield v
            else:
                yield from _json_values(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _json_values(v)


def _read_small_regular(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_CACHE_BYTES:
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(MAX_CACHE_BYTES).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _cache_values(home: str | None = None) -> Iterator[str]:
    for directory in CACHE_DIRS:
        full = os.path.join(home, directory[2:]) if home else os.path.expanduser(directory)
        try:
            names = sorted(n for n in os.listdir(full) if n.endswith(".json"))[:MAX_CACHE_FILES]
        except OSError:
            continue
        for name in names:
            text = _read_small_regular(os.path.join(full, name))
            if text is None:
                continue
            try:
                doc = json.loads(text)
            except ValueError:
                continue
            yield from _json_values(doc)


def known_credentials(environ: Mapping[str, str] | None = None, *, runtime: AwsRuntime | None = None) -> list[str]:
    """Every credential value of the AWS config and credentials files (all profiles), the environment and the
    AWS CLI's and IAM Identity Center's caches. A file that cannot be read contributes nothing (discovery reports a
    broken config file on its own)."""
    env = os.environ if environ is None else environ
    found: list[str] = [env[v] for v in ENV_VARS if env.get(v)]
    try:
        found.extend(_config_values(load_profiles(runtime=runtime)))
    except Exception:  # a broken config: discovery reports it, with its own message
        pass
    found.extend(_cache_values())
    return [v for v in dict.fromkeys(found) if v]


__all__ = ["known_credentials"]
