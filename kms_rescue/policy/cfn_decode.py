"""CloudFormation templates through cfn-lint's decoder: values with their line marks, and condition scenarios.

cfn-lint (maintained by AWS) decodes JSON and YAML templates, short-form tags included, into dicts, lists and
strings that carry ``start_mark`` (0-based line and column), and its ``Template.conditions`` knows which
combinations of the template's ``Conditions`` can hold together (``Fn::Equals`` on the same parameter, ``Fn::Not``,
``Fn::And``...). :mod:`kms_rescue.policy.sources` uses both: each satisfiable combination of the conditions a key
policy's ``Fn::If`` uses is linted as a policy of its own.

Only ``kms-rescue lint`` of a CloudFormation template imports cfn-lint (about half a second); plain key policies and
Terraform plans never do, which keeps ``lint`` fast to start.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from kms_rescue.policy.errors import PolicyInputError

#: At most this many condition combinations are linted per key; more are reported, not linted.
MAX_SCENARIOS = 64
Position = tuple[int, int]  # 1-based (line, column)


class NoValue:
    """``AWS::NoValue``: removes the property or list item it stands for."""


NO_VALUE = NoValue()


def decode(text: str, source: str) -> Any:
    """The template as cfn-lint decodes it (nodes with marks). :class:`PolicyInputError` when it cannot."""
    # Deferred: importing cfn-lint takes about half a second, paid only when a template is seen.
    from cfnlint.decode import decode_str

    template, matches = decode_str(text)
    if matches or not isinstance(template, dict):
        first = matches[0] if matches else None
        where = f"{source}:{first.linenumber}:{first.columnnumber}" if first is not None else source
        message = first.message if first is not None else "not a template"
        raise PolicyInputError(f"{where}: invalid CloudFormation template: {message}".splitlines()[0])
    return template


def position(node: Any) -> Position | None:
    """Where a decoded value starts."""
    mark = getattr(node, "start_mark", None)
    if mark is None:
        return None
    return mark.line + 1, mark.column + 1


def key_position(mapping: Any, key: str) -> Position | None:
    """Where ``key`` is written in a decoded mapping (a YAML entry is located at its key)."""
    if not isinstance(mapping, dict):
        return None
    for candidate in mapping:
        if candidate == key:
            return position(candidate) or position(mapping[candidate])
    return None


def conditions_used(node: Any, depth: int = 0) -> set[str]:
    """The condition names of every ``Fn::If`` in a value."""
    found: set[str] = set()
    if depth > 100:
        return found
    if isinstance(node, dict):
        branch = node.get("Fn::If") if len(node) == 1 else None
        if isinstance(branch, list) and len(branch) == 3 and isinstance(branch[0], str):
            found.add(str(branch[0]))
        for value in node.values():
            found |= conditions_used(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            found |= conditions_used(value, depth + 1)
    return found


def scenarios(template: Mapping[str, Any], names: Iterable[str]) -> tuple[list[dict[str, bool]], bool]:
    """(the satisfiable combinations of ``names``, whether more than :data:`MAX_SCENARIOS` were cut off).

    Conditions the template does not define are left out (an ``Fn::If`` on them stays unresolved). Conditions on
    ``AWS::Region`` are not evaluated: both of their values are linted, as a template serves every Region."""
    defined = template.get("Conditions")
    wanted = sorted(n for n in set(names) if isinstance(defined, dict) and n in defined)
    if not wanted:
        return [{}], False
    from cfnlint.template import Template  # deferred with the decoder, see decode()

    out: list[dict[str, bool]] = []
    try:
        conditions = Template("template", dict(template)).conditions
        for scenario in conditions.build_scenarios({name: {True, False} for name in wanted}):
            combination = {name: bool(scenario[name]) for name in wanted if name in scenario}
            if combination in out:
                continue
            if len(out) == MAX_SCENARIOS:
                return out, True
            out.append(combination)
    except Exception:  # cfn-lint could not analyse malformed Conditions: every combination, below
        out = []
    if out:
        return out, False
    # Conditions cfn-lint cannot relate (malformed, or unsatisfiable as written): every combination, bounded.
    every = [dict(zip(wanted, values, strict=True))
             for values in itertools.islice(itertools.product((True, False), repeat=len(wanted)), MAX_SCENARIOS + 1)]
    return every[:MAX_SCENARIOS], len(every) > MAX_SCENARIOS


def describe(scenario: Mapping[str, bool]) -> str:
    """``IsProd=true, UseBreakGlass=false``."""
    return ", ".join(f"{name}={'true' if value else 'false'}" for name, value in sorted(scenario.items()))


def select(node: Any, scenario: Mapping[str, bool], marks: dict[int, Position], depth: int = 0) -> Any:
    """``node`` as plain data with each ``Fn::If`` whose condition is in ``scenario`` replaced by its branch and
    ``AWS::NoValue`` removed. ``marks`` receives the position of every dict and list made, by ``id``. Dates (an
    unquoted ``Version: 2012-10-17``) become the string CloudFormation sends."""
    if depth > 200:
        return node
    if isinstance(node, dict):
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref" and value == "AWS::NoValue":
                return NO_VALUE
            if key == "Fn::If" and isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and (
                str(value[0]) in scenario
            ):
                return select(value[1] if scenario[str(value[0])] else value[2], scenario, marks, depth + 1)
        out: dict[str, Any] = {}
        for key, value in node.items():
            chosen = select(value, scenario, marks, depth + 1)
            if chosen is not NO_VALUE:
                out[str(key)] = chosen
        _mark(out, node, marks)
        return out
    if isinstance(node, list):
        items = [select(value, scenario, marks, depth + 1) for value in node]
        kept = [item for item in items if item is not NO_VALUE]
        _mark(kept, node, marks)
        return kept
    if isinstance(node, (datetime.date, datetime.datetime)):
        return node.isoformat()
    if isinstance(node, str):
        return str(node)
    return node


def _mark(made: Any, node: Any, marks: dict[int, Position]) -> None:
    where = position(node)
    if where is not None:
        marks[id(made)] = where
