"""`trailkeeper plan`: the AWS documents each manifest becomes, worked out offline.

No AWS account is reached, so ARNs use a placeholder account id that the output says is one. Documents
that trailkeeper merges into what a bucket or topic already holds (policies, lifecycle rules) are shown
merged into an empty document: exactly the statements and rules this manifest owns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml

from trailkeeper.api.logretention import LogRetentionSpec
from trailkeeper.api.manifests import Manifest
from trailkeeper.api.trail import Subscription, TrailSpec
from trailkeeper.core.bucket_share import BucketShare, desired_bucket_policy
from trailkeeper.core.lifecycle import default_prefix, desired_lifecycle_rule, effective_prefix
from trailkeeper.core.naming import lifecycle_rule_id, owner_key
from trailkeeper.core.topic_policy import desired_topic_policy
from trailkeeper.core.trail_settings import DesiredTrail, desired_trails, topic_arn, trails_by_bucket

PLACEHOLDER_ACCOUNT_ID = "123456789012"
_PLACEHOLDER_NOTE = "(placeholder; plan is offline)"
# The protocols SNS offers raw message delivery for (SNS Developer Guide, "Amazon SNS raw message delivery").
_RAW_DELIVERY_PROTOCOLS = ("sqs", "http", "https", "firehose")


class _PlanDumper(yaml.SafeDumper):
    """Safe YAML that writes a value shared by two places twice, never as an anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _account_text(account_id: str) -> str:
    return f"{account_id} {_PLACEHOLDER_NOTE}" if account_id == PLACEHOLDER_ACCOUNT_ID else account_id


def _header(manifest: Manifest, account_id: str) -> dict[str, Any]:
    return {
        "kind": manifest.kind,
        "namespace": manifest.namespace,
        "name": manifest.name,
        "file": manifest.file,
        "accountId": _account_text(account_id),
        "owner": owner_key(manifest.namespace, manifest.name),
    }


def _trail_plan(trail: DesiredTrail, partition: str, account_id: str) -> dict[str, Any]:
    return {
        "region": trail.region,
        "trailArn": trail.arn(partition, account_id),
        # An existing trail gets the same settings through UpdateTrail (unset ones as "" to clear them).
        "createTrail": trail.create_trail_parameters(),
        "putEventSelectors": trail.event_selector_parameters(),
        "putInsightSelectors": {"InsightSelectors": trail.insight_selectors},
        "logging": "StartLogging" if trail.logging else "StopLogging",
    }


def _bucket_creation(spec: TrailSpec, region: str) -> dict[str, Any]:
    """What creating a missing bucket sets (api.md, destination.createBucket)."""
    if spec.destination.kms_key_id:
        default: dict[str, Any] = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": spec.destination.kms_key_id}
    else:
        default = {"SSEAlgorithm": "AES256"}
    return {
        "region": region,
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
        "VersioningConfiguration": {"Status": "Enabled"},
        "ServerSideEncryptionConfiguration": {"Rules": [{"ApplyServerSideEncryptionByDefault": default}]},
    }


def _subscription_plan(subscription: Subscription) -> dict[str, Any]:
    attributes: dict[str, str] = {}
    if subscription.raw_message_delivery and str(subscription.protocol) in _RAW_DELIVERY_PROTOCOLS:
        attributes["RawMessageDelivery"] = "true"
    if subscription.filter_policy is not None:
        attributes["FilterPolicy"] = json.dumps(subscription.filter_policy, sort_keys=True)
    plan: dict[str, Any] = {"Protocol": str(subscription.protocol), "Endpoint": subscription.endpoint}
    if attributes:
        plan["Attributes"] = attributes
    return plan


def _plan_trail(manifest: Manifest, spec: TrailSpec, account_id: str, partition: str) -> dict[str, Any]:
    owner = owner_key(manifest.namespace, manifest.name)
    trails = desired_trails(spec, name=manifest.name, owner=owner)
    plan = _header(manifest, account_id)
    plan["trailName"] = spec.effective_trail_name(manifest.name)
    plan["trails"] = [_trail_plan(trail, partition, account_id) for trail in trails]
    buckets: list[dict[str, Any]] = []
    for bucket, group in trails_by_bucket(trails).items():
        arns = [trail.arn(partition, account_id) for trail in group]
        entry: dict[str, Any] = {"bucket": bucket, "deliveringTrails": arns}
        if spec.destination.create_bucket:
            entry["createIfMissing"] = _bucket_creation(spec, group[0].region)
        else:
            entry["createIfMissing"] = False
        share = BucketShare(
            bucket,
            spec.destination.key_prefix,
            account_id,
            spec.effective_trail_name(manifest.name),
            partition,
        )
        entry["policy"] = desired_bucket_policy(
            owner=owner,
            share=share,
            trail_arns=arns,
            source_accounts=list(spec.destination.source_accounts),
            organization_id=spec.destination.organization_id,
        )
        buckets.append(entry)
    plan["buckets"] = buckets
    topics: list[dict[str, Any]] = []
    if spec.notifications is not None:
        for trail in trails:
            arn = topic_arn(partition, trail.region, account_id, spec.notifications.topic_name)
            topics.append(
                {
                    "region": trail.region,
                    "topicArn": arn,
                    "createIfMissing": True,
                    "policy": desired_topic_policy(
                        owner=owner, topic_arn=arn, trail_arns=[trail.arn(partition, account_id)]
                    ),
                    "subscriptions": [_subscription_plan(s) for s in spec.notifications.subscriptions],
                }
            )
    plan["topics"] = topics
    return plan


