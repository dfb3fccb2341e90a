"""The IAM policy grants exactly the AWS actions the operator's code calls, and parliament finds it sound.

The operations are the ones recorded on operator code paths (see ``support/aws_usage.py``): over the
whole test run when that plugin is registered (this module then runs last), plus a scenario of this
module's own that walks every reconcile path, so the check means something when run alone too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import parliament
import pytest

from support.aws_usage import USAGE_KEY, AwsUsage
from support.cis_monitoring import make_monitoring
from support.moto_server import MotoServer
from support.s3control_front import s3control_on_endpoint_host
from trailkeeper.api.logretention import LogRetentionSpec
from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.account_state import observe_account
from trailkeeper.aws.session import AwsSessions
from trailkeeper.aws.topics import TopicClient
from trailkeeper.core.drift import Fix
from trailkeeper.core.monitoring import name_prefix
from trailkeeper.iam_policy import (
    NO_PERMISSION_OPERATIONS,
    REQUIRED_OPERATIONS,
    actions_for,
    iam_policy_document,
    policy_actions,
    render_iam_policy,
)
from trailkeeper.reconcile.logretention import (
    RetentionRequest,
    RetentionTarget,
    delete_log_retention,
    reconcile_log_retention,
    targets_of_trail,
)
from trailkeeper.reconcile.shared import Shared
from trailkeeper.reconcile.trail import TrailRequest, delete_trail, reconcile_trail, removed_subscriptions

ACCOUNT = "123456789012"
REMOTE_ROLE = "arn:aws:iam::210987654321:role/trailkeeper-remote"
REGIONS = ("us-east-1", "eu-west-1")
KEY_ALIAS = "alias/trailkeeper-audit"
NAMESPACE = "security"
FOREIGN_STATEMENT = {
    "Sid": "AnalyticsRead",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/analytics"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::tk-iam-audit-us-east-1/reports/*",
}
HOOK = {"protocol": "https", "endpoint": "https://hooks.example.com/ct", "rawMessageDelivery": True}
MAIL = {"protocol": "email", "endpoint": "security@example.com"}

# Findings parliament reports that come with what the operator is for, each explained. Writing bucket
# policies (PutBucketPolicy) is how a Trail lets CloudTrail deliver, and a principal that can write a
# bucket policy could grant itself object access; lifecycle rules (PutLifecycleConfiguration) are what a
# LogRetention is, and an expiration rule deletes objects. No object action is granted.
ACCEPTED_FINDINGS = {
    ("RESOURCE_POLICY_PRIVILEGE_ESCALATION", "PutObject", "PutBucketPolicy"),
    ("RESOURCE_POLICY_PRIVILEGE_ESCALATION", "GetObject", "PutBucketPolicy"),
    ("RESOURCE_POLICY_PRIVILEGE_ESCALATION", "DeleteObject", "PutBucketPolicy"),
    ("RESOURCE_POLICY_PRIVILEGE_ESCALATION", "DeleteObject", "PutLifecycleConfiguration"),
}
ESCALATION = re.compile(r"due to s3:(\w+) not being allowed, but does allow s3:(\w+)")


# -- the document -----------------------------------------------------------------------------------


def allowed_actions(document: dict[str, Any]) -> set[str]:
    actions: set[str] = set()
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def resource_of(document: dict[str, Any], action: str) -> str:
    (resource,) = [s["Resource"] for s in document["Statement"] if action in s["Action"]]
    return str(resource)


def test_document_is_a_valid_identity_policy_with_one_statement_per_scope() -> None:
    document = iam_policy_document()
    assert document["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in document["Statement"]]
    assert len(sids) == len(set(sids))
    assert all(s["Action"] == sorted(s["Action"]) and s["Action"] for s in document["Statement"])
    assert allowed_actions(document) == policy_actions()
    assert not any("*" in action for action in allowed_actions(document))


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("cloudtrail:CreateTrail", "arn:aws:cloudtrail:*:*:trail/*"),
        ("cloudtrail:GetTrailStatus", "arn:aws:cloudtrail:*:*:trail/*"),
        ("cloudtrail:DescribeTrails", "*"),
        ("s3:PutBucketPolicy", "arn:aws:s3:::*"),
        ("sns:CreateTopic", "arn:aws:sns:*:*:*"),
        ("sns:Unsubscribe", "*"),
        ("sts:AssumeRole", "arn:aws:iam::*:role/*"),
        ("kms:DescribeKey", "arn:aws:kms:*:*:key/*"),
        ("ec2:DescribeRegions", "*"),
        ("iam:PassRole", "arn:aws:iam::*:role/*"),
    ],
)
def test_resources_are_scoped_as_far_as_aws_allows(action: str, resource: str) -> None:
    assert resource_of(iam_policy_document(), action) == resource


def test_pass_role_is_only_to_cloudtrail() -> None:
    (statement,) = [s for s in iam_policy_document()["Statement"] if "iam:PassRole" in s["Action"]]
    assert statement["Action"] == ["iam:PassRole"]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudtrail.amazonaws.com"}}


def test_other_partitions_get_their_arns() -> None:
    document = iam_policy_document("aws-us-gov")
    assert resource_of(document, "s3:CreateBucket") == "arn:aws-us-gov:s3:::*"
    assert resource_of(document, "cloudtrail:DescribeTrails") == "*"


def test_rendered_policy_is_the_document_as_json() -> None:
    text = render_iam_policy()
    assert json.loads(text) == iam_policy_document()
    assert text.endswith("}\n") and "\n  " in text


@pytest.mark.parametrize(
    ("service", "operation", "actions"),
    [
        ("s3", "HeadBucket", {"s3:ListBucket"}),
        ("s3", "GetBucketPolicy", {"s3:GetBucketPolicy"}),
        ("s3", "PutBucketLifecycleConfiguration", {"s3:PutLifecycleConfiguration"}),
        ("s3", "GetBucketLifecycleConfiguration", {"s3:GetLifecycleConfiguration"}),
        ("s3", "DeleteBucketLifecycle", {"s3:PutLifecycleConfiguration"}),
        ("s3", "GetBucketLocation", {"s3:GetBucketLocation"}),
        ("s3", "ListObjectVersions", {"s3:ListBucketVersions"}),
        ("s3", "PutPublicAccessBlock", {"s3:PutBucketPublicAccessBlock"}),
        ("s3", "GetPublicAccessBlock", {"s3:GetBucketPublicAccessBlock"}),
        ("s3", "PutBucketEncryption", {"s3:PutEncryptionConfiguration"}),
        ("s3", "GetBucketEncryption", {"s3:GetEncryptionConfiguration"}),
        ("s3", "DeleteBucketPolicy", {"s3:DeleteBucketPolicy"}),
        ("cloudtrail", "CreateTrail", {"cloudtrail:CreateTrail", "cloudtrail:AddTags", "iam:PassRole"}),
        ("cloudtrail", "DescribeTrails", {"cloudtrail:DescribeTrails"}),
        ("ec2", "DescribeRegions", {"ec2:DescribeRegions"}),
        ("s3", "GetBucketAcl", {"s3:GetBucketAcl"}),
        ("sns", "CreateTopic", {"sns:CreateTopic", "sns:TagResource"}),
        ("sns", "Unsubscribe", {"sns:Unsubscribe"}),
        ("sts", "AssumeRole", {"sts:AssumeRole"}),
        ("sts", "GetCallerIdentity", set()),
    ],
)
def test_operation_maps_to_its_iam_actions(service: str, operation: str, actions: set[str]) -> None:
    assert actions_for(service, operation) == actions


def test_an_operation_the_policy_does_not_know_is_not_guessed() -> None:
    with pytest.raises(KeyError, match="s3:GetObject"):
        actions_for("s3", "GetObject")


def test_parliament_finds_nothing_beyond_the_accepted_bucket_policy_findings() -> None:
    policy = parliament.analyze_policy_string(json.dumps(iam_policy_document()))
    found: set[tuple[str, ...]] = set()
    for finding in policy.findings:
        escalation = ESCALATION.search(str(finding.detail))
        found.add(
            (finding.issue, *escalation.groups()) if escalation else (finding.issue, str(finding.detail))
        )
    assert found <= ACCEPTED_FINDINGS, sorted(found - ACCEPTED_FINDINGS)


# -- the operations the code calls ------------------------------------------------------------------


def trail_spec(**overrides: Any) -> TrailSpec:
    body: dict[str, Any] = {
        "regions": list(REGIONS),
        "destination": {"bucket": "tk-iam-audit-{region}", "keyPrefix": "ct", "kmsKeyId": KEY_ALIAS},
        "notifications": {"topicName": "audit-deliveries", "subscriptions": [MAIL, HOOK]},
        "eventSelectors": [
            {"readWriteType": "All", "dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3"]}]}
        ],
        "insights": ["ApiCallRateInsight"],
        "cloudWatchLogs": {
            "logGroupArn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:audit:*",
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/cloudtrail-to-logs",
        },
        "tags": {"team": "security"},
        "deletionPolicy": "Delete",
    }
    body.update(overrides)
    return TrailSpec.model_validate(body)


def retention_spec(**overrides: Any) -> LogRetentionSpec:
    body: dict[str, Any] = {
        "transitions": [{"days": 90, "storageClass": "GLACIER"}],
        "expirationDays": 400,
        "deletionPolicy": "Delete",
    }
    body.update(overrides)
    return LogRetentionSpec.model_validate(body)


def check(outcome: Any) -> Any:
    """The outcome of a reconcile step, after asserting every region or bucket got through."""
    assert outcome.failures == [], [str(f) for f in outcome.failures]
    return outcome


@contextmanager
def head_bucket_names_no_region(aws: AwsSessions, region: str) -> Iterator[None]:
    """HeadBucket answers without the bucket's region, as some S3-compatible endpoints do, so the code
    falls back on GetBucketLocation (S3 itself always names the region, and so does moto)."""
    client = aws.client("s3", region)

    def strip(parsed: dict[str, Any], **_: Any) -> None:
        parsed.pop("BucketRegion", None)
        parsed.get("ResponseMetadata", {}).get("HTTPHeaders", {}).pop("x-amz-bucket-region", None)

    client.meta.events.register("after-call.s3.HeadBucket", strip)
    try:
        yield
    finally:
        client.meta.events.unregister("after-call.s3.HeadBucket", strip)


def drift_everything(aws: AwsSessions, trail_arn: str) -> None:
    """What someone else does to the Trail's resources behind the operator's back."""
    cloudtrail = aws.client("cloudtrail", "us-east-1")
    cloudtrail.stop_logging(Name="audit")
    cloudtrail.update_trail(Name="audit", EnableLogFileValidation=False)
    cloudtrail.add_tags(
        ResourceId=trail_arn, TagsList=[{"Key": "team", "Value": "other"}, {"Key": "rogue", "Value": "x"}]
    )
    s3 = aws.client("s3", "us-east-1")
    policy = {"Version": "2012-10-17", "Statement": [FOREIGN_STATEMENT]}
    s3.put_bucket_policy(Bucket="tk-iam-audit-us-east-1", Policy=json.dumps(policy))
    s3.put_bucket_versioning(Bucket="tk-iam-audit-us-east-1", VersioningConfiguration={"Status": "Suspended"})
    sns = aws.client("sns", "us-east-1")
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:audit-deliveries"
    for sub in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
        if sub["Protocol"] == "https":
            sns.set_subscription_attributes(
                SubscriptionArn=sub["SubscriptionArn"],
                AttributeName="RawMessageDelivery",
                AttributeValue="false",
            )


def run_monitoring_paths(aws: AwsSessions, shared: Shared) -> None:
    """A Trail with spec.monitoring: made, drifted and corrected, its retention dropped, then deleted."""
    body: dict[str, Any] = {
        "regions": ["us-east-1"],
        "multiRegion": True,
        "destination": {"bucket": "tk-iam-monitored"},
        "notifications": {"topicName": "tk-iam-alarms"},
        "monitoring": {"retentionDays": 90},
        "deletionPolicy": "Delete",
    }
    request = TrailRequest(namespace=NAMESPACE, name="monitored", spec=TrailSpec.model_validate(body))
    check(reconcile_trail(request, aws, shared))
    prefix = name_prefix(request.owner)
    logs = aws.client("logs", "us-east-1")
    logs.delete_metric_filter(logGroupName="aws-cloudtrail-logs/monitored", filterName=f"{prefix}vpc-changes")
    aws.client("iam", "us-east-1").update_assume_role_policy(
        RoleName="trailkeeper-cloudtrail-monitored",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudtrail.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    corrected = check(reconcile_trail(request, aws, shared))
    assert {d.fix for d in corrected.diffs} == {Fix.PUT_METRIC_FILTER, Fix.PUT_TRUST_POLICY}
    unlimited = TrailSpec.model_validate({**body, "monitoring": {}})
    check(reconcile_trail(TrailRequest(NAMESPACE, "monitored", unlimited), aws, shared))
    check(delete_trail(request, aws, shared))


def run_every_reconcile_path(aws: AwsSessions) -> None:
    """A Trail's and two LogRetentions' lives: create, re-check, correct drift, change, delete; and a
    Trail in another account through its role."""
    shared = Shared()
    for region in REGIONS:
        kms = aws.client("kms", region)
        kms.create_alias(AliasName=KEY_ALIAS, TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])

    run_monitoring_paths(aws, shared)

    spec = trail_spec()
    request = TrailRequest(namespace=NAMESPACE, name="audit", spec=spec)
    created = check(reconcile_trail(request, aws, shared))
    assert created.changes
    check(reconcile_trail(request, aws, shared))
    # The compliance observation of the account (DescribeRegions, its trails and their buckets).
    observed = observe_account(aws, None, monitoring=False)
    assert set(observed.state.buckets) >= {f"tk-iam-audit-{region}" for region in REGIONS}
    # The operator's compliance observation of the account, the Monitoring section's reads included.
    make_monitoring(lambda service: aws.client(service, "us-east-1"), "us-east-1", bucket="tk-iam-cis")
    with s3control_on_endpoint_host():
        assert observe_account(aws, None, regions=list(REGIONS)).state.monitoring is not None
    aws.client("cloudtrail", "us-east-1").delete_trail(Name="cis-audit")

    arn = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/audit"
    drift_everything(aws, arn)
    corrected = check(reconcile_trail(request, aws, shared))
    assert {d.resource for d in corrected.diffs} >= {
        "trail/us-east-1",
        "bucket/tk-iam-audit-us-east-1",
        "bucket-policy/tk-iam-audit-us-east-1",
        "subscription/us-east-1",
    }, corrected.diffs

    # The spec changes: logging off, the mail subscription and the team tag dropped.
    changed = trail_spec(
        logging=False, notifications={"topicName": "audit-deliveries", "subscriptions": [HOOK]}, tags={}
    )
    update = TrailRequest(
        namespace=NAMESPACE,
        name="audit",
        spec=changed,
        removed_subscriptions=removed_subscriptions(spec, changed),
        removed_tags=("team",),
    )
    check(reconcile_trail(update, aws, shared))

    # One LogRetention follows the Trail's buckets, another names a bucket without its region.
    by_trail = RetentionRequest(
        NAMESPACE,
        "keep-trail",
        retention_spec(trailRef={"name": "audit"}),
        tuple(targets_of_trail(changed, None)),
    )
    check(reconcile_log_retention(by_trail, aws, shared))
    explicit_spec = retention_spec(bucket="tk-iam-audit-eu-west-1")
    by_bucket = RetentionRequest(
        NAMESPACE,
        "keep-bucket",
        explicit_spec,
        (RetentionTarget("tk-iam-audit-eu-west-1", None, "AWSLogs/"),),
    )
    with head_bucket_names_no_region(aws, aws.default_region or "us-east-1"):
        check(reconcile_log_retention(by_bucket, aws, shared))
    check(delete_log_retention(by_trail, aws, shared))
    check(delete_log_retention(by_bucket, aws, shared))

    deleted = check(delete_trail(update, aws, shared))
    assert any("deleted trail" in c.action for c in deleted.changes), deleted.changes
    assert not aws.client("cloudtrail", "us-east-1").describe_trails()["trailList"]

    remote = TrailSpec.model_validate(
        {
            "regions": ["us-east-1"],
            "destination": {"bucket": "tk-iam-remote"},
            "account": {"roleArn": REMOTE_ROLE, "externalId": "trailkeeper"},
            "deletionPolicy": "Delete",
        }
    )
    remote_request = TrailRequest(namespace=NAMESPACE, name="remote", spec=remote)
    assert check(reconcile_trail(remote_request, aws, shared)).account_id == REMOTE_ROLE.split(":")[4]
    check(delete_trail(remote_request, aws, shared))


@pytest.fixture
def called_operations(
    request: pytest.FixtureRequest, moto_server: MotoServer, aws: AwsSessions
) -> frozenset[tuple[str, str]]:
    """Operations called on operator code paths: this module's scenario, and the whole run's."""
    scenario = AwsUsage()
    with scenario.watching():
        run_every_reconcile_path(aws)
    session = request.config.stash.get(USAGE_KEY, None)
    return scenario.operator_operations | (session.operator_operations if session else frozenset())


def test_policy_allows_every_call_the_code_makes_and_nothing_else(
    called_operations: frozenset[tuple[str, str]],
) -> None:
    unknown = sorted(f"{s}:{o}" for s, o in called_operations if o not in REQUIRED_OPERATIONS.get(s, set()))
    assert not unknown, f"the code calls operations missing from REQUIRED_OPERATIONS: {unknown}"

    needed = {action for service, op in called_operations for action in actions_for(service, op)}
    granted = allowed_actions(iam_policy_document())
    assert not needed - granted, f"the policy misses: {sorted(needed - granted)}"
    assert not granted - needed, f"the policy grants what no call needs: {sorted(granted - needed)}"

    listed = {(service, op) for service, ops in REQUIRED_OPERATIONS.items() for op in ops}
    never_called = sorted(f"{s}:{o}" for s, o in listed - called_operations)
    assert not never_called, f"REQUIRED_OPERATIONS lists operations nothing calls: {never_called}"


def test_operations_needing_no_permission_are_known_operations() -> None:
    for service, operation in NO_PERMISSION_OPERATIONS:
        assert operation in REQUIRED_OPERATIONS[service]
        assert actions_for(service, operation) == frozenset()


def test_only_calls_made_on_operator_code_paths_are_counted(aws: AwsSessions) -> None:
    usage = AwsUsage()
    with usage.watching():
        aws.client("s3", "us-east-1").list_buckets()  # a test looking at moto itself
        arn = aws.client("sns", "us-east-1").create_topic(Name="t")["TopicArn"]
        topics = TopicClient(aws.client("sns", "us-east-1"), "us-east-1", ACCOUNT)
        topics.set_tags(arn, {"a": "b"}, {})  # a client method no entry point uses
        aws.account_id()  # the sessions are an entry point: every pass asks who it acts as
        missing = RetentionRequest(
            NAMESPACE,
            "keep",
            retention_spec(bucket="tk-iam-missing"),
            (RetentionTarget("tk-iam-missing", None, ""),),
        )
        reconcile_log_retention(missing, aws, Shared())

    assert {("s3", "ListBuckets"), ("sns", "CreateTopic"), ("sns", "TagResource")} <= usage.all_operations
    assert usage.operator_operations == {("sts", "GetCallerIdentity"), ("s3", "HeadBucket")}
