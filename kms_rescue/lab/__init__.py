"""The lab: a local AWS account that enforces key policies, for tests, demos and lockout rehearsals.

``Lab(scenario)`` serves moto's KMS, IAM, STS and CloudTrail on 127.0.0.1 behind a gate that decides every request
with the policy engine (see docs/lab.md). Importing this package is cheap: moto loads when a lab starts.
"""

from kms_rescue.lab.lab import Lab, LabAdmin
from kms_rescue.lab.scenario import (
    Scenario,
    ScenarioError,
    builtin_names,
    load_scenario,
    schema,
)

__all__ = ["Lab", "LabAdmin", "Scenario", "ScenarioError", "builtin_names", "load_scenario", "schema"]
