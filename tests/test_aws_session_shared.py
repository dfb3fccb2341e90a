"""AwsSessions' assumed-role accounts share one botocore client per (service, region): each call still acts
in, is paced and recorded for, and is memoized under its own account; a call bound to none is refused."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from support.moto_server import MakeAws
from trailkeeper.aws.ratelimit import RateLimiter
from trailkeeper.aws.session import AccountRef, AwsSessions, UnboundCallError

ACCOUNTS = [f"2222222222{i:02d}" for i in range(6)]
ROLES = [AccountRef(f"arn:aws:iam::{account}:role/x") for account in ACCOUNTS]
REGION = "us-east-1"


def _bucket_names(aws: AwsSessions, role: AccountRef | None) -> set[str]:
    return {b["Name"] for b in aws.client("s3", REGION, role).list_buckets()["Buckets"]}


def test_accounts_share_one_client_per_service_and_region(aws: AwsSessions) -> None:
    views = [aws.client("s3", REGION, role) for role in ROLES]
    aws.client("s3", REGION)  # the operator's own
    assert len({id(view) for view in views}) == len(ROLES)
    # One shared by the accounts; the operator's own account's, and its STS client that assumed the roles.
    assert aws.live_clients == 3
    aws.client("s3", "eu-west-1", ROLES[0])
    assert aws.live_clients == 4
    # An account's view is the same object every time, and its role was assumed once.
    assert aws.client("s3", REGION, ROLES[0]) is views[0]
    assert aws.recorder is not None
    assert aws.recorder.counts()[("sts", "AssumeRole")] == len(ROLES)


def test_concurrent_calls_through_the_shared_client_each_act_in_their_own_account(aws: AwsSessions) -> None:
    for account, role in zip(ACCOUNTS, ROLES, strict=True):
        aws.client("s3", REGION, role).create_bucket(Bucket=f"of-{account}")
    aws.client("s3", REGION).create_bucket(Bucket="own")
    barrier = threading.Barrier(len(ROLES) * 2)

    def names(role: AccountRef) -> set[str]:
        barrier.wait(timeout=10)
        return _bucket_names(aws, role)

    with ThreadPoolExecutor(len(ROLES) * 2) as pool:
        seen = list(pool.map(names, ROLES * 2))
    assert seen == [{f"of-{account}"} for account in ACCOUNTS * 2]
    assert _bucket_names(aws, None) == {"own"}
    assert aws.recorder is not None
    listed = [c.account for c in aws.recorder.snapshot() if c.operation == "ListBuckets"]
    assert sorted(listed) == sorted([*ACCOUNTS * 2, "default"])


def test_pages_of_a_listing_act_in_the_account(aws: AwsSessions) -> None:
    sns = aws.client("sns", REGION, ROLES[1])
    arn = sns.create_topic(Name="alerts")["TopicArn"]
    assert arn.split(":")[4] == ACCOUNTS[1]
    for i in range(3):
        sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=f"ops{i}@example.com")
    pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn)
    # Fetched lazily, after paginate() returned: each page still signs as the account.
    assert sorted(s["Endpoint"] for page in pages for s in page["Subscriptions"]) == [
        f"ops{i}@example.com" for i in range(3)
    ]
    assert aws.recorder is not None
    listed = [c.account for c in aws.recorder.snapshot() if c.operation == "ListSubscriptionsByTopic"]
    assert listed and set(listed) == {ACCOUNTS[1]}


def test_a_call_bound_to_no_account_is_refused_before_it_is_sent(aws: AwsSessions) -> None:
    view = aws.client("cloudtrail", REGION, ROLES[0])
    view.describe_trails()
    assert aws.recorder is not None
    aws.recorder.reset()
    shared = view._client  # what only a bug in this module would call directly
    with pytest.raises(UnboundCallError):
        shared.describe_trails()
    # Not even from the memo, where the account's answer is.
    with aws.memo.scope(3600.0), pytest.raises(UnboundCallError):
        view.describe_trails()
        shared.describe_trails()
    assert [c.operation for c in aws.recorder.snapshot()] == ["DescribeTrails"]


def test_each_account_is_paced_under_its_own_key(make_aws: MakeAws, moto_endpoint: str) -> None:
    asked: list[str] = []

    class Recording(RateLimiter):
        def acquire(self, account: str, *args: Any, **kwargs: Any) -> float:
            asked.append(account)
            return super().acquire(account, *args, **kwargs)

    aws = make_aws(moto_endpoint, rate_limiter=Recording(enabled=False))
    for role in ROLES[:3]:
        aws.client("cloudtrail", REGION, role).describe_trails()
    assert [a for a in asked if a != "default"] == ACCOUNTS[:3]
