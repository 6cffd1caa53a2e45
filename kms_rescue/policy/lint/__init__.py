"""Lint KMS key policies: find lockouts and the mistakes that lead to them, before they are deployed.

>>> from kms_rescue.policy.lint import lint_policy
>>> from kms_rescue.policy import parse_policy
>>> policy = parse_policy({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
...     "Principal": {"AWS": "arn:aws:iam::111122223333:role/Admin"}, "Action": "kms:Decrypt", "Resource": "*"}]})
>>> [f.rule_id for f in lint_policy(policy, key_account="111122223333")]
['KR001']

Rule ids are stable and documented in ``docs/rules.md``.
"""

from kms_rescue.policy.lint.findings import RULES, SECURITY_SEVERITY, SEVERITIES, Finding, Rule, Severity
from kms_rescue.policy.lint.report import (
    JSON_SCHEMA_VERSION,
    LintReport,
    OutputFormat,
    PolicyResult,
    lint_files,
    render_text,
    summary_line,
)
from kms_rescue.policy.lint.rules import is_lockout, lint_located, lint_policy

__all__ = [
    "JSON_SCHEMA_VERSION",
    "RULES",
    "SECURITY_SEVERITY",
    "SEVERITIES",
    "Finding",
    "LintReport",
    "OutputFormat",
    "PolicyResult",
    "Rule",
    "Severity",
    "is_lockout",
    "lint_files",
    "lint_located",
    "lint_policy",
    "render_text",
    "summary_line",
]
