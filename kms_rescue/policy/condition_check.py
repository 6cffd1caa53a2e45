"""Judge the Condition element of a statement against a request context.

The rules, each from the IAM User Guide (the page is named where it is applied): "IAM JSON policy elements:
Condition operators" (a key absent from the request, ``...IfExists``, ``Null``); "Conditions with multiple context
keys or values" (AND across operators and keys, OR across one key's values, NOR for negated operators);
"Single-valued vs. multivalued context keys" and "Multivalued context key examples" (``ForAnyValue:`` and
``ForAllValues:``). Results are three-valued (:mod:`kms_rescue.policy.tristate`).

A condition is read once into a :class:`PreparedCondition` (operator parsed, values parsed, patterns compiled);
the engine keeps the prepared conditions of the statements it has matched, so a decision does no re-parsing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from kms_rescue.policy.condition_operators import OperatorInfo, quote, require_operator
from kms_rescue.policy.condition_values import PolicyValue, RequestValueError, compare, policy_value
from kms_rescue.policy.model import Condition
from kms_rescue.policy.request_context import RequestContext
from kms_rescue.policy.tristate import Tri, and3, not3, or3, word

__all__ = [
    "ConditionCheck",
    "ConditionOutcome",
    "PreparedCondition",
    "evaluate_condition",
    "evaluate_conditions",
    "judge_all",
    "prepare_condition",
    "prepare_conditions",
    "prepared_condition",
]


class ConditionCheck(NamedTuple):
    """One (operator, key) pair judged against the request: ``result`` is True, False or None (unknown), and
    ``detail`` says why in one line.

    The line is worded only when read (from ``why``, or from the request's values when ``why`` is empty): the
    engine judges many conditions per decision and most callers need only the decision. Immutable; a named tuple
    rather than a frozen dataclass because the engine builds one per condition per decision, and a named tuple
    is built about four times faster (docs/engine.md, "Caches")."""

    condition: Condition
    result: bool | None
    why: str = ""  # why, in words; empty: the request has ``request_values``
    request_values: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        why = self.why or "request has " + _shown(self.request_values)
        return f"{head(self.condition)}: {why} -> {word(self.result)}"


def head(condition: Condition) -> str:
    """How explanations introduce a condition: ``Operator key ["value", ...]``."""
    return f"{condition.operator} {condition.key} [{', '.join(quote(v) for v in condition.values)}]"


@dataclass(frozen=True)
class ConditionOutcome:
    """All the conditions of a statement. ``result`` is their three-valued AND (False beats None beats True);
    a statement without conditions is True."""

    result: bool | None
    checks: tuple[ConditionCheck, ...]

    @property
    def matched(self) -> bool:
        return self.result is True


_NOT_A = {"Numeric": "a number", "Date": "a date", "Ip": "an IP address", "Bool": "true or false"}


def _shown(values: Sequence[str]) -> str:
    if len(values) == 1:
        return quote(values[0])
    return "[" + ", ".join(quote(v) for v in values) + "]"


@dataclass(frozen=True)
class PreparedCondition:
    """A condition read once: its operator, its values parsed for the operator's family, and the checks that do
    not depend on the request's values (a policy value that can never match, a key that is unknown or absent).
    :meth:`check` judges it against a request context."""

    condition: Condition
    info: OperatorInfo
    values: tuple[PolicyValue, ...]
    low_key: str
    invalid: ConditionCheck | None  # the policy side can never match: this is the check, whatever the request
    unknown: ConditionCheck  # the check when the request context calls the key unknown
    absent: ConditionCheck  # the check when the key is absent from the request

    def check(self, ctx: RequestContext) -> ConditionCheck:
        """Judge the condition against ``ctx`` (see :func:`evaluate_condition`)."""
        if self.invalid is not None:  # a policy value of the wrong type: nothing in the request can make it match
            return self.invalid
        condition = self.condition
        # Static analysis: a key whose value could be anything (or be absent) leaves every operator undecided,
        # Null and ...IfExists included.
        if ctx.is_unknown(condition.key):
            return self.unknown
        values = ctx.values_for(self.low_key)
        if values is None:
            return self.absent
        info = self.info
        pvs = self.values
        if info.family == "Null":
            # "Condition operators", Null check: "true" means the key must be absent (or null), "false" present.
            return ConditionCheck(condition, or3(not pv.parsed for pv in pvs), "", values)

        try:
            # positive match of each request value against the policy values: OR across the policy's values
            # ("Conditions with multiple context keys or values"); a negated operator is its NOR.
            if len(pvs) == 1:
                pv0 = pvs[0]
                if len(values) == 1 and info.set_op is None:  # the common case, without the lists below
                    hit = compare(info, pv0, values[0], ctx)
                    return ConditionCheck(condition, not3(hit) if info.negated else hit, "", values)
                pos = [compare(info, pv0, v, ctx) for v in values]
            else:
                pos = [or3([compare(info, pv, v, ctx) for pv in pvs]) for v in values]
        except RequestValueError as exc:
            what = _NOT_A.get(info.family, "valid")
            return ConditionCheck(condition, False, f"request value {quote(exc.value)} is not {what}; it never matches")

        result: Tri
        if info.set_op is None:
            # Without a set operator we judge the key as a whole: a positive operator holds when some request
            # value matches, a negated one when no request value matches. For the single-valued keys these
            # operators are meant for ("Single-valued vs. multivalued context keys": multivalued keys require a
            # set operator), this is exactly the documented single-value rule.
            hit = pos[0] if len(pos) == 1 else or3(pos)
            result = not3(hit) if info.negated else hit
        else:
            per_value = [not3(p) for p in pos] if info.negated else pos
            # ForAnyValue: at least one request value satisfies the operator; ForAllValues: every request value
            # does ("Single-valued vs. multivalued context keys", set operators; "Multivalued context key
            # examples").
            result = or3(per_value) if info.set_op == "any" else and3(per_value)
        return ConditionCheck(condition, result, "", values)


def _absent(info: OperatorInfo) -> tuple[bool, str]:
    """The result, and why, of a condition whose key is absent from the request."""
    if info.if_exists:
        # "...IfExists": if the key is not present in the request context, the condition evaluates to true.
        return True, "key absent from the request (IfExists)"
    if info.set_op == "all":
        # "Multivalued context key examples": ForAllValues also returns true if there are no context keys in the
        # request.
        return True, "key absent from the request (ForAllValues holds for no values)"
    if info.set_op == "any":
        return False, "key absent from the request (ForAnyValue needs a value)"
    if info.negated:
        # "Condition operators" (Important): when the key is absent the values do not match, so a condition that
        # requires them *not* to match (StringNotLike, ArnNotLike, ...) is true.
        return True, "key absent from the request (a negated operator holds)"
    # "Condition operators" (Important): if the key is not present in the request context, the values do not
    # match and the condition is false.
    return False, "key absent from the request"


def prepare_condition(condition: Condition) -> PreparedCondition:
    """Read a condition once. Raises :class:`PolicyInputError` for an operator IAM does not have."""
    info = require_operator(condition.operator)
    fam = info.family
    pvs = tuple(policy_value(info, v) for v in condition.values)
    bad = [pv.raw for pv in pvs if not pv.valid]
    invalid: ConditionCheck | None = None
    if bad:
        why = f"invalid {fam if fam != 'Ip' else 'IP address'} value {quote(bad[0])} in the policy"
        invalid = ConditionCheck(condition, False, f"{why}; it never matches")
    elif not pvs:
        invalid = ConditionCheck(condition, False, "the policy gives no value; it never matches")
    unknown = ConditionCheck(condition, None, "the request value is unknown (it could be anything, or absent)")
    if fam == "Null":
        # "Condition operators", Null check: "true" means the key must be absent (or null), "false" present.
        absent = ConditionCheck(condition, or3(bool(pv.parsed) for pv in pvs), "key absent from the request")
    else:
        absent = ConditionCheck(condition, *_absent(info))
    return PreparedCondition(condition, info, pvs, condition.key.lower(), invalid, unknown, absent)


def prepare_conditions(conditions: Sequence[Condition]) -> tuple[PreparedCondition, ...]:
    """:func:`prepare_condition` for each of a statement's conditions, in order."""
    return tuple(prepare_condition(c) for c in conditions)


# Cached for callers that meet the same condition many times (the management analysis judges each statement
# for every candidate principal; lint reads each condition for several rules); the engine's own hot path holds
# prepared conditions instead. Without it, lint ran 2 to 4 times slower (docs/engine.md, "Caches").
@lru_cache(maxsize=8192)
def prepared_condition(condition: Condition) -> PreparedCondition:
    """:func:`prepare_condition`, remembered for equal conditions. Raises :class:`PolicyInputError` for an
    operator IAM does not have."""
    return prepare_condition(condition)


def evaluate_condition(condition: Condition, ctx: RequestContext) -> ConditionCheck:
    """Judge one (operator, key, values) triple against the request context.

    Raises :class:`PolicyInputError` for an operator IAM does not have.
    """
    return prepared_condition(condition).check(ctx)


def judge_all(
    prepared: Sequence[PreparedCondition], ctx: RequestContext, *, stop_at_false: bool = False
) -> ConditionOutcome:
    """Judge prepared conditions: AND across operators and keys ("Conditions with multiple context keys or
    values"), three-valued. By default every condition is judged so that explanations are complete;
    ``stop_at_false`` stops at the first false one (the decision is then known)."""
    checks = []
    result: Tri = True
    for p in prepared:
        check = p.check(ctx)
        checks.append(check)
        if check.result is not True and result is not False:
            result = check.result
            if stop_at_false and result is False:
                break
    return ConditionOutcome(result, tuple(checks))


def evaluate_conditions(
    conditions: Sequence[Condition], ctx: RequestContext, *, stop_at_false: bool = False
) -> ConditionOutcome:
    """Judge a statement's conditions: AND across operators and keys ("Conditions with multiple context keys
    or values"), three-valued. By default every condition is judged so that explanations are complete;
    ``stop_at_false`` stops at the first false one (the decision is then known), after checking every operator.

    Raises :class:`PolicyInputError` (one line) for an unknown operator.
    """
    return judge_all([prepared_condition(c) for c in conditions], ctx, stop_at_false=stop_at_false)
