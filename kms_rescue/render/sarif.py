"""Lint results as SARIF 2.1.0, the format GitHub code scanning (and most CI annotators) ingest.

Returns values and never prints. The subset written is the one GitHub documents for third-party tools
("SARIF support for code scanning"): ``tool.driver`` with ``rules`` (id, name, short/full description, help,
``defaultConfiguration.level``, ``properties.security-severity``), and ``results`` with ``ruleId``, ``level``,
``message.text``, a physical location (repository-relative URI and ``region.startLine``) and
``partialFingerprints`` that stay stable when lines move.
"""

from __future__ import annotations

import json
import os
from importlib.metadata import PackageNotFoundError, metadata
from typing import TYPE_CHECKING, Any

from kms_rescue import __version__
from kms_rescue.policy.lint.baseline import artifact_uri, fingerprint
from kms_rescue.policy.lint.findings import RULES, SECURITY_SEVERITY

if TYPE_CHECKING:
    from kms_rescue.policy.lint.findings import Finding, Rule
    from kms_rescue.policy.lint.report import LintReport, PolicyResult
    from kms_rescue.policy.lint.suppress import Suppressed

__all__ = ["LEVELS", "SARIF_SCHEMA", "SARIF_VERSION", "artifact_uri", "render_sarif", "sarif_json"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "kms-rescue"
#: Used when the installed package declares no home page (``[project.urls] Homepage`` in pyproject.toml).
FALLBACK_INFORMATION_URI = "https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html"

#: SARIF result/rule level per severity (SARIF has error, warning, note, none).
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}


def _rule_descriptor(rule: Rule) -> dict[str, Any]:
    help_text = f"{rule.why}\n\nFix: {rule.fix}\n\nAWS documentation: {rule.help_uri}"
    help_markdown = (
        f"**{rule.summary}**\n\n{rule.why}\n\n**Fix:** {rule.fix}\n\n"
        f"See [the AWS documentation]({rule.help_uri}) and {rule.id} in kms-rescue's docs/rules.md."
    )
    return {
        "id": rule.id,
        "name": _pascal(rule.name),
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.why},
        "help": {"text": help_text, "markdown": help_markdown},
        "helpUri": rule.help_uri,
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[rule.severity],
            "precision": "high",
            "problem.severity": "error" if rule.severity in ("critical", "high") else (
                "warning" if rule.severity == "medium" else "recommendation"
            ),
            "tags": ["security", "aws", "kms", rule.severity],
        },
    }


def information_uri() -> str:
    """The project's home page from the installed package metadata, else the KMS key policy documentation."""
    try:
        meta = metadata("kms-rescue")
    except PackageNotFoundError:  # pragma: no cover - not installed
        return FALLBACK_INFORMATION_URI
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("homepage", "home", "source", "repository") and url.strip():
            return url.strip()
    home = next(iter(meta.get_all("Home-page") or []), "")
    return home if home.startswith("http") else FALLBACK_INFORMATION_URI


def _pascal(slug: str) -> str:
    return "".join(part.capitalize() for part in slug.split("-"))


def _result(
    result: PolicyResult,
    finding: Finding,
    rule_index: int,
    base: str | os.PathLike[str] | None,
    suppression: Suppressed | None = None,
) -> dict[str, Any]:
    uri = artifact_uri(result.location.source, base)
    region: dict[str, Any] = {"startLine": max(1, finding.line or result.location.document_line or 1)}
    if finding.column and finding.line:
        region["startColumn"] = max(1, finding.column)
    text = finding.message
    if result.location.kind != "key_policy":
        text = f"[{result.location.name}] {text}"
    if finding.fix:
        text = f"{text}. Fix: {finding.fix}" if not text.endswith(".") else f"{text} Fix: {finding.fix}"
    location: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": {"uri": uri}, "region": region},
    }
    if finding.statement_label:
        location["logicalLocations"] = [
            {"name": finding.statement_label, "fullyQualifiedName": f"{result.location.name}/{finding.statement_label}",
             "kind": "object"}
        ]
    out: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": text},
        "locations": [location],
        "partialFingerprints": {"kmsRescueFinding/v1": fingerprint(uri, result.location.name, finding)},
        "properties": {"severity": finding.severity, "policy": result.location.name},
    }
    if suppression is not None:
        # SARIF 2.1.0 section 3.34: an inline marker is "inSource", the baseline file "external".
        kind = "inSource" if suppression.kind == "inline" else "external"
        out["suppressions"] = [{"kind": kind, "justification": suppression.reason}]
    return out


def render_sarif(report: LintReport, *, base: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The SARIF log (a dict) for a lint report. ``base`` is the directory artifact URIs are relative to: by
    default the report's ``repo_root`` (``--repo-root``), else the current directory. Suppressed findings are
    results with ``suppressions`` (code scanning closes them), so the reason stays on record."""

    if base is None:
        base = report.repo_root
    rule_ids = sorted(RULES)
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    results = [_result(r, f, index[f.rule_id], base) for r, f in report.findings]
    results += [_result(r, s.finding, index[s.finding.rule_id], base, s) for r in report.results for s in r.suppressed]
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "semanticVersion": __version__,
                        "version": __version__,
                        "informationUri": information_uri(),
                        "rules": [_rule_descriptor(RULES[rule_id]) for rule_id in rule_ids],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def sarif_json(report: LintReport, *, base: str | os.PathLike[str] | None = None) -> str:
    """:func:`render_sarif` as indented JSON text, ending with a newline."""
    return json.dumps(render_sarif(report, base=base), indent=2) + "\n"
