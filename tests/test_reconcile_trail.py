"""The Trail reconciler against moto over HTTP: AWS reaches the spec, and a steady state changes nothing."""

from __future__ import annotations

import json
import threading
from typing import Any

from trailkeeper.api.trail import MANAGED_TAGS_KEY, TrailSpec
from trailkeeper.aws.session import AccountRef, AwsSessions
from trailkeeper.core.bucket_share import BUCKET_POLICY_MAX_BYTES, BucketShare, missing_entries, policy_bytes
from trailkeeper.core.naming import OWNER_TAG
from trailkeeper.core.tags import desired_tags, managed_record
from trailkeeper.reconcile.shared import Shared
from trailkeeper.reconcile.trail import TrailRequest, delete_trail, reconcile_trail

ACCOUNT = "123456789012"
FOREIGN_STATEMENT = {
    "Sid": "AnalyticsRead",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:role/analytics"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::shared-audit/reports/*",
}


def spec(**overrides: Any) -> TrailSpec:
    body: dict[str, Any] = {"regions": ["us-east-1"], "destination": {"bucket": "acme-audit"}}
    body.update(overrides)
    return TrailSpec.model_validate(body)


def request(trail_spec: TrailSpec, name: str = "audit", **kwargs: Any) -> TrailRequest:
    return TrailRequest(namespace="security", name=name, spec=trail_spec, **kwargs)


def mutating(aws: AwsSessions) -> list[str]:
    assert aws.recorder is not None
    return [f"{c.service}:{c.operation}" for c in aws.recorder.snapshot() if c.mutating]


def bucket_policy(aws: AwsSessions, bucket: str, account: AccountRef | None = None) -> dict[str, Any]:
    text = aws.client("s3", "us-east-1", account).get_bucket_policy(Bucket=bucket)["Policy"]
    return dict(json.loads(text))


def test_first_pass_creates_bucket_trail_and_starts_logging(aws: AwsSessions) -> None:
    outcome = reconcile_trail(request(spec()), aws, Shared())
    assert outcome.failures == []
    assert outcome.account_id == ACCOUNT
    cloudtrail = aws.client("cloudtrail", "us-east-1")
    trail = cloudtrail.get_trail(Name="audit")["Trail"]
    assert trail["S3BucketName"] == "acme-audit"
    assert trail["LogFileValidationEnabled"] is True
    assert cloudtrail.get_trail_status(Name="audit")["IsLogging"] is True
    s3 = aws.client("s3", "us-east-1")
    assert s3.get_bucket_versioning(Bucket="acme-audit")["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket="acme-audit")["PublicAccessBlockConfiguration"]
    assert all(block.values())
    policy = bucket_policy(aws, "acme-audit")
    assert missing_entries(policy, BucketShare("acme-audit", "", ACCOUNT, "audit")) == []
    assert len(policy["Statement"]) == 3  # the ACL check, the write and the TLS-only deny
    region = outcome.regions[0]
    assert region.trail_arn == f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/audit"
    assert region.is_logging is True


def test_second_pass_on_unchanged_aws_makes_no_mutating_call(aws: AwsSessions) -> None:
    full = spec(
        regions=["us-east-1", "eu-west-1"],
        destination={"bucket": "acme-audit-{region}", "keyPrefix": "ct"},
        notifications={
            "topicName": "deliveries",
            "subscriptions": [
                {"protocol": "email", "endpoint": "sec@example.com"},
                {"protocol": "https", "endpoint": "https://hooks.example.com/ct", "rawMessageDelivery": True},
            ],
        },
        eventSelectors=[
            {"readWriteType": "All", "dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3"]}]}
        ],
        insights=["ApiCallRateInsight"],
        tags={"team": "security"},
    )
    first = reconcile_trail(request(full), aws, Shared())
    assert first.failures == [] and first.changes
    assert aws.recorder is not None
    aws.recorder.reset()
    second = reconcile_trail(request(full), aws, Shared())
    assert second.failures == []
    assert second.diffs == [], second.diffs
    assert mutating(aws) == []
    # Access logging is CIS 3.6's, no part of the spec: a pass does not read it.
    assert aws.recorder.counts()[("s3", "GetBucketLogging")] == 0


