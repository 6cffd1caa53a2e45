"""The report as JSON: :meth:`Report.to_dict`, described by ``docs/report.schema.json``."""

from __future__ import annotations

import json

from kms_rescue.report import Report


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
