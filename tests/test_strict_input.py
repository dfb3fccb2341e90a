"""Input that AWS (or kubectl) would refuse, or that would mean something else than written, is refused
before anything is sent to AWS: endpoints per protocol, over-long owner tags, unknown KMS keys, manifests
with duplicate keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from trailkeeper.api.manifests import load_manifests
from trailkeeper.api.trail import Subscription, TrailSpec
from trailkeeper.aws.session import AwsSessions
from trailkeeper.cli.main import cli
from trailkeeper.core.naming import OWNER_TAG, TAG_VALUE_MAX, owner_key
from trailkeeper.reconcile.shared import Shared
from trailkeeper.reconcile.trail import TrailRequest, reconcile_trail

# -- endpoints -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "endpoint"),
    [
        ("email", "sec@example.com\n"),
        ("email", '"Bob"<bob@example.com>'),
        ("email", "sec@localhost"),
        ("email-json", "a@b@example.com"),
        ("https", "https://hooks.example.com/x\n"),
        ("https", "https://%%%/\x00x"),
        ("https", "https://-bad-.example.com/"),
        ("https", "https://exa mple.com/"),
        ("https", "http://hooks.example.com/"),
        ("http", "http://example.com:99999/x"),
        ("http", "http://example.com:0/x"),
        ("http", "http://[::zz]/x"),
        ("sms", "0000000"),
        ("sms", "+0123456789"),
        ("sms", "+141555"),
        ("sms", "+14155550100\n"),
        ("sqs", "arn:aws:sqs:us-east-1:123456789012:queue\n"),
        ("lambda", "arn:aws:lambda:us-east-1:123456789012:function:f\n"),
        ("firehose", "arn:aws:firehose:us-east-1:123456789012:deliverystream/s\n"),
    ],
)
def test_an_endpoint_its_protocol_cannot_deliver_to_is_refused(protocol: str, endpoint: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Subscription(protocol=protocol, endpoint=endpoint)  # type: ignore[arg-type]

    assert f"for protocol {protocol}" in str(refused.value)


@pytest.mark.parametrize(
    ("protocol", "endpoint"),
    [
        ("email", "sec.team+ct@mail.example.com"),
        ("email-json", "o'brien@example.org"),
        ("https", "https://hooks.example.com/ct?token=a%20b"),
        ("https", "https://[2001:db8::1]:8443/x"),
        ("http", "http://10.0.0.1:8080/hook"),
        ("sms", "+14155550100"),
        ("sqs", "arn:aws:sqs:us-east-1:123456789012:queue"),
        ("lambda", "arn:aws:lambda:us-east-1:123456789012:function:f:live"),
        ("firehose", "arn:aws-cn:firehose:cn-north-1:123456789012:deliverystream/s"),
    ],
)
def test_an_endpoint_of_its_protocol_form_is_accepted(protocol: str, endpoint: str) -> None:
    assert Subscription(protocol=protocol, endpoint=endpoint).endpoint == endpoint  # type: ignore[arg-type]


# -- owner tag -------------------------------------------------------------------------------------------


def test_an_owner_tag_beyond_the_tag_value_limit_is_hashed_and_stays_unique() -> None:
    namespace = "n" * 63
    names = ["a" * 253, "a" * 252 + "b"]

    owners = [owner_key(namespace, name) for name in names]

    assert all(len(owner) == TAG_VALUE_MAX for owner in owners)
    assert owners[0] != owners[1]
    assert owners == [owner_key(namespace, name) for name in names]
    assert owner_key("security", "audit") == "security/audit"


def test_a_trail_of_a_long_named_object_is_tagged_within_the_limit(aws: AwsSessions) -> None:
    spec = TrailSpec.model_validate(
        {"regions": ["us-east-1"], "trailName": "long-owner", "destination": {"bucket": "long-owner-logs"}}
    )

    outcome = reconcile_trail(TrailRequest("n" * 63, "a" * 253, spec), aws, Shared())

    assert outcome.failures == []
    cloudtrail = aws.client("cloudtrail", "us-east-1")
    arn = cloudtrail.get_trail(Name="long-owner")["Trail"]["TrailARN"]
    tags = cloudtrail.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"]
    owner = {t["Key"]: t["Value"] for t in tags}[OWNER_TAG]
    assert owner == owner_key("n" * 63, "a" * 253) and len(owner) <= TAG_VALUE_MAX
    bucket_tags = aws.client("s3", "us-east-1").get_bucket_tagging(Bucket="long-owner-logs")["TagSet"]
    assert all(len(t["Value"]) <= TAG_VALUE_MAX for t in bucket_tags)


# -- KMS keys --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["alias/does-not-exist", "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"],
    ids=["alias", "key-arn"],
)
def test_a_kms_key_that_does_not_exist_fails_before_anything_is_made(aws: AwsSessions, key: str) -> None:
    spec = TrailSpec.model_validate(
        {
            "regions": ["us-east-1"],
            "destination": {"bucket": "kms-missing-logs", "kmsKeyId": key},
            "notifications": {"topicName": "kms-missing"},
        }
    )

    outcome = reconcile_trail(TrailRequest("security", "audit", spec), aws, Shared())

    [failure] = outcome.failures
    assert failure.code == "KmsKeyNotFound" and key in failure.message
    assert aws.recorder is not None
    assert [c.operation for c in aws.recorder.snapshot() if c.mutating] == []


def test_a_kms_alias_that_exists_is_used_and_the_trail_made(aws: AwsSessions) -> None:
    kms = aws.client("kms", "us-east-1")
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/cloudtrail", TargetKeyId=key["KeyId"])
    spec = TrailSpec.model_validate(
        {
            "regions": ["us-east-1"],
            "destination": {"bucket": "kms-alias-logs", "kmsKeyId": "alias/cloudtrail"},
        }
    )

    outcome = reconcile_trail(TrailRequest("security", "audit", spec), aws, Shared())

    assert outcome.failures == []
    assert aws.client("cloudtrail", "us-east-1").get_trail(Name="audit")["Trail"]["KmsKeyId"] == key["Arn"]


# -- duplicate keys --------------------------------------------------------------------------------------

DUPLICATE_ADOPT = """\
apiVersion: trailkeeper.io/v1alpha1
kind: Trail
metadata:
  name: audit
spec:
  regions: [us-east-1]
  adopt: false
  destination:
    bucket: acme-audit
  adopt: true
"""


def test_a_manifest_with_a_duplicate_key_is_refused_naming_the_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "trail.yaml"
    path.write_text(DUPLICATE_ADOPT, encoding="utf-8")

    manifests, problems = load_manifests([path])

    assert manifests == []
    [problem] = problems
    assert "duplicate key 'adopt' at line 10" in str(problem)


@pytest.mark.parametrize("command", [["plan"], ["apply"], ["diff"]])
def test_plan_apply_and_diff_refuse_a_duplicate_key_before_any_aws_call(
    tmp_path: Path, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "trail.yaml"
    path.write_text(DUPLICATE_ADOPT.replace("kind: Trail", "kind: Trail\nkind: Trail"), encoding="utf-8")
    # An endpoint nothing listens on: reaching AWS would fail differently.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")

    result: Any = CliRunner().invoke(cli, [*command, "-f", str(path)])

    assert result.exit_code == 1
    assert "duplicate key 'kind' at line 3" in result.output
    assert "nothing was sent to AWS" in result.output
