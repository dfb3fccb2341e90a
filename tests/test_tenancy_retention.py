"""The tenancy policy beyond Trails: LogRetentions held to it, and rules picking namespaces by label.

A refused LogRetention's pass and deletion are shown to make no AWS call by the sessions' call recorder
(every request goes through it); the same LogRetention, allowed, does reach S3.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from trailkeeper.api.logretention import LogRetentionSpec
from trailkeeper.api.tenancy import LabelSelector, TenancyPolicy, TenancyRule
from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.session import AwsSessions
from trailkeeper.core.tenancy import retention_refusal, trail_refusal
from trailkeeper.kube.tenancy_view import TenancyInputs, labels_in, namespace_labels
from trailkeeper.reconcile.passes import ObjectRef, Tenancy, retention_deletion, retention_pass
from trailkeeper.reconcile.shared import Shared

OTHER = "222222222222"
ROLE = f"arn:aws:iam::{OTHER}:role/trailkeeper"

POLICY = TenancyPolicy.model_validate(
    {
        "rules": [
            {
                "name": "team-b",
                "namespaces": ["team-b"],
                "buckets": ["team-b-*"],
                "allowDelete": False,
            },
            {
                "name": "regulated",
                "namespaceSelector": {
                    "matchLabels": {"tier": "regulated"},
                    "matchExpressions": [{"key": "team", "operator": "In", "values": ["pay", "risk"]}],
                },
                "ownAccount": False,
                "accounts": [OTHER],
                "buckets": ["regulated-*"],
            },
            {"name": "everyone-else", "namespaces": ["*"]},
        ]
    }
)
REGULATED = {"tier": "regulated", "team": "pay"}


def retention(**overrides: Any) -> LogRetentionSpec:
    body: dict[str, Any] = {"bucket": "team-b-logs", "expirationDays": 400}
    body.update(overrides)
    return LogRetentionSpec.model_validate(body)


def trail_body(bucket: str) -> dict[str, Any]:
    return {"regions": ["us-east-1", "eu-west-1"], "destination": {"bucket": bucket}}


# -- LogRetentions under the policy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "labels", "spec", "buckets", "expected"),
    [
        ("team-b", None, retention(), ["team-b-logs"], None),
        (
            "team-b",
            None,
            retention(bucket="a-logs"),
            ["a-logs"],
            "tenancy rule 'team-b' (namespace team-b): bucket a-logs is not allowed (allowed: team-b-*)",
        ),
        ("team-b", None, retention(deletionPolicy="Delete"), ["team-b-logs"], "Delete is not allowed"),
        ("team-b", None, retention(account={"roleArn": ROLE}), ["team-b-logs"], f"role {ROLE} is not"),
        # Following a Trail: the Trail's buckets, one per region, are those checked.
        (
            "team-b",
            None,
            retention(bucket=None, trailRef={"name": "audit"}),
            ["team-b-us-east-1", "x-eu-west-1"],
            "bucket x-eu-west-1 is not allowed",
        ),
        # Its Trail not found yet: no bucket to check, but the role still is.
        ("pay", REGULATED, retention(bucket=None, trailRef={"name": "audit"}), [], "own account is not"),
        (
            "pay",
            REGULATED,
            retention(bucket="regulated-logs", account={"roleArn": ROLE}),
            ["regulated-logs"],
            None,
        ),
        ("pay", {"tier": "regulated"}, retention(bucket="a-logs"), ["a-logs"], None),
    ],
)
def test_a_log_retention_is_held_to_its_namespaces_rule(
    namespace: str,
    labels: dict[str, str] | None,
    spec: LogRetentionSpec,
    buckets: list[str],
    expected: str | None,
) -> None:
    refusal = retention_refusal(POLICY, namespace, spec, buckets, labels)
    if expected is None:
        assert refusal is None
    else:
        assert refusal is not None and expected in refusal, refusal


def run_pass(aws: AwsSessions, spec: LogRetentionSpec, policy: TenancyPolicy | str, **kw: Any) -> Any:
    ref = ObjectRef("team-b", "keep", "uid-r", 1)
    body = spec.model_dump(by_alias=True, exclude_none=True)
    return retention_pass(ref, body, {}, aws, Shared(), trigger="create", tenancy=Tenancy(policy), **kw)


@pytest.mark.parametrize(
    ("spec", "trail", "policy", "expected"),
    [
        (retention(bucket="a-logs"), None, POLICY, "tenancy rule 'team-b' (namespace team-b): bucket a-logs"),
        (
            retention(bucket=None, trailRef={"name": "audit"}),
            trail_body("a-logs-{region}"),
            POLICY,
            "bucket a-logs-eu-west-1, a-logs-us-east-1 is not allowed",
        ),
        (retention(deletionPolicy="Delete"), None, POLICY, "deletionPolicy Delete is not allowed"),
        (retention(), None, "invalid: rules.0.name: Field required", "the tenancy policy cannot be read"),
    ],
)
def test_a_refused_log_retention_is_forbidden_with_an_event_and_zero_aws_calls(
    aws: AwsSessions,
    spec: LogRetentionSpec,
    trail: dict[str, Any] | None,
    policy: TenancyPolicy | str,
    expected: str,
) -> None:
    assert aws.recorder is not None
    aws.recorder.reset()
    report = run_pass(aws, spec, policy, trail_spec_body=trail)
    ready = next(c for c in report.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Forbidden")
    assert expected in ready["message"], ready["message"]
    assert [(e.type, e.reason) for e in report.events] == [("Warning", "Forbidden")]
    assert expected in report.events[0].message
    assert report.retry_after is None  # a spec or policy change, not time, lifts a refusal
    assert list(aws.recorder.snapshot()) == []


def test_an_allowed_log_retention_reaches_s3(aws: AwsSessions) -> None:
    assert aws.recorder is not None
    aws.client("s3", "us-east-1").create_bucket(Bucket="team-b-logs")
    aws.recorder.reset()
    report = run_pass(aws, retention(), POLICY, trail_spec_body=None)
    assert report.status["phase"] == "Ready", report.status
    assert any(c.operation == "PutBucketLifecycleConfiguration" for c in aws.recorder.snapshot())


def test_a_refused_log_retention_deletion_retains_its_rule_with_zero_aws_calls(aws: AwsSessions) -> None:
    assert aws.recorder is not None
    aws.recorder.reset()
    ref = ObjectRef("team-b", "keep", "uid-r", 1)
    spec = retention(bucket="a-logs", deletionPolicy="Delete")
    status = {"buckets": [{"bucket": "a-logs", "region": "us-east-1", "ruleId": "x"}]}
    body = spec.model_dump(by_alias=True, exclude_none=True)
    report = retention_deletion(ref, body, status, aws, Shared(), None, Tenancy(POLICY))
    assert [e.reason for e in report.events] == ["Forbidden"]
    assert report.events[0].message.startswith("deleted; lifecycle rules retained, since tenancy rule")
    assert report.retry_after is None
    assert list(aws.recorder.snapshot()) == []


# -- namespaces picked by label ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        ({"matchLabels": {"tier": "prod"}}, {"tier": "prod", "x": "y"}, True),
        ({"matchLabels": {"tier": "prod"}}, {"tier": "dev"}, False),
        ({"matchLabels": {"tier": "prod"}}, {}, False),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
            {"tier": "b"},
            True,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "b"}, True),
        # Kubernetes: NotIn and DoesNotExist also hold for a namespace without the label.
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "a"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": "a"}, False),
        # Every requirement must hold.
        (
            {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]},
            {"a": "1"},
            False,
        ),
    ],
)
def test_label_selectors_follow_kubernetes_semantics(
    selector: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    assert LabelSelector.model_validate(selector).matches(labels) is expected


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"name": "x"}, "give namespaces, namespaceSelector or both"),
        (
            {"name": "x", "namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
            "values must not be empty for operator In",
        ),
        (
            {
                "name": "x",
                "namespaceSelector": {
                    "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]
                },
            },
            "values must be empty for operator Exists",
        ),
        (
            {"name": "x", "namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Has"}]}},
            "Input should be 'In', 'NotIn', 'Exists' or 'DoesNotExist'",
        ),
    ],
)
def test_a_rule_names_its_namespaces_and_a_selector_is_well_formed(
    rule: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        TenancyRule.model_validate(rule)


@pytest.mark.parametrize(
    ("namespace", "labels", "rule"),
    [
        ("pay", REGULATED, "regulated"),
        ("pay", {"tier": "regulated", "team": "ops"}, "everyone-else"),
        ("pay", None, "everyone-else"),
        # The first matching rule decides: team-b by name before the selector.
        ("team-b", REGULATED, "team-b"),
    ],
)
def test_rules_match_a_namespace_by_name_and_labels(
    namespace: str, labels: dict[str, str] | None, rule: str
) -> None:
    assert POLICY.rule_for(namespace, labels).name == rule


def test_a_name_and_a_selector_in_one_rule_must_both_match() -> None:
    policy = TenancyPolicy.model_validate(
        {
            "rules": [
                {
                    "name": "both",
                    "namespaces": ["team-*"],
                    "namespaceSelector": {"matchLabels": {"audit": "strict"}},
                    "allowDelete": False,
                }
            ]
        }
    )
    assert policy.rule_for("team-a", {"audit": "strict"}).name == "both"
    assert policy.rule_for("team-a", {}).name == "default"
    assert policy.rule_for("ops", {"audit": "strict"}).name == "default"


def test_a_trail_is_judged_by_its_namespaces_labels() -> None:
    spec = TrailSpec.model_validate({"regions": ["us-east-1"], "destination": {"bucket": "a-logs"}})
    assert trail_refusal(POLICY, "pay", "audit", spec, {"tier": "dev"}) is None
    refusal = trail_refusal(POLICY, "pay", "audit", spec, REGULATED)
    assert refusal is not None and refusal.startswith("tenancy rule 'regulated' (namespace pay): ")


# -- the operator's view of namespaces ---------------------------------------------------------------------


def test_the_namespace_index_gives_each_namespaces_labels() -> None:
    body = {"metadata": {"name": "pay", "labels": {"tier": "regulated"}}}
    assert namespace_labels(name="pay", body=body) == {"pay": {"tier": "regulated"}}
    assert namespace_labels(name="bare", body={"metadata": {"name": "bare"}}) == {"bare": {}}
    index = {"pay": [{"tier": "regulated"}]}
    assert labels_in({"namespace_labels": index}, "pay") == {"tier": "regulated"}
    assert labels_in({"namespace_labels": index}, "gone") is None
    assert labels_in({}, "pay") is None


def test_a_relabelled_namespace_or_an_edited_policy_moves_an_objects_verdict() -> None:
    inputs = TenancyInputs()
    judged = Tenancy(POLICY, labels={"tier": "dev"})
    assert not inputs.moved("uid", judged)  # no pass yet: the change handlers run the first one
    inputs.record("uid", judged)
    assert not inputs.moved("uid", Tenancy(POLICY, labels={"tier": "dev"}))
    assert inputs.moved("uid", Tenancy(POLICY, labels=REGULATED))
    assert inputs.moved("uid", Tenancy(TenancyPolicy(), labels={"tier": "dev"}))
    assert inputs.moved("uid", Tenancy("invalid: x", labels={"tier": "dev"}))
    # Without a policy, labels decide nothing.
    inputs.record("uid", Tenancy(None, labels={"tier": "dev"}))
    assert not inputs.moved("uid", Tenancy(None, labels=REGULATED))
    inputs.forget("uid")
    assert not inputs.moved("uid", Tenancy(POLICY))
