"""``kms-rescue audit``: every key of an account and Region, its verdict, its managers and its risks
(docs/audit.md).

Pure: :mod:`kms_rescue.audit.model` (the results and their JSON), :mod:`kms_rescue.audit.findings` (the live-only
rules), :mod:`kms_rescue.audit.keys` (one key's audit from what was read). The AWS side: :mod:`kms_rescue.audit.account`
(the reads of one account and Region, through :mod:`kms_rescue.aws`).
"""
