"""The one place where AWS and botocore errors are mapped to what the operator does about them.

``classify`` turns any exception raised around a boto3 call into an :class:`AwsFailure`:
what kind of failure it is and whether trying again can help. The reconcile layer turns a
retryable failure into a delayed retry (``backoff_delay``) and a permanent one into a status
condition the user has to act on. The tables below are explicit on purpose: a code missing from
them falls back on its HTTP status, which is a guess, so codes the operator meets belong here.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError

from trailkeeper.aws.ratelimit import RateLimitTimeoutError

FailureKind = Literal[
    "invalid",
    "access-denied",
    "not-found",
    "conflict",
    "throttled",
    "server",
    "timeout",
    "connection",
    "policy-propagation",
]


@dataclass(frozen=True)
class AwsFailure:
    """What went wrong in an AWS call, in the operator's terms."""

    code: str
    message: str
    operation: str | None
    retryable: bool
    kind: FailureKind
    http_status: int | None = None

    @property
    def permanent(self) -> bool:
        return not self.retryable

    def __str__(self) -> str:
        where = f"{self.operation}: " if self.operation else ""
        return f"{where}{self.code}: {self.message}" if self.message else f"{where}{self.code}"


class AwsError(Exception):
    """An AWS failure already classified; raised by the AWS clients of this package."""

    def __init__(self, failure: AwsFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure

    @classmethod
    def from_exception(cls, exc: BaseException, operation: str | None = None) -> AwsError:
        error = cls(classify(exc, operation))
        error.__cause__ = exc
        return error

    @property
    def code(self) -> str:
        return self.failure.code

    @property
    def kind(self) -> FailureKind:
        return self.failure.kind

    @property
    def retryable(self) -> bool:
        return self.failure.retryable


class UnexpectedAnswerError(AwsError):
    """AWS (or something between) answered a call with what cannot be read as its answer: a policy that
    is not a JSON object, a field missing or of the wrong type. Retryable like a server error: a garbled
    answer is as likely to be transient as a 500."""

    def __init__(self, operation: str, what: str) -> None:
        super().__init__(
            AwsFailure(
                code="UnexpectedAnswer",
                message=f"the answer could not be read: {what}",
                operation=operation,
                retryable=True,
                kind="server",
            )
        )


def json_document(text: object, operation: str, what: str) -> dict[str, Any] | None:
    """A JSON object document (a policy) from an answer; None for an empty one. Anything that is not a
    JSON object raises :class:`UnexpectedAnswerError` naming ``what``."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise UnexpectedAnswerError(operation, f"{what} is a {type(text).__name__}, not JSON text")
    try:
        document = json.loads(text)
    except ValueError as error:
        raise UnexpectedAnswerError(operation, f"{what} is not valid JSON ({error})") from error
    if not isinstance(document, dict):
        raise UnexpectedAnswerError(operation, f"{what} is JSON but not an object")
    return document


# What botocore raises for an answer it cannot parse; neither is a BotoCoreError.
UNPARSABLE_ANSWERS = (ResponseParserError, UnicodeDecodeError)
_OPERATION_NOTE = "AWS operation: "


def note_operation(exc: BaseException, operation: str) -> None:
    """Mark an exception that does not name its call with the operation it came from."""
    exc.add_note(_OPERATION_NOTE + operation)


def _noted_operation(exc: BaseException) -> str | None:
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, str) and note.startswith(_OPERATION_NOTE):
            return note.removeprefix(_OPERATION_NOTE)
    return None


def _table(kind: FailureKind, retryable: bool, codes: Iterable[str]) -> dict[str, tuple[FailureKind, bool]]:
    return dict.fromkeys(codes, (kind, retryable))


# Throttling as each protocol spells it: JSON services (CloudTrail, KMS, Logs) say
# ThrottlingException, query services (SNS, STS, IAM) Throttling, S3 SlowDown (HTTP 503),
# EC2 RequestLimitExceeded. The rest are the other spellings botocore's standard retry mode
# also treats as throttles.
THROTTLED_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "SlowDown",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "BandwidthLimitExceeded",
        "ProvisionedThroughputExceededException",
    }
)
SERVER_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServiceError",
        "InternalException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServiceFailure",
        "Unavailable",
    }
)
# S3 answers RequestTimeout (400) when the request body did not arrive in time.
TIMEOUT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException"})
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
        "AuthFailure",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AllAccessDisabled",
        "OptInRequired",
        "KMS.AccessDeniedException",
        "InsufficientDependencyServiceAccessPermissionException",
        "CloudTrailAccessNotEnabledException",
        "NotOrganizationMasterAccountException",
        "NotOrganizationManagementAccountException",
        "OrganizationNotInAllFeaturesModeException",
        "OrganizationsNotInUseException",
        "NoManagementAccountSLRExistsException",
        "OperationNotPermittedException",
    }
)
# Temporary credentials that ran out (or a request signed too long ago): the next attempt signs
# with refreshed credentials, so these are worth retrying even though they read as denials.
EXPIRED_CREDENTIAL_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
INVALID_CODES = frozenset(
    {
        # generic
        "ValidationError",
        "ValidationException",
        "InvalidParameter",
        "InvalidParameterException",
        "InvalidParameterValue",
        "InvalidParameterValueException",
        "InvalidParameterCombination",
        "InvalidParameterCombinationException",
        "MissingParameter",
        "InvalidAction",
        "InvalidArgument",
        "InvalidRequest",
        "MalformedXML",
        "MalformedPolicy",
        "MalformedPolicyDocument",
        "InvalidPolicyDocument",
        "UnsupportedOperationException",
        # CloudTrail
        "InvalidTrailNameException",
        "InvalidS3BucketNameException",
        "InvalidS3PrefixException",
        "InvalidSnsTopicNameException",
        "InvalidEventSelectorsException",
        "InvalidInsightSelectorsException",
        "InvalidKmsKeyIdException",
        "KmsKeyNotFoundException",
        "KmsKeyDisabledException",
        "KmsException",
        "InvalidCloudWatchLogsLogGroupArnException",
        "InvalidCloudWatchLogsRoleArnException",
        "InvalidHomeRegionException",
        "InvalidTagParameterException",
        "TagsLimitExceededException",
        "CloudTrailARNInvalidException",
        "CloudTrailInvalidClientTokenIdException",
        "CloudWatchLogsDeliveryUnavailableException",
        "MaximumNumberOfTrailsExceededException",
        "ResourceTypeNotSupportedException",
        "TrailNotProvidedException",
        "InvalidTokenException",
        "InvalidNextTokenException",
        "InvalidMaxResultsException",
        "InvalidLookupAttributesException",
        "InvalidTimeRangeException",
        # S3: a bucket name taken by someone else can only be fixed by choosing another name
        "BucketAlreadyExists",
        "InvalidBucketName",
        "InvalidLocationConstraint",
        "IllegalLocationConstraintException",
        "PermanentRedirect",
        "AuthorizationHeaderMalformed",
        "TooManyBuckets",
        "InvalidTag",
        "InvalidStorageClass",
        # SNS
        "TopicLimitExceeded",
        "SubscriptionLimitExceeded",
        "FilterPolicyLimitExceeded",
        "InvalidSecurity",
        "TagPolicy",
        "TagLimitExceeded",
        # KMS
        "KMSInvalidStateException",
        "DisabledException",
        "InvalidKeyUsageException",
        "InvalidArnException",
    }
)
NOT_FOUND_CODES = frozenset(
    {
        "TrailNotFoundException",
        "InsightNotEnabledException",
        "ResourceNotFoundException",
        "NoSuchBucket",
        "NoSuchKey",
        "NoSuchBucketPolicy",
        "NoSuchLifecycleConfiguration",
        "NoSuchTagSet",
        "NoSuchTagSetError",
        "NoSuchPublicAccessBlockConfiguration",
        "ServerSideEncryptionConfigurationNotFoundError",
        "OwnershipControlsNotFoundError",
        "NotFound",
        "NotFoundException",
        "NoSuchEntity",
    }
)
# CreateTrail answers this for a bucket the operator created moments earlier while S3 has not
# yet made it visible to CloudTrail; when the bucket really is missing the retry backs off.
NOT_FOUND_RETRYABLE_CODES = frozenset({"S3BucketDoesNotExistException"})
# CloudTrail checks the bucket, topic and key policies when a trail is created or updated, and a
# policy written a moment ago may not have propagated yet: retry soon.
POLICY_PROPAGATION_CODES = frozenset(
    {
        "InsufficientS3BucketPolicyException",
        "InsufficientSnsTopicPolicyException",
        "InsufficientEncryptionPolicyException",
    }
)
# The thing already exists (and is ours to use): the caller treats it as success, not a retry.
CONFLICT_CODES = frozenset(
    {
        "BucketAlreadyOwnedByYou",
        "TrailAlreadyExistsException",
        "ResourceAlreadyExistsException",
        "EntityAlreadyExists",
        "AlreadyExistsException",
    }
)
# Someone else is changing the same resource right now.
CONFLICT_RETRYABLE_CODES = frozenset(
    {"OperationAbortedException", "ConflictException", "ConcurrentModificationException"}
)

ERROR_CODES: Mapping[str, tuple[FailureKind, bool]] = {
    **_table("invalid", False, INVALID_CODES),
    **_table("access-denied", False, ACCESS_DENIED_CODES),
    **_table("access-denied", True, EXPIRED_CREDENTIAL_CODES),
    **_table("not-found", False, NOT_FOUND_CODES),
    **_table("not-found", True, NOT_FOUND_RETRYABLE_CODES),
    **_table("conflict", False, CONFLICT_CODES),
    **_table("conflict", True, CONFLICT_RETRYABLE_CODES),
    **_table("policy-propagation", True, POLICY_PROPAGATION_CODES),
    **_table("throttled", True, THROTTLED_CODES),
    **_table("server", True, SERVER_CODES),
    **_table("timeout", True, TIMEOUT_CODES),
}


def _by_status(status: int | None) -> tuple[FailureKind, bool]:
    """For codes in no table: only a server-side status is worth retrying."""
    if status is None:
        return "server", False
    if status >= 500:
        return "server", True
    if status == 429:
        return "throttled", True
    if status == 404:
        return "not-found", False
    if status in (401, 403):
        return "access-denied", False
    if status == 409:
        return "conflict", False
    return "invalid", False


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ClientError (or of a classified AwsError), else None."""
    if isinstance(exc, AwsError):
        return exc.code
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) or None
    return None


