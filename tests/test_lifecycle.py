"""A LogRetention becomes one S3 lifecycle rule with a stable ID of at most 255 characters."""

from __future__ import annotations

from typing import Any

import pytest

from trailkeeper.api.logretention import LogRetentionSpec
from trailkeeper.core.lifecycle import default_prefix, desired_lifecycle_rule, effective_prefix
from trailkeeper.core.naming import LIFECYCLE_RULE_ID_MAX, lifecycle_rule_id


def spec(**fields: Any) -> LogRetentionSpec:
    return LogRetentionSpec.model_validate({"bucket": "acme-audit", **fields})


def test_a_full_spec_becomes_every_action_of_the_rule() -> None:
    retention = spec(
        transitions=[{"days": 90, "storageClass": "GLACIER"}, {"days": 365, "storageClass": "DEEP_ARCHIVE"}],
        expirationDays=2555,
        noncurrentVersionExpirationDays=30,
        abortIncompleteMultipartUploadDays=7,
    )
    assert desired_lifecycle_rule(rule_id="r", prefix="AWSLogs/", spec=retention) == {
        "ID": "r",
        "Status": "Enabled",
        "Filter": {"Prefix": "AWSLogs/"},
        "Transitions": [
            {"Days": 90, "StorageClass": "GLACIER"},
            {"Days": 365, "StorageClass": "DEEP_ARCHIVE"},
        ],
        "Expiration": {"Days": 2555},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }


@pytest.mark.parametrize(
    ("fields", "rule_actions"),
    [
        ({"expirationDays": 30}, {"Expiration": {"Days": 30}}),
        ({"noncurrentVersionExpirationDays": 5}, {"NoncurrentVersionExpiration": {"NoncurrentDays": 5}}),
        (
            {"abortIncompleteMultipartUploadDays": 2},
            {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
        ),
        (
            {"transitions": [{"days": 0, "storageClass": "GLACIER_IR"}]},
            {"Transitions": [{"Days": 0, "StorageClass": "GLACIER_IR"}]},
        ),
    ],
    ids=["expiration", "noncurrent", "abort-multipart", "transition"],
)
def test_actions_the_spec_leaves_out_are_left_out(
    fields: dict[str, Any], rule_actions: dict[str, Any]
) -> None:
    rule = desired_lifecycle_rule(rule_id="r", prefix="p/", spec=spec(**fields))
    assert rule == {"ID": "r", "Status": "Enabled", "Filter": {"Prefix": "p/"}, **rule_actions}


@pytest.mark.parametrize(
    ("key_prefix", "prefix"),
    [("", "AWSLogs/"), ("cloudtrail", "cloudtrail/AWSLogs/"), ("a/b", "a/b/AWSLogs/")],
)
def test_default_prefix_is_where_cloudtrail_writes(key_prefix: str, prefix: str) -> None:
    assert default_prefix(key_prefix) == prefix


@pytest.mark.parametrize(
    ("given", "key_prefix", "expected"),
    [(None, "", "AWSLogs/"), (None, "ct", "ct/AWSLogs/"), ("custom/", "ct", "custom/"), ("", "ct", "")],
)
def test_effective_prefix_prefers_the_specs(given: str | None, key_prefix: str, expected: str) -> None:
    assert effective_prefix(spec(prefix=given, expirationDays=1), key_prefix) == expected


def test_a_short_rule_id_is_namespace_and_name() -> None:
    assert lifecycle_rule_id("security", "audit-retention") == "trailkeeper-security-audit-retention"


def test_a_rule_id_of_exactly_the_limit_is_kept_whole() -> None:
    name = "n" * (LIFECYCLE_RULE_ID_MAX - len("trailkeeper-ns-"))
    assert lifecycle_rule_id("ns", name) == f"trailkeeper-ns-{name}"


def test_a_long_rule_id_is_cut_to_the_limit_stable_and_unique() -> None:
    namespace = "n" * 63
    names = ["a" * 253, "a" * 252 + "b", "a" * 200]
    ids = [lifecycle_rule_id(namespace, name) for name in names]
    assert all(len(rule_id) <= LIFECYCLE_RULE_ID_MAX for rule_id in ids)
    assert len(ids[0]) == LIFECYCLE_RULE_ID_MAX
    assert len(set(ids)) == len(ids)
    assert all(rule_id.startswith(f"trailkeeper-{namespace}-aaaa") for rule_id in ids)
    assert [lifecycle_rule_id(namespace, name) for name in names] == ids


def test_the_hash_of_a_cut_rule_id_is_the_same_in_every_process() -> None:
    # sha256, not Python's per-process salted hash(): the ID must not change when the operator restarts.
    assert lifecycle_rule_id("n" * 63, "a" * 253).endswith("-a881ad8dcfa8775f")
