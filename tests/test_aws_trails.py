"""TrailClient against moto over HTTP, and against botocore's Stubber for what moto never answers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from support.operations import mutating, record_operations
from trailkeeper.api.trail import OWNER_TAG_KEY
from trailkeeper.aws.errors import classify
from trailkeeper.aws.session import AwsSessions
from trailkeeper.aws.trails import (
    DEFAULT_EVENT_SELECTORS,
    ShadowTrailError,
    TrailClient,
    TrailNameTakenError,
)
from trailkeeper.core.trail_settings import DesiredTrail

ACCOUNT = "123456789012"
HOME = "us-east-1"
OTHER = "eu-west-1"
BUCKET = "trailkeeper-test-logs"
TOPIC = "trail-deliveries"
OWNER = {"trailkeeper.io/owner": "security/audit"}
LOG_GROUP = f"arn:aws:logs:{HOME}:{ACCOUNT}:log-group:audit:*"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/cloudtrail-logs"
CALL_RATE = {"InsightType": "ApiCallRateInsight"}
ERROR_RATE = {"InsightType": "ApiErrorRateInsight"}


def desired_trail(**changes: Any) -> DesiredTrail:
    trail = DesiredTrail(
        region=HOME,
        name="audit",
        bucket=BUCKET,
        key_prefix=None,
        include_global_service_events=True,
        is_multi_region=False,
        log_file_validation=True,
        kms_key_id=None,
        sns_topic_name=None,
        cloud_watch_logs_log_group_arn=None,
        cloud_watch_logs_role_arn=None,
        logging=True,
        event_selectors=None,
        advanced_event_selectors=None,
        insight_selectors=[],
        tags=dict(OWNER),
    )
    return dataclasses.replace(trail, **changes)


@pytest.fixture
def aws_with_bucket(aws: AwsSessions) -> AwsSessions:
    aws.client("s3", HOME).create_bucket(Bucket=BUCKET)
    return aws


@pytest.fixture
def trails(aws_with_bucket: AwsSessions) -> TrailClient:
    return TrailClient(aws_with_bucket.client("cloudtrail", HOME), HOME, ACCOUNT)


@pytest.fixture
def elsewhere(aws_with_bucket: AwsSessions) -> TrailClient:
    return TrailClient(aws_with_bucket.client("cloudtrail", OTHER), OTHER, ACCOUNT)


# -- create / observe ---------------------------------------------------------------------------------


def test_create_returns_the_arn_and_observe_shows_every_desired_setting(aws_with_bucket: AwsSessions) -> None:
    aws_with_bucket.client("sns", HOME).create_topic(Name=TOPIC)
    trails = TrailClient(aws_with_bucket.client("cloudtrail", HOME), HOME, ACCOUNT)
    desired = desired_trail(
        key_prefix="org",
        sns_topic_name=TOPIC,
        kms_key_id="alias/trail-logs",
        cloud_watch_logs_log_group_arn=LOG_GROUP,
        cloud_watch_logs_role_arn=ROLE,
        include_global_service_events=False,
        log_file_validation=True,
        tags={**OWNER, "team": "security"},
    )

    arn = trails.create(desired)
    observed = trails.observe("audit")

    assert arn == f"arn:aws:cloudtrail:{HOME}:{ACCOUNT}:trail/audit"
    assert observed is not None
    assert (observed.name, observed.arn, observed.region, observed.home_region) == ("audit", arn, HOME, HOME)
    assert not observed.is_shadow
    assert observed.s3_bucket == BUCKET
    assert observed.s3_key_prefix == "org"
    assert observed.sns_topic_name == TOPIC
    assert observed.sns_topic_arn == f"arn:aws:sns:{HOME}:{ACCOUNT}:{TOPIC}"
    assert observed.kms_key_id == "alias/trail-logs"
    assert observed.cloud_watch_logs_log_group_arn == LOG_GROUP
    assert observed.cloud_watch_logs_role_arn == ROLE
    assert observed.include_global_service_events is False
    assert observed.is_multi_region is False
    assert observed.log_file_validation is True
    assert observed.is_organization_trail is False
    assert observed.tags == {**OWNER, "team": "security"}
    # A trail made through the API does not log until StartLogging.
    assert observed.is_logging is False
    assert observed.latest_delivery_error is None
    assert observed.insight_selectors == []


def test_create_twice_leaves_the_existing_trail_alone(trails: TrailClient) -> None:
    first = trails.create(desired_trail(key_prefix="first"))
    operations = record_operations(trails.client)

    second = trails.create(desired_trail(key_prefix="second"))

    assert second == first
    assert mutating(operations) == []
    observed = trails.observe("audit")
    assert observed is not None and observed.s3_key_prefix == "first"


def test_observe_makes_no_mutating_call(trails: TrailClient) -> None:
    trails.create(desired_trail(insight_selectors=[CALL_RATE]))
    trails.put_insight_selectors("audit", [CALL_RATE])
    trails.set_logging("audit", True)
    operations = record_operations(trails.client)

    observed = trails.observe("audit")

    assert observed is not None and observed.is_logging
    assert mutating(operations) == []
    assert sorted(set(operations)) == [
        "DescribeTrails",
        "GetEventSelectors",
        "GetInsightSelectors",
        "GetTrailStatus",
        "ListTags",
    ]


def test_observe_of_a_missing_trail_is_none(trails: TrailClient) -> None:
    assert trails.observe("absent") is None


def test_observe_reuses_a_given_describe_trails_result(trails: TrailClient) -> None:
    trails.create(desired_trail())
    trails.create(desired_trail(name="second"))
    described = trails.list_names()
    operations = record_operations(trails.client)

    first = trails.observe("audit", described=described)
    second = trails.observe("second", described=described)

    assert first is not None and second is not None
    assert "DescribeTrails" not in operations
    assert set(described) == {"audit", "second"}


# -- update -------------------------------------------------------------------------------------------


def test_update_settings_changes_and_clears_settings(aws_with_bucket: AwsSessions) -> None:
    aws_with_bucket.client("sns", HOME).create_topic(Name=TOPIC)
    aws_with_bucket.client("s3", HOME).create_bucket(Bucket="trailkeeper-other-logs")
    trails = TrailClient(aws_with_bucket.client("cloudtrail", HOME), HOME, ACCOUNT)
    trails.create(
        desired_trail(
            key_prefix="org",
            sns_topic_name=TOPIC,
            kms_key_id="alias/trail-logs",
            cloud_watch_logs_log_group_arn=LOG_GROUP,
            cloud_watch_logs_role_arn=ROLE,
        )
    )

    trails.update_settings(
        desired_trail(
            bucket="trailkeeper-other-logs", log_file_validation=False, include_global_service_events=False
        )
    )
    observed = trails.observe("audit")

    assert observed is not None
    assert observed.s3_bucket == "trailkeeper-other-logs"
    assert observed.log_file_validation is False
    assert observed.include_global_service_events is False
    assert (observed.s3_key_prefix, observed.sns_topic_name, observed.kms_key_id) == (None, None, None)
    assert (observed.cloud_watch_logs_log_group_arn, observed.cloud_watch_logs_role_arn) == (None, None)


def test_put_event_selectors_shows_only_the_kind_in_force(trails: TrailClient) -> None:
    trails.create(desired_trail())
    basic = [
        {
            "ReadWriteType": "WriteOnly",
            "IncludeManagementEvents": True,
            "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}],
            "ExcludeManagementEventSources": [],
        }
    ]
    advanced = [
        {"Name": "management", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}
    ]

    trails.put_event_selectors(desired_trail(advanced_event_selectors=advanced))
    after_advanced = trails.observe("audit")
    trails.put_event_selectors(desired_trail(event_selectors=basic))
    after_basic = trails.observe("audit")

    assert after_advanced is not None and after_basic is not None
    assert (after_advanced.event_selectors, after_advanced.advanced_event_selectors) == (None, advanced)
    assert (after_basic.event_selectors, after_basic.advanced_event_selectors) == (basic, None)


def test_put_event_selectors_without_selectors_puts_cloudtrails_default(trails: TrailClient) -> None:
    trails.create(desired_trail())

    trails.put_event_selectors(desired_trail(event_selectors=None, advanced_event_selectors=None))

    observed = trails.observe("audit")
    assert observed is not None
    assert observed.event_selectors == [dict(s) for s in DEFAULT_EVENT_SELECTORS]
    assert observed.advanced_event_selectors is None


# -- insight selectors --------------------------------------------------------------------------------


def test_put_insight_selectors_adds_types_and_observe_equals_desired(trails: TrailClient) -> None:
    trails.create(desired_trail())

    trails.put_insight_selectors("audit", [CALL_RATE])
    trails.put_insight_selectors("audit", [CALL_RATE])
    trails.put_insight_selectors("audit", [CALL_RATE, ERROR_RATE])

    observed = trails.observe("audit")
    assert observed is not None
    assert observed.insight_selectors == [CALL_RATE, ERROR_RATE]


def test_put_insight_selectors_with_the_current_set_makes_no_put(trails: TrailClient) -> None:
    trails.create(desired_trail())
    trails.put_insight_selectors("audit", [CALL_RATE, ERROR_RATE])
    operations = record_operations(trails.client)

    trails.put_insight_selectors("audit", [ERROR_RATE, CALL_RATE])

    assert mutating(operations) == []


def test_put_insight_selectors_replaces_the_set_so_a_type_can_be_removed(trails: TrailClient) -> None:
    trails.create(desired_trail())
    trails.put_insight_selectors("audit", [CALL_RATE, ERROR_RATE])

    trails.put_insight_selectors("audit", [ERROR_RATE])
    after_one = trails.observe("audit")
    trails.put_insight_selectors("audit", [])
    after_none = trails.observe("audit")

    assert after_one is not None and after_one.insight_selectors == [ERROR_RATE]
    assert after_none is not None and after_none.insight_selectors == []


# -- logging, tags, delete ----------------------------------------------------------------------------


def test_set_logging_starts_and_stops_logging(trails: TrailClient) -> None:
    trails.create(desired_trail())

    trails.set_logging("audit", True)
    started = trails.observe("audit")
    trails.set_logging("audit", False)
    stopped = trails.observe("audit")

    assert started is not None and started.is_logging
    assert stopped is not None and not stopped.is_logging


def test_set_tags_writes_only_the_differences(trails: TrailClient) -> None:
    arn = trails.create(desired_trail(tags={**OWNER, "team": "security", "old": "x"}))
    operations = record_operations(trails.client)

    trails.set_tags(arn, {**OWNER, "team": "security"}, {**OWNER, "team": "security"})
    assert operations == []

    trails.set_tags(arn, {**OWNER, "team": "audit", "new": "y"}, {**OWNER, "team": "security", "old": "x"})
    observed = trails.observe("audit")

    assert operations[:2] == ["AddTags", "RemoveTags"]
    assert observed is not None and observed.tags == {**OWNER, "team": "audit", "new": "y"}


def test_delete_removes_the_trail_by_name_and_a_missing_trail_is_success(trails: TrailClient) -> None:
    trails.create(desired_trail())

    trails.delete("audit")
    trails.delete("audit")

    assert trails.observe("audit") is None
    assert "audit" not in trails.list_names()


# -- shadow trails ------------------------------------------------------------------------------------


def test_a_multi_region_trail_is_a_shadow_in_another_region(
    trails: TrailClient, elsewhere: TrailClient
) -> None:
    arn = trails.create(desired_trail(is_multi_region=True))
    trails.set_logging("audit", True)

    shadow = elsewhere.observe("audit")

    assert shadow is not None
    assert shadow.is_shadow
    assert (shadow.arn, shadow.region, shadow.home_region) == (arn, OTHER, HOME)
    assert shadow.is_multi_region and shadow.is_logging
    # Tags and selectors are home-region reads: not attempted from a shadow's region.
    assert shadow.tags == {}
    assert shadow.event_selectors is None and shadow.insight_selectors == []


def test_a_shadow_trail_is_never_mutated_from_another_region(
    trails: TrailClient, elsewhere: TrailClient
) -> None:
    arn = trails.create(desired_trail(is_multi_region=True))
    here = desired_trail(region=OTHER, is_multi_region=True)
    operations = record_operations(elsewhere.client)

    with pytest.raises(ShadowTrailError) as refused:
        elsewhere.update_settings(here)
    with pytest.raises(ShadowTrailError):
        elsewhere.put_event_selectors(here)
    with pytest.raises(ShadowTrailError):
        elsewhere.put_insight_selectors("audit", [CALL_RATE])
    with pytest.raises(ShadowTrailError):
        elsewhere.set_logging("audit", False)
    with pytest.raises(ShadowTrailError):
        elsewhere.set_tags(arn, {"a": "b"}, {})
    with pytest.raises(ShadowTrailError):
        elsewhere.delete("audit")
    with pytest.raises(ShadowTrailError):
        elsewhere.create(here)

    assert mutating(operations) == []
    assert trails.observe("audit") is not None
    # Classified as AWS would answer the call: the reconciler reports it, never retries it.
    failure = classify(refused.value)
    assert (failure.code, failure.retryable) == ("InvalidHomeRegionException", False)


def test_update_from_the_wrong_region_client_is_refused(elsewhere: TrailClient) -> None:
    with pytest.raises(ValueError, match="belongs in us-east-1"):
        elsewhere.update_settings(desired_trail())


# -- what moto never answers: botocore Stubber --------------------------------------------------------


@pytest.fixture
def stubbed() -> Iterator[tuple[TrailClient, Stubber, list[float]]]:
    client = boto3.client(
        "cloudtrail", region_name=HOME, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    slept: list[float] = []
    with Stubber(client) as stubber:
        yield TrailClient(client, HOME, ACCOUNT, sleep=slept.append), stubber, slept
        stubber.assert_no_pending_responses()


def _create_response() -> dict[str, Any]:
    return {"Name": "audit", "TrailARN": f"arn:aws:cloudtrail:{HOME}:{ACCOUNT}:trail/audit"}


def test_create_retries_while_the_bucket_policy_propagates(
    stubbed: tuple[TrailClient, Stubber, list[float]],
) -> None:
    trails, stubber, slept = stubbed
    stubber.add_response("describe_trails", {"trailList": []})
    for _ in range(2):
        stubber.add_client_error("create_trail", "InsufficientS3BucketPolicyException", http_status_code=403)
    stubber.add_response("create_trail", _create_response())

    arn = trails.create(desired_trail())

    assert arn.endswith(":trail/audit")
    assert slept == [0.5, 1.0]


def test_update_gives_up_after_five_tries_while_the_topic_policy_is_insufficient(
    stubbed: tuple[TrailClient, Stubber, list[float]],
) -> None:
    trails, stubber, slept = stubbed
    stubber.add_response("describe_trails", {"trailList": [{"Name": "audit", "HomeRegion": HOME}]})
    for _ in range(5):
        stubber.add_client_error("update_trail", "InsufficientSnsTopicPolicyException", http_status_code=403)

    with pytest.raises(ClientError) as raised:
        trails.update_settings(desired_trail(sns_topic_name=TOPIC))

    assert raised.value.response["Error"]["Code"] == "InsufficientSnsTopicPolicyException"
    assert slept == [0.5, 1.0, 2.0, 4.0]


def test_other_create_errors_are_not_retried(stubbed: tuple[TrailClient, Stubber, list[float]]) -> None:
    trails, stubber, slept = stubbed
    stubber.add_response("describe_trails", {"trailList": []})
    stubber.add_client_error("create_trail", "InvalidS3PrefixException", http_status_code=400)

    with pytest.raises(ClientError):
        trails.create(desired_trail())

    assert slept == []


def test_clearing_insight_selectors_puts_an_empty_list(
    stubbed: tuple[TrailClient, Stubber, list[float]],
) -> None:
    # AWS semantics: PutInsightSelectors replaces the set, [] turns Insights off.
    trails, stubber, _ = stubbed
    arn = f"arn:aws:cloudtrail:{HOME}:{ACCOUNT}:trail/audit"
    stubber.add_response(
        "describe_trails", {"trailList": [{"Name": "audit", "HomeRegion": HOME, "TrailARN": arn}]}
    )
    stubber.add_response("get_insight_selectors", {"TrailARN": arn, "InsightSelectors": [CALL_RATE]})
    stubber.add_response(
        "put_insight_selectors",
        {"TrailARN": arn, "InsightSelectors": []},
        {"TrailName": "audit", "InsightSelectors": []},
    )

    trails.put_insight_selectors("audit", [])


def _made_meanwhile(stubber: Stubber, tags: dict[str, str]) -> None:
    arn = f"arn:aws:cloudtrail:{HOME}:{ACCOUNT}:trail/audit"
    stubber.add_response("describe_trails", {"trailList": []})
    stubber.add_client_error("create_trail", "TrailAlreadyExistsException", http_status_code=400)
    tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
    stubber.add_response("list_tags", {"ResourceTagList": [{"ResourceId": arn, "TagsList": tag_list}]})


def test_create_of_a_trail_this_owner_made_meanwhile_returns_its_arn(
    stubbed: tuple[TrailClient, Stubber, list[float]],
) -> None:
    trails, stubber, _ = stubbed
    _made_meanwhile(stubber, dict(OWNER))

    assert trails.create(desired_trail()) == f"arn:aws:cloudtrail:{HOME}:{ACCOUNT}:trail/audit"


@pytest.mark.parametrize("tags", [{OWNER_TAG_KEY: "other/owner"}, {}], ids=["other-owner", "untagged"])
def test_create_of_a_trail_someone_else_made_meanwhile_is_a_conflict(
    stubbed: tuple[TrailClient, Stubber, list[float]], tags: dict[str, str]
) -> None:
    trails, stubber, _ = stubbed
    _made_meanwhile(stubber, tags)

    with pytest.raises(TrailNameTakenError) as raised:
        trails.create(desired_trail())

    assert raised.value.code == "Conflict"
    stubber.assert_no_pending_responses()


def test_an_organization_trail_of_another_account_is_a_shadow(
    stubbed: tuple[TrailClient, Stubber, list[float]],
) -> None:
    trails, stubber, _ = stubbed
    arn = f"arn:aws:cloudtrail:{HOME}:999999999999:trail/org"
    raw = {"Name": "org", "HomeRegion": HOME, "TrailARN": arn, "IsOrganizationTrail": True}
    stubber.add_response("describe_trails", {"trailList": [raw]})
    stubber.add_response("get_trail_status", {"IsLogging": True}, {"Name": arn})

    observed = trails.observe("org")

    assert observed is not None and observed.is_shadow and observed.is_organization_trail
    with pytest.raises(ShadowTrailError):
        trails.set_logging("org", False)