def _classify_client_error(exc: ClientError, operation: str | None) -> AwsFailure:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(error.get("Code") or status or "Unknown")
    message = str(error.get("Message") or "")
    if code in ERROR_CODES:
        kind, retryable = ERROR_CODES[code]
    elif code.isdigit():
        # Responses without a body (HEAD requests, bare 500s) carry only the status as code.
        kind, retryable = _by_status(int(code))
    else:
        kind, retryable = _by_status(status)
    return AwsFailure(
        code=code,
        message=message,
        operation=operation or exc.operation_name,
        retryable=retryable,
        kind=kind,
        http_status=status,
    )


def classify(exc: BaseException, operation: str | None = None) -> AwsFailure:
    """Map any exception from around a boto3 call to an :class:`AwsFailure`.

    ``operation`` names the call when the exception does not (botocore's connection errors).
    """
    if isinstance(exc, AwsError):
        return exc.failure
    if isinstance(exc, ClientError):
        return _classify_client_error(exc, operation)

    def failure(kind: FailureKind, retryable: bool, code: str | None = None, message: str = "") -> AwsFailure:
        return AwsFailure(
            code=code or type(exc).__name__,
            message=message or str(exc),
            operation=operation,
            retryable=retryable,
            kind=kind,
        )

    # Order matters: ConnectTimeoutError is also a ConnectionError, ReadTimeoutError an
    # HTTPClientError, and RateLimitTimeoutError a TimeoutError.
    if isinstance(exc, UNPARSABLE_ANSWERS):
        operation = operation or _noted_operation(exc)
        message = f"the answer could not be parsed: {exc}"
        # A body botocore cannot parse (truncated, mangled by a proxy; botocore decodes JSON bodies as
        # UTF-8 without catching the error): transient as a 5xx is.
        return failure("server", True, "UnparsableAnswer", message)
    if isinstance(exc, RateLimitTimeoutError):
        return failure("throttled", True)
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return failure("timeout", True)
    if isinstance(
        exc, EndpointConnectionError | ConnectionClosedError | BotoConnectionError | HTTPClientError
    ):
        return failure("connection", True)
    if isinstance(exc, CredentialRetrievalError):
        # The credential source (instance metadata, web identity) failed to answer: transient.
        return failure("access-denied", True)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return failure("access-denied", False)
    if isinstance(exc, ParamValidationError | NoRegionError):
        return failure("invalid", False)
    if isinstance(exc, BotoCoreError):
        # Remaining botocore errors are misuse of the SDK (unknown service, bad config):
        # retrying the same call cannot help.
        return failure("server", False)
    if isinstance(exc, TimeoutError):
        return failure("timeout", True)
    if isinstance(exc, ConnectionError):
        return failure("connection", True)
    return failure("server", False)


