"""A Trail spec becomes one trail per region (or one multi-region trail) in boto3's parameter shapes."""

from __future__ import annotations

from typing import Any

import pytest

from trailkeeper.api.trail import MANAGED_TAGS_KEY, TrailSpec
from trailkeeper.core.naming import OWNER_TAG
from trailkeeper.core.tags import desired_tags, managed_record
from trailkeeper.core.trail_settings import (
    DEFAULT_EVENT_SELECTORS,
    DesiredTrail,
    desired_trails,
    partition_for_region,
    topic_arn,
    trail_arn,
    trails_by_bucket,
)

OWNER = "security/audit"


def trail_spec(**fields: Any) -> TrailSpec:
    return TrailSpec.model_validate(
        {"regions": ["us-east-1"], "destination": {"bucket": "acme-audit"}, **fields}
    )


def trails(**fields: Any) -> list[DesiredTrail]:
    return desired_trails(trail_spec(**fields), name="audit", owner=OWNER)


def test_a_single_region_trail() -> None:
    (trail,) = trails()
    assert trail == DesiredTrail(
        region="us-east-1",
        name="audit",
        bucket="acme-audit",
        key_prefix=None,
        include_global_service_events=True,
        is_multi_region=False,
        log_file_validation=True,
        kms_key_id=None,
        sns_topic_name=None,
        cloud_watch_logs_log_group_arn=None,
        cloud_watch_logs_role_arn=None,
        logging=True,
        event_selectors=[
            {
                "ReadWriteType": "All",
                "IncludeManagementEvents": True,
                "DataResources": [],
                "ExcludeManagementEventSources": [],
            }
        ],
        advanced_event_selectors=None,
        insight_selectors=[],
        tags=desired_tags({}, OWNER),
    )


def test_a_multi_region_trail_is_one_trail_in_the_home_region_with_global_events() -> None:
    (trail,) = trails(multiRegion=True, regions=["eu-central-1"])
    assert (trail.region, trail.is_multi_region, trail.include_global_service_events) == (
        "eu-central-1",
        True,
        True,
    )


def test_two_regions_record_global_events_only_in_the_chosen_region() -> None:
    result = trails(regions=["us-east-1", "eu-west-1"], globalServiceEventsRegion="eu-west-1")
    assert [(t.region, t.include_global_service_events, t.is_multi_region) for t in result] == [
        ("us-east-1", False, False),
        ("eu-west-1", True, False),
    ]
    assert {t.name for t in result} == {"audit"}


def test_global_events_default_to_the_first_region() -> None:
    result = trails(regions=["eu-west-1", "us-east-1"])
    assert [t.include_global_service_events for t in result] == [True, False]


def test_a_bucket_template_gives_each_region_its_bucket() -> None:
    result = trails(
        regions=["us-east-1", "eu-west-1"], destination={"bucket": "acme-{region}", "keyPrefix": "ct"}
    )
    assert [(t.bucket, t.key_prefix) for t in result] == [("acme-us-east-1", "ct"), ("acme-eu-west-1", "ct")]
    assert list(trails_by_bucket(result)) == ["acme-us-east-1", "acme-eu-west-1"]


def test_a_shared_bucket_groups_every_trail() -> None:
    result = trails(regions=["us-east-1", "eu-west-1"])
    assert trails_by_bucket(result) == {"acme-audit": result}


def test_the_trail_name_comes_from_the_spec_when_given() -> None:
    assert [t.name for t in trails(trailName="org-audit")] == ["org-audit"]


def test_basic_event_selectors_in_boto3_shape() -> None:
    (trail,) = trails(
        eventSelectors=[
            {
                "readWriteType": "WriteOnly",
                "includeManagementEvents": False,
                "excludeManagementEventSources": ["kms.amazonaws.com"],
                "dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3"]}],
            }
        ]
    )
    assert trail.advanced_event_selectors is None
    assert trail.event_selectors == [
        {
            "ReadWriteType": "WriteOnly",
            "IncludeManagementEvents": False,
            "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}],
            "ExcludeManagementEventSources": ["kms.amazonaws.com"],
        }
    ]
    assert trail.event_selector_parameters() == {"EventSelectors": trail.event_selectors}


