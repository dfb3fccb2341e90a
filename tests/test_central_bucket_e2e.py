"""End to end: an organization's central bucket, through the real operator, API server and moto behind the
bucket access front (another account's bucket answers AccessDenied; CloudTrail checks the bucket policy).

A log-archive account's Trail owns the bucket and grants its member accounts (sourceAccounts); member
Trails in two other accounts (createBucket: false) deliver into it. A member the bucket's Trail does not
grant ends Ready=False, reason BucketNotGranted, until the grant is added.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from support.cluster import Cluster, OperatorProcess
from trailkeeper.core.naming import OWNER_TAG

pytestmark = pytest.mark.e2e

ARCHIVE, FIRST, SECOND = "400000000000", "400000000001", "400000000002"
CENTRAL = "e2e-org-central"
REGIONS = ["us-east-1", "eu-west-1"]


def role(account: str) -> str:
    return f"arn:aws:iam::{account}:role/trailkeeper"


def client(service: str, endpoint: str, account: str, region: str = "us-east-1") -> Any:
    """A client acting in `account` (moto's AssumeRole into the account's role)."""
    sts = boto3.client("sts", region_name=region, endpoint_url=endpoint)
    keys = sts.assume_role(RoleArn=role(account), RoleSessionName="e2e")["Credentials"]
    return boto3.client(  # type: ignore[call-overload]
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    )


def central(accounts: list[str]) -> dict[str, Any]:
    return {
        "regions": REGIONS,
        "destination": {"bucket": CENTRAL, "sourceAccounts": accounts},
        "account": {"roleArn": role(ARCHIVE)},
        "resyncSeconds": 30,
    }


def member(account: str, multi_region: bool) -> dict[str, Any]:
    return {
        "regions": REGIONS[:1] if multi_region else REGIONS,
        "multiRegion": multi_region,
        "destination": {"bucket": CENTRAL, "createBucket": False},
        "account": {"roleArn": role(account)},
        "resyncSeconds": 30,
    }


def test_members_deliver_into_the_central_bucket_once_its_trail_grants_them(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    cluster.apply("Trail", "archive", central([FIRST]))
    cluster.apply("Trail", "first", member(FIRST, multi_region=True))
    cluster.apply("Trail", "second", member(SECOND, multi_region=False))
    cluster.wait_condition("Trail", "archive", "Ready", "True", timeout=60)
    cluster.wait_condition("Trail", "first", "Ready", "True", timeout=60)
    refused = cluster.wait_condition(
        "Trail", "second", "Ready", "False", reason="BucketNotGranted", timeout=60
    )
    for needed in (CENTRAL, SECOND, "sourceAccounts"):
        assert needed in refused["message"]
    assert "Traceback" not in json.dumps(cluster.status("Trail", "second"))

    cluster.patch_spec("Trail", "archive", {"destination": {"sourceAccounts": [FIRST, SECOND]}})
    cluster.wait_condition("Trail", "second", "Ready", "True", timeout=90)

    for account, regions in ((FIRST, REGIONS[:1]), (SECOND, REGIONS)):
        for region in regions:
            trails = client("cloudtrail", moto_endpoint, account, region).describe_trails(
                includeShadowTrails=False
            )["trailList"]
            assert [(t["S3BucketName"], t["TrailARN"].split(":")[4]) for t in trails] == [(CENTRAL, account)]
            name = trails[0]["Name"]
            assert client("cloudtrail", moto_endpoint, account, region).get_trail_status(Name=name)[
                "IsLogging"
            ]
    # The bucket and its policy are the archive account's: the members wrote nothing into it.
    s3 = client("s3", moto_endpoint, ARCHIVE)
    policy = json.dumps(json.loads(s3.get_bucket_policy(Bucket=CENTRAL)["Policy"]))
    assert f"AWSLogs/{SECOND}/*" in policy and f"AWSLogs/{FIRST}/*" in policy
    assert ":trail/first" not in policy and ":trail/second" not in policy
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=CENTRAL)["TagSet"]}
    assert tags[OWNER_TAG] == "default/archive"
    # Their compliance says the bucket's controls were not observed: neither a pass nor a crash.
    for name in ("first", "second"):
        compliant = cluster.wait_condition("Trail", name, "Compliant", "False", timeout=60)
        assert "Traceback" not in compliant["message"]
        entries = {c["control"]: c for c in cluster.status("Trail", name)["compliance"]}
        for control in ("CIS-3.3", "CIS-3.6", "TK-BUCKET-BPA"):
            assert entries[control]["passed"] is False
            assert entries[control]["detail"] == f"{CENTRAL}: not observed"
