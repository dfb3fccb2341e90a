"""AWS's 5 trails per region and account: a sixth is refused with TrailLimit before anything is written."""

from __future__ import annotations

from typing import Any

import pytest

from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.errors import AwsFailure
from trailkeeper.aws.session import AwsSessions
from trailkeeper.core.trail_limit import account_trails, trail_limit_problem
from trailkeeper.reconcile.errors import RegionFailure
from trailkeeper.reconcile.shared import Shared
from trailkeeper.reconcile.trail import TrailRequest, reconcile_trail

ACCOUNT = "123456789012"


def described(*arns: str) -> dict[str, dict[str, Any]]:
    return {arn.rsplit("/", 1)[1]: {"TrailARN": arn} for arn in arns}


def arn(name: str, region: str = "us-east-1", account: str = ACCOUNT) -> str:
    return f"arn:aws:cloudtrail:{region}:{account}:trail/{name}"


FOUR_HERE = [arn(f"t{i}") for i in range(4)]


@pytest.mark.parametrize(
    ("arns", "name", "refused"),
    [
        (FOUR_HERE, "new", False),
        # The shadow of a multi-region trail homed elsewhere takes a slot here too.
        ([*FOUR_HERE, arn("everywhere", "eu-west-1")], "new", True),
        # An organization trail of the management account counts against that account, not this one.
        ([*FOUR_HERE, arn("org", "us-east-1", "999999999999")], "new", False),
        # Changing a trail that exists takes no new slot.
        ([*FOUR_HERE, arn("new")], "new", False),
        ([*FOUR_HERE, arn("t4")], "new", True),
    ],
)
def test_a_new_trail_is_refused_only_when_the_accounts_five_slots_are_taken(
    arns: list[str], name: str, refused: bool
) -> None:
    problem = trail_limit_problem(described(*arns), ACCOUNT, "us-east-1", name)
    assert (problem is not None) == refused
    if problem:
        assert "5 trails in us-east-1" in problem and "multiRegion" in problem and "t0" in problem


def test_only_the_accounts_own_trails_are_counted() -> None:
    listed = described(arn("mine"), arn("shadow", "eu-west-1"), arn("org", account="999999999999"))
    assert account_trails(listed, ACCOUNT) == ["mine", "shadow"]


def test_cloudtrails_own_refusal_becomes_trail_limit_with_the_advice() -> None:
    failure = RegionFailure.from_aws(
        AwsFailure(
            code="MaximumNumberOfTrailsExceededException",
            message="User: 123456789012 already has 5 trails in us-east-1.",
            kind="invalid",
            retryable=False,
            operation="CreateTrail",
        )
    )
    assert failure.code == "TrailLimit" and "Organizations trail" in failure.message


def test_a_sixth_trail_in_a_region_fails_before_any_write(aws: AwsSessions) -> None:
    aws.client("s3", "us-east-1").create_bucket(Bucket="others-audit")
    for i in range(4):
        aws.client("cloudtrail", "us-east-1").create_trail(Name=f"other-{i}", S3BucketName="others-audit")
    aws.client("cloudtrail", "eu-west-1").create_trail(
        Name="other-global", S3BucketName="others-audit", IsMultiRegionTrail=True
    )
    assert aws.recorder is not None
    before = len(aws.recorder.snapshot())
    trail_spec = TrailSpec.model_validate({"regions": ["us-east-1"], "destination": {"bucket": "acme-audit"}})
    outcome = reconcile_trail(TrailRequest("security", "audit", trail_spec), aws, Shared())
    (failure,) = outcome.failures
    assert failure.code == "TrailLimit"
    assert "other-global" in failure.message
    assert [c for c in aws.recorder.snapshot()[before:] if c.mutating] == []
    # A region with a free slot goes ahead.
    elsewhere = TrailSpec.model_validate({"regions": ["us-west-2"], "destination": {"bucket": "acme-audit"}})
    assert reconcile_trail(TrailRequest("security", "audit", elsewhere), aws, Shared()).failures == []
