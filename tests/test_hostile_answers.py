"""Hostile AWS answers: garbled bodies and 500s become a classified error of the object they hit.

The other objects of the same apply still run, the CLI prints one clear line and exits 1, and the operator's
pass turns the error into a condition and an Event; never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from support.faults import FaultInjector, FaultRule
from support.moto_server import InProcessMotoServer, MakeAws
from trailkeeper.api.manifests import load_manifests
from trailkeeper.aws.errors import classify
from trailkeeper.aws.session import AwsSessions
from trailkeeper.cli.pipeline import run_manifests
from trailkeeper.reconcile.passes import ObjectRef, trail_pass
from trailkeeper.reconcile.shared import Shared

REGION = "us-east-1"
FOREIGN_POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Sid": "Reports", "Effect": "Allow", '
    '"Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "s3:GetObject", '
    '"Resource": "arn:aws:s3:::BUCKET/reports/*"}]}'
)


def trail(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"regions": [REGION], "destination": {"bucket": f"hostile-{name}"}}
    body.update(spec)
    return {
        "apiVersion": "trailkeeper.io/v1alpha1",
        "kind": "Trail",
        "metadata": {"name": name, "namespace": "security"},
        "spec": body,
    }


def write_manifests(directory: Path, *bodies: dict[str, Any]) -> Path:
    path = directory / "trails.yaml"
    path.write_text(yaml.safe_dump_all(bodies), encoding="utf-8")
    return path


def with_foreign_policies(aws: AwsSessions, *names: str) -> None:
    """Buckets that already exist with a policy, so the pass's first policy read answers 200."""
    s3 = aws.client("s3", REGION)
    for name in names:
        bucket = f"hostile-{name}"
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_policy(Bucket=bucket, Policy=FOREIGN_POLICY.replace("BUCKET", bucket))


@pytest.fixture
def hostile(faulty_moto: InProcessMotoServer, make_aws: MakeAws) -> AwsSessions:
    """AwsSessions on a reset moto behind the front, without botocore retries (each fault is seen)."""
    faulty_moto.reset()
    return make_aws(faulty_moto.url, max_attempts=1)


def apply_in_process(aws: AwsSessions, path: Path) -> dict[str, list[str]]:
    manifests, problems = load_manifests([path])
    assert problems == []
    return {
        result.ref: [str(f) for f in result.failures] for result in run_manifests(manifests, aws, act=True)
    }


def test_a_duplicate_create_trail_is_refused_as_aws_refuses_it(hostile: AwsSessions) -> None:
    hostile.client("s3", REGION).create_bucket(Bucket="hostile-dup")
    cloudtrail = hostile.client("cloudtrail", REGION)
    cloudtrail.create_trail(Name="dup", S3BucketName="hostile-dup", TagsList=[{"Key": "k", "Value": "first"}])

    with pytest.raises(ClientError) as refused:
        cloudtrail.create_trail(Name="dup", S3BucketName="hostile-dup")

    assert refused.value.response["Error"]["Code"] == "TrailAlreadyExistsException"
    [kept] = cloudtrail.list_tags(ResourceIdList=[cloudtrail.get_trail(Name="dup")["Trail"]["TrailARN"]])[
        "ResourceTagList"
    ]
    assert kept["TagsList"] == [{"Key": "k", "Value": "first"}]


