"""Find the key policies in a file, with the line of each statement: the input side of ``kms-rescue lint``.

A file may be

* a key policy (a JSON object with ``Statement``), or the output of ``aws kms get-key-policy`` (``{"Policy": "..."}``);
* a Terraform plan or state in JSON (``terraform show -json``): the ``policy`` attribute of ``aws_kms_key``,
  ``aws_kms_key_policy``, ``aws_kms_replica_key``, ``aws_kms_external_key`` and ``aws_kms_replica_external_key``
  resources, from ``resource_changes`` and ``planned_values`` (child modules included);
* a CloudFormation template in JSON or YAML: ``Properties.KeyPolicy`` of ``AWS::KMS::Key`` and
  ``AWS::KMS::ReplicaKey`` resources. ``Fn::Sub``/``!Sub``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split``,
  ``Fn::FindInMap`` and the pseudo parameters (``AWS::AccountId`` from ``--account``, ``AWS::Region``,
  ``AWS::Partition``, ``AWS::URLSuffix``) are resolved; any other reference becomes a visible placeholder
  (``{{unresolved:...}}``) and an issue that lint reports, never a crash.

The kind is detected from the content, not the file name. Errors are :class:`PolicyInputError` (exit 2) with one
line naming the file (and line and column for syntax errors).
"""

from __future__ import annotations

import bisect
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.input_limits import (
    DOCUMENT_MAX_BYTES,
    NUMBER_MAX_DIGITS,
    check_depth,
    loads_json,
    read_bounded_text,
    refuse_yaml_aliases,
)
from kms_rescue.policy.model import KEY_POLICY_MAX_BYTES, Policy, parse_policy
from kms_rescue.policy.principals import ACCOUNT_RE

__all__ = [
    "PLACEHOLDER_PREFIX",
    "TERRAFORM_POLICY_RESOURCES",
    "LocatedPolicy",
    "SourceIssue",
    "default_key_policy",
    "is_placeholder",
    "json_positions",
    "load_policies",
    "load_policies_from_text",
    "read_source",
]

SourceKind = Literal["key_policy", "terraform", "cloudformation"]
IssueKind = Literal["unresolved_reference", "policy_unknown", "policy_too_large"]

#: Terraform resource types whose ``policy`` attribute is a key policy (AWS provider documentation).
TERRAFORM_POLICY_RESOURCES = (
    "aws_kms_key",
    "aws_kms_key_policy",
    "aws_kms_replica_key",
    "aws_kms_external_key",
    "aws_kms_replica_external_key",
)
#: CloudFormation resource types with a ``KeyPolicy`` property.
CFN_KEY_TYPES = ("AWS::KMS::Key", "AWS::KMS::ReplicaKey")

PLACEHOLDER_PREFIX = "{{unresolved:"


def is_placeholder(value: str) -> bool:
    """Whether a policy value contains a CloudFormation reference that could not be resolved offline."""
    return PLACEHOLDER_PREFIX in value


@dataclass(frozen=True)
class SourceIssue:
    """Something about where a policy came from that lint reports (not an error: linting goes on)."""

    kind: IssueKind
    message: str
    line: int | None = None
    column: int | None = None
    statement_index: int | None = None  # the statement it is about, when it is about one


@dataclass(frozen=True)
class LocatedPolicy:
    """A key policy found in a file. ``policy`` is None when the file cannot say (a Terraform value known only after
    apply, a CloudFormation ``KeyPolicy`` that is itself an unresolvable intrinsic); ``issues`` says why."""

    source: str  # the file path as given
    name: str  # "aws_kms_key.this", the CloudFormation logical id, or the file name
    policy: Policy | None
    statement_lines: Mapping[int, tuple[int, int]] = field(default_factory=dict)  # index -> (line, column), 1-based
    document_line: int | None = None  # where the policy document (or its value) starts, 1-based
    kind: SourceKind = "key_policy"
    size_bytes: int | None = None  # the policy document's size as KMS would receive it (an estimate for CFN)
    issues: tuple[SourceIssue, ...] = ()

    def line_of(self, statement_index: int | None) -> tuple[int | None, int | None]:
        """(line, column) of a statement, falling back to the document's line."""
        if statement_index is not None and statement_index in self.statement_lines:
            return self.statement_lines[statement_index]
        return (self.document_line, None)


