"""Drift names resource, field, desired and actual, and is empty for values equal by meaning."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from trailkeeper.api.common import DriftEntry
from trailkeeper.api.trail import MANAGED_TAGS_KEY, TrailSpec
from trailkeeper.core.bucket_policy import desired_bucket_statements
from trailkeeper.core.drift import (
    FieldDiff,
    Fix,
    diff_lifecycle_rule,
    diff_statements,
    diff_trail,
    diff_values,
    kms_key_matches,
    render,
    to_drift_entries,
)
from trailkeeper.core.merge import merge_statements
from trailkeeper.core.naming import OWNER_TAG, PURPOSE_ORGANIZATION_WRITE, statement_sid
from trailkeeper.core.observed_trail import ObservedTrail
from trailkeeper.core.tags import desired_tags, managed_record
from trailkeeper.core.trail_settings import DesiredTrail, desired_trails

OWNER = "security/audit"
GROUP = "arn:aws:logs:us-east-1:123456789012:log-group:ct"
ROLE = "arn:aws:iam::123456789012:role/ct-to-logs"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-1:123456789012:key/{KEY_ID}"


def desired(**fields: Any) -> DesiredTrail:
    spec = TrailSpec.model_validate(
        {
            "regions": ["us-east-1"],
            "destination": {"bucket": "acme-audit", "keyPrefix": "ct", "kmsKeyId": KEY_ID},
            "notifications": {"topicName": "deliveries"},
            "cloudWatchLogs": {"logGroupArn": GROUP, "roleArn": ROLE},
            "insights": ["ApiCallRateInsight"],
            "tags": {"team": "sec"},
            **fields,
        }
    )
    (trail,) = desired_trails(spec, name="audit", owner=OWNER)
    return trail


def observed() -> ObservedTrail:
    """The desired trail as AWS hands it back: other spellings, same meaning."""
    return ObservedTrail(
        name="audit",
        arn="arn:aws:cloudtrail:us-east-1:123456789012:trail/audit",
        region="us-east-1",
        home_region="us-east-1",
        is_shadow=False,
        s3_bucket="acme-audit",
        s3_key_prefix="ct",
        sns_topic_name="deliveries",
        sns_topic_arn="arn:aws:sns:us-east-1:123456789012:deliveries",
        include_global_service_events=True,
        is_multi_region=False,
        is_organization_trail=False,
        log_file_validation=True,
        kms_key_id=KEY_ARN,
        cloud_watch_logs_log_group_arn=GROUP + ":*",
        cloud_watch_logs_role_arn=ROLE,
        is_logging=True,
        latest_delivery_error=None,
        event_selectors=[{"IncludeManagementEvents": True, "ReadWriteType": "All"}],
        advanced_event_selectors=None,
        insight_selectors=[{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiCallRateInsight"}],
        tags={**desired_tags({"team": "sec"}, OWNER), "added-by-someone-else": "x"},
    )


def test_an_equal_trail_has_no_drift() -> None:
    assert diff_trail(desired(), observed()) == []


@pytest.mark.parametrize(
    ("change", "field", "want", "have", "fix"),
    [
        ({"is_logging": False}, "IsLogging", "true", "false", Fix.SET_LOGGING),
        ({"s3_bucket": "elsewhere"}, "S3BucketName", "acme-audit", "elsewhere", Fix.UPDATE_TRAIL),
        ({"s3_key_prefix": None}, "S3KeyPrefix", "ct", "(none)", Fix.UPDATE_TRAIL),
        (
            {"sns_topic_name": None, "sns_topic_arn": None},
            "SnsTopicName",
            "deliveries",
            "(none)",
            Fix.UPDATE_TRAIL,
        ),
        (
            {"include_global_service_events": False},
            "IncludeGlobalServiceEvents",
            "true",
            "false",
            Fix.UPDATE_TRAIL,
        ),
        ({"is_multi_region": True}, "IsMultiRegionTrail", "false", "true", Fix.UPDATE_TRAIL),
        ({"log_file_validation": False}, "LogFileValidationEnabled", "true", "false", Fix.UPDATE_TRAIL),
        ({"kms_key_id": None}, "KmsKeyId", KEY_ID, "(none)", Fix.UPDATE_TRAIL),
        (
            {"cloud_watch_logs_log_group_arn": GROUP + "2:*"},
            "CloudWatchLogsLogGroupArn",
            GROUP,
            GROUP + "2",
            Fix.UPDATE_TRAIL,
        ),
        ({"cloud_watch_logs_role_arn": None}, "CloudWatchLogsRoleArn", ROLE, "(none)", Fix.UPDATE_TRAIL),
        (
            {"insight_selectors": []},
            "InsightSelectors",
            '[{"InsightType":"ApiCallRateInsight"}]',
            "(none)",
            Fix.PUT_INSIGHT_SELECTORS,
        ),
        (
            {"tags": {OWNER_TAG: OWNER, MANAGED_TAGS_KEY: managed_record(["team"])}},
            "Tags[team]",
            "sec",
            "(none)",
            Fix.SET_TAGS,
        ),
        ({"tags": desired_tags({"team": "ops"}, OWNER)}, "Tags[team]", "sec", "ops", Fix.SET_TAGS),
        (
            {"event_selectors": [{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}]},
            "EventSelectors",
            '[{"DataResources":[],"ExcludeManagementEventSources":[],"IncludeManagementEvents":true,'
            '"ReadWriteType":"All"}]',
            '[{"IncludeManagementEvents":true,"ReadWriteType":"ReadOnly"}]',
            Fix.PUT_EVENT_SELECTORS,
        ),
    ],
)
def test_each_changed_setting_is_one_named_diff_with_its_fix(
    change: dict[str, Any], field: str, want: str, have: str, fix: Fix
) -> None:
    actual = dataclasses.replace(observed(), **change)
    assert diff_trail(desired(), actual) == [FieldDiff("trail/us-east-1", field, want, have, fix)]


def test_the_resource_can_be_named_by_the_caller() -> None:
    actual = dataclasses.replace(observed(), is_logging=False)
    assert (
        diff_trail(desired(), actual, resource="trail/us-east-1/audit")[0].resource == "trail/us-east-1/audit"
    )


def test_a_basic_selector_replaced_by_advanced_selectors_is_drift_in_both_fields() -> None:
    advanced = [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]}]}]
    actual = dataclasses.replace(observed(), event_selectors=None, advanced_event_selectors=advanced)
    diffs = diff_trail(desired(), actual)
    assert [d.field for d in diffs] == ["EventSelectors", "AdvancedEventSelectors"]
    assert {d.fix for d in diffs} == {Fix.PUT_EVENT_SELECTORS}


def test_advanced_selectors_are_compared_as_sets() -> None:
    want = desired(
        advancedEventSelectors=[
            {
                "name": "a",
                "fieldSelectors": [
                    {"field": "eventCategory", "equals": ["Data"]},
                    {"field": "resources.type", "equals": ["AWS::S3::Object", "AWS::Lambda::Function"]},
                ],
            },
            {"name": "b", "fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]},
        ]
    )
    advanced = [
        {"Name": "b", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
        {
            "Name": "a",
            "FieldSelectors": [
                {
                    "Field": "resources.type",
                    "Equals": ["AWS::Lambda::Function", "AWS::S3::Object"],
                    "NotEquals": [],
                },
                {"Field": "eventCategory", "Equals": ["Data"]},
            ],
        },
    ]
    actual = dataclasses.replace(observed(), event_selectors=None, advanced_event_selectors=advanced)
    assert diff_trail(want, actual) == []


def test_an_alias_is_not_taken_for_a_key_but_its_resolved_arn_is() -> None:
    want = desired(destination={"bucket": "acme-audit", "keyPrefix": "ct", "kmsKeyId": "alias/ct"})
    assert [d.field for d in diff_trail(want, observed())] == ["KmsKeyId"]
    assert diff_trail(dataclasses.replace(want, kms_key_id=KEY_ARN), observed()) == []


@pytest.mark.parametrize(
    ("want", "have", "match"),
    [
        (KEY_ID, KEY_ARN, True),
        (KEY_ARN, KEY_ARN, True),
        (None, None, True),
        (None, "", True),
        (KEY_ID, None, False),
        (None, KEY_ARN, False),
        ("alias/ct", KEY_ARN, False),
        ("other-key", KEY_ARN, False),
    ],
)
def test_kms_key_matches(want: str | None, have: str | None, match: bool) -> None:
    assert kms_key_matches(want, have) is match


@pytest.mark.parametrize(
    ("desired_value", "actual_value"),
    [
        (None, []),
        ([], None),
        ({}, None),
        ("", None),
        (["a", "b"], ["b", "a", "a"]),
        ({"A": [], "B": 1}, {"B": 1}),
        ([{"Type": "t", "Values": ["x", "y"]}], [{"Values": ["y", "x"], "Type": "t"}]),
    ],
)
def test_values_equal_by_meaning_give_no_diff(desired_value: Any, actual_value: Any) -> None:
    assert diff_values("r", "f", desired_value, actual_value, Fix.UPDATE_TRAIL) == []


@pytest.mark.parametrize(
    ("desired_value", "actual_value"),
    [(True, 1), (True, "true"), (False, None), (0, None), (["a"], ["a", "b"]), ({"A": False}, {"A": None})],
)
def test_values_with_another_meaning_give_a_diff(desired_value: Any, actual_value: Any) -> None:
    assert diff_values("r", "f", desired_value, actual_value, Fix.UPDATE_TRAIL) == [
        FieldDiff("r", "f", render(desired_value), render(actual_value), Fix.UPDATE_TRAIL)
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "(none)"),
        ("", "(none)"),
        ([], "(none)"),
        ({}, "(none)"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (30, "30"),
        ("ct", "ct"),
        ({"b": 1, "a": [2, 1]}, '{"a":[1,2],"b":1}'),
        ([{"k": "b"}, {"k": "a"}], '[{"k":"a"},{"k":"b"}]'),
    ],
)
def test_render(value: Any, text: str) -> None:
    assert render(value) == text


# Policy statements and lifecycle rules ---------------------------------------------------------------


def ours(**overrides: Any) -> list[dict[str, Any]]:
    arguments: dict[str, Any] = {
        "owner": OWNER,
        "bucket": "acme-audit",
        "key_prefix": "",
        "account_id": "123456789012",
        "trail_arns": ["arn:aws:cloudtrail:us-east-1:123456789012:trail/audit"],
        # The owner's own statements (the shared ones are diffed entry by entry: test_bucket_share).
        "source_accounts": ["210987654321"],
        "organization_id": None,
        **overrides,
    }
    return desired_bucket_statements(**arguments)


FOREIGN = {"Sid": "Other", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}


def test_statements_present_by_meaning_have_no_drift() -> None:
    actual = copy.deepcopy(merge_statements({"Statement": [FOREIGN]}, OWNER, ours()))
    assert actual is not None
    for statement in actual["Statement"]:  # as AWS may return them: lists unwrapped, reordered
        if isinstance(statement.get("Resource"), list):
            statement["Resource"] = list(reversed(statement["Resource"]))
        for block in statement.get("Condition", {}).values():
            for key, values in block.items():
                if isinstance(values, list) and len(values) == 1:
                    block[key] = values[0]
    actual["Statement"].reverse()
    assert diff_statements("bucket/acme-audit", ours(), actual) == []


def test_a_missing_statement_is_named_by_sid() -> None:
    desired_statements = ours()
    actual = {"Statement": [FOREIGN, *desired_statements[1:]]}
    sid = desired_statements[0]["Sid"]
    assert diff_statements("bucket/acme-audit", desired_statements, actual) == [
        FieldDiff(
            "bucket/acme-audit",
            f"Statement[{sid}]",
            render(desired_statements[0]),
            "(none)",
            Fix.PUT_STATEMENTS,
        )
    ]


def test_a_changed_statement_shows_both_versions() -> None:
    desired_statements = ours()
    changed = {**desired_statements[1], "Resource": "arn:aws:s3:::acme-audit/*"}
    actual = {"Statement": [desired_statements[0], changed, *desired_statements[2:]]}
    (diff,) = diff_statements("bucket/acme-audit", desired_statements, actual)
    assert diff.field == f"Statement[{changed['Sid']}]"
    assert (diff.desired, diff.actual) == (render(desired_statements[1]), render(changed))


def test_no_policy_at_all_is_every_statement_missing() -> None:
    assert len(diff_statements("bucket/acme-audit", ours(), None)) == len(ours())


def test_a_left_over_statement_of_the_owner_is_drift_when_the_owner_is_given() -> None:
    stale = merge_statements(None, OWNER, ours(organization_id="o-abcdefghij"))
    assert diff_statements("bucket/acme-audit", ours(), stale) == []
    sid = statement_sid(OWNER, PURPOSE_ORGANIZATION_WRITE)
    (diff,) = diff_statements("bucket/acme-audit", ours(), stale, owner=OWNER)
    assert (diff.field, diff.desired) == (f"Statement[{sid}]", "(none)")


RULE = {
    "ID": "trailkeeper-security-r",
    "Status": "Enabled",
    "Filter": {"Prefix": "AWSLogs/"},
    "Expiration": {"Days": 30},
}
OTHER_RULE = {"ID": "foreign", "Status": "Enabled", "Prefix": "", "Expiration": {"Days": 1}}


def test_an_equal_lifecycle_rule_has_no_drift() -> None:
    legacy = {
        "Expiration": {"Days": 30},
        "ID": "trailkeeper-security-r",
        "Prefix": "AWSLogs/",
        "Status": "Enabled",
    }
    assert diff_lifecycle_rule("bucket/acme-audit", RULE, [OTHER_RULE, legacy]) == []


@pytest.mark.parametrize(
    ("actual_rules", "actual_text"),
    [
        (None, "(none)"),
        ([OTHER_RULE], "(none)"),
        ([OTHER_RULE, {**RULE, "Expiration": {"Days": 60}}], render({**RULE, "Expiration": {"Days": 60}})),
    ],
    ids=["no-configuration", "rule-missing", "rule-changed"],
)
def test_a_missing_or_changed_lifecycle_rule_is_drift(
    actual_rules: list[dict[str, Any]] | None, actual_text: str
) -> None:
    assert diff_lifecycle_rule("bucket/acme-audit", RULE, actual_rules) == [
        FieldDiff(
            "bucket/acme-audit",
            "LifecycleRule[trailkeeper-security-r]",
            render(RULE),
            actual_text,
            Fix.PUT_LIFECYCLE_RULE,
        )
    ]


def test_drift_entries_have_the_status_shape() -> None:
    diffs = [FieldDiff("trail/eu-west-1", "IsLogging", "true", "false", Fix.SET_LOGGING)]
    entries = to_drift_entries(diffs, detected_at="2024-06-01T00:00:00Z", corrected=True)
    assert entries == [
        {
            "resource": "trail/eu-west-1",
            "field": "IsLogging",
            "desired": "true",
            "actual": "false",
            "detectedAt": "2024-06-01T00:00:00Z",
            "corrected": True,
        }
    ]
    # The status model accepts them as they are.
    assert DriftEntry.model_validate(entries[0]).detected_at == "2024-06-01T00:00:00Z"
