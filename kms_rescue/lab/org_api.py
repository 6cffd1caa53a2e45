"""AWS Organizations read calls through the gate, answered from the scenario's ``organization``.

What the lab serves (AWS Organizations API reference): ``DescribeOrganization`` to any principal of a member or the
management account (``AWSOrganizationsNotInUseException`` for an account outside every organization);
``ListRoots``, ``ListParents``, ``ListPoliciesForTarget`` and ``DescribePolicy`` only to principals of the
management account ("This operation can be called only from the organization's management account"; a member
account gets ``AccessDeniedException``). ``ListAccounts`` (management account only too) lists the management account
and every member, ``MaxResults`` (1 to 20, the range of the Organizations API's ListAccounts) at a time with
``NextToken``; ``DescribeAccount`` describes one. Each call is first authorised by the caller's identity policies
(``organizations:<Operation>`` on ``*``), like every call the gate serves.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from kms_rescue.lab.decisions import Decisions
from kms_rescue.lab.identity import Credentials
from kms_rescue.lab.organization import RCP, SCP, Organization, OrgPolicy
from kms_rescue.lab.protocol import AwsRequest, json_error, json_response

MANAGEMENT_ONLY = frozenset({
    "ListRoots", "ListParents", "ListPoliciesForTarget", "DescribePolicy", "ListAccounts", "DescribeAccount",
})
#: ListAccounts' page size: MaxResults "Valid Range: Minimum value of 1. Maximum value of 20" (Organizations API
#: reference); the lab's default when it is not given is the maximum.
MAX_ACCOUNTS_PAGE = 20
NOT_IN_USE = "Your account is not a member of an organization."
NO_PERMISSION = "You don't have permissions to access this resource."
_FILTERS = {SCP, RCP}


def _policy_arn(org: Organization, pol: OrgPolicy) -> str:
    kind = pol.type.lower()
    if pol.aws_managed:
        return f"arn:aws:organizations::aws:policy/{kind}/{pol.id}"
    return f"arn:aws:organizations::{org.management_account}:policy/{org.id}/{kind}/{pol.id}"


def _summary(org: Organization, pol: OrgPolicy) -> dict[str, Any]:
    return {"Id": pol.id, "Arn": _policy_arn(org, pol), "Name": pol.name, "Description": pol.description,
            "Type": pol.type, "AwsManaged": pol.aws_managed}


def _account(gate: Decisions, org: Organization, account: str) -> dict[str, Any]:
    """An ``Account`` (Organizations API reference): Id, Arn, Email, Name, Status, JoinedMethod, JoinedTimestamp."""
    created = org.access_role is not None and account != org.management_account
    return {
        "Id": account, "Arn": f"arn:aws:organizations::{org.management_account}:account/{org.id}/{account}",
        "Email": f"aws+{account}@example.com", "Name": org.account_name(account), "Status": "ACTIVE",
        "State": "ACTIVE", "JoinedMethod": "CREATED" if created or account == org.management_account else "INVITED",
        "JoinedTimestamp": gate.rt.started.timestamp(),
    }


def _list_accounts(gate: Decisions, org: Organization, req: AwsRequest) -> Response:
    size = req.params.get("MaxResults", MAX_ACCOUNTS_PAGE)
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_ACCOUNTS_PAGE:
        return json_error(400, "InvalidInputException", "You provided a value that does not match the required "
                          "pattern (MaxResults: 1 to 20).", req.request_id)
    accounts = list(org.accounts)
    start = 0
    token = req.params.get("NextToken")
    if token is not None:
        if not (isinstance(token, str) and token.startswith("lab-accounts-") and token[13:].isdigit()
                and int(token[13:]) <= len(accounts)):
            return json_error(400, "InvalidInputException", "The NextToken is not valid.", req.request_id)
        start = int(token[13:])
    end = start + size
    body: dict[str, Any] = {"Accounts": [_account(gate, org, a) for a in accounts[start:end]]}
    if end < len(accounts):
        body["NextToken"] = f"lab-accounts-{end}"
    return json_response(body, req.request_id)


def handle(gate: Decisions, req: AwsRequest, creds: Credentials) -> Response:
    p = creds.principal
    op = req.operation or ""
    message = gate.denial(p, f"organizations:{op}", "*", region=req.region)
    if message:
        return json_error(400, "AccessDeniedException", message, req.request_id)
    org = gate.rt.scenario.organization
    if org is None or not (org.is_member(p.account) or p.account == org.management_account):
        return json_error(400, "AWSOrganizationsNotInUseException", NOT_IN_USE, req.request_id)
    if op in MANAGEMENT_ONLY and p.account != org.management_account:
        return json_error(400, "AccessDeniedException", NO_PERMISSION, req.request_id)
    params = req.params
    if op == "DescribeOrganization":
        return json_response({"Organization": {
            "Id": org.id, "Arn": org.arn, "FeatureSet": "ALL",
            "MasterAccountArn": f"arn:aws:organizations::{org.management_account}:account/{org.id}/"
                                f"{org.management_account}",
            "MasterAccountId": org.management_account,
            "MasterAccountEmail": f"management+{org.management_account}@example.com",
        }}, req.request_id)
    if op == "ListAccounts":
        return _list_accounts(gate, org, req)
    if op == "DescribeAccount":
        account_id = str(params.get("AccountId", ""))
        if account_id not in org.accounts:
            return json_error(400, "AccountNotFoundException", "You specified an account that doesn't exist.",
                              req.request_id)
        return json_response({"Account": _account(gate, org, account_id)}, req.request_id)
    if op == "ListRoots":
        types = [{"Type": t, "Status": "ENABLED"} for t, on in ((SCP, org.scps), (RCP, org.rcps)) if on is not None]
        return json_response({"Roots": [{
            "Id": org.root_id, "Arn": f"arn:aws:organizations::{org.management_account}:root/{org.id}/{org.root_id}",
            "Name": "Root", "PolicyTypes": types,
        }]}, req.request_id)
    if op == "ListParents":
        child = str(params.get("ChildId", ""))
        parent = org.parent_of(child)
        if parent is None:
            return json_error(400, "ChildNotFoundException", "We can't find a child with the ChildId that you "
                              "specified.", req.request_id)
        parent_type = "ROOT" if parent == org.root_id else "ORGANIZATIONAL_UNIT"
        return json_response({"Parents": [{"Id": parent, "Type": parent_type}]}, req.request_id)
    if op == "ListPoliciesForTarget":
        target, wanted = str(params.get("TargetId", "")), params.get("Filter")
        if wanted not in _FILTERS:  # SERVICE_CONTROL_POLICY or RESOURCE_CONTROL_POLICY: the lab models only these
            return json_error(400, "InvalidInputException", "You provided a value that does not match the "
                              "required pattern (Filter).", req.request_id)
        if not org.target_exists(target):
            return json_error(400, "TargetNotFoundException", "We can't find a root, OU, account, or policy with "
                              "the TargetId that you specified.", req.request_id)
        policies = [_summary(org, pol) for pol in org.attached(SCP if wanted == SCP else RCP, target)]
        return json_response({"Policies": policies}, req.request_id)
    if op == "DescribePolicy":
        pol = org.policy(str(params.get("PolicyId", "")))
        if pol is None:
            return json_error(400, "PolicyNotFoundException", "We can't find a policy with the PolicyId that you "
                              "specified.", req.request_id)
        return json_response({"Policy": {"PolicySummary": _summary(org, pol), "Content": pol.content}},
                             req.request_id)
    return json_error(400, "UnsupportedOperation",
                      f"the kms-rescue lab does not emulate organizations:{op}", req.request_id)