@dataclass(frozen=True)
class _Backoff:
    base: float
    cap: float
    floor: float


# Throttles wait longer and start higher: the quota is shared by every Trail of the account.
# Policy propagation settles within seconds, so it keeps a short cap.
_BACKOFF: Mapping[FailureKind, _Backoff] = {
    "throttled": _Backoff(base=2.0, cap=120.0, floor=1.0),
    "policy-propagation": _Backoff(base=1.0, cap=10.0, floor=0.5),
    "server": _Backoff(base=1.0, cap=60.0, floor=0.2),
    "timeout": _Backoff(base=1.0, cap=60.0, floor=0.2),
    "connection": _Backoff(base=1.0, cap=60.0, floor=0.2),
    "conflict": _Backoff(base=1.0, cap=30.0, floor=0.2),
    "not-found": _Backoff(base=1.0, cap=30.0, floor=0.5),
    "access-denied": _Backoff(base=5.0, cap=300.0, floor=1.0),
    "invalid": _Backoff(base=5.0, cap=300.0, floor=1.0),
}


def backoff_delay(attempt: int, failure: AwsFailure, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    Exponential with full jitter (``floor + U(0, min(cap, base * 2**attempt))``, capped): the
    jitter spreads the retries of many Trails that failed together, the small floor keeps a
    retry from going out immediately.
    """
    policy = _BACKOFF[failure.kind]
    # Bound the exponent so a large attempt number cannot overflow the float.
    ceiling = min(policy.cap, policy.base * 2.0 ** min(max(attempt, 0), 32))
    return min(policy.cap, policy.floor + rand() * ceiling)
