"""Failures a reconcile reports per region or bucket, built from the AWS error taxonomy."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from trailkeeper.aws.errors import AwsError, AwsFailure
from trailkeeper.core.trail_limit import ADVICE, TRAIL_LIMIT

# What a step may raise from AWS; each becomes a per-region failure, never a crash of the whole pass.
# An answer botocore cannot parse raises ResponseParserError (not a BotoCoreError), or UnicodeDecodeError
# for a JSON body that is not UTF-8.
AWS_ERRORS = (AwsError, ClientError, BotoCoreError, ResponseParserError, UnicodeDecodeError)


class RegionFailure(Exception):
    """Why one region (or bucket) of an object did not reach its desired state.

    `code` is AWS's error code (or trailkeeper's: Conflict, NoSuchBucket, TrailNotFound) and becomes the
    condition reason; `retryable` tells the operator whether to try again without a spec change.
    """

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable

    @classmethod
    def from_aws(cls, failure: AwsFailure) -> RegionFailure:
        where = f" ({failure.operation})" if failure.operation else ""
        if failure.code == "MaximumNumberOfTrailsExceededException":
            # Another writer took the region's last slot after the pass counted: the same reason and advice.
            return cls(TRAIL_LIMIT, f"{failure.message}{where}: {ADVICE}")
        return cls(failure.code, f"{failure.message}{where}", retryable=failure.retryable)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
