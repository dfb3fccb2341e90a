"""The topic policy holds the CloudTrail User Guide's SNS:Publish statement, with aws:SourceArn."""

from __future__ import annotations

import copy
import json
from typing import Any

import parliament
import pytest

from trailkeeper.core.naming import PURPOSE_TOPIC_PUBLISH, owner_sids, statement_sid
from trailkeeper.core.topic_policy import desired_topic_policy, desired_topic_statements

OWNER = "security/audit"
TOPIC = "arn:aws:sns:us-east-1:123456789012:audit-deliveries"
TRAIL = "arn:aws:cloudtrail:us-east-1:123456789012:trail/audit"

# What SNS gives every new topic; it must survive our merges untouched.
SNS_DEFAULT_POLICY: dict[str, Any] = {
    "Version": "2008-10-17",
    "Id": "__default_policy_ID",
    "Statement": [
        {
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": [
                "SNS:GetTopicAttributes",
                "SNS:SetTopicAttributes",
                "SNS:AddPermission",
                "SNS:RemovePermission",
                "SNS:DeleteTopic",
                "SNS:Subscribe",
                "SNS:ListSubscriptionsByTopic",
                "SNS:Publish",
            ],
            "Resource": TOPIC,
            "Condition": {"StringEquals": {"AWS:SourceOwner": "123456789012"}},
        }
    ],
}


def test_the_statement_lets_only_our_trails_make_cloudtrail_publish() -> None:
    assert desired_topic_statements(owner=OWNER, topic_arn=TOPIC, trail_arns=[TRAIL]) == [
        {
            "Sid": statement_sid(OWNER, PURPOSE_TOPIC_PUBLISH),
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": TOPIC,
            "Condition": {"StringEquals": {"aws:SourceArn": [TRAIL]}},
        }
    ]


def test_the_sid_is_one_of_the_owners() -> None:
    (statement,) = desired_topic_statements(owner=OWNER, topic_arn=TOPIC, trail_arns=[TRAIL])
    assert statement["Sid"] in owner_sids(OWNER)


def test_trail_arns_are_sorted_and_unique() -> None:
    other = "arn:aws:cloudtrail:us-east-1:123456789012:trail/another"
    (statement,) = desired_topic_statements(owner=OWNER, topic_arn=TOPIC, trail_arns=[TRAIL, other, TRAIL])
    assert statement["Condition"]["StringEquals"]["aws:SourceArn"] == [other, TRAIL]


def test_a_topic_policy_without_trails_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one trail"):
        desired_topic_statements(owner=OWNER, topic_arn=TOPIC, trail_arns=[])


def test_merging_into_the_sns_default_policy_keeps_it_and_its_version() -> None:
    existing = copy.deepcopy(SNS_DEFAULT_POLICY)
    policy = desired_topic_policy(owner=OWNER, topic_arn=TOPIC, trail_arns=[TRAIL], existing=existing)
    assert existing == SNS_DEFAULT_POLICY
    assert policy["Version"] == "2008-10-17"
    assert policy["Id"] == "__default_policy_ID"
    assert policy["Statement"][0] == SNS_DEFAULT_POLICY["Statement"][0]
    assert policy["Statement"][1:] == desired_topic_statements(
        owner=OWNER, topic_arn=TOPIC, trail_arns=[TRAIL]
    )


def test_a_new_topic_policy_is_a_2012_document() -> None:
    assert desired_topic_policy(owner=OWNER, topic_arn=TOPIC, trail_arns=[TRAIL]) == {
        "Version": "2012-10-17",
        "Statement": desired_topic_statements(owner=OWNER, topic_arn=TOPIC, trail_arns=[TRAIL]),
    }


def parliament_findings(policy: dict[str, Any]) -> list[tuple[str, str]]:
    result = parliament.analyze_policy_string(json.dumps(policy), ignore_private_auditors=True)
    return sorted((f.issue, str(f.location.get("string"))) for f in result.findings)


def test_the_topic_policy_passes_parliament() -> None:
    assert parliament_findings(desired_topic_policy(owner=OWNER, topic_arn=TOPIC, trail_arns=[TRAIL])) == []


def test_merged_into_the_sns_default_parliament_flags_only_the_parts_sns_wrote() -> None:
    # SNS's own default policy says Version 2008-10-17 and uses a Sid with underscores; both are kept as
    # found (changing the Version could change what foreign statements mean). Nothing of ours is flagged.
    policy = desired_topic_policy(
        owner=OWNER, topic_arn=TOPIC, trail_arns=[TRAIL], existing=SNS_DEFAULT_POLICY
    )
    assert parliament_findings(policy) == [
        ("INVALID_SID", "__default_statement_ID"),
        ("OLD_VERSION", "2008-10-17"),
    ]
