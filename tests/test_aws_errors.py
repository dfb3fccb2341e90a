"""The AWS error taxonomy: table-driven on botocore's own exception objects, then on the errors
moto really answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
    UnknownServiceError,
)

from trailkeeper.aws.errors import AwsError, AwsFailure, FailureKind, backoff_delay, classify, error_code
from trailkeeper.aws.ratelimit import RateLimitTimeoutError
from trailkeeper.aws.session import AccountRef, AwsSessions

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CreateBucketConfigurationTypeDef


def client_error(
    code: str, status: int, operation: str = "CreateTrail", message: str = "boom"
) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


@pytest.mark.parametrize(
    ("code", "status", "kind", "retryable"),
    [
        # throttling, in each protocol's spelling
        ("ThrottlingException", 400, "throttled", True),
        ("Throttling", 400, "throttled", True),
        ("SlowDown", 503, "throttled", True),
        ("RequestLimitExceeded", 503, "throttled", True),
        ("TooManyRequestsException", 429, "throttled", True),
        # server side
        ("InternalError", 500, "server", True),
        ("InternalFailure", 500, "server", True),
        ("ServiceUnavailable", 503, "server", True),
        ("RequestTimeout", 400, "timeout", True),
        # credentials and permissions
        ("AccessDenied", 403, "access-denied", False),
        ("AccessDeniedException", 400, "access-denied", False),
        ("UnauthorizedOperation", 403, "access-denied", False),
        ("InvalidClientTokenId", 403, "access-denied", False),
        ("AuthorizationError", 403, "access-denied", False),
        ("ExpiredToken", 400, "access-denied", True),
        # bad requests: the spec must change
        ("InvalidParameterCombinationException", 400, "invalid", False),
        ("InvalidTrailNameException", 400, "invalid", False),
        ("InvalidS3BucketNameException", 400, "invalid", False),
        ("InvalidParameterException", 400, "invalid", False),
        ("InvalidParameterValue", 400, "invalid", False),
        ("MalformedPolicy", 400, "invalid", False),
        ("InvalidArgument", 400, "invalid", False),
        ("InvalidEventSelectorsException", 400, "invalid", False),
        ("InvalidInsightSelectorsException", 400, "invalid", False),
        ("InvalidKmsKeyIdException", 400, "invalid", False),
        ("KmsKeyNotFoundException", 400, "invalid", False),
        ("InvalidCloudWatchLogsLogGroupArnException", 400, "invalid", False),
        ("InvalidCloudWatchLogsRoleArnException", 400, "invalid", False),
        ("MaximumNumberOfTrailsExceededException", 400, "invalid", False),
        ("BucketAlreadyExists", 409, "invalid", False),
        # missing things
        ("TrailNotFoundException", 400, "not-found", False),
        ("NoSuchBucket", 404, "not-found", False),
        ("NotFound", 404, "not-found", False),
        ("NoSuchLifecycleConfiguration", 404, "not-found", False),
        ("NoSuchBucketPolicy", 404, "not-found", False),
        ("NoSuchTagSet", 404, "not-found", False),
        ("S3BucketDoesNotExistException", 400, "not-found", True),
        # policies CloudTrail checks that may not have propagated yet
        ("InsufficientS3BucketPolicyException", 400, "policy-propagation", True),
        ("InsufficientSnsTopicPolicyException", 400, "policy-propagation", True),
        ("InsufficientEncryptionPolicyException", 400, "policy-propagation", True),
        # already there
        ("BucketAlreadyOwnedByYou", 409, "conflict", False),
        ("TrailAlreadyExistsException", 400, "conflict", False),
        ("OperationAbortedException", 409, "conflict", True),
        # codes in no table fall back on the status
        ("BrandNewServerProblem", 502, "server", True),
        ("BrandNewClientProblem", 400, "invalid", False),
        ("BrandNewMissingThing", 404, "not-found", False),
        ("BrandNewDenial", 403, "access-denied", False),
        ("BrandNewRateLimit", 429, "throttled", True),
        # bodiless answers (HEAD requests, bare 5xx) carry the status as their code
        ("404", 404, "not-found", False),
        ("403", 403, "access-denied", False),
        ("500", 500, "server", True),
    ],
)
def test_client_error_codes(code: str, status: int, kind: FailureKind, retryable: bool) -> None:
    failure = classify(client_error(code, status))
    assert (failure.kind, failure.retryable) == (kind, retryable)
    assert failure.code == code
    assert failure.operation == "CreateTrail"
    assert failure.http_status == status
    assert failure.message == "boom"


@pytest.mark.parametrize(
    ("exc", "kind", "retryable"),
    [
        (ConnectTimeoutError(endpoint_url="https://cloudtrail.us-east-1.amazonaws.com"), "timeout", True),
        (ReadTimeoutError(endpoint_url="https://cloudtrail.us-east-1.amazonaws.com"), "timeout", True),
        (
            EndpointConnectionError(endpoint_url="https://cloudtrail.us-east-1.amazonaws.com"),
            "connection",
            True,
        ),
        (
            ConnectionClosedError(endpoint_url="https://cloudtrail.us-east-1.amazonaws.com"),
            "connection",
            True,
        ),
        (CredentialRetrievalError(provider="web-identity", error_msg="no answer"), "access-denied", True),
        (NoCredentialsError(), "access-denied", False),
        (ParamValidationError(report="Missing required parameter S3BucketName"), "invalid", False),
        (NoRegionError(), "invalid", False),
        (UnknownServiceError(service_name="nope", known_service_names="s3"), "server", False),
        (RateLimitTimeoutError(("a", "us-east-1", "cloudtrail:write"), 9.0, 1.0), "throttled", True),
        (ConnectionResetError("reset by peer"), "connection", True),
        (TimeoutError("slow"), "timeout", True),
        (ValueError("a bug"), "server", False),
    ],
)
def test_non_response_errors(exc: BaseException, kind: FailureKind, retryable: bool) -> None:
    failure = classify(exc, operation="CreateTrail")
    assert (failure.kind, failure.retryable) == (kind, retryable)
    assert failure.code == type(exc).__name__
    assert failure.operation == "CreateTrail"


def test_aws_error_carries_its_failure_and_cause() -> None:
    cause = client_error("TrailNotFoundException", 400, "GetTrailStatus", "Unknown trail")
    error = AwsError.from_exception(cause)
    assert error.__cause__ is cause
    assert (error.code, error.kind, error.retryable) == ("TrailNotFoundException", "not-found", False)
    assert str(error) == "GetTrailStatus: TrailNotFoundException: Unknown trail"
    assert classify(error) is error.failure
    assert error_code(error) == error_code(cause) == "TrailNotFoundException"
    assert error_code(ValueError()) is None


def failure_of(kind: FailureKind) -> AwsFailure:
    return AwsFailure(code="X", message="", operation=None, retryable=True, kind=kind)


def test_backoff_grows_exponentially_up_to_a_cap() -> None:
    server = failure_of("server")
    delays = [backoff_delay(attempt, server, rand=lambda: 1.0) for attempt in range(10)]
    assert delays == sorted(delays)
    assert delays[1] > delays[0]
    assert max(delays) == 60.0
    assert backoff_delay(10_000, server, rand=lambda: 1.0) == 60.0


def test_backoff_jitter_spans_from_the_floor_to_the_ceiling() -> None:
    server = failure_of("server")
    low = backoff_delay(3, server, rand=lambda: 0.0)
    high = backoff_delay(3, server, rand=lambda: 1.0)
    assert 0 < low < 1.0 < high
    assert low <= backoff_delay(3, server) <= high


def test_throttles_wait_longer_and_policy_propagation_stays_short() -> None:
    for attempt in range(6):
        assert backoff_delay(attempt, failure_of("throttled"), rand=lambda: 1.0) > backoff_delay(
            attempt, failure_of("server"), rand=lambda: 1.0
        )
    assert backoff_delay(50, failure_of("policy-propagation"), rand=lambda: 1.0) <= 10.0


# -- the same taxonomy on what moto really answers ----------------------------------------------


def caught(call: Callable[[], object]) -> BaseException:
    with pytest.raises((ClientError, BotoCoreError)) as raised:
        call()
    return raised.value


def test_missing_trail_is_not_found(aws: AwsSessions) -> None:
    ct = aws.client("cloudtrail", "us-east-1")
    failure = classify(caught(lambda: ct.get_trail_status(Name="nope")))
    assert (failure.kind, failure.code, failure.operation) == (
        "not-found",
        "TrailNotFoundException",
        "GetTrailStatus",
    )


def test_invalid_trail_name_is_invalid(aws: AwsSessions) -> None:
    aws.client("s3").create_bucket(Bucket="logs-bucket")
    ct = aws.client("cloudtrail", "us-east-1")
    failure = classify(caught(lambda: ct.create_trail(Name="-bad name-", S3BucketName="logs-bucket")))
    assert (failure.kind, failure.retryable) == ("invalid", False)
    assert failure.code == "InvalidTrailNameException"


def test_client_side_validation_is_invalid(aws: AwsSessions) -> None:
    ct = aws.client("cloudtrail", "us-east-1")
    failure = classify(caught(lambda: ct.create_trail(Name="x", S3BucketName=None)))  # type: ignore[arg-type]
    assert (failure.kind, failure.code) == ("invalid", "ParamValidationError")


def test_bucket_without_policy_is_not_found(aws: AwsSessions) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="no-policy")
    failure = classify(caught(lambda: s3.get_bucket_policy(Bucket="no-policy")))
    assert (failure.kind, failure.code) == ("not-found", "NoSuchBucketPolicy")
    failure = classify(caught(lambda: s3.get_bucket_lifecycle_configuration(Bucket="no-policy")))
    assert (failure.kind, failure.code) == ("not-found", "NoSuchLifecycleConfiguration")


def test_head_of_missing_bucket_is_not_found(aws: AwsSessions) -> None:
    s3 = aws.client("s3")
    failure = classify(caught(lambda: s3.head_bucket(Bucket="never-made")))
    assert (failure.kind, failure.code, failure.http_status) == ("not-found", "404", 404)


def test_bucket_names_own_and_foreign(aws: AwsSessions) -> None:
    eu = aws.client("s3", "eu-west-1")
    config: CreateBucketConfigurationTypeDef = {"LocationConstraint": "eu-west-1"}
    eu.create_bucket(Bucket="mine", CreateBucketConfiguration=config)
    failure = classify(caught(lambda: eu.create_bucket(Bucket="mine", CreateBucketConfiguration=config)))
    assert (failure.kind, failure.code) == ("conflict", "BucketAlreadyOwnedByYou")

    other = aws.client("s3", "eu-west-1", AccountRef("arn:aws:iam::111111111111:role/x"))
    failure = classify(caught(lambda: other.create_bucket(Bucket="mine", CreateBucketConfiguration=config)))
    assert (failure.kind, failure.code, failure.retryable) == ("invalid", "BucketAlreadyExists", False)


def test_missing_topic_is_not_found(aws: AwsSessions) -> None:
    sns = aws.client("sns", "us-east-1")
    arn = "arn:aws:sns:us-east-1:123456789012:nope"
    failure = classify(caught(lambda: sns.get_topic_attributes(TopicArn=arn)))
    assert (failure.kind, failure.code) == ("not-found", "NotFound")
