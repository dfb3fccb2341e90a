"""Observing an account's trails and log buckets for the CIS evaluator, against moto over HTTP.

Trails and buckets are made straight through boto3, as anyone with console or API access makes them;
what moto never answers (denials, another account's bucket, a trail deleted mid-read) goes through
botocore's Stubber on the very client AwsSessions hands out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from support.faults import FaultInjector, FaultRule
from support.moto_server import InProcessMotoServer, MakeAws
from support.s3control_front import s3control_on_endpoint_host
from trailkeeper.aws.account_state import (
    AccountObservation,
    EnabledRegionsCache,
    observe_account,
)
from trailkeeper.aws.errors import AwsError
from trailkeeper.aws.session import AwsSessions
from trailkeeper.core.compliance import LOGGING_CONTROLS, ControlResult, evaluate

ACCOUNT = "123456789012"
HOME = "us-east-1"
OTHER = "eu-west-1"
THIRD = "ap-south-1"
ACCESS_LOGS = "acme-access-logs"
KMS_KEY = f"arn:aws:kms:{HOME}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
LOG_GROUP = f"arn:aws:logs:{HOME}:{ACCOUNT}:log-group:cloudtrail:*"
LOGS_ROLE = f"arn:aws:iam::{ACCOUNT}:role/cloudtrail-to-logs"
ALL_S3_OBJECTS = [
    {
        "ReadWriteType": "All",
        "IncludeManagementEvents": True,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}],
    }
]
MANAGEMENT_ONLY = [{"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": []}]


@pytest.fixture(autouse=True)
def _s3control_on_moto() -> Iterator[None]:
    with s3control_on_endpoint_host():
        yield


def cloudtrail_write_policy(bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AWSCloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/{ACCOUNT}/*",
                "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
            }
        ],
    }


def public_read_policy(bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }


class AwsSetup:
    """Trails and buckets made directly with boto3, not by trailkeeper."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def client(self, service: str, region: str = HOME) -> Any:
        # boto3-stubs types boto3.client per literal service name only.
        make_client: Callable[..., Any] = boto3.client
        return make_client(service, region_name=region, endpoint_url=self.endpoint)

    def bucket(
        self,
        name: str,
        region: str = HOME,
        *,
        block_public: bool = True,
        access_logging: bool = True,
        policy: dict[str, Any] | None = None,
        public_acl: bool = False,
    ) -> str:
        s3 = self.client("s3", region)
        extra: dict[str, Any] = {}
        if region != HOME:
            extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(Bucket=name, **extra)
        if block_public:
            flags = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=dict.fromkeys(flags, True))
        if access_logging:
            target = self._access_log_bucket(region)
            s3.put_bucket_logging(
                Bucket=name,
                BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": target, "TargetPrefix": name}},
            )
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy or cloudtrail_write_policy(name)))
        if block_public:
            # What the root user's MFA device allows (moto does not check the MFA code).
            s3.put_bucket_versioning(
                Bucket=name,
                MFA="arn:aws:iam::123456789012:mfa/root-account-mfa-device 123456",
                VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"},
            )
        if public_acl:
            s3.put_bucket_acl(Bucket=name, ACL="public-read")
        return name

    def _access_log_bucket(self, region: str) -> str:
        # S3 delivers access logs only to a bucket of the same region.
        s3 = self.client("s3", region)
        target = f"{ACCESS_LOGS}-{region}"
        if target not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            extra: dict[str, Any] = {}
            if region != HOME:
                extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
            s3.create_bucket(Bucket=target, **extra)
            s3.put_bucket_acl(Bucket=target, ACL="log-delivery-write")
        return target

    def trail(
        self,
        name: str,
        region: str = HOME,
        *,
        bucket: str,
        multi_region: bool = False,
        global_events: bool = True,
        validation: bool = True,
        encrypted: bool = True,
        cloudwatch: bool = True,
        selectors: list[dict[str, Any]] | None = ALL_S3_OBJECTS,
        logging: bool = True,
    ) -> str:
        cloudtrail = self.client("cloudtrail", region)
        options: dict[str, Any] = {}
        if encrypted:
            options["KmsKeyId"] = KMS_KEY
        if cloudwatch:
            options["CloudWatchLogsLogGroupArn"] = LOG_GROUP
            options["CloudWatchLogsRoleArn"] = LOGS_ROLE
        arn = str(
            cloudtrail.create_trail(
                Name=name,
                S3BucketName=bucket,
                IsMultiRegionTrail=multi_region,
                IncludeGlobalServiceEvents=global_events,
                EnableLogFileValidation=validation,
                **options,
            )["TrailARN"]
        )
        if selectors is not None:
            cloudtrail.put_event_selectors(TrailName=name, EventSelectors=selectors)
        if logging:
            cloudtrail.start_logging(Name=name)
        return arn

    def compliant(self) -> str:
        """A logging multi-region trail with validation, KMS, CloudWatch Logs and S3 data events, to a
        bucket with every public-access block and access logging: every control passes."""
        return self.trail("org-audit", multi_region=True, bucket=self.bucket("acme-audit"))

    def non_compliant(self) -> str:
        """A regional trail that is not logging, unvalidated and unencrypted, to a public bucket."""
        bucket = self.bucket(
            "legacy-logs",
            OTHER,
            block_public=False,
            access_logging=False,
            policy=public_read_policy("legacy-logs"),
            public_acl=True,
        )
        return self.trail(
            "legacy",
            OTHER,
            bucket=bucket,
            global_events=False,
            validation=False,
            encrypted=False,
            cloudwatch=False,
            selectors=None,
            logging=False,
        )


