"""The tests' MFA Delete front: what the root user sets with its MFA device is answered, as S3 does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from support.cis_moto import serve_cis_moto
from support.moto_server import InProcessMotoServer

MFA = "arn:aws:iam::123456789012:mfa/root-account-mfa-device 123456"


@pytest.fixture(scope="module")
def cis_moto() -> Iterator[InProcessMotoServer]:
    with serve_cis_moto() as server:
        yield server


def s3(server: InProcessMotoServer) -> Any:
    return boto3.client("s3", region_name="us-east-1", endpoint_url=server.url)


def test_mfa_delete_set_with_the_mfa_header_is_answered_and_forgotten_on_reset(
    cis_moto: InProcessMotoServer,
) -> None:
    cis_moto.reset()
    client = s3(cis_moto)
    client.create_bucket(Bucket="mfa-kept")
    client.put_bucket_versioning(
        Bucket="mfa-kept", MFA=MFA, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"}
    )
    assert client.get_bucket_versioning(Bucket="mfa-kept")["MFADelete"] == "Enabled"
    client.put_bucket_versioning(
        Bucket="mfa-kept", MFA=MFA, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Disabled"}
    )
    assert client.get_bucket_versioning(Bucket="mfa-kept")["MFADelete"] == "Disabled"
    cis_moto.reset()
    client.create_bucket(Bucket="mfa-kept")
    assert "MFADelete" not in client.get_bucket_versioning(Bucket="mfa-kept")


def test_mfa_delete_without_the_mfa_header_is_not_kept(cis_moto: InProcessMotoServer) -> None:
    cis_moto.reset()
    client = s3(cis_moto)
    client.create_bucket(Bucket="mfa-missing")
    client.put_bucket_versioning(
        Bucket="mfa-missing", VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"}
    )
    versioning = client.get_bucket_versioning(Bucket="mfa-missing")
    assert versioning["Status"] == "Enabled" and "MFADelete" not in versioning
