"""`apply` and `diff` over several manifests share their reads and the shared bucket's policy write, as
the operator's sweep does: counted by the sessions' call recorder against moto."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import boto3
import pytest

from support.moto_server import MotoServer
from trailkeeper.api.manifests import Manifest, load_manifests
from trailkeeper.aws.calls import CallRecorder
from trailkeeper.aws.ratelimit import RateLimiter
from trailkeeper.aws.session import AwsSessions
from trailkeeper.cli.pipeline import ObjectResult, run_manifests
from trailkeeper.core.bucket_share import BucketShare, missing_entries

REGIONS = ["us-east-1", "eu-west-1"]
BUCKET = "cli-shared-reads"
TRAILS = ["audit-a", "audit-b", "audit-c"]


def trail(name: str) -> str:
    return f"""\
apiVersion: trailkeeper.io/v1alpha1
kind: Trail
metadata: {{name: {name}, namespace: security}}
spec:
  regions: {json.dumps(REGIONS)}
  destination: {{bucket: {BUCKET}}}
  notifications: {{topicName: cli-alerts}}
"""


RETENTION = """\
apiVersion: trailkeeper.io/v1alpha1
kind: LogRetention
metadata: {name: keep, namespace: security}
spec:
  trailRef: {name: audit-a}
  expirationDays: 400
"""


@pytest.fixture
def manifests(tmp_path: Path, moto_server: MotoServer) -> list[Manifest]:
    moto_server.reset()
    path = tmp_path / "trails.yaml"
    path.write_text("---\n".join([*(trail(n) for n in TRAILS), RETENTION]), encoding="utf-8")
    loaded, problems = load_manifests((str(path),))
    assert not problems
    return loaded


def run(
    manifests: list[Manifest], endpoint: str, *, act: bool
) -> tuple[list[ObjectResult], Counter[tuple[str, str]], CallRecorder]:
    recorder = CallRecorder()
    sessions = AwsSessions(endpoint_url=endpoint, recorder=recorder, rate_limiter=RateLimiter.disabled())
    results = list(run_manifests(manifests, sessions, act=act))
    assert [f for r in results for f in r.failures] == []
    return results, recorder.counts(), recorder


def test_apply_writes_the_shared_bucket_policy_once_with_every_trails_statements(
    manifests: list[Manifest], moto_endpoint: str
) -> None:
    results, calls, _ = run(manifests, moto_endpoint, act=True)
    assert calls["s3", "PutBucketPolicy"] == 1
    # Each Trail is told its statements were put, though one write carried them all.
    for result in results[: len(TRAILS)]:
        assert f"bucket-policy/{BUCKET}: put trailkeeper statements" in [str(c) for c in result.changes]
    # Every Trail's part is in that one write: a second apply changes nothing.
    again, _, recorder = run(manifests, moto_endpoint, act=True)
    assert recorder.mutating_calls() == []
    assert all(not r.changes for r in again)


def test_diff_reads_each_bucket_topic_and_region_once_and_batches_list_tags(
    manifests: list[Manifest], moto_endpoint: str
) -> None:
    run(manifests, moto_endpoint, act=True)
    results, calls, recorder = run(manifests, moto_endpoint, act=False)
    assert all(not r.diffs for r in results)
    assert recorder.mutating_calls() == []
    assert calls["s3", "GetBucketPolicy"] == 1
    assert calls["s3", "GetBucketLifecycleConfiguration"] == 1
    assert calls["s3", "GetBucketTagging"] == 1
    assert calls["cloudtrail", "DescribeTrails"] == len(REGIONS)
    assert calls["cloudtrail", "ListTags"] == len(REGIONS)  # one per region for the three trails
    assert calls["sns", "GetTopicAttributes"] == len(REGIONS)
    assert calls["sns", "ListSubscriptionsByTopic"] == len(REGIONS)
    # Each trail's own reads stay its own.
    assert calls["cloudtrail", "GetTrailStatus"] == len(TRAILS) * len(REGIONS)


def test_a_shared_read_still_shows_each_trails_own_drift(
    manifests: list[Manifest], moto_endpoint: str
) -> None:
    run(manifests, moto_endpoint, act=True)
    boto3.client("cloudtrail", region_name="eu-west-1", endpoint_url=moto_endpoint).stop_logging(
        Name="audit-b"
    )
    results, _, _ = run(manifests, moto_endpoint, act=False)
    drift = {r.ref: [(d.resource, d.field) for d in r.diffs] for r in results}
    assert drift["Trail security/audit-b"] == [("trail/eu-west-1", "IsLogging")]
    assert drift["Trail security/audit-a"] == drift["Trail security/audit-c"] == []


def test_one_apply_with_one_trail_name_in_two_namespaces_gives_the_winner_its_grant(
    tmp_path: Path, moto_server: MotoServer, moto_endpoint: str
) -> None:
    """The shared write merges both Trails before either trail exists: neither may take the other's
    entry (the same trail ARN under another prefix) as its own older path."""
    moto_server.reset()
    documents = [
        f"""\
apiVersion: trailkeeper.io/v1alpha1
kind: Trail
metadata: {{name: audit, namespace: {namespace}}}
spec:
  trailName: org-audit
  regions: [us-east-1]
  destination: {{bucket: {BUCKET}, keyPrefix: {namespace}}}
"""
        for namespace in ("team-a", "team-b")
    ]
    path = tmp_path / "same-name.yaml"
    path.write_text("---\n".join(documents), encoding="utf-8")
    loaded, problems = load_manifests((str(path),))
    assert not problems
    recorder = CallRecorder()
    sessions = AwsSessions(endpoint_url=moto_endpoint, recorder=recorder, rate_limiter=RateLimiter.disabled())

    results = list(run_manifests(loaded, sessions, act=True))

    codes = sorted(f.code for r in results for f in r.failures)
    assert codes == ["Conflict"]
    # Before, each merge took the other's entry out and the shared write was undone and made again.
    assert recorder.counts()["s3", "PutBucketPolicy"] <= 3
    [winner] = [r for r in results if not r.failures]
    prefix = "team-a" if "team-a" in winner.ref else "team-b"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    account = sessions.account_id()
    assert missing_entries(policy, BucketShare(BUCKET, prefix, account, "org-audit")) == []