def test_foreign_statements_are_kept_exactly(aws: AwsSessions) -> None:
    s3 = aws.client("s3", "us-east-1")
    s3.create_bucket(Bucket="shared-audit")
    s3.put_bucket_policy(
        Bucket="shared-audit", Policy=json.dumps({"Version": "2012-10-17", "Statement": [FOREIGN_STATEMENT]})
    )
    outcome = reconcile_trail(
        request(spec(destination={"bucket": "shared-audit", "createBucket": False})), aws, Shared()
    )
    assert outcome.failures == []
    statements = bucket_policy(aws, "shared-audit")["Statement"]
    assert statements[0] == FOREIGN_STATEMENT
    assert len(statements) > 1


def test_two_trails_sharing_a_bucket_concurrently_keep_both_sets(aws: AwsSessions) -> None:
    aws.client("s3", "us-east-1").create_bucket(Bucket="shared-audit")
    shared = Shared()
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            trail_spec = spec(
                trailName=f"{name}-trail", destination={"bucket": "shared-audit", "createBucket": False}
            )
            outcome = reconcile_trail(request(trail_spec, name=name), aws, shared)
            assert outcome.failures == []
        except BaseException as error:  # collected and re-raised in the test thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("alpha", "beta", "gamma")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    policy = bucket_policy(aws, "shared-audit")
    for name in ("alpha", "beta", "gamma"):
        share = BucketShare("shared-audit", "", ACCOUNT, f"{name}-trail")
        assert missing_entries(policy, share) == [], f"entries of {name} lost"
    assert len(policy["Statement"]) == 3  # aggregated, whatever the number of Trails


def test_unowned_trail_of_the_same_name_is_a_conflict_and_untouched(aws: AwsSessions) -> None:
    s3 = aws.client("s3", "us-east-1")
    s3.create_bucket(Bucket="someone-elses")
    cloudtrail = aws.client("cloudtrail", "us-east-1")
    cloudtrail.create_trail(Name="audit", S3BucketName="someone-elses")
    assert aws.recorder is not None
    outcome = reconcile_trail(request(spec()), aws, Shared())
    assert [f.code for f in outcome.failures] == ["Conflict"]
    assert cloudtrail.get_trail(Name="audit")["Trail"]["S3BucketName"] == "someone-elses"
    assert "cloudtrail:UpdateTrail" not in mutating(aws)
    assert "cloudtrail:StartLogging" not in mutating(aws)


def test_adopt_takes_over_an_unowned_trail(aws: AwsSessions) -> None:
    aws.client("s3", "us-east-1").create_bucket(Bucket="someone-elses")
    cloudtrail = aws.client("cloudtrail", "us-east-1")
    arn = cloudtrail.create_trail(Name="audit", S3BucketName="someone-elses")["TrailARN"]
    outcome = reconcile_trail(request(spec(adopt=True)), aws, Shared())
    assert outcome.failures == []
    assert cloudtrail.get_trail(Name="audit")["Trail"]["S3BucketName"] == "acme-audit"
    tags = cloudtrail.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"]
    assert {"Key": OWNER_TAG, "Value": "security/audit"} in tags


def test_out_of_band_stop_logging_is_found_and_put_back(aws: AwsSessions) -> None:
    reconcile_trail(request(spec()), aws, Shared())
    cloudtrail = aws.client("cloudtrail", "us-east-1")
    cloudtrail.stop_logging(Name="audit")
    report = reconcile_trail(request(spec(), act=False), aws, Shared())
    assert [(d.resource, d.field, d.desired, d.actual) for d in report.diffs] == [
        ("trail/us-east-1", "IsLogging", "true", "false")
    ]
    assert cloudtrail.get_trail_status(Name="audit")["IsLogging"] is False
    corrected = reconcile_trail(request(spec()), aws, Shared())
    assert corrected.diffs and corrected.changes
    assert cloudtrail.get_trail_status(Name="audit")["IsLogging"] is True


