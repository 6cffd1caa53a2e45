"""The policy engine: pure, I/O-free decisions about who can act on a KMS key.

>>> from kms_rescue.policy import evaluate
>>> evaluate(principal="arn:aws:iam::111122223333:user/alice", action="kms:PutKeyPolicy",
...          resource="arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
...          key_policy={"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
...              "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "kms:*", "Resource": "*"}]},
...          ).decision.value
'allow'

Nothing under this package imports boto3 or touches the network (ruff's banned-api rule enforces it).
"""

from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.evaluate import Decision, Evaluation, Reason, evaluate
from kms_rescue.policy.guardrails import UNREAD, Guardrails, OrgLevel
from kms_rescue.policy.management import ManagementAnalysis, ManagementPath, analyze_management
from kms_rescue.policy.model import Condition, Policy, PrincipalSpec, Statement, parse_policy

__all__ = [
    "UNREAD",
    "Condition",
    "Decision",
    "Evaluation",
    "Guardrails",
    "ManagementAnalysis",
    "ManagementPath",
    "OrgLevel",
    "Policy",
    "PolicyInputError",
    "PrincipalSpec",
    "Reason",
    "Statement",
    "analyze_management",
    "evaluate",
    "parse_policy",
]
