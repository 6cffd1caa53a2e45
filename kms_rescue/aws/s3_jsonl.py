"""JSON lines in S3: where the audit past one machine writes each account's results, and where ``audit --merge``
reads them back (docs/audit.md, "Past one machine").

Plain data in and out: S3 errors become :class:`S3Error` with one redacted line, never a raw ``ClientError``.
Objects are read in bounded form (at most ``max_bytes`` each, docs/limits.md), line by line.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from kms_rescue.aws.redact import Redactor, redact

__all__ = ["S3Error", "iter_object_lines", "list_keys", "put_lines", "s3_client"]

_SPOOL_BYTES = 8 * 1024 * 1024  # an account's results stay in memory up to this size, then spill to a temp file


class S3Error(Exception):
    """An S3 call that failed; ``str(e)`` is one redacted line."""


def _fail(what: str, exc: Exception, redactor: Redactor | None) -> S3Error:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        detail = f"{err.get('Code', 'error')}: {err.get('Message', '')}".strip()
    else:
        detail = f"{type(exc).__name__}: {exc}"
    line = " ".join(f"{what}: {detail}".split())
    return S3Error((redactor.scrub(line) if redactor is not None else redact(line)) or line)


def s3_client(*, region: str | None = None, timeout: float = 30.0) -> Any:
    """An S3 client from the default credential chain (the Lambda's environment credentials, a profile) and the
    SDK's own endpoint settings (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``: how the tests reach the lab)."""
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"mode": "standard", "max_attempts": 5})
    return boto3.session.Session().client("s3", region_name=region, config=config)


def put_lines(client: Any, bucket: str, key: str, lines: Iterable[str], *,
              redactor: Redactor | None = None) -> int:
    """Write ``lines`` (each without its newline) as one object; return the number of lines written."""
    count = 0
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+b") as body:
        for line in lines:
            body.write(line.encode("utf-8") + b"\n")
            count += 1
        body.seek(0)
        try:
            client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")
        except (ClientError, BotoCoreError) as exc:
            raise _fail(f"s3:PutObject s3://{bucket}/{key}", exc, redactor) from None
    return count


def list_keys(client: Any, bucket: str, prefix: str, *, suffix: str = ".jsonl",
              redactor: Redactor | None = None) -> Iterator[str]:
    """The keys under ``prefix`` ending in ``suffix``, in S3's (lexicographic) order."""
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents") or ():
                key = obj.get("Key")
                if isinstance(key, str) and key.endswith(suffix):
                    yield key
    except (ClientError, BotoCoreError) as exc:
        raise _fail(f"s3:ListObjectsV2 s3://{bucket}/{prefix}", exc, redactor) from None


def iter_object_lines(client: Any, bucket: str, key: str, *, max_bytes: int,
                      redactor: Redactor | None = None) -> Iterator[bytes]:
    """The lines of one object (newlines stripped), refusing an object over ``max_bytes`` before reading it."""
    where = f"s3://{bucket}/{key}"
    try:
        got = client.get_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as exc:
        raise _fail(f"s3:GetObject {where}", exc, redactor) from None
    size = int(got.get("ContentLength") or 0)
    if size > max_bytes:
        got["Body"].close()
        raise S3Error(f"{where}: {size:,} bytes; the limit is {max_bytes:,} bytes")
    body = got["Body"]
    try:
        read = 0
        for line in body.iter_lines(keepends=False):
            read += len(line) + 1
            if read > max_bytes + 1:
                raise S3Error(f"{where}: more than {max_bytes:,} bytes; the limit is {max_bytes:,} bytes")
            yield line
    except (ClientError, BotoCoreError) as exc:
        raise _fail(f"s3:GetObject {where}", exc, redactor) from None
    finally:
        body.close()
