"""The baselines each figure is compared with: raw boto3 making only the calls the work cannot do without.

No observe, no diff, no kopf, no Kubernetes: the same writes the operator makes to create a bench Trail,
and the minimum reads of a drift sweep, straight at the same moto server. What the operator takes beyond
these is its own cost; on moto, these floors are mostly moto's and botocore's time. Work in another
account starts as the operator's does: one STS AssumeRole into the account's bench role, and clients
acting with those credentials.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from bench.fleet import OWN_ACCOUNT, REGIONS, FleetTrail, Organization, role_arn
from trailkeeper.core.bucket_share import BucketShare, desired_bucket_policy
from trailkeeper.core.naming import OWNER_TAG, lifecycle_rule_id
from trailkeeper.core.topic_policy import desired_topic_policy


class RawClients:
    """One plain boto3 client per (service, region) acting in one account; thread-safe, as boto3 clients
    are (their creation is serialised: a boto3 session is not)."""

    def __init__(self, endpoint: str, session: boto3.session.Session | None = None) -> None:
        self.endpoint = endpoint
        self._session = session or boto3.session.Session()
        self._clients: dict[tuple[str, str], Any] = {}
        self._accounts: dict[str, RawClients] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str, region: str) -> Any:
        key = (service, region)
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:
            if key not in self._clients:
                # Path-style S3: a local endpoint has no per-bucket host names.
                config = Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1})
                make: Callable[..., Any] = self._session.client
                self._clients[key] = make(
                    service, region_name=region, endpoint_url=self.endpoint, config=config
                )
            return self._clients[key]

    def for_account(self, account: str) -> RawClients:
        """The clients acting in `account`: these for the own account, else after one AssumeRole into
        the account's bench role (made on first use, then kept)."""
        if account == OWN_ACCOUNT:
            return self
        with self._lock:
            found = self._accounts.get(account)
        if found is not None:
            return found
        credentials = self("sts", REGIONS[0]).assume_role(RoleArn=role_arn(account), RoleSessionName="bench")[
            "Credentials"
        ]
        session = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        with self._lock:
            return self._accounts.setdefault(account, RawClients(self.endpoint, session))

    def warm(self, accounts: Sequence[str] = (OWN_ACCOUNT,), regions: Sequence[str] = REGIONS) -> None:
        """Make every client before timing anything: the operator's are made once per process too."""
        for account in accounts:
            clients = self.for_account(account)
            for region in regions:
                for service in ("s3", "sns", "cloudtrail"):
                    clients(service, region)


def _bucket(name: str, region: str) -> str:
    return f"bench-{name}-{region}"


def create_trail_set(clients: RawClients, name: str, account: str = OWN_ACCOUNT) -> int:
    """The writes that make one bench Trail and its LogRetention in `account`, in the operator's order;
    the number of calls made."""
    clients = clients.for_account(account)
    owner = f"default/{name}"
    tags = {OWNER_TAG: owner}
    calls = 0
    for region in REGIONS:
        s3, sns, cloudtrail = clients("s3", region), clients("sns", region), clients("cloudtrail", region)
        bucket = _bucket(name, region)
        trail_arn = f"arn:aws:cloudtrail:{region}:{account}:trail/{name}"
        create: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**create)
        s3.put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}
        )
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        policy = desired_bucket_policy(
            owner=owner,
            share=BucketShare(bucket, "", account, name),
            trail_arns=[trail_arn],
            source_accounts=[],
            organization_id=None,
        )
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        topic_arn = sns.create_topic(Name=f"bench-{name}", Tags=[{"Key": OWNER_TAG, "Value": owner}])[
            "TopicArn"
        ]
        policy = desired_topic_policy(owner=owner, topic_arn=topic_arn, trail_arns=[trail_arn])
        sns.set_topic_attributes(
            TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps(policy)
        )
        cloudtrail.create_trail(
            Name=name,
            S3BucketName=bucket,
            SnsTopicName=f"bench-{name}",
            IncludeGlobalServiceEvents=region == REGIONS[0],
            IsMultiRegionTrail=False,
            EnableLogFileValidation=True,
            TagsList=[{"Key": OWNER_TAG, "Value": owner}],
        )
        cloudtrail.put_event_selectors(
            TrailName=name,
            EventSelectors=[{"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": []}],
        )
        cloudtrail.start_logging(Name=name)
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": lifecycle_rule_id("default", name),
                        "Status": "Enabled",
                        "Filter": {"Prefix": "AWSLogs/"},
                        "Transitions": [{"Days": 90, "StorageClass": "GLACIER"}],
                        "Expiration": {"Days": 400},
                    }
                ]
            },
        )
        calls += 12
    return calls


def delete_trail_set(clients: RawClients, name: str, account: str = OWN_ACCOUNT) -> None:
    """Delete the trails `create_trail_set` made (untimed): they hold 2 of the account's 5 slots."""
    clients = clients.for_account(account)
    for region in REGIONS:
        clients("cloudtrail", region).delete_trail(Name=name)


@dataclass(frozen=True)
class FloorRun:
    seconds: float
    calls: int


