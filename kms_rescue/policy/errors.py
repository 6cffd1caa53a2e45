"""The engine's one error type."""

from __future__ import annotations

from kms_rescue.errors import UsageError


class PolicyInputError(UsageError):
    """The input is not a usable policy, principal, action or context. ``str(e)`` is one actionable line."""


class NotAPolicyError(PolicyInputError):
    """The file is valid JSON or YAML but holds no key policy, Terraform plan or CloudFormation template
    (``package.json``): ``lint`` skips it with a note rather than failing the run."""
