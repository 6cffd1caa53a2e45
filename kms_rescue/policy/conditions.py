"""The Condition element of IAM policies, in one import: this module only re-exports the names of the modules that
do the work (``docs/engine.md``, "Conditions, module by module"):

* :mod:`kms_rescue.policy.request_context`: the request context, single- and multivalued keys;
* :mod:`kms_rescue.policy.condition_operators`: operator names, set prefixes and ``...IfExists``;
* :mod:`kms_rescue.policy.condition_values`: typed values and how each operator family compares them;
* :mod:`kms_rescue.policy.policy_variables` and :mod:`kms_rescue.policy.like_patterns`: policy variables and
  ``*``/``?`` patterns;
* :mod:`kms_rescue.policy.condition_check`: judging a statement's conditions, three-valued;
* :mod:`kms_rescue.policy.time_windows`: when time conditions change;
* :mod:`kms_rescue.policy.lint.condition_problems`: the lint side (not re-exported here: the lint package
  imports the engine).

New code should import from those modules.
"""

from __future__ import annotations

from kms_rescue.policy.condition_check import (
    ConditionCheck,
    ConditionOutcome,
    PreparedCondition,
    evaluate_condition,
    evaluate_conditions,
    prepare_condition,
)
from kms_rescue.policy.condition_operators import VARIABLE_FAMILIES, OperatorInfo, known_operator, operator_info
from kms_rescue.policy.like_patterns import like_match, like_match3
from kms_rescue.policy.policy_variables import parse_template, substitute_variables, variable_keys
from kms_rescue.policy.request_context import MULTI_VALUED_KEYS, SINGLE_VALUED_KEYS, RequestContext
from kms_rescue.policy.time_windows import TIME_KEYS, time_boundaries
from kms_rescue.policy.tristate import Tri

__all__ = [
    "MULTI_VALUED_KEYS",
    "SINGLE_VALUED_KEYS",
    "TIME_KEYS",
    "VARIABLE_FAMILIES",
    "ConditionCheck",
    "ConditionOutcome",
    "OperatorInfo",
    "PreparedCondition",
    "RequestContext",
    "Tri",
    "evaluate_condition",
    "evaluate_conditions",
    "known_operator",
    "like_match",
    "like_match3",
    "operator_info",
    "parse_template",
    "prepare_condition",
    "substitute_variables",
    "time_boundaries",
    "variable_keys",
]
