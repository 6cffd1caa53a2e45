"""EC2 through the gate: ``DescribeRegions`` answers the scenario's enabled Regions; other operations go to moto.

Grounding, from the Amazon EC2 API Reference:
- ``DescribeRegions`` "describes the Regions that are enabled for your account, or all Regions": ``RegionNames``
  (any Regions, enabled or not), ``AllRegions`` (also the disabled ones), ``Filters`` (``endpoint``,
  ``opt-in-status``, ``region-name``; EC2 filter values take ``*`` and ``?`` wildcards) and ``DryRun``
  (``DryRunOperation`` when the caller has the permission, ``UnauthorizedOperation`` otherwise). Each Region has
  ``regionName``, ``regionEndpoint`` and ``optInStatus`` (see :mod:`kms_rescue.lab.regions`).
- The request is authorised by the caller's identity policies on ``*`` (``ec2:DescribeRegions`` has no resource;
  the root user needs no identity policy in its own account). A denial is ``UnauthorizedOperation`` (HTTP 403,
  "Troubleshooting API request errors": "Unauthorized operation"), in EC2's error format (``<Response><Errors>``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

from werkzeug.wrappers import Response

from kms_rescue.lab import regions as aws_regions
from kms_rescue.lab.decisions import Decisions
from kms_rescue.lab.iam_api import handle_other
from kms_rescue.lab.identity import Credentials
from kms_rescue.lab.protocol import AwsRequest, ec2_error, ec2_result, xml_text

UNAUTHORIZED = "You are not authorized to perform this operation."
_FILTER_NAMES = ("endpoint", "opt-in-status", "region-name")
_INDEXED = re.compile(r"^(RegionName|Filter)\.(\d+)(?:\.(Name|Value)(?:\.(\d+))?)?$")


def handle_ec2(gate: Decisions, req: AwsRequest, creds: Credentials) -> Response:
    if req.operation != "DescribeRegions":
        return handle_other(gate, req, creds)
    p = creds.principal
    message = gate.denial(p, "ec2:DescribeRegions", "*", region=req.region)
    if message:
        return ec2_error(403, "UnauthorizedOperation", f"{UNAUTHORIZED} {message}", req.request_id)
    if req.params.get("DryRun", "").lower() == "true":
        return ec2_error(412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.",
                         req.request_id)
    names, filters = _parse(req.params)
    for name in names:
        if not aws_regions.is_region(name):
            return ec2_error(400, "InvalidParameterValue", f"Invalid region: {name}", req.request_id)
    for name in filters:
        if name not in _FILTER_NAMES:
            return ec2_error(400, "InvalidParameterValue", f"The filter '{name}' is invalid", req.request_id)
    enabled = gate.rt.regions
    if names:
        candidates = list(dict.fromkeys(names))
    elif req.params.get("AllRegions", "").lower() == "true":
        candidates = sorted(aws_regions.known_regions())
    else:
        candidates = list(enabled)
    items = []
    for name in candidates:
        info = aws_regions.describe(name, enabled=name in enabled)
        fields = {"endpoint": info.endpoint, "opt-in-status": info.opt_in_status, "region-name": info.name}
        if all(any(fnmatch.fnmatchcase(fields[f], v) for v in values) for f, values in filters.items()):
            items.append(
                f"<item><regionName>{xml_text(info.name)}</regionName>"
                f"<regionEndpoint>{xml_text(info.endpoint)}</regionEndpoint>"
                f"<optInStatus>{info.opt_in_status}</optInStatus></item>"
            )
    return ec2_result("DescribeRegions", f"<regionInfo>{''.join(items)}</regionInfo>", req.request_id)


def _parse(params: Mapping[str, str]) -> tuple[list[str], dict[str, list[str]]]:
    """``RegionName.N`` values in order, and ``Filter.N.Name`` -> its ``Filter.N.Value.M`` values."""
    names: dict[int, str] = {}
    filter_names: dict[int, str] = {}
    filter_values: dict[int, dict[int, str]] = {}
    for key, value in params.items():
        m = _INDEXED.match(key)
        if not m:
            continue
        kind, n, part, m_index = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        if kind == "RegionName" and part is None:
            names[n] = value
        elif kind == "Filter" and part == "Name":
            filter_names[n] = value
        elif kind == "Filter" and part == "Value" and m_index is not None:
            filter_values.setdefault(n, {})[int(m_index)] = value
    filters: dict[str, list[str]] = {}
    for n, name in sorted(filter_names.items()):
        values = [v for _, v in sorted(filter_values.get(n, {}).items())]
        filters.setdefault(name, []).extend(values)
    return [v for _, v in sorted(names.items())], filters
