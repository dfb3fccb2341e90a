"""An organization's central bucket: a log-archive account's Trail owns it and grants its member accounts
(sourceAccounts); member Trails (createBucket: false) deliver into it without reading or writing it."""

from __future__ import annotations

from typing import Any

from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.account_state import observe_account
from trailkeeper.aws.session import AccountRef, AwsSessions
from trailkeeper.reconcile.shared import Shared
from trailkeeper.reconcile.trail import TrailRequest, reconcile_trail

ARCHIVE = "300000000000"
MEMBER = "300000000001"
CENTRAL = "org-central-logs"
REGIONS = ["us-east-1", "eu-west-1"]


def role(account: str) -> dict[str, str]:
    return {"roleArn": f"arn:aws:iam::{account}:role/trailkeeper"}


def central_spec(accounts: list[str]) -> TrailSpec:
    destination = {"bucket": CENTRAL, "sourceAccounts": accounts}
    return TrailSpec.model_validate(
        {"regions": REGIONS, "destination": destination, "account": role(ARCHIVE)}
    )


def member_spec(**destination: Any) -> TrailSpec:
    body = {"bucket": CENTRAL, "createBucket": False, **destination}
    return TrailSpec.model_validate({"regions": REGIONS, "destination": body, "account": role(MEMBER)})


def request(trail_spec: TrailSpec, name: str, **kwargs: Any) -> TrailRequest:
    return TrailRequest(namespace="org", name=name, spec=trail_spec, **kwargs)


def s3_calls_of(aws: AwsSessions, since: int) -> list[str]:
    assert aws.recorder is not None
    return [c.operation for c in aws.recorder.snapshot()[since:] if c.service == "s3"]


def test_a_granted_member_delivers_into_the_central_bucket_without_touching_it(aws: AwsSessions) -> None:
    shared = Shared()
    assert reconcile_trail(request(central_spec([MEMBER]), "archive"), aws, shared).failures == []
    assert aws.recorder is not None
    before = len(aws.recorder.snapshot())
    outcome = reconcile_trail(request(member_spec(), "member"), aws, shared)
    assert outcome.failures == []
    assert outcome.account_id == MEMBER
    trails = aws.client("cloudtrail", "eu-west-1", AccountRef(role(MEMBER)["roleArn"])).describe_trails()
    assert [(t["Name"], t["S3BucketName"]) for t in trails["trailList"]] == [("member", CENTRAL)]
    # One read tells the bucket is another account's (403); nothing else of it is read, nothing written.
    assert s3_calls_of(aws, before) == ["GetBucketTagging"]
    # A drift check knows it already: no S3 call at all.
    before = len(aws.recorder.snapshot())
    check = reconcile_trail(request(member_spec(), "member", deep=False), aws, shared)
    assert check.failures == [] and check.diffs == []
    assert s3_calls_of(aws, before) == []


def test_a_member_not_granted_says_who_must_grant_what_and_is_ready_once_granted(aws: AwsSessions) -> None:
    shared = Shared()
    reconcile_trail(request(central_spec([]), "archive"), aws, shared)
    outcome = reconcile_trail(request(member_spec(keyPrefix="org"), "member"), aws, shared)
    reasons = {f.code for f in outcome.failures}
    assert reasons == {"BucketNotGranted"}
    message = outcome.failures[0].message
    assert CENTRAL in message and MEMBER in message and "sourceAccounts" in message
    assert "org/AWSLogs/" in message
    assert all(f.retryable for f in outcome.failures)
    # The central Trail grants the member under the same prefix: the member's next pass makes its trails.
    granted = TrailSpec.model_validate(
        {
            "regions": REGIONS,
            "destination": {"bucket": CENTRAL, "sourceAccounts": [MEMBER], "keyPrefix": "org"},
            "account": role(ARCHIVE),
        }
    )
    assert reconcile_trail(request(granted, "archive"), aws, shared).failures == []
    assert reconcile_trail(request(member_spec(keyPrefix="org"), "member"), aws, shared).failures == []


def test_a_member_asking_to_create_a_taken_bucket_is_told_to_use_it_as_it_is(aws: AwsSessions) -> None:
    shared = Shared()
    reconcile_trail(request(central_spec([MEMBER]), "archive"), aws, shared)
    wrong = TrailSpec.model_validate(
        {"regions": REGIONS, "destination": {"bucket": CENTRAL}, "account": role(MEMBER)}
    )
    outcome = reconcile_trail(request(wrong, "member"), aws, shared)
    assert {f.code for f in outcome.failures} == {"AccessDenied"}
    assert "createBucket: false" in outcome.failures[0].message


def test_the_compliance_observation_of_a_member_does_not_call_s3_for_a_bucket_known_to_be_foreign(
    aws: AwsSessions,
) -> None:
    # As in the operator: the passes and the compliance observation share the sessions' read layer.
    shared = Shared(cache=aws.reads)
    reconcile_trail(request(central_spec([MEMBER]), "archive"), aws, shared)
    reconcile_trail(request(member_spec(), "member"), aws, shared)
    assert aws.recorder is not None
    before = len(aws.recorder.snapshot())

    observation = observe_account(aws, AccountRef(role(MEMBER)["roleArn"]), regions=REGIONS, monitoring=False)

    assert s3_calls_of(aws, before) == []
    assert f"bucket {CENTRAL}: not readable (another account's)" in observation.notes
    assert [t.name for t in observation.state.trails if not t.is_shadow] == ["member"] * len(REGIONS)