def test_advanced_event_selectors_in_boto3_shape() -> None:
    (trail,) = trails(
        advancedEventSelectors=[
            {
                "name": "S3 writes",
                "fieldSelectors": [
                    {"field": "eventCategory", "equals": ["Data"]},
                    {"field": "resources.type", "equals": ["AWS::S3::Object"]},
                    {"field": "readOnly", "equals": ["false"], "notStartsWith": []},
                    {"field": "resources.ARN", "startsWith": ["arn:aws:s3:::a/"], "notEndsWith": [".tmp"]},
                ],
            },
            {"fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]},
        ]
    )
    assert trail.event_selectors is None
    assert trail.advanced_event_selectors == [
        {
            "Name": "S3 writes",
            "FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Data"]},
                {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                {"Field": "readOnly", "Equals": ["false"]},
                {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::a/"], "NotEndsWith": [".tmp"]},
            ],
        },
        {"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
    ]
    assert trail.event_selector_parameters() == {"AdvancedEventSelectors": trail.advanced_event_selectors}


def test_without_selectors_the_aws_default_basic_selector_is_stated() -> None:
    (trail,) = trails()
    assert trail.event_selectors == list(DEFAULT_EVENT_SELECTORS)
    assert trail.event_selector_parameters() == {"EventSelectors": list(DEFAULT_EVENT_SELECTORS)}


def test_trails_do_not_share_mutable_selectors() -> None:
    first, second = trails(regions=["us-east-1", "eu-west-1"])
    assert first.event_selectors is not None and second.event_selectors is not None
    first.event_selectors[0]["DataResources"].append({"Type": "x", "Values": []})
    assert second.event_selectors[0]["DataResources"] == []
    assert DEFAULT_EVENT_SELECTORS[0]["DataResources"] == []


def test_insights_in_boto3_shape() -> None:
    (trail,) = trails(insights=["ApiCallRateInsight", "ApiErrorRateInsight"])
    assert trail.insight_selectors == [
        {"InsightType": "ApiCallRateInsight"},
        {"InsightType": "ApiErrorRateInsight"},
    ]


def test_cloudwatch_logs_kms_sns_and_logging() -> None:
    group = "arn:aws:logs:us-east-1:123456789012:log-group:ct:*"
    role = "arn:aws:iam::123456789012:role/ct-to-logs"
    (trail,) = trails(
        cloudWatchLogs={"logGroupArn": group, "roleArn": role},
        destination={"bucket": "acme-audit", "kmsKeyId": "alias/ct"},
        notifications={"topicName": "deliveries"},
        logging=False,
        logFileValidation=False,
    )
    assert (trail.cloud_watch_logs_log_group_arn, trail.cloud_watch_logs_role_arn) == (group, role)
    assert (trail.kms_key_id, trail.sns_topic_name) == ("alias/ct", "deliveries")
    assert (trail.logging, trail.log_file_validation) == (False, False)


def test_tags_are_the_specs_plus_the_owner_tag_and_the_record_of_the_specs_keys() -> None:
    (trail,) = trails(tags={"team": "sec", "cost": "audit"})
    record = managed_record(["team", "cost"])
    assert trail.tags == {"team": "sec", "cost": "audit", OWNER_TAG: OWNER, MANAGED_TAGS_KEY: record}
    assert trail.tags_list() == [
        {"Key": "cost", "Value": "audit"},
        {"Key": "team", "Value": "sec"},
        {"Key": OWNER_TAG, "Value": OWNER},
        {"Key": MANAGED_TAGS_KEY, "Value": record},
    ]


def test_create_trail_parameters_leave_unset_settings_out() -> None:
    (trail,) = trails()
    assert trail.create_trail_parameters() == {
        "Name": "audit",
        "S3BucketName": "acme-audit",
        "IncludeGlobalServiceEvents": True,
        "IsMultiRegionTrail": False,
        "EnableLogFileValidation": True,
        "TagsList": [
            {"Key": OWNER_TAG, "Value": OWNER},
            {"Key": MANAGED_TAGS_KEY, "Value": managed_record([])},
        ],
    }


def test_update_trail_parameters_clear_unset_settings() -> None:
    (trail,) = trails(destination={"bucket": "acme-audit", "keyPrefix": "ct"})
    assert trail.update_trail_parameters() == {
        "Name": "audit",
        "S3BucketName": "acme-audit",
        "S3KeyPrefix": "ct",
        "SnsTopicName": "",
        "IncludeGlobalServiceEvents": True,
        "IsMultiRegionTrail": False,
        "EnableLogFileValidation": True,
        "CloudWatchLogsLogGroupArn": "",
        "CloudWatchLogsRoleArn": "",
        "KmsKeyId": "",
    }


def test_arns() -> None:
    assert trail_arn("aws", "us-east-1", "123456789012", "audit") == (
        "arn:aws:cloudtrail:us-east-1:123456789012:trail/audit"
    )
    assert topic_arn("aws", "eu-west-1", "123456789012", "t") == "arn:aws:sns:eu-west-1:123456789012:t"
    (trail,) = trails()
    assert trail.arn("aws", "123456789012") == "arn:aws:cloudtrail:us-east-1:123456789012:trail/audit"


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("us-east-1", "aws"),
        ("eu-west-3", "aws"),
        ("cn-north-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-iso-east-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
    ],
)
def test_partition_for_region(region: str, partition: str) -> None:
    assert partition_for_region(region) == partition
