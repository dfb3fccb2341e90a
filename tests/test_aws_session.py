"""AwsSessions against moto over HTTP: client cache, AssumeRole, credential refresh, hooks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from support.moto_server import MOTO_DEFAULT_ACCOUNT, MakeAws, MotoServer, free_port
from trailkeeper.aws.calls import AwsCall, CallRecorder
from trailkeeper.aws.errors import classify
from trailkeeper.aws.ratelimit import Rate, RateLimiter, RateLimitTimeoutError
from trailkeeper.aws.session import ROLE_SESSION_NAME, AccountRef, AwsSessions, is_mutating

OTHER_ACCOUNT = "111111111111"
ROLE = AccountRef(f"arn:aws:iam::{OTHER_ACCOUNT}:role/x")


def test_clients_are_cached_per_service_region_and_account(aws: AwsSessions) -> None:
    ct = aws.client("cloudtrail", "us-east-1")
    assert aws.client("cloudtrail", "us-east-1") is ct
    assert aws.client("cloudtrail") is ct  # the default region
    assert aws.client("cloudtrail", "eu-west-1") is not ct
    assert aws.client("s3", "us-east-1") is not ct
    assert aws.client("cloudtrail", "us-east-1", ROLE) is not ct
    assert aws.client("cloudtrail", "us-east-1", ROLE) is aws.client("cloudtrail", "us-east-1", ROLE)


def test_clients_use_standard_retries_and_the_given_timeouts(make_aws: MakeAws, moto_endpoint: str) -> None:
    sessions = make_aws(moto_endpoint, max_attempts=4, connect_timeout=2.0, read_timeout=7.0)
    config = sessions.client("cloudtrail").meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert (config.connect_timeout, config.read_timeout) == (2.0, 7.0)
    assert sessions.client("cloudtrail").meta.endpoint_url == moto_endpoint
    # A local endpoint has no bucket subdomains.
    assert sessions.client("s3").meta.config.s3 == {"addressing_style": "path"}


def test_concurrent_first_use_makes_one_client_and_one_assume_role(aws: AwsSessions) -> None:
    threads_count = 12
    barrier = threading.Barrier(threads_count)
    seen: list[Any] = []

    def use() -> None:
        barrier.wait()
        seen.append(aws.client("s3", "eu-west-1", ROLE))

    threads = [threading.Thread(target=use) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(seen) == threads_count
    assert all(client is seen[0] for client in seen)
    assert aws.recorder is not None
    assert aws.recorder.counts()[("sts", "AssumeRole")] == 1


def test_account_id_comes_from_sts_once(aws: AwsSessions) -> None:
    assert aws.account_id() == MOTO_DEFAULT_ACCOUNT
    assert aws.account_id(None) == MOTO_DEFAULT_ACCOUNT
    assert aws.recorder is not None
    assert aws.recorder.counts()[("sts", "GetCallerIdentity")] == 1


def test_assumed_role_acts_in_the_role_account(aws: AwsSessions) -> None:
    assert aws.account_id(ROLE) == OTHER_ACCOUNT
    # What AssumeRole answered names the account: no GetCallerIdentity for it.
    assert aws.recorder is not None
    assert aws.recorder.counts()[("sts", "AssumeRole")] == 1
    assert aws.recorder.counts()[("sts", "GetCallerIdentity")] == 0
    aws.client("s3", "us-east-1", ROLE).create_bucket(Bucket="theirs")
    aws.client("s3", "us-east-1").create_bucket(Bucket="ours")

    def bucket_names(account: AccountRef | None) -> set[str]:
        return {b["Name"] for b in aws.client("s3", "us-east-1", account).list_buckets()["Buckets"]}

    assert bucket_names(ROLE) == {"theirs"}
    assert bucket_names(None) == {"ours"}


def test_assume_role_names_the_session_and_passes_the_external_id(aws: AwsSessions) -> None:
    sent: list[dict[str, Any]] = []
    aws.client("sts").meta.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: sent.append(dict(params))
    )
    role = AccountRef(f"arn:aws:iam::{OTHER_ACCOUNT}:role/with-id", external_id="s3cr3t")
    identity = aws.client("sts", None, role).get_caller_identity()
    assert sent == [
        {
            "RoleArn": role.role_arn,
            "RoleSessionName": ROLE_SESSION_NAME,
            "DurationSeconds": 3600,
            "ExternalId": "s3cr3t",
        }
    ]
    assert identity["Arn"] == f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/with-id/{ROLE_SESSION_NAME}"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def test_assumed_credentials_are_refreshed_five_minutes_before_expiry(
    make_aws: MakeAws, moto_endpoint: str, moto_server: MotoServer
) -> None:
    moto_server.reset()
    clock = FakeClock()
    start = clock.now
    sessions = make_aws(moto_endpoint, clock=clock, role_duration_seconds=3600)
    s3 = sessions.client("s3", "us-east-1", ROLE)
    recorder = sessions.recorder
    assert recorder is not None

    def assume_count() -> int:
        return recorder.counts()[("sts", "AssumeRole")]

    s3.list_buckets()
    assert assume_count() == 1

    clock.now = start + timedelta(seconds=3600 - 6 * 60)  # 6 minutes left: still good
    s3.list_buckets()
    assert assume_count() == 1

    clock.now = start + timedelta(seconds=3600 - 4 * 60)  # 4 minutes left: refresh first
    s3.list_buckets()
    assert assume_count() == 2
    assert sessions.client("s3", "us-east-1", ROLE) is s3  # the cached client kept working


def test_every_call_is_recorded(aws: AwsSessions) -> None:
    s3 = aws.client("s3", "us-east-1")
    ct = aws.client("cloudtrail", "us-east-1")
    s3.create_bucket(Bucket="logs")
    ct.describe_trails()
    with pytest.raises(ct.exceptions.TrailNotFoundException):
        ct.get_trail_status(Name="missing")
    recorder = aws.recorder
    assert recorder is not None
    calls = recorder.snapshot()
    assert [(c.service, c.operation, c.outcome, c.mutating) for c in calls] == [
        ("s3", "CreateBucket", "ok", True),
        ("cloudtrail", "DescribeTrails", "ok", False),
        ("cloudtrail", "GetTrailStatus", "TrailNotFoundException", False),
    ]
    assert all(c.region == "us-east-1" and c.account == "default" for c in calls)
    assert all(c.seconds > 0 for c in calls)
    assert [c.operation for c in recorder.mutating_calls()] == ["CreateBucket"]
    assert recorder.total_seconds() == pytest.approx(sum(c.seconds for c in calls))
    recorder.reset()
    assert len(recorder) == 0


def test_calls_in_an_assumed_role_are_labelled_with_its_account(aws: AwsSessions) -> None:
    aws.client("cloudtrail", "eu-west-1", ROLE).describe_trails()
    assert aws.recorder is not None
    described = [c for c in aws.recorder.snapshot() if c.operation == "DescribeTrails"]
    assert [(c.account, c.region) for c in described] == [(OTHER_ACCOUNT, "eu-west-1")]


def test_calls_that_get_no_answer_are_recorded(make_aws: MakeAws) -> None:
    sessions = make_aws(f"http://127.0.0.1:{free_port()}", connect_timeout=1.0)
    with pytest.raises(EndpointConnectionError) as raised:
        sessions.client("cloudtrail").describe_trails()
    assert classify(raised.value).kind == "connection"
    assert sessions.recorder is not None
    [call] = sessions.recorder.snapshot()
    assert (call.operation, call.outcome) == ("DescribeTrails", "EndpointConnectionError")


class SpyLimiter(RateLimiter):
    def __init__(self) -> None:
        super().__init__({}, fallback=None)
        self.keys: list[tuple[str, str, str, str | None]] = []

    def acquire(
        self,
        account: str,
        region: str,
        service: str,
        operation: str | None = None,
        *,
        timeout: float | None = None,
    ) -> float:
        self.keys.append((account, region, service, operation))
        return 0.0


def test_every_call_first_takes_a_rate_limit_token(make_aws: MakeAws, moto_endpoint: str) -> None:
    spy = SpyLimiter()
    sessions = make_aws(moto_endpoint, rate_limiter=spy)
    sessions.client("cloudtrail", "eu-west-1").describe_trails()
    sessions.client("sns", "us-east-1", ROLE).list_topics()
    assert spy.keys == [
        ("default", "eu-west-1", "cloudtrail", "DescribeTrails"),
        ("default", "us-east-1", "sts", "AssumeRole"),
        (OTHER_ACCOUNT, "us-east-1", "sns", "ListTopics"),
    ]


def test_a_call_that_cannot_get_a_token_in_time_is_not_sent(make_aws: MakeAws, moto_endpoint: str) -> None:
    limiter = RateLimiter({"cloudtrail": Rate(0.01, 1.0)}, fallback=None)
    sessions = make_aws(moto_endpoint, rate_limiter=limiter, rate_limit_timeout=0.05)
    ct = sessions.client("cloudtrail")
    ct.describe_trails()
    with pytest.raises(RateLimitTimeoutError) as raised:
        ct.describe_trails()
    assert classify(raised.value).kind == "throttled"
    assert sessions.recorder is not None
    assert [c.outcome for c in sessions.recorder.snapshot()] == ["ok", "RateLimitTimeoutError"]


def test_endpoint_falls_back_to_aws_endpoint_url(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    sessions = AwsSessions(rate_limiter=RateLimiter.disabled())
    assert sessions.endpoint_url == moto_endpoint
    assert sessions.default_region == "us-east-1"
    assert sessions.client("cloudtrail").meta.endpoint_url == moto_endpoint
    assert "trailList" in sessions.client("cloudtrail").describe_trails()


def test_listeners_see_every_call() -> None:
    recorder = CallRecorder(max_calls=2)
    heard: list[AwsCall] = []
    recorder.add_listener(heard.append)
    for n in range(3):
        recorder.record(AwsCall("s3", f"Op{n}", "us-east-1", "default", "ok", 0.1, True))
    assert [c.operation for c in recorder.snapshot()] == ["Op1", "Op2"]  # bounded
    assert [c.operation for c in heard] == ["Op0", "Op1", "Op2"]


@pytest.mark.parametrize(
    ("operation", "mutating"),
    [
        ("DescribeTrails", False),
        ("GetTrailStatus", False),
        ("GetBucketPolicy", False),
        ("ListTags", False),
        ("HeadBucket", False),
        ("LookupEvents", False),
        ("AssumeRole", False),
        ("CreateTrail", True),
        ("UpdateTrail", True),
        ("StartLogging", True),
        ("PutBucketPolicy", True),
        ("AddTags", True),
        ("Subscribe", True),
        ("SetTopicAttributes", True),
        ("DeleteBucketLifecycle", True),
    ],
)
def test_is_mutating(operation: str, mutating: bool) -> None:
    assert is_mutating(operation) is mutating


def test_account_ref() -> None:
    assert ROLE.arn_account == OTHER_ACCOUNT
    assert AccountRef.from_spec(None) is None
    assert AccountRef.from_spec("arn:aws:iam::222222222222:role/a/b", "id") == AccountRef(
        "arn:aws:iam::222222222222:role/a/b", "id"
    )
    with pytest.raises(ValueError, match="not an IAM role ARN"):
        AccountRef("arn:aws:iam::111111111111:user/x")