def _find_trail(manifests: Sequence[Manifest], namespace: str, name: str) -> Manifest | None:
    for candidate in manifests:
        if candidate.kind == "Trail" and candidate.namespace == namespace and candidate.name == name:
            return candidate
    return None


def _plan_retention(
    manifest: Manifest, spec: LogRetentionSpec, manifests: Sequence[Manifest], account_id: str
) -> dict[str, Any]:
    plan = _header(manifest, account_id)
    rule_id = lifecycle_rule_id(manifest.namespace, manifest.name)
    plan["ruleId"] = rule_id
    plan["merge"] = (
        f"only the rule {rule_id!r} is put; the buckets' other lifecycle rules are kept as they are"
    )
    if spec.bucket is not None:
        prefix = effective_prefix(spec)
        plan["buckets"] = [
            {
                "bucket": spec.bucket,
                "region": spec.region or "(looked up)",
                "rule": desired_lifecycle_rule(rule_id=rule_id, prefix=prefix, spec=spec),
            }
        ]
        return plan
    assert spec.trail_ref is not None  # the model requires exactly one of bucket and trailRef
    trail_manifest = _find_trail(manifests, manifest.namespace, spec.trail_ref.name)
    if trail_manifest is None or not isinstance(trail_manifest.spec, TrailSpec):
        prefix = spec.prefix if spec.prefix is not None else f"<keyPrefix of the Trail>/{default_prefix('')}"
        trail_ref = f"{manifest.namespace}/{spec.trail_ref.name}"
        plan["buckets"] = f"the bucket(s) of Trail {trail_ref} (not among the planned manifests)"
        plan["rule"] = desired_lifecycle_rule(rule_id=rule_id, prefix=prefix, spec=spec)
        return plan
    trail_spec = trail_manifest.spec
    prefix = effective_prefix(spec, trail_spec.destination.key_prefix)
    trails = desired_trails(
        trail_spec, name=trail_manifest.name, owner=owner_key(trail_manifest.namespace, trail_manifest.name)
    )
    plan["buckets"] = [
        {
            "bucket": bucket,
            "region": group[0].region,
            "rule": desired_lifecycle_rule(rule_id=rule_id, prefix=prefix, spec=spec),
        }
        for bucket, group in trails_by_bucket(trails).items()
    ]
    return plan


def plan_manifest(
    manifest: Manifest,
    *,
    account_id: str = PLACEHOLDER_ACCOUNT_ID,
    partition: str = "aws",
    manifests: Sequence[Manifest] = (),
) -> dict[str, Any]:
    """What one manifest becomes in AWS. `manifests` are the others planned with it (to resolve trailRef)."""
    if isinstance(manifest.spec, TrailSpec):
        return _plan_trail(manifest, manifest.spec, account_id, partition)
    return _plan_retention(manifest, manifest.spec, manifests, account_id)


def plan_manifests(
    manifests: Sequence[Manifest], *, account_id: str = PLACEHOLDER_ACCOUNT_ID, partition: str = "aws"
) -> list[dict[str, Any]]:
    """The plans of several manifests, in their order; a LogRetention's trailRef resolves among them."""
    return [
        plan_manifest(m, account_id=account_id, partition=partition, manifests=manifests) for m in manifests
    ]


def render_plan(
    manifests: Sequence[Manifest], *, account_id: str = PLACEHOLDER_ACCOUNT_ID, partition: str = "aws"
) -> str:
    """The plans as YAML: a comment, then one document per manifest, keys in a fixed readable order."""
    lines = ["# trailkeeper plan: the AWS documents each manifest becomes."]
    if account_id == PLACEHOLDER_ACCOUNT_ID:
        lines.append(
            f"# Offline: account {account_id} in ARNs is a placeholder for the account trailkeeper acts in."
        )
    header = "\n".join(lines) + "\n"
    documents = [
        yaml.dump(
            plan, Dumper=_PlanDumper, sort_keys=False, default_flow_style=False, width=120, allow_unicode=True
        )
        for plan in plan_manifests(manifests, account_id=account_id, partition=partition)
    ]
    return header + "".join(f"---\n{document}" for document in documents)