def _create_central_bucket(clients: RawClients, trail: FleetTrail) -> int:
    """The writes that make an archive Trail: its central bucket (granting its members), the
    LogRetention's lifecycle on it, and its multi-region trail; the number of calls made."""
    clients = clients.for_account(trail.account)
    region = trail.regions[0]
    s3 = clients("s3", region)
    owner = f"default/{trail.name}"
    s3.create_bucket(Bucket=trail.bucket)
    s3.put_bucket_tagging(Bucket=trail.bucket, Tagging={"TagSet": [{"Key": OWNER_TAG, "Value": owner}]})
    s3.put_public_access_block(
        Bucket=trail.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_versioning(Bucket=trail.bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=trail.bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    policy = desired_bucket_policy(
        owner=owner,
        share=BucketShare(trail.bucket, "", trail.account, trail.name),
        trail_arns=[trail.trail_arn(region)],
        source_accounts=list(trail.members),
        organization_id=None,
    )
    s3.put_bucket_policy(Bucket=trail.bucket, Policy=json.dumps(policy))
    s3.put_bucket_lifecycle_configuration(
        Bucket=trail.bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": lifecycle_rule_id("default", trail.name),
                    "Status": "Enabled",
                    "Filter": {"Prefix": "AWSLogs/"},
                    "Transitions": [{"Days": 90, "StorageClass": "GLACIER"}],
                    "Expiration": {"Days": 400},
                }
            ]
        },
    )
    return 8 + _create_trails(clients, trail)


def _create_trails(clients: RawClients, trail: FleetTrail) -> int:
    """The writes that make a Trail's trails (and a member's topic per region) in its account's
    `clients`, into its central bucket; the number of calls made."""
    owner = f"default/{trail.name}"
    calls = 0
    for region in trail.regions:
        cloudtrail = clients("cloudtrail", region)
        notify: dict[str, Any] = {}
        if trail.topic is not None:
            sns = clients("sns", region)
            tags = [{"Key": OWNER_TAG, "Value": owner}]
            topic_arn = sns.create_topic(Name=trail.topic, Tags=tags)["TopicArn"]
            policy = desired_topic_policy(
                owner=owner, topic_arn=topic_arn, trail_arns=[trail.trail_arn(region)]
            )
            sns.set_topic_attributes(
                TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps(policy)
            )
            notify = {"SnsTopicName": trail.topic}
            calls += 2
        cloudtrail.create_trail(
            Name=trail.name,
            S3BucketName=trail.bucket,
            IncludeGlobalServiceEvents=trail.multi_region or region == trail.regions[0],
            IsMultiRegionTrail=trail.multi_region,
            EnableLogFileValidation=True,
            TagsList=[{"Key": OWNER_TAG, "Value": owner}],
            **notify,
        )
        cloudtrail.put_event_selectors(
            TrailName=trail.name,
            EventSelectors=[{"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": []}],
        )
        cloudtrail.start_logging(Name=trail.name)
        calls += 3
    return calls


def create_floor(clients: RawClients, organization: Organization, workers: int) -> FloorRun:
    """Create the organization with `workers` threads (the operator's worker count): the archive Trails
    and their central buckets first (a member's CreateTrail needs its grant), then every member's
    trails and topics; an account's AssumeRole and clients are made on its first use, inside the time,
    as the operator's are. Calls counted: the writes and one AssumeRole per account."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        calls = sum(pool.map(lambda t: _create_central_bucket(clients, t), organization.archives))
        members = organization.member_trails
        calls += sum(pool.map(lambda t: _create_trails(clients.for_account(t.account), t), members))
    return FloorRun(time.perf_counter() - started, calls + len(organization.trails))


def sweep_floor(clients: RawClients, organization: Organization) -> FloorRun:
    """The minimum reads of one drift sweep over the organization (see Organization.object_minimum), one
    after another, as the sequential in-process sweep it is compared with: one DescribeTrails per account
    and region, then each Trail's own reads."""
    trails = organization.trails
    for trail in trails:
        clients.warm([trail.account], trail.regions)
    started = time.perf_counter()
    calls = 0
    for trail in trails:
        for region in trail.regions:
            clients.for_account(trail.account)("cloudtrail", region).describe_trails(includeShadowTrails=True)
            calls += 1
    for trail in trails:
        of_account = clients.for_account(trail.account)
        for region in trail.regions:
            cloudtrail = of_account("cloudtrail", region)
            arn = trail.trail_arn(region)
            cloudtrail.get_trail_status(Name=arn)
            cloudtrail.get_event_selectors(TrailName=arn)
            calls += 2
            if trail.topic is not None:
                sns = of_account("sns", region)
                topic = f"arn:aws:sns:{region}:{trail.account}:{trail.topic}"
                sns.get_topic_attributes(TopicArn=topic)
                sns.list_subscriptions_by_topic(TopicArn=topic)
                calls += 2
        if trail.archive:
            s3 = of_account("s3", trail.regions[0])
            s3.get_bucket_policy(Bucket=trail.bucket)
            s3.get_bucket_lifecycle_configuration(Bucket=trail.bucket)
            calls += 2
    expected = sum(organization.minimum_sweep_calls().values())
    assert calls == expected, f"the sweep floor made {calls} calls, the minimum is {expected}"
    return FloorRun(time.perf_counter() - started, calls)
