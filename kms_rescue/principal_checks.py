"""Pure questions about principals and the policies that name them, asked by the code that gathers observations
(:mod:`kms_rescue.aws`) and answerable without AWS: is this ARN a role session, does any of these policies test
``aws:PrincipalArn``. The principals a key policy names are :func:`kms_rescue.policy.named.policy_principals`.

Pure: no boto3, no ``kms_rescue.aws`` (docs/architecture.md, "Seams").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.model import parse_policy
from kms_rescue.policy.principals import parse_caller


def mentions_principal_arn(documents: Sequence[Any]) -> bool:
    """Whether any of the policy documents has a condition on aws:PrincipalArn (documents that do not parse are
    passed over: they decide nothing). When one has, a role session's role ARN (with its path) decides the
    request: for an assumed-role session aws:PrincipalArn is the role's ARN (docs/engine.md, fact 8)."""
    for doc in documents:
        try:
            policy = parse_policy(doc)
        except PolicyInputError:
            continue
        if any(c.key.lower() == "aws:principalarn" for st in policy.statements for c in st.conditions):
            return True
    return False


def is_role_session(arn: str) -> bool:
    """An assumed-role session's ARN (``arn:aws:sts::…:assumed-role/ROLE/SESSION``)."""
    try:
        return parse_caller(arn).kind == "assumed_role"
    except PolicyInputError:
        return False


__all__ = ["is_role_session", "mentions_principal_arn"]
