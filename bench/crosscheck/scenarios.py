"""The accounts the cross-check audits, each made on a freshly reset moto: with boto3, or (`applied`) by
`trailkeeper apply` of a Trail manifest (applied.py).

Every scenario starts from one layout that passes what moto can show (a logging multi-region trail with
log file validation, KMS, read and write management events and S3 data events, a versioned log bucket
with access logging and Block Public Access, and the CIS Monitoring section on its log group, delivered
to five minutes ago) and changes one thing. MFA Delete cannot pass on moto: it does not keep the setting.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from support.cis_monitoring import make_monitoring
from support.cloudwatch_delivery import CloudWatchDeliveryFront

REGIONS = ("us-east-1", "eu-west-1")
HOME = REGIONS[0]
ACCOUNT = "123456789012"
TRAIL = "audit-trail"
BUCKET = "crosscheck-trail-logs"
ACCESS_LOG_BUCKET = "crosscheck-access-logs"
ALL_S3_OBJECTS = "arn:aws:s3"
BLOCK_ALL = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}

# client(service, region): a boto3 client on the moto endpoint.
ClientFactory = Callable[[str, str], Any]


@dataclass(frozen=True)
class Layout:
    multi_region: bool = True
    logging: bool = True
    validation: bool = True
    kms: bool = True
    versioning: bool = True
    bucket_block: bool = True
    account_block: bool = False
    public_acl: bool = False
    public_policy: bool = False
    read_write: str = "All"
    data_events: bool = True
    monitoring: bool = True
    subscribed: bool = True
    # None: the log group has had no delivery yet.
    delivery_age: timedelta | None = timedelta(minutes=5)


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    layout: Layout
    # True: made by `trailkeeper apply` of a Trail with spec.monitoring (applied.py); `layout` unused.
    applied: bool = False


BASE = Layout()
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("compliant", "multi-region trail with every setting and the Monitoring section", BASE),
    Scenario("stopped", "the compliant trail after StopLogging", replace(BASE, logging=False)),
    Scenario(
        "regional",
        "a region-scoped trail in each region (global events in one), no log group",
        replace(BASE, multi_region=False, monitoring=False),
    ),
    Scenario(
        "public-acl",
        "log bucket readable by AllUsers (ACL), no BPA",
        replace(BASE, bucket_block=False, public_acl=True),
    ),
    Scenario(
        "public-policy",
        'bucket policy allowing s3:GetObject to Principal "*", no BPA',
        replace(BASE, bucket_block=False, public_policy=True),
    ),
    Scenario(
        "account-bpa",
        "public ACL on the log bucket, all four account-level BPA settings on",
        replace(BASE, bucket_block=False, public_acl=True, account_block=True),
    ),
    Scenario("no-validation", "log file validation off", replace(BASE, validation=False)),
    Scenario("no-kms", "no KMS key on the trail", replace(BASE, kms=False)),
    Scenario("no-versioning", "log bucket unversioned (so no MFA Delete)", replace(BASE, versioning=False)),
    Scenario("write-only", "management events WriteOnly", replace(BASE, read_write="WriteOnly")),
    Scenario(
        "stale-delivery",
        "log group's last delivery 3 days ago",
        replace(BASE, delivery_age=timedelta(days=3)),
    ),
    Scenario("no-delivery", "log group with no delivery yet", replace(BASE, delivery_age=None)),
    Scenario("unsubscribed", "alarm topic without a subscription", replace(BASE, subscribed=False)),
    Scenario(
        "applied",
        "`trailkeeper apply` of a Trail with spec.monitoring; by hand only access logging and MFA Delete",
        BASE,
        applied=True,
    ),
)


def build(layout: Layout, client: ClientFactory, front: CloudWatchDeliveryFront) -> list[str]:
    """Make `layout` in the account; returns the trails' log buckets."""
    s3 = client("s3", HOME)
    if layout.monitoring:
        # The bucket, log group, filters, alarms, topic and a logging multi-region trail.
        make_monitoring(
            lambda service: client(service, HOME),
            HOME,
            bucket=BUCKET,
            trail=TRAIL,
            subscribe=layout.subscribed,
        )
        trails = [(HOME, TRAIL)]
    else:
        s3.create_bucket(Bucket=BUCKET)
        trails = _region_trails(layout, client)
    for region, name in trails:
        _configure_trail(layout, client("cloudtrail", region), client("kms", region), name)
    _configure_bucket(layout, s3)
    if layout.account_block:
        client("s3control", HOME).put_public_access_block(
            AccountId=ACCOUNT, PublicAccessBlockConfiguration=BLOCK_ALL
        )
    front.set_age(TRAIL, layout.delivery_age)
    return [BUCKET]


def _region_trails(layout: Layout, client: ClientFactory) -> list[tuple[str, str]]:
    if layout.multi_region:
        client("cloudtrail", HOME).create_trail(Name=TRAIL, S3BucketName=BUCKET, IsMultiRegionTrail=True)
        client("cloudtrail", HOME).start_logging(Name=TRAIL)
        return [(HOME, TRAIL)]
    for region in REGIONS:
        cloudtrail = client("cloudtrail", region)
        cloudtrail.create_trail(Name=TRAIL, S3BucketName=BUCKET, IncludeGlobalServiceEvents=region == HOME)
        cloudtrail.start_logging(Name=TRAIL)
    return [(region, TRAIL) for region in REGIONS]


def _configure_trail(layout: Layout, cloudtrail: Any, kms: Any, name: str) -> None:
    settings: dict[str, Any] = {"Name": name, "EnableLogFileValidation": layout.validation}
    if layout.kms:
        settings["KmsKeyId"] = kms.create_key(Description="crosscheck trail logs")["KeyMetadata"]["Arn"]
    cloudtrail.update_trail(**settings)
    selector: dict[str, Any] = {"ReadWriteType": layout.read_write, "IncludeManagementEvents": True}
    if layout.data_events:
        selector["DataResources"] = [{"Type": "AWS::S3::Object", "Values": [ALL_S3_OBJECTS]}]
    cloudtrail.put_event_selectors(TrailName=name, EventSelectors=[selector])
    if not layout.logging:
        cloudtrail.stop_logging(Name=name)


def _configure_bucket(layout: Layout, s3: Any) -> None:
    s3.create_bucket(Bucket=ACCESS_LOG_BUCKET)
    s3.put_bucket_acl(Bucket=ACCESS_LOG_BUCKET, ACL="log-delivery-write")
    s3.put_bucket_logging(
        Bucket=BUCKET,
        BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": ACCESS_LOG_BUCKET, "TargetPrefix": "trail/"}},
    )
    if layout.versioning:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    if layout.bucket_block:
        s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=BLOCK_ALL)
    if layout.public_acl:
        s3.put_bucket_acl(Bucket=BUCKET, ACL="public-read")
    if layout.public_policy:
        statement = {
            "Sid": "PublicRead",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
        }
        s3.put_bucket_policy(
            Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        )