@pytest.fixture
def setup(aws: AwsSessions, moto_endpoint: str) -> AwsSetup:
    return AwsSetup(moto_endpoint)


def calls(aws: AwsSessions, service: str, operation: str) -> int:
    assert aws.recorder is not None
    return aws.recorder.counts()[(service, operation)]


def by_control(results: list[ControlResult]) -> dict[str, ControlResult]:
    return {r.control: r for r in results}


def failed(observation: AccountObservation, arns: set[str] | None = None) -> dict[str, str]:
    """The failed CloudTrail controls (the Monitoring section has tests of its own; moto never delivers
    to CloudWatch Logs, so CIS-3.4 is Unknown here, not failed)."""
    # moto keeps no MFADelete (GetBucketVersioning never answers it): CIS-2.1.3 has unit tests instead.
    logging_ids = {c.id for c in LOGGING_CONTROLS} - {"CIS-2.1.3"}
    results = evaluate(observation.state, trail_arns=arns)
    return {r.control: r.detail for r in results if r.passed is False and r.control in logging_ids}


# -- observe_account ----------------------------------------------------------------------------------


def test_compliant_account_passes_every_control_with_each_read_made_once(
    aws: AwsSessions, setup: AwsSetup
) -> None:
    arn = setup.compliant()

    observation = observe_account(aws, None)

    assert failed(observation) == {}
    assert observation.notes == ()
    assert observation.regions_source == "described"
    assert observation.trail_arns == {arn}
    enabled = observation.state.enabled_regions
    # moto answers regions not opted in and regions of other partitions too: neither is enabled here.
    assert {HOME, OTHER, THIRD} <= enabled
    assert not enabled & {"ap-east-1", "me-south-1", "cn-north-1", "us-gov-west-1"}
    # The multi-region trail is listed in every region, as a shadow outside its home.
    copies = [t for t in observation.state.trails if t.arn == arn]
    assert {t.region for t in copies} == enabled
    assert [t.region for t in copies if not t.is_shadow] == [HOME]
    assert all(t.home_region == HOME and t.is_logging and t.event_selectors == ALL_S3_OBJECTS for t in copies)
    bucket = observation.state.buckets["acme-audit"]
    assert bucket.logging_enabled and not bucket.acl_grants_public
    assert bucket.public_access_block is not None and all(bucket.public_access_block.values())
    assert calls(aws, "ec2", "DescribeRegions") == 1
    assert calls(aws, "cloudtrail", "DescribeTrails") == len(enabled)
    for operation in ("GetTrailStatus", "GetEventSelectors"):
        assert calls(aws, "cloudtrail", operation) == 1
    for operation in ("GetPublicAccessBlock", "GetBucketPolicy", "GetBucketLogging", "GetBucketAcl"):
        assert calls(aws, "s3", operation) == 1
    assert aws.recorder is not None and aws.recorder.mutating_calls() == []


def test_non_compliant_trail_fails_its_controls_for_what_was_read(aws: AwsSessions, setup: AwsSetup) -> None:
    setup.compliant()
    legacy = setup.non_compliant()

    observation = observe_account(aws, None, regions=[HOME, OTHER, THIRD])

    assert "CIS-3.1" not in failed(observation)
    problems = failed(observation, {legacy})
    assert set(problems) == {
        "CIS-3.2",
        "CIS-3.3",
        "TK-BUCKET-BPA",
        "TK-BUCKET-VERSIONING",
        "CIS-3.4",
        "CIS-3.6",
        "CIS-3.7",
        "CIS-3.10",
        "CIS-3.11",
    }
    assert "validation off" in problems["CIS-3.2"]
    assert "no Block Public Access on the bucket or the account" in problems["TK-BUCKET-BPA"]
    assert 'PublicRead allows Principal "*"' in problems["CIS-3.3"]
    assert "ACL grants AllUsers or AuthenticatedUsers" in problems["CIS-3.3"]
    assert "access logging off" in problems["CIS-3.6"]
    assert "no KMS key" in problems["CIS-3.7"]
    bucket = observation.state.buckets["legacy-logs"]
    assert bucket.public_access_block is None and bucket.acl_grants_public
    (trail,) = [t for t in observation.state.trails if t.arn == legacy]
    assert (trail.region, trail.is_logging, trail.is_shadow) == (OTHER, False, False)
    # No selectors ever put: CloudTrail's default (all management events), as the evaluator takes None.
    assert trail.event_selectors is None and trail.advanced_event_selectors is None


