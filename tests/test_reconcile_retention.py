"""The LogRetention reconciler against moto: only its own lifecycle rule is written, others are kept."""

from __future__ import annotations

from typing import Any

from trailkeeper.api.logretention import LogRetentionSpec
from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.session import AwsSessions
from trailkeeper.reconcile.logretention import (
    RetentionRequest,
    delete_log_retention,
    reconcile_log_retention,
    targets_of_spec,
    targets_of_trail,
)
from trailkeeper.reconcile.shared import Shared

FOREIGN_RULE = {
    "ID": "expire-tmp",
    "Status": "Enabled",
    "Filter": {"Prefix": "tmp/"},
    "Expiration": {"Days": 1},
}


def retention(**overrides: Any) -> LogRetentionSpec:
    body: dict[str, Any] = {
        "bucket": "acme-audit",
        "transitions": [
            {"days": 90, "storageClass": "GLACIER"},
            {"days": 365, "storageClass": "DEEP_ARCHIVE"},
        ],
        "expirationDays": 2555,
        "deletionPolicy": "Delete",
    }
    body.update(overrides)
    return LogRetentionSpec.model_validate(body)


def rules(aws: AwsSessions, bucket: str = "acme-audit") -> list[dict[str, Any]]:
    answer = aws.client("s3", "us-east-1").get_bucket_lifecycle_configuration(Bucket=bucket)
    return list(answer["Rules"])


def make_bucket(aws: AwsSessions, with_foreign_rule: bool = True) -> None:
    s3 = aws.client("s3", "us-east-1")
    s3.create_bucket(Bucket="acme-audit")
    if with_foreign_rule:
        s3.put_bucket_lifecycle_configuration(
            Bucket="acme-audit", LifecycleConfiguration={"Rules": [FOREIGN_RULE]}
        )


def test_rule_is_added_beside_a_foreign_rule_which_stays_exactly(aws: AwsSessions) -> None:
    make_bucket(aws)
    spec = retention()
    request = RetentionRequest("security", "keep", spec, tuple(targets_of_spec(spec)))
    outcome = reconcile_log_retention(request, aws, Shared())
    assert outcome.failures == []
    current = rules(aws)
    assert FOREIGN_RULE in current
    ours = next(r for r in current if r["ID"] == "trailkeeper-security-keep")
    assert [t["StorageClass"] for t in ours["Transitions"]] == ["GLACIER", "DEEP_ARCHIVE"]
    assert ours["Expiration"] == {"Days": 2555}
    assert outcome.buckets[0].region == "us-east-1"


def test_steady_state_makes_no_mutating_call(aws: AwsSessions) -> None:
    make_bucket(aws)
    spec = retention()
    request = RetentionRequest("security", "keep", spec, tuple(targets_of_spec(spec)))
    reconcile_log_retention(request, aws, Shared())
    assert aws.recorder is not None
    aws.recorder.reset()
    again = reconcile_log_retention(request, aws, Shared())
    assert again.diffs == []
    assert aws.recorder.mutating_calls() == []


def test_deleted_rule_is_drift_and_is_put_back(aws: AwsSessions) -> None:
    make_bucket(aws)
    spec = retention()
    request = RetentionRequest("security", "keep", spec, tuple(targets_of_spec(spec)))
    reconcile_log_retention(request, aws, Shared())
    s3 = aws.client("s3", "us-east-1")
    s3.put_bucket_lifecycle_configuration(
        Bucket="acme-audit", LifecycleConfiguration={"Rules": [FOREIGN_RULE]}
    )
    report = RetentionRequest("security", "keep", spec, request.targets, act=False)
    found = reconcile_log_retention(report, aws, Shared())
    assert [d.field for d in found.diffs] == ["LifecycleRule[trailkeeper-security-keep]"]
    assert rules(aws) == [FOREIGN_RULE]
    reconcile_log_retention(request, aws, Shared())
    assert {r["ID"] for r in rules(aws)} == {"expire-tmp", "trailkeeper-security-keep"}


def test_delete_removes_only_its_own_rule(aws: AwsSessions) -> None:
    make_bucket(aws)
    spec = retention()
    request = RetentionRequest("security", "keep", spec, tuple(targets_of_spec(spec)))
    reconcile_log_retention(request, aws, Shared())
    delete_log_retention(request, aws, Shared())
    assert rules(aws) == [FOREIGN_RULE]


def test_targets_follow_the_trail_buckets_and_prefix() -> None:
    trail = TrailSpec.model_validate(
        {"regions": ["us-east-1", "eu-west-1"], "destination": {"bucket": "acme-{region}", "keyPrefix": "ct"}}
    )
    targets = targets_of_trail(trail, None)
    assert [(t.bucket, t.region, t.prefix) for t in targets] == [
        ("acme-us-east-1", "us-east-1", "ct/AWSLogs/"),
        ("acme-eu-west-1", "eu-west-1", "ct/AWSLogs/"),
    ]
