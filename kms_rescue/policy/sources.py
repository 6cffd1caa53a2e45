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
import dataclasses
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kms_rescue.default_policy import default_key_policy
from kms_rescue.policy import cfn_decode, terraform_config
from kms_rescue.policy.errors import NotAPolicyError, PolicyInputError
from kms_rescue.policy.input_limits import (
    DOCUMENT_MAX_BYTES,
    NUMBER_MAX_DIGITS,
    check_depth,
    loads_json,
    read_bounded_text,
    refuse_yaml_aliases,
)
from kms_rescue.policy.model import KEY_POLICY_MAX_BYTES, Policy, parse_policy
from kms_rescue.policy.partitions import partition_for_region
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
    origin: str | None = None  # the file it was found in, when ``source`` is another (a plan's .tf file)
    #: Suppressions the source declares for the whole policy, as written: a CloudFormation resource's
    #: ``Metadata: {kms-rescue: {ignore: [{rule: KR004, reason: ...}]}}`` (see docs/lint.md).
    declared_ignores: tuple[Any, ...] = ()

    @property
    def input_file(self) -> str:
        """The file given to lint (or found under a directory given) that this policy came from."""
        return self.origin or self.source

    def line_of(self, statement_index: int | None) -> tuple[int | None, int | None]:
        """(line, column) of a statement, falling back to the document's line."""
        if statement_index is not None and statement_index in self.statement_lines:
            return self.statement_lines[statement_index]
        return (self.document_line, None)


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
    kinds above (:class:`NotAPolicyError`). A valid template or plan without KMS keys gives an empty list.
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
        raise NotAPolicyError(
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
    raise NotAPolicyError(
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
    # The configuration may be beside the plan (for standard input: beside the name it is reported as).
    return [_in_configuration(document, source, located) for located in found.values()]


def _in_configuration(plan: dict[str, Any], source: str, located: LocatedPolicy) -> LocatedPolicy:
    """The policy located in the ``.tf`` file that declares its resource, when that file is beside the plan
    (see :mod:`kms_rescue.policy.terraform_config`); unchanged otherwise."""
    block = terraform_config.locate(plan, source, located.name)
    if block is None:
        return located
    line = block.policy_line or block.line
    statement_lines: dict[int, tuple[int, int]] = {}
    if located.policy is not None:
        for statement in located.policy.statements:
            if statement.sid in block.sid_lines:
                statement_lines[statement.index] = (block.sid_lines[statement.sid], 1)
    issues = tuple(dataclasses.replace(issue, line=line) for issue in located.issues)
    return dataclasses.replace(
        located, source=str(block.path), origin=source, document_line=line, statement_lines=statement_lines,
        issues=issues,
    )


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
    """(``${AWS::Partition}``, ``${AWS::URLSuffix}``) for a Region, from botocore's partition data: ``aws-cn`` and
    ``amazonaws.com.cn`` in China, ``aws-us-gov``, the ``aws-iso*`` and ``aws-eusc`` partitions with their own
    DNS suffixes (CloudFormation, "Pseudo parameters reference")."""
    found = partition_for_region(region)
    return found.id, found.dns_suffix


def _cloudformation(
    document: dict[str, Any], text: str, source: str, account: str, region: str, yaml_doc: Any
) -> list[LocatedPolicy]:
    """The key policies of a template, decoded by cfn-lint (see :mod:`kms_rescue.policy.cfn_decode`) for line
    marks and condition scenarios: a key policy with ``Fn::If`` is linted once per satisfiable combination."""
    if not isinstance(document.get("Resources"), dict):
        raise PolicyInputError(f"{source}: a CloudFormation template needs a Resources object")
    template = cfn_decode.decode(text, source)
    resources = template.get("Resources")
    if not isinstance(resources, dict):
        raise PolicyInputError(f"{source}: a CloudFormation template needs a Resources object")
    out: list[LocatedPolicy] = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") not in CFN_KEY_TYPES:
            continue
        name = str(logical_id)
        resource_line = (cfn_decode.key_position(resources, name) or (None, None))[0]
        properties = resource.get("Properties")
        properties = properties if isinstance(properties, dict) else {}
        raw_policy = properties.get("KeyPolicy")
        if raw_policy is None:  # KMS attaches its default key policy
            policy = parse_policy(default_key_policy(account, _partition(region)[0]), source=f"{source} ({name})")
            out.append(LocatedPolicy(source, name, policy, {}, resource_line, "cloudformation", None, ()))
            continue
        document_line = (cfn_decode.key_position(properties, "KeyPolicy") or (resource_line, None))[0]
        own_condition = resource.get("Condition")
        used = cfn_decode.conditions_used(raw_policy)
        names = used | ({str(own_condition)} if isinstance(own_condition, str) else set())
        combinations, cut = cfn_decode.scenarios(template, names)
        for scenario in combinations:
            if isinstance(own_condition, str) and scenario.get(str(own_condition)) is False:
                continue  # the key is not created in this combination
            shown = {k: v for k, v in scenario.items() if k in used}
            label = f"{name} ({cfn_decode.describe(shown)})" if shown else name
            located = _cfn_key_policy(
                template, raw_policy, scenario, source=source, name=label, account=account, region=region,
                document_line=document_line, text=text,
            )
            ignores = _cfn_declared_ignores(resource)
            if ignores:
                located = dataclasses.replace(located, declared_ignores=ignores)
            if cut:
                located = dataclasses.replace(located, issues=(*located.issues, SourceIssue(
                    "unresolved_reference",
                    f"KeyPolicy: its Fn::If conditions have more than {cfn_decode.MAX_SCENARIOS} combinations; "
                    f"only the first {cfn_decode.MAX_SCENARIOS} are linted", document_line)))
            out.append(located)
    return out


def _cfn_declared_ignores(resource: Mapping[str, Any]) -> tuple[Any, ...]:
    """The ``ignore`` entries of a resource's ``Metadata.kms-rescue``, as plain data (checked by the linter)."""
    metadata = resource.get("Metadata")
    ours = metadata.get("kms-rescue") if isinstance(metadata, dict) else None
    entries = ours.get("ignore") if isinstance(ours, dict) else None
    if not isinstance(entries, list):
        return ()
    return tuple(cfn_decode.select(entry, {}, {}) for entry in entries)


def _cfn_key_policy(
    template: Any, raw_policy: Any, scenario: Mapping[str, bool], *, source: str, name: str, account: str,
    region: str, document_line: int | None, text: str,
) -> LocatedPolicy:
    where = f"{source} ({name})"
    marks: dict[int, tuple[int, int]] = {}
    expanded = cfn_decode.select(raw_policy, scenario, marks)
    resolver = _CfnResolver(cfn_decode.select(template, scenario, {}), account=account, region=region)
    base_line = document_line
    if isinstance(expanded, str):
        try:
            expanded = json.loads(expanded)
        except json.JSONDecodeError as exc:
            raise PolicyInputError(f"{where}: KeyPolicy is a string but not JSON: {exc.msg}") from None
    resolved = resolver.resolve(expanded, "KeyPolicy")
    statement_lines: dict[int, tuple[int, int]] = {}
    if isinstance(resolved, str) and resolved.lstrip().startswith("{") and not resolved.startswith(PLACEHOLDER_PREFIX):
        # Fn::Sub of a JSON string: the policy is the substituted text; its lines count from the string's.
        policy_text = resolved
        try:
            resolved = json.loads(policy_text)
        except json.JSONDecodeError as exc:
            raise PolicyInputError(f"{where}: KeyPolicy is Fn::Sub of text that is not JSON: {exc.msg}") from None
        statement_lines = _sub_statement_lines(expanded, policy_text, resolved, text, document_line)
    elif isinstance(resolved, dict):
        statement_lines = _marked_statement_lines(expanded, marks)
    if not isinstance(resolved, dict):
        message = f"KeyPolicy is {resolver.describe(expanded)}, which cannot be resolved offline"
        return LocatedPolicy(source, name, None, {}, base_line, "cloudformation", None,
                             (SourceIssue("policy_unknown", message, base_line),))
    policy = parse_policy(resolved, source=where)
    size = len(json.dumps(resolved, separators=(",", ":"), default=str).encode("utf-8"))
    issues: list[SourceIssue] = []
    for where_in_policy, note in resolver.notes:
        match = re.match(r"KeyPolicy\.Statement(?:\[(\d+)\])?", where_in_policy)
        index = int(match.group(1) or 0) if match else None
        line, column = statement_lines.get(index, (base_line, None)) if index is not None else (base_line, None)
        issues.append(SourceIssue("unresolved_reference", note, line, column, index))
    issues.extend(_size_issue(size))
    return LocatedPolicy(source, name, policy, statement_lines, base_line, "cloudformation", size, tuple(issues))


def _marked_statement_lines(expanded: Any, marks: Mapping[int, tuple[int, int]]) -> dict[int, tuple[int, int]]:
    statements = expanded.get("Statement") if isinstance(expanded, dict) else None
    if isinstance(statements, dict):
        where = marks.get(id(statements))
        return {0: where} if where else {}
    if not isinstance(statements, list):
        return {}
    return {i: marks[id(st)] for i, st in enumerate(statements) if id(st) in marks}


def _sub_statement_lines(
    expanded: Any, policy_text: str, resolved: Any, source_text: str, document_line: int | None
) -> dict[int, tuple[int, int]]:
    """Statement lines of a policy written as ``Fn::Sub`` of a JSON text. In a YAML block scalar (``!Sub |``) the
    text's lines are the template's lines (substitutions add none), found by the template text's first two lines;
    otherwise every statement is on the ``KeyPolicy`` line."""
    argument = expanded.get("Fn::Sub") if isinstance(expanded, dict) else None
    if isinstance(argument, list) and argument:
        argument = argument[0]
    if document_line is None or not isinstance(resolved, dict) or not isinstance(argument, str):
        return {}
    inner = _statement_lines(json_positions(policy_text, keep=lambda p: len(p) <= 2), (), resolved)
    wanted = [line.strip() for line in argument.splitlines()[:2]]
    lines = source_text.splitlines()
    for start in range(document_line - 1, min(len(lines), document_line + 3)):
        if len(wanted) == 2 and [line.strip() for line in lines[start:start + 2]] == wanted:
            indent = len(lines[start]) - len(lines[start].lstrip())
            return {i: (start + line, column + indent) for i, (line, column) in inner.items()}
    return dict.fromkeys(inner, (document_line, 1))


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
                    if resolved is not cfn_decode.NO_VALUE:
                        out[str(k)] = resolved
                return out
            if isinstance(value, list):
                items = [self.resolve(v, f"{where}[{i}]") for i, v in enumerate(value)]
                return [v for v in items if v is not cfn_decode.NO_VALUE]
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
            return cfn_decode.NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        parameter = _obj(self.template.get("Parameters")).get(name)
        if isinstance(parameter, dict) and isinstance(parameter.get("Default"), (str, int, float)):
            # Linted with the parameter's Default (what a deployment without that parameter would use).
            default = str(parameter["Default"])
            kind = str(parameter.get("Type", ""))
            if kind == "CommaDelimitedList" or kind.startswith("List<"):
                return [part.strip() for part in default.split(",")]
            return default
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
    import yaml  # deferred: only YAML input needs PyYAML (13 ms to import), and lint of JSON starts sooner

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
    import yaml  # deferred: only YAML input needs PyYAML (13 ms to import), and lint of JSON starts sooner

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
    import yaml  # deferred: only YAML input needs PyYAML (13 ms to import), and lint of JSON starts sooner

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
    import yaml  # deferred: only YAML input needs PyYAML (13 ms to import), and lint of JSON starts sooner

    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return value, key
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part], node.value[part]
    return None
