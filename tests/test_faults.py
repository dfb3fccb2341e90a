"""The fault injector in front of moto makes boto3 see what real AWS answers under stress."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from support.faults import FaultInjector, FaultRule, identify_request, s3_operation
from support.moto_server import InProcessMotoServer, MakeAws
from trailkeeper.aws.errors import classify
from trailkeeper.aws.session import AwsSessions

POLICY = '{"Version": "2012-10-17", "Statement": []}'


@pytest.fixture
def raw_aws(
    faulty_moto: InProcessMotoServer, fault_injector: FaultInjector, make_aws: MakeAws
) -> AwsSessions:
    """Against the fault-injecting moto with botocore retries off: every fault reaches the caller."""
    faulty_moto.reset()
    return make_aws(faulty_moto.url, max_attempts=1)


def error_of(call: Callable[[], object]) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value


def test_cloudtrail_throttle_is_a_json_throttling_exception(
    raw_aws: AwsSessions, fault_injector: FaultInjector
) -> None:
    fault_injector.add(FaultRule.throttle("cloudtrail", "DescribeTrails", count=1))
    ct = raw_aws.client("cloudtrail")
    error = error_of(ct.describe_trails)
    assert error.response["Error"]["Code"] == "ThrottlingException"
    assert classify(error).kind == "throttled"
    assert [(h.service, h.operation, h.action) for h in fault_injector.hits] == [
        ("cloudtrail", "DescribeTrails", "throttle")
    ]
    assert "trailList" in ct.describe_trails()  # count=1: the next call goes through


def test_s3_throttle_is_slow_down_503(raw_aws: AwsSessions, fault_injector: FaultInjector) -> None:
    s3 = raw_aws.client("s3")
    s3.create_bucket(Bucket="logs")
    fault_injector.add(FaultRule.throttle("s3", "PutBucketPolicy"))
    error = error_of(lambda: s3.put_bucket_policy(Bucket="logs", Policy=POLICY))
    assert error.response["Error"]["Code"] == "SlowDown"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert classify(error).kind == "throttled"
    s3.put_bucket_policy(Bucket="logs", Policy=POLICY)
    assert s3.get_bucket_policy(Bucket="logs")["Policy"]


def test_sns_throttle_is_query_protocol_throttling(
    raw_aws: AwsSessions, fault_injector: FaultInjector
) -> None:
    fault_injector.add(FaultRule.throttle("sns", "CreateTopic"))
    sns = raw_aws.client("sns")
    error = error_of(lambda: sns.create_topic(Name="deliveries"))
    assert error.response["Error"]["Code"] == "Throttling"
    assert classify(error).kind == "throttled"
    assert sns.create_topic(Name="deliveries")["TopicArn"].endswith(":deliveries")


def test_ec2_throttle_is_request_limit_exceeded(raw_aws: AwsSessions, fault_injector: FaultInjector) -> None:
    fault_injector.add(FaultRule.throttle("ec2", "DescribeRegions"))
    error = error_of(raw_aws.client("ec2").describe_regions)
    assert error.response["Error"]["Code"] == "RequestLimitExceeded"
    assert classify(error).kind == "throttled"


def test_standard_retries_recover_from_one_throttle(
    faulty_aws: AwsSessions, fault_injector: FaultInjector
) -> None:
    fault_injector.add(FaultRule.throttle("cloudtrail", "DescribeTrails", count=1))
    response = faulty_aws.client("cloudtrail").describe_trails()
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert len(fault_injector.hits) == 1
    assert faulty_aws.recorder is not None
    [call] = faulty_aws.recorder.snapshot()  # one call as the caller sees it, retry included
    assert (call.operation, call.outcome) == ("DescribeTrails", "ok")


@pytest.mark.parametrize(("status", "code"), [(500, "InternalFailure"), (503, "ServiceUnavailable")])
def test_server_errors_are_retryable(
    raw_aws: AwsSessions, fault_injector: FaultInjector, status: int, code: str
) -> None:
    fault_injector.add(FaultRule.server_error("cloudtrail", status=status))
    error = error_of(raw_aws.client("cloudtrail").describe_trails)
    assert (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        code,
        status,
    )
    assert (classify(error).kind, classify(error).retryable) == ("server", True)


def test_connection_reset_is_a_connection_error(raw_aws: AwsSessions, fault_injector: FaultInjector) -> None:
    fault_injector.add(FaultRule.reset("sns", "ListTopics"))
    with pytest.raises(ConnectionClosedError) as raised:
        raw_aws.client("sns").list_topics()
    assert (classify(raised.value).kind, classify(raised.value).retryable) == ("connection", True)
    assert raw_aws.recorder is not None
    assert [c.outcome for c in raw_aws.recorder.snapshot()] == ["ConnectionClosedError"]


def test_delay_slows_the_answer_and_can_time_out(
    faulty_moto: InProcessMotoServer, fault_injector: FaultInjector, make_aws: MakeAws
) -> None:
    faulty_moto.reset()
    fault_injector.add(FaultRule.slow("cloudtrail", "DescribeTrails", seconds=0.3))
    ct = make_aws(faulty_moto.url, max_attempts=1).client("cloudtrail")
    started = time.monotonic()
    ct.describe_trails()
    assert time.monotonic() - started >= 0.3

    fault_injector.add(FaultRule.slow("cloudtrail", "DescribeTrails", seconds=0.5))
    impatient = make_aws(faulty_moto.url, max_attempts=1, read_timeout=0.1).client("cloudtrail")
    with pytest.raises(ReadTimeoutError) as raised:
        impatient.describe_trails()
    assert classify(raised.value).kind == "timeout"


def test_rules_match_service_and_operation_only(raw_aws: AwsSessions, fault_injector: FaultInjector) -> None:
    fault_injector.add(FaultRule.throttle("cloudtrail", "CreateTrail", count=None))
    s3 = raw_aws.client("s3")
    s3.create_bucket(Bucket="logs")
    s3.put_bucket_policy(Bucket="logs", Policy=POLICY)
    raw_aws.client("cloudtrail").describe_trails()
    raw_aws.client("sns").create_topic(Name="t")
    assert fault_injector.hits == []
    assert [(r.service, r.operation) for r in fault_injector.seen] == [
        ("s3", "CreateBucket"),
        ("s3", "PutBucketPolicy"),
        ("cloudtrail", "DescribeTrails"),
        ("sns", "CreateTopic"),
    ]


# -- without HTTP: identification and probability ------------------------------------------------


def environ(method: str, path: str, query: str = "", **extra: Any) -> dict[str, Any]:
    body = extra.pop("body", b"")
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/"
        f"{extra.pop('service', 's3')}/aws4_request, SignedHeaders=host, Signature=x",
    }
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("method", "path", "query", "operation"),
    [
        ("GET", "/", "", "ListBuckets"),
        ("PUT", "/b", "", "CreateBucket"),
        ("HEAD", "/b", "", "HeadBucket"),
        ("DELETE", "/b", "", "DeleteBucket"),
        ("GET", "/b", "list-type=2&prefix=AWSLogs", "ListObjectsV2"),
        ("PUT", "/b", "policy", "PutBucketPolicy"),
        ("GET", "/b", "policy", "GetBucketPolicy"),
        ("DELETE", "/b", "policy", "DeleteBucketPolicy"),
        ("PUT", "/b", "lifecycle", "PutBucketLifecycleConfiguration"),
        ("GET", "/b", "lifecycle", "GetBucketLifecycleConfiguration"),
        ("DELETE", "/b", "lifecycle", "DeleteBucketLifecycle"),
        ("PUT", "/b", "versioning", "PutBucketVersioning"),
        ("PUT", "/b", "encryption", "PutBucketEncryption"),
        ("PUT", "/b", "publicAccessBlock", "PutPublicAccessBlock"),
        ("PUT", "/b", "tagging", "PutBucketTagging"),
        ("GET", "/b", "location", "GetBucketLocation"),
        ("PUT", "/b/AWSLogs/k.json.gz", "", "PutObject"),
        ("GET", "/b/k", "", "GetObject"),
        ("PUT", "/b/k", "partNumber=1&uploadId=u", "UploadPart"),
        ("GET", "/b/k", "tagging", "GetObjectTagging"),
    ],
)
def test_s3_operations_from_method_path_and_query(method: str, path: str, query: str, operation: str) -> None:
    assert identify_request(environ(method, path, query)) == ("s3", operation)


def test_s3_copy_is_told_from_put_by_its_header() -> None:
    assert s3_operation("PUT", "/b/k", {}, ["x-amz-copy-source"]) == "CopyObject"
    assert s3_operation("PUT", "/b/k", {}, []) == "PutObject"


def test_json_and_query_protocol_operations() -> None:
    target = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.StartLogging"
    assert identify_request(environ("POST", "/", service="cloudtrail", HTTP_X_AMZ_TARGET=target)) == (
        "cloudtrail",
        "StartLogging",
    )
    form = environ(
        "POST",
        "/",
        service="sns",
        body=b"Action=Subscribe&Version=2010-03-31&Protocol=sqs",
        CONTENT_TYPE="application/x-www-form-urlencoded; charset=utf-8",
    )
    assert identify_request(form) == ("sns", "Subscribe")
    # The body read to find the action is still there for moto.
    assert form["wsgi.input"].read() == b"Action=Subscribe&Version=2010-03-31&Protocol=sqs"
    assert identify_request(environ("GET", "/", "Action=DescribeRegions", service="ec2")) == (
        "ec2",
        "DescribeRegions",
    )


def ok_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_probability_hits_about_that_share_and_count_caps_it() -> None:
    injector = FaultInjector(ok_app, seed=7)
    injector.add(FaultRule.throttle("cloudtrail", probability=0.3, count=None))
    for _ in range(200):
        list(
            injector(
                environ("POST", "/", service="cloudtrail", HTTP_X_AMZ_TARGET="x.y.DescribeTrails"), _ignore
            )
        )
    assert 35 <= len(injector.hits) <= 85

    capped = FaultInjector(ok_app, seed=7)
    capped.add(FaultRule.server_error(None, count=3))
    for _ in range(10):
        list(capped(environ("GET", "/"), _ignore))
    assert [h.status for h in capped.hits] == [500, 500, 500]


def _ignore(*_: Any) -> None:
    return None
