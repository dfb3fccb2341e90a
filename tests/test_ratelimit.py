"""Token-bucket arithmetic of the AWS rate limiter, on an injected clock."""

from __future__ import annotations

import threading
import time

import pytest

from trailkeeper.aws.ratelimit import DEFAULT_RATES, Rate, RateLimiter, RateLimitTimeoutError


class FakeTime:
    """A clock that only moves when someone sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def limiter(rates: dict[str, Rate | None], fake: FakeTime, fallback: Rate | None = None) -> RateLimiter:
    return RateLimiter(rates, fallback=fallback, clock=fake.clock, sleep=fake.sleep)


def test_burst_is_spent_without_waiting_then_calls_are_spaced_at_the_rate() -> None:
    fake = FakeTime()
    rl = limiter({"svc": Rate(2.0, 3.0)}, fake)
    waits = [rl.acquire("a", "r", "svc") for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, pytest.approx(0.5), pytest.approx(0.5)]
    assert fake.sleeps == [pytest.approx(0.5), pytest.approx(0.5)]


def test_tokens_refill_with_time_up_to_the_burst_only() -> None:
    fake = FakeTime()
    rl = limiter({"svc": Rate(1.0, 2.0)}, fake)
    rl.acquire("a", "r", "svc")
    rl.acquire("a", "r", "svc")
    fake.now += 100.0  # far more than needed to refill: the bucket still holds only 2
    assert [rl.acquire("a", "r", "svc") for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]


def test_callers_arriving_together_are_queued_in_order() -> None:
    fake = FakeTime()
    rl = RateLimiter({"svc": Rate(2.0, 1.0)}, fallback=None, clock=fake.clock, sleep=lambda _: None)
    # The clock does not move: each caller reserves the next free slot.
    assert [rl.acquire("a", "r", "svc") for _ in range(4)] == [
        0.0,
        pytest.approx(0.5),
        pytest.approx(1.0),
        pytest.approx(1.5),
    ]


def test_buckets_are_separate_per_account_region_and_service() -> None:
    fake = FakeTime()
    rl = limiter({"s1": Rate(1.0, 1.0), "s2": Rate(1.0, 1.0)}, fake)
    for key in [("a", "r", "s1"), ("b", "r", "s1"), ("a", "q", "s1"), ("a", "r", "s2")]:
        assert rl.acquire(*key) == 0.0
    assert rl.acquire("a", "r", "s1") == pytest.approx(1.0)


def test_wait_longer_than_timeout_raises_and_takes_no_token() -> None:
    fake = FakeTime()
    rl = limiter({"svc": Rate(1.0, 1.0)}, fake)
    rl.acquire("a", "r", "svc")
    with pytest.raises(RateLimitTimeoutError) as raised:
        rl.acquire("a", "r", "svc", timeout=0.5)
    assert raised.value.wait == pytest.approx(1.0)
    assert fake.sleeps == []
    # The refused caller left the queue: the next one waits 1 s, not 2 s.
    assert rl.acquire("a", "r", "svc", timeout=1.0) == pytest.approx(1.0)


def test_cloudtrail_defaults_follow_the_documented_quotas() -> None:
    rl = RateLimiter()
    assert rl.limit_for("cloudtrail", "DescribeTrails") == ("cloudtrail:read", Rate(10.0, 10.0))
    assert rl.limit_for("cloudtrail", "GetTrailStatus") == ("cloudtrail:read", Rate(10.0, 10.0))
    assert rl.limit_for("cloudtrail", "ListTags")[0] == "cloudtrail:read"
    for write in ["CreateTrail", "UpdateTrail", "StartLogging", "PutEventSelectors", "AddTags"]:
        assert rl.limit_for("cloudtrail", write) == ("cloudtrail:write", Rate(1.0, 1.0))
    assert rl.limit_for("cloudtrail", "LookupEvents") == ("cloudtrail:lookupevents", Rate(2.0, 2.0))
    assert rl.limit_for("s3", "PutBucketPolicy")[0] == "s3"
    assert rl.limit_for("kms", "DescribeKey") == ("kms", Rate(10.0, 20.0))


def test_cloudtrail_reads_do_not_wait_behind_writes() -> None:
    fake = FakeTime()
    rl = RateLimiter(DEFAULT_RATES, clock=fake.clock, sleep=fake.sleep)
    for _ in range(2):
        rl.acquire("a", "us-east-1", "cloudtrail", "CreateTrail")
    assert rl.acquire("a", "us-east-1", "cloudtrail", "GetTrailStatus") == 0.0
    assert rl.acquire("a", "us-east-1", "cloudtrail", "StartLogging") == pytest.approx(1.0)


def test_disabled_and_unlimited_never_wait() -> None:
    fake = FakeTime()
    assert all(
        RateLimiter.disabled().acquire("a", "r", "cloudtrail", "CreateTrail") == 0.0 for _ in range(50)
    )
    rl = limiter({"s3": None}, fake, fallback=Rate(1.0, 1.0))
    assert all(rl.acquire("a", "r", "s3") == 0.0 for _ in range(50))
    assert fake.sleeps == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", Rate(5.0, 5.0)),
        ("0.5", Rate(0.5, 1.0)),
        ("2:10", Rate(2.0, 10.0)),
        (" 3 : 4 ", Rate(3.0, 4.0)),
        ("off", None),
        ("0", None),
    ],
)
def test_rate_parse(text: str, expected: Rate | None) -> None:
    assert Rate.parse(text) == expected


@pytest.mark.parametrize("text", ["fast", "1:0.5", "-1", "1:2:3"])
def test_rate_parse_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        Rate.parse(text)


def test_from_env_overrides_defaults() -> None:
    rl = RateLimiter.from_env(
        {
            "TRAILKEEPER_AWS_RATE_SNS": "4:8",
            "TRAILKEEPER_AWS_RATE_S3": "off",
            "TRAILKEEPER_AWS_RATE_DEFAULT": "3",
            "TRAILKEEPER_AWS_RATE_CLOUDTRAIL_LOOKUPEVENTS": "1",
            "UNRELATED": "x",
        }
    )
    assert rl.limit_for("sns", "Publish") == ("sns", Rate(4.0, 8.0))
    assert rl.limit_for("s3", "PutObject") == ("s3", None)
    assert rl.limit_for("logs", "DescribeLogGroups") == ("logs", Rate(3.0, 3.0))
    assert rl.limit_for("cloudtrail", "LookupEvents") == ("cloudtrail:lookupevents", Rate(1.0, 1.0))
    assert rl.limit_for("cloudtrail", "CreateTrail") == ("cloudtrail:write", Rate(1.0, 1.0))


def test_from_env_service_level_replaces_the_finer_defaults() -> None:
    rl = RateLimiter.from_env(
        {"TRAILKEEPER_AWS_RATE_CLOUDTRAIL": "5:10", "TRAILKEEPER_AWS_RATE_CLOUDTRAIL_WRITE": "2"}
    )
    assert rl.limit_for("cloudtrail", "DescribeTrails") == ("cloudtrail", Rate(5.0, 10.0))
    assert rl.limit_for("cloudtrail", "LookupEvents") == ("cloudtrail", Rate(5.0, 10.0))
    assert rl.limit_for("cloudtrail", "CreateTrail") == ("cloudtrail:write", Rate(2.0, 2.0))


def test_from_env_names_the_bad_variable() -> None:
    with pytest.raises(ValueError, match="TRAILKEEPER_AWS_RATE_SNS"):
        RateLimiter.from_env({"TRAILKEEPER_AWS_RATE_SNS": "lots"})


def test_concurrent_callers_share_one_bucket() -> None:
    rate = 400.0
    rl = RateLimiter({"svc": Rate(rate, 1.0)}, fallback=None)
    callers = 20
    barrier = threading.Barrier(callers)

    def call() -> None:
        barrier.wait()
        rl.acquire("a", "r", "svc")

    threads = [threading.Thread(target=call) for _ in range(callers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    elapsed = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads)
    # One token up front, then one per 1/rate seconds for each of the others.
    assert elapsed >= (callers - 1) / rate * 0.9