def test_multi_account_bucket_through_an_assumed_role(aws: AwsSessions) -> None:
    member = "111111111111"
    trail_spec = spec(
        trailName="central",
        destination={"bucket": "central-audit", "sourceAccounts": ["222222222222"]},
        account={"roleArn": f"arn:aws:iam::{member}:role/trailkeeper"},
    )
    outcome = reconcile_trail(request(trail_spec), aws, Shared())
    assert outcome.failures == []
    assert outcome.account_id == member
    assert outcome.regions[0].trail_arn == f"arn:aws:cloudtrail:us-east-1:{member}:trail/central"
    # The bucket is the member account's: only it may read the policy.
    role = AccountRef(f"arn:aws:iam::{member}:role/trailkeeper")
    policy = json.dumps(bucket_policy(aws, "central-audit", role))
    assert f"AWSLogs/{member}/*" in policy and "AWSLogs/222222222222/*" in policy
    own = aws.client("cloudtrail", "us-east-1").describe_trails()["trailList"]
    assert all(t["Name"] != "central" for t in own), "the trail must live in the member account"


def test_delete_removes_trail_and_own_statements_and_keeps_a_bucket_with_logs(aws: AwsSessions) -> None:
    trail_spec = spec(deletionPolicy="Delete")
    reconcile_trail(request(trail_spec), aws, Shared())
    s3 = aws.client("s3", "us-east-1")
    policy = bucket_policy(aws, "acme-audit")
    # moto enforces our deny of non-TLS access on plain-http object writes: lift it to drop a log file in.
    s3.delete_bucket_policy(Bucket="acme-audit")
    s3.put_object(Bucket="acme-audit", Key="AWSLogs/123456789012/log.json.gz", Body=b"{}")
    policy["Statement"].append({**FOREIGN_STATEMENT, "Resource": "arn:aws:s3:::acme-audit/reports/*"})
    s3.put_bucket_policy(Bucket="acme-audit", Policy=json.dumps(policy))
    outcome = delete_trail(request(trail_spec), aws, Shared())
    assert outcome.failures == []
    names = [t["Name"] for t in aws.client("cloudtrail", "us-east-1").describe_trails()["trailList"]]
    assert "audit" not in names
    assert [s["Sid"] for s in bucket_policy(aws, "acme-audit")["Statement"]] == ["AnalyticsRead"]
    assert s3.head_bucket(Bucket="acme-audit")["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_retain_deletion_leaves_aws_as_it_is(aws: AwsSessions) -> None:
    reconcile_trail(request(spec()), aws, Shared())
    delete_trail(request(spec()), aws, Shared())
    assert aws.client("cloudtrail", "us-east-1").get_trail_status(Name="audit")["IsLogging"] is True


def test_one_failing_region_does_not_stop_the_others(aws: AwsSessions) -> None:
    # The eu-west-1 bucket is missing and may not be created: that region fails, us-east-1 goes on.
    trail_spec = spec(
        regions=["us-east-1", "eu-west-1"], destination={"bucket": "acme-{region}", "createBucket": False}
    )
    aws.client("s3", "us-east-1").create_bucket(Bucket="acme-us-east-1")
    outcome = reconcile_trail(request(trail_spec), aws, Shared())
    failed = {r.region: r.failure.code for r in outcome.regions if r.failure}
    assert failed == {"eu-west-1": "NoSuchBucket"}
    assert aws.client("cloudtrail", "us-east-1").get_trail_status(Name="audit")["IsLogging"] is True
    assert len(outcome.regions) == 2


def test_kms_alias_is_resolved_so_a_steady_state_is_not_rewritten(aws: AwsSessions) -> None:
    kms = aws.client("kms", "us-east-1")
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/cloudtrail", TargetKeyId=key["KeyId"])
    trail_spec = spec(destination={"bucket": "acme-audit", "kmsKeyId": "alias/cloudtrail"})
    reconcile_trail(request(trail_spec), aws, Shared())
    trail = aws.client("cloudtrail", "us-east-1").get_trail(Name="audit")["Trail"]
    assert trail["KmsKeyId"] in (key["Arn"], "alias/cloudtrail")
    assert aws.recorder is not None
    aws.recorder.reset()
    again = reconcile_trail(request(trail_spec), aws, Shared())
    assert [d.field for d in again.diffs if d.resource.startswith("trail/")] == []
    assert "cloudtrail:UpdateTrail" not in mutating(aws)


def test_a_tag_dropped_from_the_spec_is_taken_off_and_tags_of_others_stay(aws: AwsSessions) -> None:
    reconcile_trail(request(spec(tags={"team": "audit", "cost-center": "42"})), aws, Shared())
    cloudtrail = aws.client("cloudtrail", "us-east-1")
    arn = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/audit"
    cloudtrail.add_tags(ResourceId=arn, TagsList=[{"Key": "backup", "Value": "daily"}])

    outcome = reconcile_trail(
        request(spec(tags={"team": "audit"}), removed_tags=("cost-center",)), aws, Shared()
    )

    assert [(d.field, d.desired, d.actual) for d in outcome.diffs if d.resource.startswith("trail/")] == [
        (f"Tags[{MANAGED_TAGS_KEY}]", managed_record(["team"]), managed_record(["team", "cost-center"])),
        ("Tags[cost-center]", "(none)", "42"),
    ]
    listed = cloudtrail.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"]
    tags = {t["Key"]: t["Value"] for t in listed}
    assert tags == {**desired_tags({"team": "audit"}, "security/audit"), "backup": "daily"}
    # A key no spec change dropped is never taken off, even when the spec does not name it.
    before = len(mutating(aws))
    again = reconcile_trail(request(spec(tags={"team": "audit"})), aws, Shared())
    assert again.diffs == [] and len(mutating(aws)) == before


def test_a_trail_leaving_a_shared_bucket_takes_only_its_own_entries(aws: AwsSessions) -> None:
    aws.client("s3", "us-east-1").create_bucket(Bucket="shared-audit")
    specs = {
        name: spec(
            trailName=f"{name}-trail",
            deletionPolicy="Delete",
            destination={"bucket": "shared-audit", "createBucket": False},
        )
        for name in ("alpha", "beta")
    }
    for name, trail_spec in specs.items():
        assert reconcile_trail(request(trail_spec, name=name), aws, Shared()).failures == []
    assert delete_trail(request(specs["alpha"], name="alpha"), aws, Shared()).failures == []
    policy = bucket_policy(aws, "shared-audit")
    assert missing_entries(policy, BucketShare("shared-audit", "", ACCOUNT, "beta-trail")) == []
    assert "alpha-trail" not in json.dumps(policy)
    # Both trails are of one account: its path stays while beta delivers there.
    assert f"AWSLogs/{ACCOUNT}/*" in json.dumps(policy)


def test_a_policy_that_would_outgrow_20_kb_is_refused_before_the_write(aws: AwsSessions) -> None:
    s3 = aws.client("s3", "us-east-1")
    s3.create_bucket(Bucket="full-audit")
    entries = [f"arn:aws:cloudtrail:*:{100000000000 + i}:trail/{'x' * 60}" for i in range(250)]
    crowded = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Crowd",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::full-audit/crowd/*",
                "Condition": {"ArnLike": {"aws:SourceArn": []}},
            }
        ],
    }
    # Just below S3's 20 KB: the few hundred bytes of this Trail's statements no longer fit.
    for entry in entries:
        if policy_bytes(crowded) > BUCKET_POLICY_MAX_BYTES - 300:
            break
        crowded["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"].append(entry)
    s3.put_bucket_policy(Bucket="full-audit", Policy=json.dumps(crowded))
    trail_spec = spec(destination={"bucket": "full-audit", "createBucket": False})
    outcome = reconcile_trail(request(trail_spec), aws, Shared())
    (failure,) = [region.failure for region in outcome.regions if region.failure is not None]
    assert failure.code == "PolicyTooLarge" and "organizationId" in failure.message
    assert bucket_policy(aws, "full-audit") == crowded