def test_given_regions_are_the_enabled_regions_and_describe_regions_is_not_called(
    aws: AwsSessions, setup: AwsSetup
) -> None:
    setup.trail("regional", bucket=setup.bucket("regional-logs"))

    observation = observe_account(aws, None, regions=[HOME])

    assert observation.regions_source == "given"
    assert observation.state.enabled_regions == {HOME}
    assert "TK-REGIONS" not in failed(observation)
    assert calls(aws, "ec2", "DescribeRegions") == 0
    assert calls(aws, "cloudtrail", "DescribeTrails") == 1
    # The same trail leaves another region uncovered.
    wider = observe_account(aws, None, regions=[HOME, OTHER])
    assert f"no logging trail with read and write management events in {OTHER}" in failed(wider)["TK-REGIONS"]


def test_denied_describe_regions_falls_back_to_regions_with_trails_and_says_so(
    aws: AwsSessions, setup: AwsSetup
) -> None:
    setup.compliant()
    setup.trail("eu-only", OTHER, bucket=setup.bucket("eu-only-logs", OTHER), selectors=MANAGEMENT_ONLY)
    cache = EnabledRegionsCache()

    with Stubber(aws.client("ec2", HOME)) as ec2:
        ec2.add_client_error("describe_regions", "UnauthorizedOperation", http_status_code=403)
        observation = observe_account(aws, None, region_cache=cache)
        # The denial is remembered: the next observation asks no more (no stubbed answer is left).
        again = observe_account(aws, None, region_cache=cache)

    assert observation.regions_source == "seen"
    # Only the default region can be listed, so the trail homed in eu-west-1 is not seen and eu-west-1 is
    # not required either: the note says coverage was checked only where trails were seen.
    assert observation.state.enabled_regions == {HOME}
    assert any("DescribeRegions was denied (UnauthorizedOperation)" in note for note in observation.notes)
    assert "TK-REGIONS" not in failed(observation)
    assert again.notes == observation.notes


def test_failing_describe_regions_falls_back_and_is_asked_again_next_time(
    faulty_moto: InProcessMotoServer, fault_injector: FaultInjector, make_aws: MakeAws
) -> None:
    faulty_moto.reset()
    aws = make_aws(faulty_moto.url)
    setup = AwsSetup(faulty_moto.url)
    setup.trail("regional", bucket=setup.bucket("regional-logs"))
    fault_injector.add(FaultRule.server_error("ec2", "DescribeRegions", status=503, count=None))
    cache = EnabledRegionsCache()

    first = observe_account(aws, None, region_cache=cache)
    observe_account(aws, None, region_cache=cache)

    assert first.regions_source == "seen"
    assert first.state.enabled_regions == {HOME}
    assert any("DescribeRegions failed (ServiceUnavailable)" in note for note in first.notes)
    assert "TK-REGIONS" not in failed(first)
    # An outage is not remembered: the next observation asks again.
    assert [h.operation for h in fault_injector.hits] == ["DescribeRegions", "DescribeRegions"]


def _regions_answer(*regions: str) -> dict[str, Any]:
    return {"Regions": [{"RegionName": r, "OptInStatus": "opt-in-not-required"} for r in regions]}


def test_regions_cache_expires_after_its_ttl(aws: AwsSessions) -> None:
    now = [0.0]
    cache = EnabledRegionsCache(ttl_seconds=3600, clock=lambda: now[0])

    with Stubber(aws.client("ec2", HOME)) as ec2:
        ec2.add_response("describe_regions", _regions_answer(HOME, OTHER))
        ec2.add_response("describe_regions", _regions_answer(HOME))
        assert observe_account(aws, None, region_cache=cache).state.enabled_regions == {HOME, OTHER}
        now[0] = 3599.0
        assert observe_account(aws, None, region_cache=cache).state.enabled_regions == {HOME, OTHER}
        now[0] = 3600.0
        assert observe_account(aws, None, region_cache=cache).state.enabled_regions == {HOME}
        ec2.assert_no_pending_responses()