def default_key_policy(account: str, partition: str = "aws") -> dict[str, Any]:
    """The key policy KMS attaches when none is given (KMS Developer Guide, "Default key policy")."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }


# --- JSON with positions ----------------------------------------------------------------------------------------

_EMPTY = "empty file; expected a key policy, a Terraform plan or a CloudFormation template"
_TOKEN_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\],:]|[^\s{}\[\],:"]+')
JsonPath = tuple[str | int, ...]


class _Lines:
    """Offset -> (line, column), both 1-based."""

    def __init__(self, text: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._starts, offset) - 1
        return index + 1, offset - self._starts[index] + 1


def json_positions(text: str, keep: Callable[[JsonPath], bool] | None = None) -> dict[JsonPath, tuple[int, int]]:
    """(line, column) of the start of every JSON value whose path ``keep`` accepts (all when None).

    The text must already be known to be valid JSON (parse it with ``json.loads`` first): this is a tokenizer that
    only tracks nesting, fast enough for large Terraform plans.
    """
    lines = _Lines(text)
    out: dict[JsonPath, tuple[int, int]] = {}
    # Each frame: [is_object, current key or index, expecting_key]
    stack: list[list[Any]] = []
    for match in _TOKEN_RE.finditer(text):
        token = match.group()
        if token == ",":
            if stack:
                frame = stack[-1]
                if frame[0]:
                    frame[2] = True
                else:
                    frame[1] += 1
            continue
        if token == ":":
            continue
        if token in ("}", "]"):
            if stack:
                stack.pop()
            continue
        if stack and stack[-1][0] and stack[-1][2]:
            try:
                stack[-1][1] = json.loads(token)
            except ValueError:
                stack[-1][1] = token
            stack[-1][2] = False
            continue
        path: JsonPath = tuple(frame[1] for frame in stack)
        if keep is None or keep(path):
            out[path] = lines.at(match.start())
        if token == "{":
            stack.append([True, None, True])
        elif token == "[":
            stack.append([False, 0, False])
    return out


def _load_json(text: str, source: str) -> Any:
    return loads_json(text, source)  # bounded numbers and depth: one-line errors


def read_source(path: str) -> str:
    """The text of one file to lint, read within the limits of docs/limits.md: a regular file of at most
    :data:`~kms_rescue.policy.input_limits.DOCUMENT_MAX_BYTES`, UTF-8. Directories, FIFOs, sockets and devices
    are refused without reading. Every error is a one-line :class:`PolicyInputError`."""
    return read_bounded_text(path, max_bytes=DOCUMENT_MAX_BYTES, why="the cap on a policy, plan or template file")


def _obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


# --- entry points -----------------------------------------------------------------------------------------------


def load_policies(path: str, *, account: str, region: str = "us-east-1") -> list[LocatedPolicy]:
    """Every key policy in the file at ``path`` (see the module docstring for the kinds understood).

    ``account`` is the key's account (``${AWS::AccountId}`` in CloudFormation); ``region`` is ``${AWS::Region}``.
    Raises :class:`PolicyInputError` for a missing, unreadable or malformed file, or one that holds none of the
    kinds above. A valid template or plan without KMS keys gives an empty list.
    """
    return load_policies_from_text(read_source(path), source=path, account=account, region=region)


def load_policies_from_text(
    text: str, *, source: str, account: str, region: str = "us-east-1"
) -> list[LocatedPolicy]:
    """Like :func:`load_policies` for text already read (``source`` names it in messages)."""
    if not ACCOUNT_RE.match(account or ""):
        raise PolicyInputError(f"the account must be a 12-digit AWS account id, not {account!r}")
    stripped = text.lstrip()
    if not stripped:
        raise PolicyInputError(f"{source}: {_EMPTY}")
    if stripped[0] in "{[":
        document = _load_json(text, source)
        return _dispatch(document, text=text, source=source, account=account, region=region, yaml_doc=None)
    document, root = _yaml_load(text, source)  # PyYAML is imported only for YAML input
    return _dispatch(document, text=text, source=source, account=account, region=region, yaml_doc=root)


def _dispatch(
    document: Any, *, text: str, source: str, account: str, region: str, yaml_doc: Any
) -> list[LocatedPolicy]:
    if not isinstance(document, dict):
        raise PolicyInputError(
            f"{source}: not a key policy, Terraform plan or CloudFormation template: "
            f"expected an object, got {_kind(document)}"
        )
    if "Statement" in document:
        return [_key_policy(document, text, source, yaml_doc)]
    if isinstance(document.get("Policy"), str) and set(document) <= {"Policy", "PolicyName"}:
        return [_get_key_policy_output(document, text, source)]
    if "planned_values" in document or "resource_changes" in document or (
        "format_version" in document and "values" in document
    ):
        return _terraform(document, text, source)
    if "AWSTemplateFormatVersion" in document or isinstance(document.get("Resources"), dict):
        return _cloudformation(document, text, source, account, region, yaml_doc)
    raise PolicyInputError(
        f"{source}: not a key policy, Terraform plan or CloudFormation template: "
        "no Statement, planned_values or Resources"
    )


def _size_issue(size: int) -> tuple[SourceIssue, ...]:
    if size <= KEY_POLICY_MAX_BYTES:
        return ()
    return (
        SourceIssue(
            "policy_too_large",
            f"the policy is {size:,} bytes; KMS rejects key policies over {KEY_POLICY_MAX_BYTES:,} bytes",
        ),
    )


def _key_policy(document: dict[str, Any], text: str, source: str, yaml_doc: Any) -> LocatedPolicy:
    policy = parse_policy(document, source=source)
    if yaml_doc is not None:
        positions = _yaml_positions(yaml_doc, ())
        size = len(json.dumps(document, separators=(",", ":"), default=str).encode("utf-8"))
    else:
        positions = json_positions(text, keep=lambda p: len(p) <= 2 and (not p or p[0] == "Statement"))
        size = len(text.encode("utf-8"))
    lines = _statement_lines(positions, (), document)
    return LocatedPolicy(
        source=source,
        name=Path(source).name,
        policy=policy,
        statement_lines=lines,
        document_line=positions.get((), (1, 1))[0],
        kind="key_policy",
        size_bytes=size,
        issues=_size_issue(size),
    )


def _get_key_policy_output(document: dict[str, Any], text: str, source: str) -> LocatedPolicy:
    """``aws kms get-key-policy`` output: the policy is a JSON string in ``Policy``."""
    policy_text = document["Policy"]
    policy = parse_policy(policy_text, source=f"{source} (Policy)")
    positions = json_positions(text, keep=lambda p: p == ("Policy",))
    size = len(policy_text.encode("utf-8"))
    return LocatedPolicy(
        source=source,
        name=Path(source).name,
        policy=policy,
        document_line=positions.get(("Policy",), (1, 1))[0],
        kind="key_policy",
        size_bytes=size,
        issues=_size_issue(size),
    )


def _statement_lines(
    positions: Mapping[JsonPath, tuple[int, int]], prefix: JsonPath, document: Mapping[str, Any]
) -> dict[int, tuple[int, int]]:
    statements = document.get("Statement")
    if isinstance(statements, dict):
        where = positions.get((*prefix, "Statement"))
        return {0: where} if where else {}
    if not isinstance(statements, list):
        return {}
    out: dict[int, tuple[int, int]] = {}
    for index in range(len(statements)):
        where = positions.get((*prefix, "Statement", index))
        if where:
            out[index] = where
    return out


# --- Terraform --------------------------------------------------------------------------------------------------


def _terraform(document: dict[str, Any], text: str, source: str) -> list[LocatedPolicy]:
    positions = json_positions(text, keep=_terraform_path_wanted)
    found: dict[str, LocatedPolicy] = {}

    changes = document.get("resource_changes")
    if isinstance(changes, list):
        for index, change in enumerate(changes):
            if not isinstance(change, dict) or change.get("type") not in TERRAFORM_POLICY_RESOURCES:
                continue
            if change.get("mode", "managed") != "managed":
                continue
            body = change.get("change")
            if not isinstance(body, dict):
                continue
            actions = body.get("actions") or []
            if actions == ["delete"]:
                continue  # the key policy is going away with its resource
            address = str(change.get("address") or f"{change.get('type')}.{change.get('name')}")
            after = _obj(body.get("after"))
            unknown = _obj(body.get("after_unknown"))
            path: JsonPath = ("resource_changes", index, "change", "after", "policy")
            line = positions.get(path, positions.get(("resource_changes", index), (None, None)))[0]
            found[address] = _terraform_policy(
                source, address, after.get("policy"), bool(unknown.get("policy")), line
            )

    for module_path, module in _terraform_modules(document):
        resources = module.get("resources")
        if not isinstance(resources, list):
            continue
        for index, resource in enumerate(resources):
            if not isinstance(resource, dict) or resource.get("type") not in TERRAFORM_POLICY_RESOURCES:
                continue
            if resource.get("mode", "managed") != "managed":
                continue
            address = str(resource.get("address") or f"{resource.get('type')}.{resource.get('name')}")
            if address in found:
                continue
            values = _obj(resource.get("values"))
            path = (*module_path, "resources", index, "values", "policy")
            line = positions.get(path, positions.get((*module_path, "resources", index), (None, None)))[0]
            found[address] = _terraform_policy(
                source, address, values.get("policy"), "policy" not in values, line
            )
    return list(found.values())


def _terraform_path_wanted(path: JsonPath) -> bool:
    if not path:
        return False
    if path[0] == "resource_changes":
        return len(path) == 2 or (len(path) == 5 and path[2:] == ("change", "after", "policy"))
    if path[0] in ("planned_values", "values", "prior_state"):
        return path[-1] == "policy" or (len(path) >= 2 and path[-2] == "resources")
    return False


def _terraform_modules(document: dict[str, Any]) -> Iterator[tuple[JsonPath, dict[str, Any]]]:
    for top in ("planned_values", "values"):
        container = document.get(top)
        if isinstance(container, dict) and isinstance(container.get("root_module"), dict):
            yield from _walk_module((top, "root_module"), container["root_module"], depth=0)


def _walk_module(path: JsonPath, module: dict[str, Any], depth: int) -> Iterator[tuple[JsonPath, dict[str, Any]]]:
    yield path, module
    children = module.get("child_modules")
    if isinstance(children, list) and depth < 64:
        for index, child in enumerate(children):
            if isinstance(child, dict):
                yield from _walk_module((*path, "child_modules", index), child, depth + 1)


def _terraform_policy(
    source: str, address: str, value: Any, unknown: bool, line: int | None
) -> LocatedPolicy:
    where = f"{source} ({address})"
    if isinstance(value, str) and value.strip():
        policy = parse_policy(value, source=where)
        size = len(value.encode("utf-8"))
        return LocatedPolicy(source, address, policy, {}, line, "terraform", size, _size_issue(size))
    if isinstance(value, dict):  # not what the AWS provider writes, but unambiguous
        policy = parse_policy(value, source=where)
        size = len(json.dumps(value, separators=(",", ":")).encode("utf-8"))
        return LocatedPolicy(source, address, policy, {}, line, "terraform", size, _size_issue(size))
    if unknown or value is None or value == "":
        message = (
            "the policy is known only after apply (it depends on values computed at apply time), "
            "so it cannot be linted from this plan"
        )
        return LocatedPolicy(source, address, None, {}, line, "terraform", None,
                             (SourceIssue("policy_unknown", message, line),))
    raise PolicyInputError(f"{where}: policy must be a JSON string, not {_kind(value)}")


# --- CloudFormation ---------------------------------------------------------------------------------------------


def _partition(region: str) -> tuple[str, str]:
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", "amazonaws.com"
    return "aws", "amazonaws.com"


def _cloudformation(
    document: dict[str, Any], text: str, source: str, account: str, region: str, yaml_doc: Any
) -> list[LocatedPolicy]:
    resources = document.get("Resources")
    if not isinstance(resources, dict):
        raise PolicyInputError(f"{source}: a CloudFormation template needs a Resources object")
    if yaml_doc is None:
        positions = json_positions(
            text,
            keep=lambda p: len(p) >= 2 and p[0] == "Resources" and (len(p) == 2 or p[2:4] == _KEY_POLICY_PATH),
        )
    out: list[LocatedPolicy] = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") not in CFN_KEY_TYPES:
            continue
        prefix: JsonPath = ("Resources", str(logical_id), "Properties", "KeyPolicy")
        if yaml_doc is not None:
            positions = _yaml_positions(yaml_doc, prefix)
            positions.update(_yaml_positions(yaml_doc, ("Resources", str(logical_id)), depth=0))
        resource_line = positions.get(("Resources", str(logical_id)), (None, None))[0]
        properties = _obj(resource.get("Properties"))
        raw_policy = properties.get("KeyPolicy")
        name = str(logical_id)
        where = f"{source} ({name})"
        resolver = _CfnResolver(document, account=account, region=region)
        if raw_policy is None:  # KMS attaches its default key policy
            policy = parse_policy(default_key_policy(account, _partition(region)[0]), source=where)
            out.append(LocatedPolicy(source, name, policy, {}, resource_line, "cloudformation", None, ()))
            continue
        if isinstance(raw_policy, str):
            try:
                raw_policy = json.loads(raw_policy)
            except json.JSONDecodeError as exc:
                raise PolicyInputError(f"{where}: KeyPolicy is a string but not JSON: {exc.msg}") from None
        resolved = resolver.resolve(raw_policy, "KeyPolicy")
        document_line = positions.get(prefix, (resource_line, None))[0]
        if not isinstance(resolved, dict):
            message = f"KeyPolicy is {resolver.describe(raw_policy)}, which cannot be resolved offline"
            out.append(LocatedPolicy(source, name, None, {}, document_line, "cloudformation", None,
                                     (SourceIssue("policy_unknown", message, document_line),)))
            continue
        policy = parse_policy(resolved, source=where)
        size = len(json.dumps(resolved, separators=(",", ":"), default=str).encode("utf-8"))
        statement_lines = _statement_lines(positions, prefix, resolved)
        issues: list[SourceIssue] = []
        for where_in_policy, note in resolver.notes:
            match = re.match(r"KeyPolicy\.Statement(?:\[(\d+)\])?", where_in_policy)
            index = int(match.group(1) or 0) if match else None
            line, column = statement_lines.get(index, (document_line, None)) if index is not None else (
                document_line, None)
            issues.append(SourceIssue("unresolved_reference", note, line, column, index))
        issues.extend(_size_issue(size))
        out.append(LocatedPolicy(
            source, name, policy, statement_lines, document_line, "cloudformation", size, tuple(issues),
        ))
    return out


_KEY_POLICY_PATH = ("Properties", "KeyPolicy")


class _NoValue:
    """``AWS::NoValue``: removes the property or list item it stands for."""


_NO_VALUE = _NoValue()
_SUB_RE = re.compile(r"\$\{([^}]*)\}")


class _CfnResolver:
    """Resolve the intrinsic functions that a key policy typically uses, offline."""

    def __init__(self, template: Mapping[str, Any], *, account: str, region: str) -> None:
        self.template = template
        partition, suffix = _partition(region)
        self.pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": partition,
            "AWS::URLSuffix": suffix,
        }
        self.account = account
        self.partition = partition
        self.notes: list[tuple[str, str]] = []  # (where in the policy, what could not be resolved)
        self._depth = 0

    # A readable form of an unresolvable value, e.g. "!GetAtt AdminRole.Arn".
    def describe(self, value: Any) -> str:
        if isinstance(value, dict) and len(value) == 1:
            (fn, arg), = value.items()
            short = fn.removeprefix("Fn::")
            if isinstance(arg, list):
                shown = json.dumps(arg, default=str)
            elif isinstance(arg, str):
                shown = arg
            else:
                shown = json.dumps(arg, default=str)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            return f"!{short} {shown}"
        return json.dumps(value, default=str)[:80]

    def _placeholder(self, value: Any, where: str, what: str | None = None) -> str:
        shown = what or self.describe(value)
        self.notes.append((where, f"{where}: {shown} cannot be resolved offline; linted as a placeholder"))
        return f"{PLACEHOLDER_PREFIX}{shown.replace('}', ')')}}}}}"

    def resolve(self, value: Any, where: str) -> Any:
        self._depth += 1
        try:
            if self._depth > 50:
                return self._placeholder(value, where, "a deeply nested expression")
            if isinstance(value, dict):
                if len(value) == 1:
                    (key,) = value
                    if key == "Ref" or (isinstance(key, str) and key.startswith("Fn::")):
                        return self._intrinsic(key, value[key], value, where)
                out: dict[str, Any] = {}
                for k, v in value.items():
                    resolved = self.resolve(v, f"{where}.{k}")
                    if resolved is not _NO_VALUE:
                        out[str(k)] = resolved
                return out
            if isinstance(value, list):
                items = [self.resolve(v, f"{where}[{i}]") for i, v in enumerate(value)]
                return [v for v in items if v is not _NO_VALUE]
            return value
        finally:
            self._depth -= 1

    def _string(self, value: Any, where: str) -> str | None:
        resolved = self.resolve(value, where)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, (int, float)):
            return str(resolved)
        return resolved if isinstance(resolved, str) else None

    def _intrinsic(self, fn: str, arg: Any, whole: Any, where: str) -> Any:
        if fn == "Ref":
            return self._ref(arg, whole, where)
        if fn == "Fn::Sub":
            return self._sub(arg, whole, where)
        if fn == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
            delimiter = self._string(arg[0], where)
            parts = self.resolve(arg[1], where)
            if delimiter is not None and isinstance(parts, list):
                strings = [self._string(p, where) for p in parts]
                if all(s is not None for s in strings):
                    return delimiter.join(s for s in strings if s is not None)
            return self._placeholder(whole, where)
        if fn == "Fn::Select" and isinstance(arg, list) and len(arg) == 2:
            index = self._string(arg[0], where)
            items = self.resolve(arg[1], where)
            if index is not None and index.isdigit() and isinstance(items, list) and int(index) < len(items):
                return items[int(index)]
            return self._placeholder(whole, where)
        if fn == "Fn::Split" and isinstance(arg, list) and len(arg) == 2:
            delimiter = self._string(arg[0], where)
            text = self._string(arg[1], where)
            if delimiter and text is not None and not is_placeholder(text):
                return text.split(delimiter)
            return self._placeholder(whole, where)
        if fn == "Fn::FindInMap" and isinstance(arg, list) and len(arg) >= 3:
            keys = [self._string(a, where) for a in arg[:3]]
            mappings = self.template.get("Mappings")
            if all(k is not None for k in keys) and isinstance(mappings, dict):
                node: Any = mappings
                for k in keys:
                    node = node.get(k) if isinstance(node, dict) else None
                if node is not None:
                    return self.resolve(node, where)
            return self._placeholder(whole, where)
        if fn == "Fn::GetAtt":
            return self._get_att(arg, whole, where)
        return self._placeholder(whole, where)

    def _resource(self, logical_id: str) -> Mapping[str, Any] | None:
        resources = self.template.get("Resources")
        if isinstance(resources, dict):
            resource = resources.get(logical_id)
            if isinstance(resource, dict):
                return resource
        return None

    def _iam_name(self, logical_id: str, where: str) -> tuple[str, str, str] | None:
        """(kind, path, name) for an AWS::IAM::Role/User of this template; name may be a placeholder."""
        resource = self._resource(logical_id)
        if resource is None or resource.get("Type") not in ("AWS::IAM::Role", "AWS::IAM::User"):
            return None
        kind = "role" if resource["Type"] == "AWS::IAM::Role" else "user"
        props = _obj(resource.get("Properties"))
        literal_name = props.get("RoleName" if kind == "role" else "UserName")
        name = literal_name if isinstance(literal_name, str) and literal_name else None
        raw_path = props.get("Path")
        path = raw_path if isinstance(raw_path, str) else "/"
        if name is None:
            # CloudFormation generates the name at deploy time; the logical id stands in for it.
            name = f"{PLACEHOLDER_PREFIX}generated name of {logical_id}}}}}"
            self.notes.append((where, (
                f"{where}: the {kind} {logical_id} has no literal {'RoleName' if kind == 'role' else 'UserName'}; "
                f"it is linted as a {kind} of account {self.account} with a generated name"
            )))
        return kind, path, name

    def _ref(self, name: Any, whole: Any, where: str) -> Any:
        if not isinstance(name, str):
            return self._placeholder(whole, where)
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        iam = self._iam_name(name, where)
        if iam is not None:
            return iam[2]
        return self._placeholder(whole, where, f"!Ref {name}")

    def _get_att(self, arg: Any, whole: Any, where: str) -> Any:
        if isinstance(arg, str) and "." in arg:
            logical_id, attribute = arg.split(".", 1)
        elif isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, str) for a in arg):
            logical_id, attribute = arg
        else:
            return self._placeholder(whole, where)
        if attribute == "Arn":
            iam = self._iam_name(logical_id, where)
            if iam is not None:
                kind, path, name = iam
                return f"arn:{self.partition}:iam::{self.account}:{kind}{path}{name}"
        return self._placeholder(whole, where, f"!GetAtt {logical_id}.{attribute}")

    def _sub(self, arg: Any, whole: Any, where: str) -> Any:
        variables: Mapping[str, Any] = {}
        if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and isinstance(arg[1], dict):
            template, variables = arg[0], arg[1]
        elif isinstance(arg, str):
            template = arg
        else:
            return self._placeholder(whole, where)

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = self._string(variables[name], where)
                return value if value is not None else self._placeholder(variables[name], where)
            if name in self.pseudo:
                return self.pseudo[name]
            if "." in name:
                resolved = self._get_att(name, {"Fn::GetAtt": name}, where)
                return resolved if isinstance(resolved, str) else self._placeholder(whole, where)
            resolved = self._ref(name, {"Ref": name}, where)
            return resolved if isinstance(resolved, str) else ""

        return _SUB_RE.sub(replace, template)



# --- YAML (CloudFormation) ------------------------------------------------------------------------------------

#: CloudFormation's short-form tags (``!Sub``, ``!GetAtt`` ...) become their long form (``{"Fn::Sub": ...}``).
_SHORT_FORM_SPECIAL = {"Ref": "Ref", "Condition": "Condition"}


class _YamlNumberTooLong(Exception):
    """A YAML number too long to convert; the message is "LINE:COLUMN: ..." (the source is added by the caller)."""


@functools.lru_cache(maxsize=1)
def _yaml_loader() -> Any:
    import yaml

    class CfnLoader(yaml.SafeLoader):
        """SafeLoader that understands CloudFormation's short-form tags and keeps dates as strings
        (``Version: 2012-10-17`` unquoted is still the string CloudFormation sends)."""

    CfnLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def short_form(loader: Any, suffix: str, node: Any) -> Any:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "GetAtt" and isinstance(value, str):
            return {"Fn::GetAtt": value.split(".", 1) if "." in value else value}
        return {_SHORT_FORM_SPECIAL.get(suffix, f"Fn::{suffix}"): value}

    def bounded_number(loader: Any, node: Any) -> Any:
        if len(node.value) > NUMBER_MAX_DIGITS:  # Python refuses ints over 4,300 digits; no policy needs 100
            mark = node.start_mark
            raise _YamlNumberTooLong(
                f"{mark.line + 1}:{mark.column + 1}: a number of {len(node.value):,} characters; "
                f"numbers have at most {NUMBER_MAX_DIGITS}"
            )
        if node.tag.endswith(":int"):
            return yaml.SafeLoader.construct_yaml_int(loader, node)
        return yaml.SafeLoader.construct_yaml_float(loader, node)

    CfnLoader.add_constructor("tag:yaml.org,2002:int", bounded_number)
    CfnLoader.add_constructor("tag:yaml.org,2002:float", bounded_number)
    CfnLoader.add_multi_constructor("!", short_form)
    return CfnLoader


def _yaml_load(text: str, source: str) -> tuple[Any, Any]:
    """(data, root node) of a single YAML document; errors are one line with the line and column."""
    import yaml

    refuse_yaml_aliases(text, source)  # before parsing: aliases expand without bound once resolved
    loader = None
    try:
        loader = _yaml_loader()(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _YamlNumberTooLong as exc:
        raise PolicyInputError(f"{source}:{exc}") from None
    except yaml.reader.ReaderError as exc:
        raise PolicyInputError(
            f"{source}: invalid YAML: character #x{exc.character:04x} at offset {exc.position} is not allowed"
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        problem = exc.problem or exc.context or "malformed"
        raise PolicyInputError(f"{where}: invalid YAML: {problem}") from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PolicyInputError(f"{source}: invalid YAML: {first}") from None
    finally:
        if loader is not None:
            loader.dispose()
    if data is None:
        raise PolicyInputError(f"{source}: {_EMPTY}")
    return check_depth(data, source), node


def _yaml_positions(root: Any, prefix: JsonPath, depth: int = 2) -> dict[JsonPath, tuple[int, int]]:
    """(line, column) of the node at ``prefix`` and of its descendants down to ``depth`` levels."""
    import yaml

    node, mark = root, root
    for part in prefix:
        found = _yaml_child(node, part)
        if found is None:
            return {}
        node, mark = found
    out: dict[JsonPath, tuple[int, int]] = {}

    def visit(current: Any, marked: Any, path: JsonPath, remaining: int) -> None:
        # A mapping entry is located at its key ("KeyPolicy:"), a list item at the item itself.
        out[path] = (marked.start_mark.line + 1, marked.start_mark.column + 1)
        if remaining <= 0:
            return
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    visit(value, key, (*path, key.value), remaining - 1)
        elif isinstance(current, yaml.SequenceNode):
            for index, value in enumerate(current.value):
                visit(value, value, (*path, index), remaining - 1)

    visit(node, mark, prefix, depth)
    return out


def _yaml_child(node: Any, part: str | int) -> tuple[Any, Any] | None:
    """(child node, the node that marks its position) or None."""
    import yaml

    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return value, key
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part], node.value[part]
    return None
