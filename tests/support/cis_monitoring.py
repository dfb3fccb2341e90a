"""The CIS Monitoring section made directly with boto3 against moto, for tests of its observation."""

from __future__ import annotations

from typing import Any

from trailkeeper.core.monitoring import METRIC_FILTER_CONTROLS, desired_metric_filters, log_group_arn

ACCOUNT = "123456789012"
GROUP = "cis-trail-logs"


def make_monitoring(
    client: Any, region: str, *, bucket: str, trail: str = "cis-audit", subscribe: bool = True
) -> str:
    """A logging multi-region trail delivering to a log group that carries every CIS metric filter, each
    with an alarm notifying a topic (subscribed when `subscribe`). `client(service)` makes a boto3 client.
    Returns the trail's ARN."""
    logs, cloudwatch, sns, s3, cloudtrail = (
        client(s) for s in ("logs", "cloudwatch", "sns", "s3", "cloudtrail")
    )
    s3.create_bucket(Bucket=bucket)
    logs.create_log_group(logGroupName=GROUP)
    topic = sns.create_topic(Name="cis-alarms")["TopicArn"]
    if subscribe:
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="security@example.com")
    for desired in desired_metric_filters(GROUP, "CISBenchmark", topic):
        logs.put_metric_filter(**desired.put_metric_filter_request())
        cloudwatch.put_metric_alarm(**desired.put_metric_alarm_request({}))
    arn = str(
        cloudtrail.create_trail(
            Name=trail,
            S3BucketName=bucket,
            IsMultiRegionTrail=True,
            CloudWatchLogsLogGroupArn=log_group_arn("aws", region, ACCOUNT, GROUP),
            CloudWatchLogsRoleArn=f"arn:aws:iam::{ACCOUNT}:role/cis-delivery",
        )["TrailARN"]
    )
    cloudtrail.start_logging(Name=trail)
    return arn


MONITORING_IDS = [c.id for c in METRIC_FILTER_CONTROLS]
