"""parse_policy gives the same Policy for a dict it has parsed before (docs/engine.md, "Caches"): the audit reads
the same key policy for many keys, and the engine's per-policy caches are keyed by the Policy object."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kms_rescue.policy import PolicyInputError, model, parse_policy

# KMS Developer Guide, "Default key policy": the statement that gives the account (the root user and, through
# IAM policies, its principals) access to the key.
DEFAULT: dict[str, Any] = {"Version": "2012-10-17", "Statement": [{
    "Sid": "Enable IAM User Permissions", "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]}


def test_an_equal_dict_gives_the_same_policy() -> None:
    first = parse_policy(copy.deepcopy(DEFAULT), source="key policy")
    again = parse_policy(copy.deepcopy(DEFAULT), source="key policy")
    assert again is first
    assert parse_policy(copy.deepcopy(DEFAULT), source="another source") is not first  # its messages name it


def test_a_different_dict_gives_its_own_policy() -> None:
    other = copy.deepcopy(DEFAULT)
    other["Statement"][0]["Action"] = "kms:Describe*"
    a, b = parse_policy(copy.deepcopy(DEFAULT)), parse_policy(other)
    assert a is not b and b.statements[0].actions == ("kms:Describe*",)
    # True and 1 are different policy values, and so are their parses.
    c = parse_policy({**DEFAULT, "Statement": [{**DEFAULT["Statement"][0], "Condition": {"Bool": {"aws:x": True}}}]})
    d = parse_policy({**DEFAULT, "Statement": [{**DEFAULT["Statement"][0], "Condition": {"Bool": {"aws:x": 1}}}]})
    assert c is not d


def test_errors_are_raised_every_time() -> None:
    bad = {"Version": "2012-10-17", "Statement": "nope"}
    for _ in range(2):
        with pytest.raises(PolicyInputError, match="Statement must be"):
            parse_policy(bad)


def test_a_value_json_cannot_hold_is_still_parsed_or_refused_plainly() -> None:
    with pytest.raises(PolicyInputError):
        parse_policy({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": {1, 2}}]})


def test_the_memory_of_parsed_policies_is_bounded() -> None:
    for i in range(model.PARSED_POLICIES + 50):
        parse_policy({**DEFAULT, "Id": f"policy-{i}"})
    assert len(model._parsed) <= model.PARSED_POLICIES
