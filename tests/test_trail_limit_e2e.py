"""End to end: a Trail that would be an account's sixth trail in a region fails with TrailLimit, nothing
made, while its other regions go ahead (real operator, real API server, moto behind the limits front)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from support.cluster import Cluster, OperatorProcess

pytestmark = pytest.mark.e2e


def aws(service: str, endpoint: str, region: str) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=endpoint)  # type: ignore[call-overload]


def test_a_sixth_trail_in_a_region_is_refused_with_trail_limit(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    aws("s3", moto_endpoint, "us-east-1").create_bucket(Bucket="others-audit")
    for i in range(4):
        aws("cloudtrail", moto_endpoint, "eu-west-1").create_trail(
            Name=f"other-{i}", S3BucketName="others-audit"
        )
    # A multi-region trail homed elsewhere takes eu-west-1's fifth slot.
    aws("cloudtrail", moto_endpoint, "us-west-2").create_trail(
        Name="other-global", S3BucketName="others-audit", IsMultiRegionTrail=True
    )
    spec = {
        "regions": ["us-east-1", "eu-west-1"],
        "destination": {"bucket": "e2e-limit-{region}"},
        "resyncSeconds": 30,
    }
    cluster.apply("Trail", "crowded", spec)
    ready = cluster.wait_condition("Trail", "crowded", "Ready", "False", reason="TrailLimit", timeout=30)
    assert "eu-west-1" in ready["message"] and "multiRegion" in ready["message"]
    regions = {r["region"]: r for r in cluster.status("Trail", "crowded")["regions"]}
    assert regions["us-east-1"]["isLogging"] is True
    assert "TrailLimit" in (regions["eu-west-1"]["error"] or "")
    # Refused before any write: no bucket, no trail in the full region.
    buckets = {b["Name"] for b in aws("s3", moto_endpoint, "us-east-1").list_buckets()["Buckets"]}
    assert buckets == {"others-audit", "e2e-limit-us-east-1"}
    assert "TrailLimit" in [e["reason"] for e in cluster.events("crowded")]
