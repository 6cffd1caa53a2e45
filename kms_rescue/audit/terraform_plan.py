"""What a Terraform plan would delete: the IAM users and roles (and Identity Center roles) a plan destroys or
replaces, as the principals ``audit --terraform-plan`` checks against the live keys (docs/audit.md, "What a
deletion would break: Terraform plans").

The input is the JSON of ``terraform show -json PLANFILE`` (HashiCorp, "JSON Output Format",
https://developer.hashicorp.com/terraform/internals/json-format): each entry of ``resource_changes`` has
``change.actions``, where ``["delete"]`` destroys the object and ``["delete", "create"]`` or
``["create", "delete"]`` replaces it; ``change.before`` is the object as it is now. A replaced user or role is
deleted as far as a key policy is concerned: the policy stored the old principal's unique id, and the new one,
with the same name, does not match it (IAM User Guide, "AWS JSON policy elements: Principal",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html; docs/engine.md,
rule 5).

Identity Center (IAM Identity Center User Guide, "Referencing permission sets in resource policies, Amazon EKS
Cluster config maps, and AWS KMS key policies",
https://docs.aws.amazon.com/singlesignon/latest/userguide/referencingpermissionsets.html): assigning a permission
set to an account creates the role ``AWSReservedSSO_<permission-set-name>_<unique-suffix>`` under the path
``/aws-reserved/sso.amazonaws.com/`` (followed by the Region of the Identity Center instance, except when that is
us-east-1). Deleting every assignment of the permission set in the account deletes the role; a new assignment
creates a new role with a different suffix. The suffix is never in a plan, so those roles are matched by name
pattern (:meth:`PlannedDeletion.matches`), and each deletion says so.

Pure: no boto3. Every error is a one-line :class:`PolicyInputError` (exit 2).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.input_limits import DOCUMENT_MAX_BYTES, loads_json, read_bounded_text
from kms_rescue.policy.principals import ACCOUNT_RE, NAME_RE, PATH_RE

__all__ = [
    "IDENTITY_CENTER_PATH",
    "PlannedDeletion",
    "deleted_principals",
    "if_deleted_principals",
    "load_plan",
    "read_plan",
]

#: The path of every role IAM Identity Center provisions (IAM Identity Center User Guide, "Referencing permission
#: sets in resource policies, Amazon EKS Cluster config maps, and AWS KMS key policies").
IDENTITY_CENTER_PATH = "/aws-reserved/sso.amazonaws.com/"
_ROLE_PREFIX = "AWSReservedSSO_"

#: HashiCorp, "JSON Output Format": ``change.actions`` values that destroy the prior object.
_DELETE = ("delete",)
_REPLACE = (("delete", "create"), ("create", "delete"))

DeletionKind = Literal["user", "role"]
_IAM_TYPES: dict[str, DeletionKind] = {"aws_iam_role": "role", "aws_iam_user": "user"}
PERMISSION_SET = "aws_ssoadmin_permission_set"
ACCOUNT_ASSIGNMENT = "aws_ssoadmin_account_assignment"
_IAM_ARN_RE = re.compile(r"\Aarn:(?P<partition>aws[a-z-]*):iam::(?P<account>[0-9]{12}):(?P<kind>role|user)/")


@dataclass(frozen=True)
class PlannedDeletion:
    """One principal the plan deletes (or replaces, which deletes the principal the key policies knew).

    ``arn`` is exact when the plan says it (``change.before.arn``) or it follows from the name, the path and the
    account. ``pattern`` is set instead for Identity Center roles, whose suffix no plan holds: an ``ArnLike``-style
    string shown to the user; :meth:`matches` is the exact test. Both are None when the plan does not say enough
    (``note`` says what is missing): such a deletion is reported, never guessed.
    """

    address: str  # the resource address in the plan (``module.sso.aws_ssoadmin_account_assignment.admin["x"]``)
    resource_type: str
    action: Literal["delete", "replace"]
    kind: DeletionKind
    account: str | None
    name: str | None  # the user or role name, or the permission set's name
    arn: str | None = None
    pattern: str | None = None
    note: str = ""
    _regex: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    @property
    def known(self) -> bool:
        """Whether the deleted principal can be recognised in a key policy (an exact ARN or a pattern)."""
        return self.arn is not None or self.pattern is not None

    def matches(self, principal_arn: str) -> bool:
        """Whether ``principal_arn`` (as a key policy names it) is the principal this deletion removes."""
        if self.arn is not None:
            return principal_arn == self.arn
        return self._regex is not None and self._regex.fullmatch(principal_arn) is not None

    def describe(self) -> str:
        """One line: what is deleted and how it is recognised."""
        what = "replaced" if self.action == "replace" else "deleted"
        target = self.arn or self.pattern or "ARN unknown"
        tail = f" ({self.note})" if self.note else ""
        return f"{self.address}: {what}: {target}{tail}"


def _identity_center(address: str, resource_type: str, action: Literal["delete", "replace"], name: str,
                     account: str | None, partition: str, note: str) -> PlannedDeletion:
    acct = account if account is not None else "*"
    pattern = f"arn:{partition}:iam::{acct}:role{IDENTITY_CENTER_PATH}*{_ROLE_PREFIX}{name}_*"
    # The Region segment is optional (absent for an instance in us-east-1); the suffix holds no "_" or "/", so the
    # permission set "Admin" never matches the role of a permission set "Admin_Extra".
    acct_re = re.escape(account) if account is not None else "[0-9]{12}"
    regex = re.compile(
        rf"arn:{re.escape(partition)}:iam::{acct_re}:role{re.escape(IDENTITY_CENTER_PATH)}(?:[a-z0-9-]+/)?"
        rf"{re.escape(_ROLE_PREFIX + name)}_[^/_]+"
    )
    return PlannedDeletion(address, resource_type, action, "role", account, name, None, pattern, note, regex)


# --- reading ----------------------------------------------------------------------------------------------------


def read_plan(path: str) -> dict[str, Any]:
    """The plan at ``path`` (bounded like every file kms-rescue reads, docs/limits.md), checked to be a plan."""
    return load_plan(read_bounded_text(path, max_bytes=DOCUMENT_MAX_BYTES), path)


def load_plan(text: str, source: str) -> dict[str, Any]:
    """The plan in ``text``: a JSON object from ``terraform show -json PLANFILE`` with a ``format_version`` of
    major version 1 (HashiCorp, "JSON Output Format": reject any other major version) and ``resource_changes``."""
    if not text.strip():
        raise PolicyInputError(f"{source}: empty file; expected the JSON of terraform show -json PLANFILE")
    document = loads_json(text, source)
    if not isinstance(document, dict):
        raise PolicyInputError(f"{source}: not a Terraform plan (expected a JSON object from terraform show -json)")
    version = document.get("format_version")
    if not isinstance(version, str) or not version:
        raise PolicyInputError(f"{source}: not a Terraform plan: no format_version (give the output of "
                               "terraform show -json PLANFILE)")
    if version.split(".", 1)[0] != "1":
        raise PolicyInputError(f"{source}: Terraform JSON format_version {version[:20]!r} is not supported "
                               "(major version 1 is)")
    if "resource_changes" not in document:
        if "values" in document:
            raise PolicyInputError(f"{source}: a Terraform state, not a plan: run terraform plan -out=PLANFILE, "
                                   "then terraform show -json PLANFILE")
        if "planned_values" in document:
            return document  # a plan that changes nothing has no resource_changes
        raise PolicyInputError(f"{source}: not a Terraform plan: no resource_changes")
    if not isinstance(document["resource_changes"], list):
        raise PolicyInputError(f"{source}: resource_changes is not a list")
    return document


# --- deletions --------------------------------------------------------------------------------------------------


def _action(actions: Any) -> Literal["delete", "replace"] | None:
    if not isinstance(actions, list):
        return None
    shape = tuple(a for a in actions if isinstance(a, str))
    if shape == _DELETE:
        return "delete"
    if shape in _REPLACE:
        return "replace"
    return None


def _text(values: Mapping[str, Any], key: str) -> str | None:
    value = values.get(key)
    return value if isinstance(value, str) and value else None


def _iam(address: str, rtype: str, action: Literal["delete", "replace"], before: Mapping[str, Any],
         account: str | None, partition: str) -> PlannedDeletion:
    kind = _IAM_TYPES[rtype]
    name = _text(before, "name")
    arn = _text(before, "arn")
    m = _IAM_ARN_RE.match(arn) if arn else None
    if arn and m and m["kind"] == kind:
        return PlannedDeletion(address, rtype, action, kind, m["account"], name, arn)
    path = _text(before, "path") or "/"
    if name is None or not NAME_RE.match(name):
        return PlannedDeletion(address, rtype, action, kind, account, name,
                               note=f"the plan gives no ARN and no valid {kind} name: it cannot be known")
    if not PATH_RE.match(path):
        return PlannedDeletion(address, rtype, action, kind, account, name,
                               note=f"the plan gives no ARN and its path {path[:60]!r} is not an IAM path")
    if account is None:
        return PlannedDeletion(address, rtype, action, kind, None, name,
                               note="the plan gives no ARN; give --account to build it from the name and path")
    built = f"arn:{partition}:iam::{account}:{kind}{path}{name}"
    return PlannedDeletion(address, rtype, action, kind, account, name, built,
                           note="ARN built from the name, the path and --account")


def _module_resources(module: Any) -> Iterator[Mapping[str, Any]]:
    stack = [module]
    while stack:
        current = stack.pop()
        if not isinstance(current, Mapping):
            continue
        for resource in current.get("resources") or ():
            if isinstance(resource, Mapping):
                yield resource
        children = current.get("child_modules")
        if isinstance(children, list):
            stack.extend(children)


def _permission_set_names(plan: Mapping[str, Any], changes: list[Mapping[str, Any]]) -> dict[str, str]:
    """Permission set ARN -> name, from every place the plan records one: the changes' ``before`` and ``after``,
    and the prior state (managed resources and ``data "aws_ssoadmin_permission_set"`` alike)."""
    names: dict[str, str] = {}
    prior = plan.get("prior_state")
    root = prior.get("values", {}).get("root_module") if isinstance(prior, Mapping) else None
    values: list[Any] = [r.get("values") for r in _module_resources(root) if r.get("type") == PERMISSION_SET]
    for rc in changes:
        if rc.get("type") == PERMISSION_SET and isinstance(rc.get("change"), Mapping):
            values += [rc["change"].get("before"), rc["change"].get("after")]
    for value in values:
        if isinstance(value, Mapping) and _text(value, "arn") and _text(value, "name"):
            names[str(value["arn"])] = str(value["name"])
    return names


def _changes(plan: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    changes = plan.get("resource_changes") or []
    return [rc for rc in changes if isinstance(rc, Mapping) and rc.get("mode", "managed") == "managed"
            and isinstance(rc.get("change"), Mapping)]


def deleted_principals(plan: Mapping[str, Any], *, account: str | None = None,
                       partition: str = "aws") -> list[PlannedDeletion]:
    """Every user and role the plan deletes or replaces, in the plan's order.

    ``account`` (12 digits) builds the ARN of a user or role whose ``before`` has no ``arn`` from its name and
    path; without it such a deletion is reported as unknown. Identity Center:

    * a deleted or replaced ``aws_ssoadmin_account_assignment`` removes the role of its permission set in its
      ``target_id`` account (when it was that permission set's last assignment there, which a plan cannot show:
      the deletion is assumed, and its note says so);
    * a deleted or replaced ``aws_ssoadmin_permission_set`` removes its role in every account it is assigned
      to, whether or not the plan lists those assignments (matched in any account).
    """
    if account is not None and not ACCOUNT_RE.match(account):
        raise PolicyInputError(f"--account {account[:40]!r}: an account id is exactly 12 digits")
    changes = _changes(plan)
    ps_names = _permission_set_names(plan, changes)
    out: list[PlannedDeletion] = []
    assigned: dict[str, set[str]] = {}  # permission set ARN -> accounts of its deleted assignments in this plan
    deleted_sets: list[tuple[str, Literal["delete", "replace"], str, str | None]] = []
    deleted_set_arns = {
        str(rc["change"]["before"]["arn"]) for rc in changes
        if rc.get("type") == PERMISSION_SET and _action(rc["change"].get("actions")) is not None
        and isinstance(rc["change"].get("before"), Mapping) and _text(rc["change"]["before"], "arn")
    }
    for rc in changes:
        rtype = str(rc.get("type") or "")
        action = _action(rc["change"].get("actions"))
        before = rc["change"].get("before")
        if action is None or not isinstance(before, Mapping):
            continue
        address = str(rc.get("address") or rtype)
        if rtype in _IAM_TYPES:
            out.append(_iam(address, rtype, action, before, account, partition))
        elif rtype == ACCOUNT_ASSIGNMENT:
            out.append(_assignment(address, action, before, ps_names, partition, deleted_set_arns))
            ps_arn, target = _text(before, "permission_set_arn"), _text(before, "target_id")
            if ps_arn and target:
                assigned.setdefault(ps_arn, set()).add(target)
        elif rtype == PERMISSION_SET:
            deleted_sets.append((address, action, _text(before, "name") or "", _text(before, "arn")))
    for address, action, name, ps_arn in deleted_sets:
        accounts = sorted(assigned.get(ps_arn or "", ()))
        if not name:
            out.append(PlannedDeletion(address, PERMISSION_SET, action, "role", None, None,
                                       note="the plan gives no permission set name: its roles cannot be known"))
            continue
        where = (f"the plan's assignments of it name {', '.join(accounts)}; " if accounts else "")
        out.append(_identity_center(
            address, PERMISSION_SET, action, name, None, partition,
            f"Identity Center role, matched by name (a new assignment gets a new suffix); {where}deleting the "
            "permission set deletes its role in every account it is assigned to"))
    return out


def _assignment(address: str, action: Literal["delete", "replace"], before: Mapping[str, Any],
                ps_names: Mapping[str, str], partition: str, deleted_sets: set[str]) -> PlannedDeletion:
    target = _text(before, "target_id")
    target_type = _text(before, "target_type") or "AWS_ACCOUNT"
    ps_arn = _text(before, "permission_set_arn")
    name = ps_names.get(ps_arn or "")
    if target_type != "AWS_ACCOUNT" or target is None or not ACCOUNT_RE.match(target):
        return PlannedDeletion(address, ACCOUNT_ASSIGNMENT, action, "role", None, name,
                               note="the assignment's target is not an AWS account id: its role cannot be known")
    if name is None:
        return PlannedDeletion(address, ACCOUNT_ASSIGNMENT, action, "role", target, None,
                               note="the plan does not name the permission set "
                                    f"{(ps_arn or 'of this assignment')[:120]}: its role cannot be known")
    if ps_arn in deleted_sets:
        why = "its permission set is deleted or replaced too, so the role is deleted in this account"
    else:
        why = ("deleted when this was the permission set's last assignment in the account, which the plan cannot "
               "show: assumed")
    return _identity_center(address, ACCOUNT_ASSIGNMENT, action, name, target, partition,
                            f"Identity Center role, matched by name (a new assignment gets a new suffix); {why}")


def if_deleted_principals(deletions: list[PlannedDeletion], named: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The principals to treat as deleted (``audit --if-deleted``): every exact ARN, and each principal in
    ``named`` (for example the principals the live key policies name) that a pattern matches. Unknown deletions
    contribute nothing; report them with :meth:`PlannedDeletion.describe`."""
    out: dict[str, None] = {}
    for deletion in deletions:
        if deletion.arn is not None:
            out[deletion.arn] = None
    for principal in named:
        if any(d.pattern is not None and d.matches(principal) for d in deletions):
            out[principal] = None
    return tuple(out)