def test_cli_apply_with_a_garbled_policy_reports_that_object_and_applies_the_others(
    hostile: AwsSessions, faulty_moto: InProcessMotoServer, fault_injector: FaultInjector, tmp_path: Path
) -> None:
    with_foreign_policies(hostile, "one", "two", "three")
    path = write_manifests(tmp_path, trail("one"), trail("two"), trail("three"))
    fault_injector.add(FaultRule.garble("s3", "GetBucketPolicy", count=1))

    env = {**os.environ, "AWS_ENDPOINT_URL": faulty_moto.url, "AWS_REGION": REGION}
    done = subprocess.run(
        [sys.executable, "-m", "trailkeeper", "apply", "-f", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    [error] = [line for line in done.stderr.splitlines() if "error:" in line]
    # The objects run side by side: whichever read the garbled answer is the one that fails.
    [failed] = [name for name in ("one", "two", "three") if f"Trail security/{name}: error:" in error]
    assert "UnparsableAnswer" in error and "GetBucketPolicy" in error, error
    trails = {t["Name"] for t in hostile.client("cloudtrail", REGION).describe_trails()["trailList"]}
    assert trails == {"one", "two", "three"} - {failed}


def only_failure(failures: dict[str, list[str]]) -> list[str]:
    """The failures of the one object that has any (the objects run side by side: whichever made the
    faulted call is the one that fails); the other objects have none."""
    [failed] = [name for name, found in failures.items() if found]
    assert all(found == [] for name, found in failures.items() if name != failed)
    return failures[failed]


@pytest.mark.parametrize(
    ("service", "operation", "garbage", "code"),
    [
        ("s3", "GetBucketPolicy", b"\x00<<garbled \xff}", "UnparsableAnswer"),
        ("s3", "GetBucketPolicy", b"", "UnexpectedAnswer"),
        # botocore takes an S3 200 it cannot parse for an error answer and makes it a 500.
        ("s3", "GetBucketVersioning", b"<<garbled", "500"),
        ("sns", "GetTopicAttributes", b"<<garbled", "UnparsableAnswer"),
        ("cloudtrail", "DescribeTrails", b"", "UnexpectedAnswer"),
        ("cloudtrail", "DescribeTrails", b"\xff", "UnparsableAnswer"),
    ],
    ids=[
        "s3-policy-not-utf8",
        "s3-policy-truncated-json",
        "s3-xml",
        "sns-xml",
        "cloudtrail-truncated-json",
        "cloudtrail-not-utf8",
    ],
)
def test_a_garbled_answer_is_a_classified_failure_of_the_object_it_hit(
    hostile: AwsSessions,
    fault_injector: FaultInjector,
    tmp_path: Path,
    service: str,
    operation: str,
    garbage: bytes,
    code: str,
) -> None:
    with_foreign_policies(hostile, "one", "two")
    notifications = {"topicName": "hostile-deliveries"}
    path = write_manifests(
        tmp_path, trail("one", notifications=notifications), trail("two", notifications=notifications)
    )
    fault_injector.add(FaultRule.garble(service, operation, count=1, garbage=garbage))

    failures = apply_in_process(hostile, path)

    assert [hit.operation for hit in fault_injector.hits] == [operation]
    [failure] = only_failure(failures)
    assert failure.startswith(code) and operation in failure


def test_a_500_for_one_operation_fails_only_the_object_it_hit(
    hostile: AwsSessions, fault_injector: FaultInjector, tmp_path: Path
) -> None:
    path = write_manifests(tmp_path, trail("one"), trail("two"))
    fault_injector.add(FaultRule.server_error("cloudtrail", "PutEventSelectors", count=1))

    failures = apply_in_process(hostile, path)

    [failure] = only_failure(failures)
    assert failure.startswith("InternalFailure")


def test_the_operator_pass_turns_a_garbled_answer_into_a_condition_and_an_event(
    hostile: AwsSessions, fault_injector: FaultInjector
) -> None:
    with_foreign_policies(hostile, "one")
    fault_injector.add(FaultRule.garble("s3", "GetBucketPolicy", count=1))
    ref = ObjectRef(namespace="security", name="one", uid="uid-1", generation=1)

    report = trail_pass(ref, trail("one")["spec"], {}, hostile, Shared(), trigger="create")

    ready = next(c for c in report.status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "UnparsableAnswer"
    assert "GetBucketPolicy" in ready["message"]
    assert any(e.type == "Warning" and "GetBucketPolicy" in e.message for e in report.events)
    assert report.retry_after is not None


def test_unparsable_answers_are_retryable_server_failures() -> None:
    not_utf8 = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    for error in (ResponseParserError("Unable to parse response"), not_utf8):
        failure = classify(error, "GetTopicAttributes")
        assert (failure.code, failure.kind, failure.retryable) == ("UnparsableAnswer", "server", True)