def test_missing_bucket_is_not_observed_and_fails_the_bucket_controls(
    aws: AwsSessions, setup: AwsSetup
) -> None:
    arn = setup.trail("orphan", bucket=setup.bucket("soon-gone", access_logging=False))
    s3 = setup.client("s3")
    s3.delete_bucket_policy(Bucket="soon-gone")
    s3.delete_public_access_block(Bucket="soon-gone")
    s3.delete_bucket(Bucket="soon-gone")

    observation = observe_account(aws, None, regions=[HOME])

    assert "soon-gone" not in observation.state.buckets
    assert "bucket soon-gone: does not exist" in observation.notes
    problems = failed(observation, {arn})
    assert problems["CIS-3.3"] == problems["CIS-3.6"] == "soon-gone: not observed"


def test_another_accounts_bucket_is_not_observed(aws: AwsSessions, setup: AwsSetup) -> None:
    # moto lets any account read any bucket; S3 answers 403 for another account's.
    arn = setup.trail("cross", bucket=setup.bucket("central-logs"))

    with Stubber(aws.client("s3", HOME)) as s3:
        s3.add_client_error("get_public_access_block", "AccessDenied", http_status_code=403)
        observation = observe_account(aws, None, regions=[HOME])

    assert "central-logs" not in observation.state.buckets
    assert any("central-logs: not readable (another account's" in note for note in observation.notes)
    assert failed(observation, {arn})["CIS-3.3"] == "central-logs: not observed"


def _listing(name: str, region: str = HOME) -> dict[str, Any]:
    return {
        "trailList": [
            {
                "Name": name,
                "S3BucketName": "some-bucket",
                "HomeRegion": region,
                "TrailARN": f"arn:aws:cloudtrail:{region}:{ACCOUNT}:trail/{name}",
                "IsMultiRegionTrail": True,
                "IncludeGlobalServiceEvents": True,
                "LogFileValidationEnabled": True,
            }
        ]
    }


@pytest.fixture
def stubbed_cloudtrail(aws: AwsSessions) -> Iterator[Stubber]:
    with Stubber(aws.client("cloudtrail", HOME)) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_trail_deleted_after_listing_is_left_out(aws: AwsSessions, stubbed_cloudtrail: Stubber) -> None:
    stubbed_cloudtrail.add_response("describe_trails", _listing("fleeting"))
    stubbed_cloudtrail.add_client_error("get_trail_status", "TrailNotFoundException", http_status_code=400)

    observation = observe_account(aws, None, regions=[HOME])

    assert observation.state.trails == []
    assert observation.trail_arns == frozenset()
    assert observation.notes == (
        "us-east-1/fleeting: listed but not found when read (deleted meanwhile); left out",
    )
    assert failed(observation)["CIS-3.1"] == "no trail in the account"


def test_unreadable_selectors_count_as_recording_nothing(
    aws: AwsSessions, stubbed_cloudtrail: Stubber
) -> None:
    stubbed_cloudtrail.add_response("describe_trails", _listing("guarded"))
    stubbed_cloudtrail.add_response("get_trail_status", {"IsLogging": True})
    stubbed_cloudtrail.add_client_error("get_event_selectors", "AccessDeniedException", http_status_code=400)

    observation = observe_account(aws, None, regions=[HOME])

    assert any(
        "guarded: event selectors not readable (AccessDeniedException)" in n for n in observation.notes
    )
    assert "records no management events" in failed(observation)["TK-REGIONS"]


def test_denied_listing_of_a_region_is_a_note_and_leaves_it_uncovered(
    aws: AwsSessions, stubbed_cloudtrail: Stubber, setup: AwsSetup
) -> None:
    setup.trail("eu-trail", OTHER, bucket=setup.bucket("eu-logs", OTHER))
    stubbed_cloudtrail.add_client_error("describe_trails", "AccessDeniedException", http_status_code=400)

    observation = observe_account(aws, None, regions=[HOME, OTHER])

    assert f"{HOME}: trails not listed (AccessDeniedException); no trail counted there" in observation.notes
    assert f"in {HOME}" in failed(observation)["TK-REGIONS"]


def test_throttled_listing_raises_an_aws_error(
    faulty_moto: InProcessMotoServer, fault_injector: FaultInjector, make_aws: MakeAws
) -> None:
    faulty_moto.reset()
    fault_injector.add(FaultRule.throttle("cloudtrail", "DescribeTrails", count=None))

    with pytest.raises(AwsError) as raised:
        observe_account(make_aws(faulty_moto.url), None, regions=[HOME])

    assert raised.value.failure.kind == "throttled"
