"""The CIS CloudTrail compliance evaluator over observed AWS state: each control passing and failing."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trailkeeper.api.trail import ComplianceResult
from trailkeeper.core.compliance import (
    CONTROL_IDS,
    LOGGING_CONTROLS,
    ControlResult,
    compliance_condition,
    evaluate,
    flipped,
    public_statements,
    to_status,
)
from trailkeeper.core.observed_account import ObservedAccountState, ObservedBucketState, ObservedTrailState

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
ACCOUNT = "123456789012"
REGIONS = frozenset({"us-east-1", "eu-west-1", "ap-south-1"})
BUCKET = "acme-audit"
ALL_S3_OBJECTS = [
    {
        "ReadWriteType": "All",
        "IncludeManagementEvents": True,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}],
    }
]


def arn(name: str, region: str = "us-east-1") -> str:
    return f"arn:aws:cloudtrail:{region}:{ACCOUNT}:trail/{name}"


def make_trail(**changes: Any) -> ObservedTrailState:
    """A multi-region trail that passes every control; tests change one thing at a time."""
    home = changes.get("home_region", "us-east-1")
    name = changes.get("name", "audit")
    base = ObservedTrailState(
        name=name,
        arn=arn(name, home),
        home_region=home,
        region=home,
        is_multi_region=True,
        is_organization_trail=False,
        is_logging=True,
        log_file_validation=True,
        include_global_service_events=True,
        s3_bucket=BUCKET,
        kms_key_id="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        cloud_watch_logs_log_group_arn=f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:audit:*",
        latest_cloud_watch_logs_delivery_time=NOW - timedelta(hours=1),
        event_selectors=ALL_S3_OBJECTS,
    )
    return dataclasses.replace(base, **changes)


def regional(region: str, **changes: Any) -> ObservedTrailState:
    """A region-scoped trail; the one in us-east-1 records the global service events."""
    defaults: dict[str, Any] = {"include_global_service_events": region == "us-east-1"}
    return make_trail(
        **{**defaults, **changes, "home_region": region, "region": region, "is_multi_region": False}
    )


CLOUDTRAIL_WRITE = {
    "Sid": "AWSCloudTrailWrite",
    "Effect": "Allow",
    "Principal": {"Service": "cloudtrail.amazonaws.com"},
    "Action": "s3:PutObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/AWSLogs/{ACCOUNT}/*",
    "Condition": {
        "StringEquals": {"aws:SourceArn": arn("audit"), "s3:x-amz-acl": "bucket-owner-full-control"}
    },
}
DENY_INSECURE = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
ALL_BLOCKS = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def make_bucket(**changes: Any) -> ObservedBucketState:
    base = ObservedBucketState(
        name=BUCKET,
        public_access_block=ALL_BLOCKS,
        policy={"Version": "2012-10-17", "Statement": [CLOUDTRAIL_WRITE, DENY_INSECURE]},
        logging_enabled=True,
        acl_grants_public=False,
        versioning="Enabled",
        mfa_delete="Enabled",
    )
    return dataclasses.replace(base, **changes)


def make_account(
    trails: Sequence[ObservedTrailState] = (),
    buckets: Sequence[ObservedBucketState] | None = None,
    regions: frozenset[str] = REGIONS,
) -> ObservedAccountState:
    bucket_list = [make_bucket()] if buckets is None else buckets
    return ObservedAccountState(
        account_id=ACCOUNT,
        enabled_regions=regions,
        trails=list(trails),
        buckets={b.name: b for b in bucket_list},
    )


def run(
    trails: Sequence[ObservedTrailState],
    *,
    buckets: Sequence[ObservedBucketState] | None = None,
    regions: frozenset[str] = REGIONS,
    trail_arns: set[str] | None = None,
) -> dict[str, ControlResult]:
    results = evaluate(make_account(trails, buckets, regions), trail_arns=trail_arns, now=NOW)
    return {r.control: r for r in results}


def only(control: str, trails: Sequence[ObservedTrailState], **kwargs: Any) -> ControlResult:
    return run(trails, **kwargs)[control]


def public_statement(
    condition: Mapping[str, Any] | None = None, principal: Any = "*", effect: str = "Allow"
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": "Extra",
        "Effect": effect,
        "Principal": principal,
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    }
    if condition is not None:
        statement["Condition"] = condition
    return statement


def with_policy(*statements: Mapping[str, Any]) -> ObservedBucketState:
    return make_bucket(policy={"Version": "2012-10-17", "Statement": [CLOUDTRAIL_WRITE, *statements]})


# --- the whole set


def test_a_well_configured_account_passes_every_control_in_benchmark_order() -> None:
    results = evaluate(make_account([make_trail()]), now=NOW)

    assert [r.control for r in results] == list(CONTROL_IDS[: len(LOGGING_CONTROLS)])
    assert [r.control for r in results] == [
        "CIS-2.1.3",
        "TK-BUCKET-VERSIONING",
        "CIS-3.1",
        "TK-REGIONS",
        "CIS-3.2",
        "CIS-3.3",
        "TK-BUCKET-BPA",
        "CIS-3.4",
        "CIS-3.6",
        "CIS-3.7",
        "CIS-3.10",
        "CIS-3.11",
    ]
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    assert compliance_condition(results) == ("True", "AllControlsPassed", "12 of 12 controls passed")


@pytest.mark.parametrize(
    ("control", "cis", "title"),
    [
        (
            "CIS-2.1.3",
            ["2.1.3", "2.1.2", "2.1.2", "2.1.2", "2.1.2", "3.1.2", "3.1.2"],
            "MFA Delete on the log bucket (CIS 1.5 2.1.3, 2.0-5.0 2.1.2, 6.0-7.0 3.1.2)",
        ),
        ("CIS-3.2", ["3.2"] * 5 + ["4.2"] * 2, "log file validation (CIS 1.5-5.0 3.2, 6.0-7.0 4.2)"),
        ("CIS-3.3", ["3.3", "3.3"], "log bucket not publicly accessible (CIS 1.5-2.0 3.3)"),
        ("CIS-3.4", ["3.4", "3.4"], "trails delivering to CloudWatch Logs (CIS 1.5-2.0 3.4)"),
        (
            "CIS-3.6",
            ["3.6", "3.6", "3.4", "3.4", "3.4", "4.4", "4.4"],
            "log bucket access logging (CIS 1.5-2.0 3.6, 3.0-5.0 3.4, 6.0-7.0 4.4)",
        ),
        (
            "CIS-3.7",
            ["3.7", "3.7", "3.5", "3.5", "3.5", "4.5", "4.5"],
            "log encryption with KMS (CIS 1.5-2.0 3.7, 3.0-5.0 3.5, 6.0-7.0 4.5)",
        ),
        (
            "CIS-3.10",
            ["3.10", "3.10", "3.8", "3.8", "3.8", "4.8", "4.8"],
            "S3 object-level write events (CIS 1.5-2.0 3.10, 3.0-5.0 3.8, 6.0-7.0 4.8)",
        ),
        (
            "CIS-3.11",
            ["3.11", "3.11", "3.9", "3.9", "3.9", "4.9", "4.9"],
            "S3 object-level read events (CIS 1.5-2.0 3.11, 3.0-5.0 3.9, 6.0-7.0 4.9)",
        ),
        ("TK-REGIONS", [], "every enabled region covered by logging trails (trailkeeper)"),
    ],
)
def test_each_control_carries_its_number_in_every_cis_version(
    control: str, cis: list[str], title: str
) -> None:
    result = only(control, [make_trail()])
    versions = ["1.5", "2.0", "3.0", "4.0", "5.0", "6.0", "7.0"]
    assert result.cis == dict(zip(versions, cis, strict=False))
    assert result.title == title


def test_an_account_without_trails_fails_every_control() -> None:
    results = evaluate(make_account([]), now=NOW)
    assert not any(r.passed for r in results)
    assert only("CIS-3.1", []).detail == "no trail in the account"


# --- CIS 3.1: a multi-region trail, logging, one selector with all management events


@pytest.mark.parametrize(
    ("trails", "passed"),
    [
        pytest.param([make_trail()], True, id="multi-region-logging"),
        pytest.param([make_trail(is_logging=False)], False, id="stopped"),
        pytest.param([regional(r) for r in sorted(REGIONS)], False, id="regional-cover-is-not-cis-3-1"),
        pytest.param(
            [
                make_trail(
                    event_selectors=[
                        {"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True},
                        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True},
                    ]
                )
            ],
            False,
            id="read-and-write-split-over-two-selectors",
        ),
        pytest.param(
            [make_trail(event_selectors=[{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}])],
            False,
            id="write-only",
        ),
        pytest.param(
            [
                make_trail(
                    event_selectors=None,
                    advanced_event_selectors=[
                        {"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}
                    ],
                )
            ],
            True,
            id="advanced-management",
        ),
    ],
)
def test_cis_3_1_follows_the_audit_text(trails: list[ObservedTrailState], passed: bool) -> None:
    result = only("CIS-3.1", trails)
    assert result.passed is passed
    assert result.cis == {
        "1.5": "3.1",
        "2.0": "3.1",
        "3.0": "3.1",
        "4.0": "3.1",
        "5.0": "3.1",
        "6.0": "4.1",
        "7.0": "4.1",
    }


# --- TK-REGIONS: every enabled region covered, by a multi-region trail or region-scoped ones


@pytest.mark.parametrize(
    ("trails", "passed"),
    [
        pytest.param([make_trail()], True, id="multi-region-logging"),
        pytest.param([make_trail(is_logging=False)], False, id="multi-region-not-logging"),
        pytest.param(
            [make_trail(event_selectors=[{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}])],
            False,
            id="multi-region-read-only",
        ),
        pytest.param(
            [make_trail(event_selectors=[{"ReadWriteType": "All", "IncludeManagementEvents": False}])],
            False,
            id="management-events-off",
        ),
        pytest.param([make_trail(event_selectors=[])], False, id="no-selectors-records-nothing"),
        pytest.param([make_trail(event_selectors=None)], True, id="selectors-not-read-means-default"),
        pytest.param(
            [
                make_trail(
                    event_selectors=[
                        {"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True},
                        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True},
                    ]
                )
            ],
            True,
            id="read-plus-write-selectors",
        ),
        pytest.param(
            [
                make_trail(
                    event_selectors=[
                        {
                            "ReadWriteType": "All",
                            "IncludeManagementEvents": True,
                            "ExcludeManagementEventSources": ["kms.amazonaws.com"],
                        }
                    ]
                )
            ],
            True,
            id="excluded-kms-events-tolerated",
        ),
        pytest.param(
            [
                make_trail(
                    event_selectors=None,
                    advanced_event_selectors=[
                        {
                            "Name": "mgmt",
                            "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}],
                        }
                    ],
                )
            ],
            True,
            id="advanced-management",
        ),
        pytest.param(
            [
                make_trail(
                    event_selectors=None,
                    advanced_event_selectors=[
                        {
                            "FieldSelectors": [
                                {"Field": "eventCategory", "Equals": ["Management"]},
                                {"Field": "readOnly", "Equals": ["true"]},
                            ]
                        }
                    ],
                )
            ],
            False,
            id="advanced-read-only",
        ),
        pytest.param(
            [
                make_trail(
                    event_selectors=None,
                    advanced_event_selectors=[
                        {
                            "FieldSelectors": [
                                {"Field": "eventCategory", "Equals": ["Management"]},
                                {"Field": "readOnly", "Equals": ["true"]},
                            ]
                        },
                        {
                            "FieldSelectors": [
                                {"Field": "eventCategory", "Equals": ["Management"]},
                                {"Field": "readOnly", "Equals": ["false"]},
                            ]
                        },
                    ],
                )
            ],
            True,
            id="advanced-read-plus-write",
        ),
        pytest.param(
            [
                make_trail(
                    event_selectors=None,
                    advanced_event_selectors=[
                        {
                            "FieldSelectors": [
                                {"Field": "eventCategory", "Equals": ["Management"]},
                                {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]},
                            ]
                        }
                    ],
                )
            ],
            True,
            id="advanced-excluded-source-tolerated",
        ),
        pytest.param(
            [
                make_trail(
                    event_selectors=None,
                    advanced_event_selectors=[
                        {
                            "FieldSelectors": [
                                {"Field": "eventCategory", "Equals": ["Management"]},
                                {"Field": "eventSource", "Equals": ["iam.amazonaws.com"]},
                            ]
                        }
                    ],
                )
            ],
            False,
            id="advanced-one-source-only",
        ),
        pytest.param(
            [
                make_trail(
                    event_selectors=None,
                    advanced_event_selectors=[
                        {
                            "FieldSelectors": [
                                {"Field": "eventCategory", "Equals": ["Data"]},
                                {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                            ]
                        }
                    ],
                )
            ],
            False,
            id="advanced-data-only",
        ),
        pytest.param(
            [regional("us-east-1"), regional("eu-west-1"), regional("ap-south-1")],
            True,
            id="region-scoped-all-regions",
        ),
        pytest.param(
            [regional("us-east-1"), regional("eu-west-1"), regional("ap-south-1", is_logging=False)],
            False,
            id="region-scoped-one-not-logging",
        ),
        pytest.param(
            [make_trail(is_logging=False), *(regional(r, name="local") for r in sorted(REGIONS))],
            True,
            id="stopped-multi-region-but-regional-cover",
        ),
    ],
)
def test_tk_regions_multi_region_or_regional_coverage(trails: list[ObservedTrailState], passed: bool) -> None:
    assert only("TK-REGIONS", trails).passed is passed


def test_cis_3_1_a_multi_region_trail_that_is_not_logging_is_named_in_the_detail() -> None:
    result = only("CIS-3.1", [make_trail(is_logging=False)])
    assert not result.passed
    assert "multi-region us-east-1/audit: not logging" in result.detail


def test_tk_regions_region_scoped_trails_missing_a_region_name_it() -> None:
    result = only("TK-REGIONS", [regional("us-east-1"), regional("eu-west-1")])
    assert not result.passed
    assert "ap-south-1" in result.detail
    assert "eu-west-1" not in result.detail


def test_tk_regions_region_scoped_trails_need_one_recording_global_service_events() -> None:
    trails = [regional(r, include_global_service_events=False) for r in sorted(REGIONS)]
    result = only("TK-REGIONS", trails)
    assert not result.passed
    assert "global service events" in result.detail


def test_cis_3_1_with_unknown_enabled_regions_needs_a_multi_region_trail() -> None:
    assert not only("CIS-3.1", [regional("us-east-1")], regions=frozenset()).passed
    assert only("CIS-3.1", [make_trail()], regions=frozenset()).passed


def test_cis_3_1_a_shadow_trail_is_counted_once_with_its_home_trail() -> None:
    home = make_trail()
    shadows = [dataclasses.replace(home, region=r, is_shadow=True) for r in ("eu-west-1", "ap-south-1")]
    results = run([*shadows, home])

    assert results["CIS-3.1"].passed
    assert results["CIS-3.1"].detail.count("audit") == 1
    assert results["CIS-3.2"].detail == "validation on for us-east-1/audit"


def test_cis_3_1_a_shadow_seen_alone_passes_through_its_home_trail() -> None:
    shadow = make_trail(region="eu-west-1", is_shadow=True)
    assert only("CIS-3.1", [shadow]).passed


def test_cis_3_1_a_shadow_seen_alone_fails_when_its_home_trail_is_not_logging() -> None:
    shadow = make_trail(region="eu-west-1", is_shadow=True, is_logging=False)
    assert not only("CIS-3.1", [shadow]).passed


def test_cis_3_1_the_home_copy_wins_over_a_stale_shadow() -> None:
    home = make_trail()
    stale_shadow = dataclasses.replace(home, region="eu-west-1", is_shadow=True, is_logging=False)
    assert only("CIS-3.1", [stale_shadow, home]).passed


def test_cis_3_1_counts_an_organization_trail() -> None:
    org = make_trail(
        name="org-audit",
        is_organization_trail=True,
        arn="arn:aws:cloudtrail:us-east-1:999999999999:trail/org-audit",
    )
    assert only("CIS-3.1", [org, regional("us-east-1")]).passed


# --- CIS 3.2: log file validation


@pytest.mark.parametrize(("validation", "passed"), [(True, True), (False, False)])
def test_cis_3_2_log_file_validation(validation: bool, passed: bool) -> None:
    assert only("CIS-3.2", [make_trail(log_file_validation=validation)]).passed is passed


def test_cis_3_2_names_each_trail_without_validation() -> None:
    trails = [regional("us-east-1"), regional("eu-west-1", log_file_validation=False)]
    result = only("CIS-3.2", trails)
    assert not result.passed
    assert result.detail == "eu-west-1/audit: validation off"


# --- CIS 3.3: log bucket not publicly accessible (the audit reads ACL grantees and Principal "*")

NO_BLOCKS: dict[str, bool] = {}


@pytest.mark.parametrize(
    ("bucket", "account_block", "passed", "seen"),
    [
        pytest.param(make_bucket(), None, True, "no public ACL grant", id="private-blocked"),
        pytest.param(
            make_bucket(public_access_block=None), None, True, "no public ACL grant", id="private-no-block"
        ),
        pytest.param(
            make_bucket(public_access_block=None, policy=None), None, True, "no public", id="no-policy"
        ),
        pytest.param(
            make_bucket(public_access_block=None, acl_grants_public=True),
            None,
            False,
            "ACL grants AllUsers or AuthenticatedUsers",
            id="public-acl",
        ),
        pytest.param(
            make_bucket(acl_grants_public=True),
            None,
            True,
            "no public",
            id="public-acl-ignored-by-bucket-block",
        ),
        pytest.param(
            make_bucket(public_access_block=None, acl_grants_public=True),
            ALL_BLOCKS,
            True,
            "no public",
            id="public-acl-ignored-by-account-block",
        ),
        pytest.param(
            with_policy(public_statement()).__class__(
                **{**dataclasses.asdict(with_policy(public_statement())), "public_access_block": None}
            ),
            None,
            False,
            'policy statement Extra allows Principal "*"',
            id="star-policy",
        ),
        pytest.param(
            dataclasses.replace(
                with_policy(public_statement({"StringEquals": {"aws:SourceArn": arn("audit")}})),
                public_access_block=None,
            ),
            None,
            False,
            "Extra allows",
            id="star-with-condition-is-still-named-by-the-cis-text",
        ),
        pytest.param(
            dataclasses.replace(
                with_policy(public_statement(principal={"AWS": ["arn:aws:iam::111122223333:root", "*"]})),
                public_access_block=None,
            ),
            NO_BLOCKS,
            False,
            "allows Principal",
            id="aws-star-in-list",
        ),
        pytest.param(
            dataclasses.replace(with_policy(public_statement()), public_access_block=None),
            {**ALL_BLOCKS, "IgnorePublicAcls": False},
            True,
            "no public",
            id="star-policy-restricted-by-account-block",
        ),
        pytest.param(
            dataclasses.replace(with_policy(public_statement(effect="Deny")), public_access_block=None),
            None,
            True,
            "no public",
            id="deny-star",
        ),
        pytest.param(
            dataclasses.replace(
                make_bucket(policy={"Statement": public_statement()}), public_access_block=None
            ),
            None,
            False,
            "allows Principal",
            id="single-statement-object",
        ),
    ],
)
def test_cis_3_3_follows_the_audit_text_and_block_public_access(
    bucket: ObservedBucketState, account_block: dict[str, bool] | None, passed: bool, seen: str
) -> None:
    state = dataclasses.replace(
        make_account([make_trail()], [bucket]), account_public_access_block=account_block
    )
    result = {r.control: r for r in evaluate(state, now=NOW)}["CIS-3.3"]
    assert result.passed is passed
    assert seen in result.detail


@pytest.mark.parametrize(
    ("bucket_block", "account_block", "passed", "seen"),
    [
        pytest.param(ALL_BLOCKS, None, True, "all four", id="bucket-level"),
        pytest.param(None, ALL_BLOCKS, True, "all four", id="account-level-counts"),
        pytest.param(
            {"BlockPublicAcls": True, "IgnorePublicAcls": True},
            {"BlockPublicPolicy": True, "RestrictPublicBuckets": True},
            True,
            "all four",
            id="combined",
        ),
        pytest.param(None, None, False, "no Block Public Access on the bucket or the account", id="none"),
        pytest.param(
            {**ALL_BLOCKS, "RestrictPublicBuckets": False},
            None,
            False,
            "RestrictPublicBuckets off",
            id="one-off",
        ),
    ],
)
def test_tk_bucket_bpa_counts_the_account_level_block(
    bucket_block: dict[str, bool] | None, account_block: dict[str, bool] | None, passed: bool, seen: str
) -> None:
    bucket = make_bucket(public_access_block=bucket_block)
    state = dataclasses.replace(
        make_account([make_trail()], [bucket]), account_public_access_block=account_block
    )
    result = {r.control: r for r in evaluate(state, now=NOW)}["TK-BUCKET-BPA"]
    assert result.passed is passed
    assert seen in result.detail
    assert result.cis == {}


def test_cis_3_3_a_bucket_that_could_not_be_read_does_not_pass() -> None:
    result = only("CIS-3.3", [make_trail()], buckets=[])
    assert not result.passed
    assert result.detail == f"{BUCKET}: not observed"


def test_cis_3_3_checks_every_delivery_bucket_of_the_trails() -> None:
    other = make_bucket(name="acme-audit-eu-west-1", public_access_block=None, acl_grants_public=True)
    trails = [regional("us-east-1"), regional("eu-west-1", s3_bucket="acme-audit-eu-west-1")]
    result = only("CIS-3.3", trails, buckets=[make_bucket(), other])
    assert not result.passed
    assert result.detail == "acme-audit-eu-west-1: ACL grants AllUsers or AuthenticatedUsers"


def test_public_statements_lists_the_allows_to_principal_star() -> None:
    conditioned = {**public_statement({"StringEquals": {"aws:SourceAccount": ACCOUNT}}), "Sid": ""}
    policy = {"Statement": [CLOUDTRAIL_WRITE, DENY_INSECURE, public_statement(), conditioned]}
    assert public_statements(policy) == ["Extra", "#3"]
    assert public_statements(None) == []


# --- CIS 3.4: CloudWatch Logs integration


@pytest.mark.parametrize(
    ("changes", "passed"),
    [
        pytest.param({}, True, id="delivered-an-hour-ago"),
        pytest.param({"latest_cloud_watch_logs_delivery_time": None}, None, id="no-delivery-yet-is-unknown"),
        pytest.param({"is_logging": False}, False, id="stopped-trail-with-recent-delivery"),
        pytest.param(
            {"is_logging": False, "latest_cloud_watch_logs_delivery_time": None},
            False,
            id="stopped-never-delivered",
        ),
        pytest.param({"latest_cloud_watch_logs_delivery_time": NOW - timedelta(hours=23)}, True, id="23h"),
        pytest.param({"latest_cloud_watch_logs_delivery_time": NOW - timedelta(hours=30)}, False, id="30h"),
        pytest.param(
            {"latest_cloud_watch_logs_delivery_time": datetime(2024, 6, 1, 11, 0)}, True, id="naive-utc"
        ),
        pytest.param({"cloud_watch_logs_log_group_arn": None}, False, id="no-log-group"),
    ],
)
def test_cis_3_4_cloudwatch_logs(changes: dict[str, Any], passed: bool | None) -> None:
    assert only("CIS-3.4", [make_trail(**changes)]).passed is passed


def test_cis_3_4_before_the_first_delivery_is_unknown_with_the_reason() -> None:
    results = evaluate(make_account([make_trail(latest_cloud_watch_logs_delivery_time=None)]), now=NOW)
    result = next(r for r in results if r.control == "CIS-3.4")
    assert (result.state, result.detail) == ("Unknown", "us-east-1/audit: no delivery to CloudWatch Logs yet")
    assert compliance_condition(results) == (
        "Unknown",
        "ControlsUnknown",
        "not decidable yet: CIS-3.4 trails delivering to CloudWatch Logs",
    )


def test_cis_3_4_says_how_long_ago_the_last_delivery_was() -> None:
    result = only("CIS-3.4", [make_trail(latest_cloud_watch_logs_delivery_time=NOW - timedelta(hours=30))])
    assert result.detail == "us-east-1/audit: last CloudWatch Logs delivery 30 h ago"


# --- CIS 3.6: access logging on the log bucket


@pytest.mark.parametrize(("logging_enabled", "passed"), [(True, True), (False, False)])
def test_cis_3_6_bucket_access_logging(logging_enabled: bool, passed: bool) -> None:
    result = only("CIS-3.6", [make_trail()], buckets=[make_bucket(logging_enabled=logging_enabled)])
    assert result.passed is passed
    assert BUCKET in result.detail


def test_cis_3_6_an_unobserved_bucket_does_not_pass() -> None:
    assert not only("CIS-3.6", [make_trail()], buckets=[]).passed


# --- CIS 3.7: KMS encryption


@pytest.mark.parametrize(("kms_key_id", "passed"), [("alias/audit", True), (None, False), ("", False)])
def test_cis_3_7_kms_encryption(kms_key_id: str | None, passed: bool) -> None:
    assert only("CIS-3.7", [make_trail(kms_key_id=kms_key_id)]).passed is passed


# --- CIS 3.10 / 3.11: S3 object-level write / read events


def basic(read_write: str, *values: str) -> list[dict[str, Any]]:
    return [
        {
            "ReadWriteType": read_write,
            "IncludeManagementEvents": True,
            "DataResources": [{"Type": "AWS::S3::Object", "Values": list(values)}],
        }
    ]


def advanced(*extra: dict[str, Any], resource_type: str = "AWS::S3::Object") -> list[dict[str, Any]]:
    return [
        {"Name": "mgmt", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
        {
            "Name": "s3",
            "FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Data"]},
                {"Field": "resources.type", "Equals": [resource_type]},
                *extra,
            ],
        },
    ]


@pytest.mark.parametrize(
    ("selectors", "write", "read"),
    [
        pytest.param({"event_selectors": basic("All", "arn:aws:s3")}, True, True, id="basic-all-arn-aws-s3"),
        pytest.param(
            {"event_selectors": basic("All", "arn:aws:s3:::")}, True, True, id="basic-all-arn-colons"
        ),
        pytest.param({"event_selectors": basic("ReadOnly", "arn:aws:s3")}, False, True, id="basic-read-only"),
        pytest.param(
            {"event_selectors": basic("WriteOnly", "arn:aws:s3")}, True, False, id="basic-write-only"
        ),
        pytest.param(
            {"event_selectors": basic("All", f"arn:aws:s3:::{BUCKET}/")}, False, False, id="one-bucket"
        ),
        pytest.param(
            {"event_selectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True}]},
            False,
            False,
            id="management-only",
        ),
        pytest.param({"event_selectors": None}, False, False, id="default-selectors"),
        pytest.param(
            {"event_selectors": None, "advanced_event_selectors": advanced()}, True, True, id="advanced-all"
        ),
        pytest.param(
            {
                "event_selectors": None,
                "advanced_event_selectors": advanced({"Field": "readOnly", "Equals": ["true"]}),
            },
            False,
            True,
            id="advanced-read-only",
        ),
        pytest.param(
            {
                "event_selectors": None,
                "advanced_event_selectors": advanced({"Field": "readOnly", "Equals": ["false"]}),
            },
            True,
            False,
            id="advanced-write-only",
        ),
        pytest.param(
            {
                "event_selectors": None,
                "advanced_event_selectors": advanced({"Field": "readOnly", "NotEquals": ["true"]}),
            },
            True,
            False,
            id="advanced-not-read-only",
        ),
        pytest.param(
            {
                "event_selectors": None,
                "advanced_event_selectors": advanced(
                    {"Field": "resources.ARN", "StartsWith": [f"arn:aws:s3:::{BUCKET}/"]}
                ),
            },
            False,
            False,
            id="advanced-one-bucket",
        ),
        pytest.param(
            {
                "event_selectors": None,
                "advanced_event_selectors": advanced(
                    {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::"]}
                ),
            },
            True,
            True,
            id="advanced-all-prefix",
        ),
        pytest.param(
            {
                "event_selectors": None,
                "advanced_event_selectors": advanced(
                    {"Field": "resources.ARN", "NotStartsWith": [f"arn:aws:s3:::{BUCKET}/"]}
                ),
            },
            True,
            True,
            id="advanced-excludes-own-bucket",
        ),
        pytest.param(
            {
                "event_selectors": None,
                "advanced_event_selectors": advanced({"Field": "eventName", "Equals": ["PutObject"]}),
            },
            False,
            False,
            id="advanced-one-event-name",
        ),
        pytest.param(
            {
                "event_selectors": None,
                "advanced_event_selectors": advanced(resource_type="AWS::DynamoDB::Table"),
            },
            False,
            False,
            id="advanced-other-resource",
        ),
    ],
)
def test_cis_3_10_and_3_11_s3_object_level_events(selectors: dict[str, Any], write: bool, read: bool) -> None:
    results = run([make_trail(**selectors)])
    assert (results["CIS-3.10"].passed, results["CIS-3.11"].passed) == (write, read)


def test_cis_3_10_a_selector_for_some_buckets_only_is_reported() -> None:
    result = only("CIS-3.10", [make_trail(event_selectors=basic("All", f"arn:aws:s3:::{BUCKET}/"))])
    assert "us-east-1/audit records them for some buckets or events only" in result.detail


def test_cis_3_10_a_trail_that_is_not_logging_records_nothing() -> None:
    result = only("CIS-3.10", [make_trail(is_logging=False)])
    assert not result.passed
    assert "us-east-1/audit is not logging" in result.detail


def test_cis_3_10_region_scoped_trails_must_record_in_each_region() -> None:
    trails = [regional("us-east-1"), regional("eu-west-1", event_selectors=basic("All"))]
    result = only("CIS-3.10", trails, trail_arns={t.arn for t in trails})
    assert not result.passed
    assert result.detail.startswith("S3 object-level write events not recorded in eu-west-1")


# --- trail_arns: the trails of one Trail resource


def two_trails() -> tuple[ObservedTrailState, ObservedTrailState]:
    good = make_trail()
    lax = regional(
        "eu-west-1", name="team", log_file_validation=False, kms_key_id=None, s3_bucket="team-logs"
    )
    return good, lax


def test_trail_arns_limits_trail_controls_to_the_resources_trails() -> None:
    good, lax = two_trails()
    team_bucket = make_bucket(name="team-logs", logging_enabled=False)

    mine = run([good, lax], buckets=[make_bucket(), team_bucket], trail_arns={good.arn})
    theirs = run([good, lax], buckets=[make_bucket(), team_bucket], trail_arns={lax.arn})
    everyone = run([good, lax], buckets=[make_bucket(), team_bucket])

    assert all(r.passed for r in mine.values())
    assert not theirs["CIS-3.2"].passed and not theirs["CIS-3.7"].passed and not theirs["CIS-3.6"].passed
    assert not everyone["CIS-3.2"].passed
    assert everyone["CIS-3.2"].detail == "eu-west-1/team: validation off"


def test_trail_arns_does_not_narrow_the_all_regions_control() -> None:
    good, lax = two_trails()
    # The team's region-scoped trail alone covers one region; the account's multi-region trail covers all.
    assert only("CIS-3.1", [good, lax], trail_arns={lax.arn}).passed


def test_trail_arns_with_no_observed_trail_fails_the_trail_controls() -> None:
    results = run([make_trail()], trail_arns={arn("gone")})
    assert results["CIS-3.1"].passed
    for control in ("CIS-3.2", "CIS-3.3", "CIS-3.4", "CIS-3.6", "CIS-3.7", "CIS-3.10", "CIS-3.11"):
        assert not results[control].passed
        assert results[control].detail == "none of this resource's trails was observed"


def test_trail_arns_region_scoped_data_events_need_only_the_resources_regions() -> None:
    trails = [regional("us-east-1"), regional("eu-west-1")]
    # ap-south-1 is enabled but not one of this resource's regions.
    assert only("CIS-3.10", trails, trail_arns={t.arn for t in trails}).passed
    assert not only("CIS-3.10", trails).passed


# --- condition, flips, status


def test_compliance_condition_names_the_failed_controls() -> None:
    results = evaluate(make_account([make_trail(log_file_validation=False, kms_key_id=None)]), now=NOW)
    assert compliance_condition(results) == (
        "False",
        "ControlsFailed",
        "failed: CIS-3.2 log file validation, CIS-3.7 log encryption with KMS",
    )


def test_compliance_condition_of_nothing_is_unknown() -> None:
    assert compliance_condition([]) == ("Unknown", "NotEvaluated", "no controls evaluated")


def test_flipped_reports_controls_whose_result_changed() -> None:
    before = to_status(evaluate(make_account([make_trail(kms_key_id=None)]), now=NOW))
    after = evaluate(make_account([make_trail(log_file_validation=False)]), now=NOW)
    assert flipped(before, after) == [("CIS-3.2", False), ("CIS-3.7", True)]


@pytest.mark.parametrize(
    "previous",
    [None, [], [{"control": "CIS-3.99", "passed": False}], [{"control": "CIS-3.2"}]],
    ids=["none", "empty", "other-control", "no-passed-value"],
)
def test_flipped_reports_nothing_without_a_previous_result(previous: list[dict[str, Any]] | None) -> None:
    assert flipped(previous, evaluate(make_account([make_trail()]), now=NOW)) == []


def test_to_status_gives_the_status_compliance_shape() -> None:
    status = to_status(evaluate(make_account([make_trail(kms_key_id=None)]), now=NOW))
    assert status[2] == {
        "control": "CIS-3.1",
        "title": "multi-region trail logging all management events (CIS 1.5-5.0 3.1, 6.0-7.0 4.1)",
        "passed": True,
        "detail": "multi-region trail us-east-1/audit is logging read and write management events",
        "cis": {
            "1.5": "3.1",
            "2.0": "3.1",
            "3.0": "3.1",
            "4.0": "3.1",
            "5.0": "3.1",
            "6.0": "4.1",
            "7.0": "4.1",
        },
        "remediation": status[2]["remediation"],
    }
    parsed = {entry["control"]: ComplianceResult.model_validate(entry).passed for entry in status}
    assert [control for control, passed in parsed.items() if not passed] == ["CIS-3.7"]


def test_long_details_are_one_bounded_line() -> None:
    regions = frozenset(f"xx-region-{i}" for i in range(40))
    results = evaluate(make_account([regional("us-east-1")], regions=regions), now=NOW)
    detail = next(r.detail for r in results if r.control == "TK-REGIONS")
    assert "(+" in detail and "more)" in detail
    assert all("\n" not in r.detail and len(r.detail) <= 400 for r in results)


@pytest.mark.parametrize(
    "policy",
    [
        {},
        {"Statement": None},
        {"Statement": "not a list"},
        {"Statement": [None, 3, "x"]},
        {"Statement": [{"Effect": "Allow"}]},
        {"Statement": [{"Effect": "Allow", "Principal": {"AWS": None}}]},
        {"Statement": [{"Effect": "Allow", "Principal": "*", "Condition": "x"}]},
        {"Statement": [{"Effect": "Allow", "Principal": "*", "Condition": {"StringEquals": ["x"]}}]},
        {
            "Statement": [
                {"Effect": "Allow", "Principal": "*", "Condition": {"StringEquals": {"aws:SourceArn": []}}}
            ]
        },
        {
            "Statement": [
                {"Effect": "Allow", "Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": "nope"}}}
            ]
        },
    ],
)
def test_malformed_policies_evaluate_without_error(policy: dict[str, Any]) -> None:
    result = only("CIS-3.3", [make_trail()], buckets=[make_bucket(policy=policy)])
    assert isinstance(result.passed, bool)
