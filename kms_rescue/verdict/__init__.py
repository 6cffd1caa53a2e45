"""The verdict layer: decide from everything the probes saw (docs/engine.md, "Deciding under uncertainty").

Pure: it imports the policy engine and :mod:`kms_rescue.observations`, never ``kms_rescue.aws`` (ruff's banned-api
rule enforces it). :mod:`~kms_rescue.verdict.worlds` builds the candidate worlds of an identity's unknowns,
:mod:`~kms_rescue.verdict.identity` keeps those consistent with every observed call and decides
kms:PutKeyPolicy in each, :mod:`~kms_rescue.verdict.overall` picks the report's verdict, and
:mod:`~kms_rescue.verdict.key_state` states the key's state first.
"""
