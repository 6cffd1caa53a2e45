"""Scenario files: the JSON Schema (package data) and the checks it cannot express, each error naming its path."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kms_rescue.lab import ScenarioError, load_scenario, schema
from kms_rescue.lab.scenario import HistorySpec

BASE: dict[str, Any] = {
    "account": "111122223333",
    "region": "us-east-1",
    "identities": [
        {"profile": "app", "role": "App", "policies": [{"Version": "2012-10-17", "Statement": []}]},
        {"profile": "alice", "user": "alice", "policies": []},
        {"profile": "root", "root": True},
    ],
    "roles": [{"name": "KeyAdmin", "policies": []}],
    "users": [],
    "deleted": ["role/KeyAdmin"],
    "keys": [{"id": "00000001-1111-2222-3333-444455556666", "alias": "alias/payments", "policy": {
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyAdmin"}, "Action": "kms:*",
             "Resource": "*"}]}}],
    "history": [{"event": "CreateKey", "key": "00000001-1111-2222-3333-444455556666",
                 "principal": "arn:aws:sts::111122223333:assumed-role/KeyAdmin/terraform",
                 "time": "2026-11-01T09:00:00Z", "policy": {"Version": "2012-10-17", "Statement": []}}],
}


def test_the_issue_example_loads() -> None:
    sc = load_scenario(BASE)
    assert [i.profile for i in sc.identities] == ["app", "alice", "root"]
    assert sc.identities[0].caller_arn == "arn:aws:sts::111122223333:assumed-role/App/app"
    assert sc.deleted[0].arn == "arn:aws:iam::111122223333:role/KeyAdmin"


def test_schema_is_valid_package_data() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    from importlib import resources

    assert resources.files("kms_rescue.lab").joinpath("scenario.schema.json").is_file()


def mutate(path: str, value: Any) -> dict[str, Any]:
    """A copy of BASE with ``value`` at ``path`` (dotted, with [n] indexes); a value of ... deletes."""
    doc = copy.deepcopy(BASE)
    parts: list[str | int] = []
    for part in path.replace("]", "").replace("[", ".").split("."):
        parts.append(int(part) if part.isdigit() else part)
    target: Any = doc
    for part in parts[:-1]:
        target = target[part]
    if value is ...:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value
    return doc


BAD = [
    # (where to change, value, the one-line message after "<scenario>: ")
    ("identities[2].polcies", [], "$.identities[2].polcies: unknown field"),
    ("keys[0].aliases", "alias/x", "$.keys[0].aliases: unknown field"),
    ("account", "1234", '$.account: "1234" does not match ^[0-9]{12}$'),
    ("region", ..., "$.region: required field is missing"),
    ("keys[0].state", "Deleted", '$.keys[0].state: "Deleted" is not one of "Enabled", "Disabled", "PendingDeletion"'),
    ("identities[2].root", False, "$.identities[2].root: must be true"),
    ("keys[0].alias", "alias/aws/s3", "$.keys[0].alias: must be an alias name (alias/NAME, not alias/aws/...) or a "
                                      "list of them"),
    ("identities[0].user", "bob", "$.identities[0]: an identity is exactly one of role, user or root (got role and "
                                  "user)"),
    ("identities[1].profile", "app", "$.identities[1].profile: 'app' is used by another identity"),
    ("identities[2].policies", [], "$.identities[2].policies: the root user has no policies"),
    ("deleted", ["role/App"], "$.deleted[0]: role/App has a profile in $.identities; a deleted principal has no "
                              "credentials"),
    ("history[0].key", "00000009-1111-2222-3333-444455556666",
     "$.history[0].key: CreateKey needs the id of a key in $.keys (got '00000009-1111-2222-3333-444455556666')"),
    ("history[0].time", "yesterday", '$.history[0].time: "yesterday" does not match'),
    ("keys[0].policy.Statement[0].Principal.AWS", "arn:aws:iam::111122223333:role/Typo",
     "$.keys[0].policy: names arn:aws:iam::111122223333:role/Typo, which the scenario does not create"),
    ("keys[0].policy.Statement[0].Effect", "Maybe", "$.keys[0].policy: "),
    ("identities[0].attach", ["Missing"], "$.identities[0].attach[0]: no managed policy 'Missing' in "
                                          "$.managed_policies"),
    # Regions: a name that is not an AWS Region (botocore's partition data, aws partition) is an error.
    ("keys[0].region", "us-east-9", '$.keys[0].region: "us-east-9" is not an AWS Region (did you mean us-east-2?)'),
    ("keys[0].region", "Ireland", '$.keys[0].region: "Ireland" does not match'),
    ("region", "us-gov-west-1", '$.region: "us-gov-west-1" is not an AWS Region'),  # another partition
    ("enabled_regions", ["eu-west-1"], "$.enabled_regions: must include us-east-1, the Region of $.region"),
    ("enabled_regions", ["us-east-1", "eu-west-9"], '$.enabled_regions[1]: "eu-west-9" is not an AWS Region'),
    ("enabled_regions", ["us-east-1", "us-east-1"], "$.enabled_regions: "),
    ("enabled_regions", [], "$.enabled_regions: "),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_scenarios_name_the_path(path: str, value: Any, message: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        load_scenario(mutate(path, value))
    text = str(exc.value)
    assert "\n" not in text
    assert text.startswith(f"<scenario>: {message}")


def test_files_and_names(tmp_path: Path) -> None:
    good = tmp_path / "My Scenario.json"
    good.write_text(json.dumps(BASE))
    assert load_scenario(good).name == "my-scenario"
    assert load_scenario(str(good)).source == str(good)
    broken = tmp_path / "broken.json"
    broken.write_text('{"account": "111122223333",\n  "region": }')
    with pytest.raises(ScenarioError, match=r"broken.json:2:13: invalid JSON"):
        load_scenario(broken)
    with pytest.raises(ScenarioError, match="not a file, nor a built-in scenario"):
        load_scenario("no-such-scenario")


def test_relative_and_absolute_history_times() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
    assert HistorySpec("CreateKey", "p", "-3d").resolve_time(now) == datetime(2026, 11, 19, 12, 0, tzinfo=timezone.utc)
    assert HistorySpec("CreateKey", "p", "-90m").resolve_time(now) == datetime(2026, 11, 22, 10, 30,
                                                                               tzinfo=timezone.utc)
    assert HistorySpec("CreateKey", "p", "2026-11-01T09:00:00Z").resolve_time(now) == datetime(
        2026, 11, 1, 9, 0, tzinfo=timezone.utc)


def test_key_regions_and_aliases_per_region() -> None:
    doc = copy.deepcopy(BASE)
    second = {"id": "00000002-1111-2222-3333-444455556666", "region": "eu-west-1", "alias": "alias/payments"}
    doc["keys"].append(second)  # the same alias name in another Region: allowed (KMS API reference, CreateAlias)
    sc = load_scenario(doc)
    assert [(k.region, k.aliases) for k in sc.keys] == [("us-east-1", ("alias/payments",)),
                                                        ("eu-west-1", ("alias/payments",))]
    assert sc.regions == ("us-east-1", "eu-west-1")
    doc["enabled_regions"] = ["eu-west-1", "ap-east-1", "us-east-1"]
    assert load_scenario(doc).regions == ("us-east-1", "eu-west-1", "ap-east-1")
    second["region"] = "us-east-1"  # the same alias name twice in one Region: refused
    with pytest.raises(ScenarioError, match=r"\$\.keys\[1\]\.alias: alias/payments points to another key in "
                                            r"us-east-1 already"):
        load_scenario(doc)
    second["region"] = "ap-east-1"
    doc["enabled_regions"] = ["us-east-1", "eu-west-1"]
    with pytest.raises(ScenarioError, match=r"must include ap-east-1, the Region of \$\.keys\[1\]\.region"):
        load_scenario(doc)

