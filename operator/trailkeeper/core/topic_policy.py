"""The SNS topic policy statement CloudTrail needs to publish log-delivery notifications.

Source: AWS CloudTrail User Guide, "Amazon SNS topic policy for CloudTrail", including its section
"Security best practice for SNS topic policy".
"""

from __future__ import annotations

from typing import Any

from trailkeeper.core.bucket_policy import CLOUDTRAIL_PRINCIPAL
from trailkeeper.core.merge import merge_statements
from trailkeeper.core.naming import PURPOSE_TOPIC_PUBLISH, statement_sid


def desired_topic_statements(*, owner: str, topic_arn: str, trail_arns: list[str]) -> list[dict[str, Any]]:
    """The owner's statements on a topic that the trails `trail_arns` notify."""
    arns = sorted(set(trail_arns))
    if not arns:
        raise ValueError("a CloudTrail topic policy needs the ARN of at least one trail publishing to it")
    return [
        # The guide's statement lets the CloudTrail service principal SNS:Publish to the topic; its
        # security best practice adds aws:SourceArn = the trails using the topic, so no one else's trail
        # can make CloudTrail publish here on its behalf.
        {
            "Sid": statement_sid(owner, PURPOSE_TOPIC_PUBLISH),
            "Effect": "Allow",
            "Principal": {"Service": CLOUDTRAIL_PRINCIPAL},
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"aws:SourceArn": arns}},
        }
    ]


def desired_topic_policy(
    *, owner: str, topic_arn: str, trail_arns: list[str], existing: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The whole topic policy: the owner's statement merged into `existing` (an empty policy by default)."""
    merged = merge_statements(
        existing, owner, desired_topic_statements(owner=owner, topic_arn=topic_arn, trail_arns=trail_arns)
    )
    assert merged is not None  # the owner's statement is never empty
    return merged
