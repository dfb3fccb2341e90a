"""End to end: the tenancy policy over LogRetentions and over namespaces picked by label.

Through the real API server and operator (logged in with the chart's RBAC, which lets it list and watch
namespaces), against moto behind a counter of every request the operator makes (bench/aws_counter.py):
a refused LogRetention makes no AWS call, and a namespace relabelled is judged by its new labels at
once, without a spec change.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.cluster import Cluster, OperatorProcess
from test_tenancy_e2e import CountingMoto, aws, counting_moto, operator_calls, spec

pytestmark = pytest.mark.e2e

__all__ = ["counting_moto"]  # a fixture, used by name

B, PCI = "team-b", "team-pci"
POLICY = f"""
rules:
- name: team-b
  namespaces: [{B}]
  buckets: [team-b-*]
  allowDelete: false
- name: regulated
  namespaceSelector:
    matchLabels: {{compliance: pci}}
    matchExpressions: [{{key: stage, operator: NotIn, values: [sandbox]}}]
  ownAccount: false
  accounts: ["222222222222"]
- name: everyone-else
  namespaces: ["*"]
"""
FOREIGN_RULE = {
    "ID": "team-a-keep",
    "Status": "Enabled",
    "Filter": {"Prefix": ""},
    "Expiration": {"Days": 3650},
}


def label(cluster: Cluster, namespace: str, labels: dict[str, str | None]) -> None:
    """Set (a value) or remove (None) labels of a namespace, as its admin would."""
    cluster.request("PATCH", f"/api/v1/namespaces/{namespace}", {"metadata": {"labels": labels}}, patch=True)


@pytest.fixture
def policed(cluster: Cluster, counting_moto: CountingMoto, tmp_path: Path) -> Iterator[Path]:
    """The operator with POLICY, against the counting moto; the PCI namespace starts unlabelled."""
    path = tmp_path / "tenancy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    for namespace in (B, PCI):
        cluster.use_namespace(namespace)
    label(cluster, PCI, {"compliance": None, "stage": None})
    try:
        with OperatorProcess(
            cluster.kubeconfig, counting_moto.url, tmp_path / "operator.log", "--tenancy-policy", str(path)
        ):
            yield path
    finally:
        label(cluster, PCI, {"compliance": None, "stage": None})


def lifecycle_rules(endpoint: str, bucket: str) -> list[dict[str, Any]]:
    return list(aws("s3", endpoint).get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"])


def expect_forbidden(cluster: Cluster, kind: str, name: str, namespace: str, expected: str) -> None:
    ready = cluster.wait_condition(kind, name, "Ready", "False", reason="Forbidden", namespace=namespace)
    assert expected in ready["message"], ready
    events = cluster.events(name, namespace=namespace)
    assert any(e["reason"] == "Forbidden" and expected in e["message"] for e in events), events


def test_each_log_retention_refusal_is_forbidden_named_evented_and_makes_no_aws_call(
    cluster: Cluster, policed: Path, counting_moto: CountingMoto
) -> None:
    label(cluster, PCI, {"compliance": "pci"})  # long seen by the operator when its LogRetention comes
    # Another team's log bucket, with its own lifecycle rule.
    s3 = aws("s3", counting_moto.url)
    s3.create_bucket(Bucket="a-logs")
    s3.put_bucket_lifecycle_configuration(Bucket="a-logs", LifecycleConfiguration={"Rules": [FOREIGN_RULE]})
    counting_moto.reset_counts()
    cluster.apply("LogRetention", "expire-theirs", {"bucket": "a-logs", "expirationDays": 1}, namespace=B)
    cluster.apply(
        "LogRetention",
        "delete",
        {"bucket": "team-b-logs", "expirationDays": 400, "deletionPolicy": "Delete"},
        namespace=B,
    )
    # Following a Trail: its buckets are those checked (the Trail is refused as well).
    cluster.apply("Trail", "outside", spec("a-logs", trailName="outside"), namespace=B)
    cluster.apply(
        "LogRetention", "follow-outside", {"trailRef": {"name": "outside"}, "expirationDays": 1}, namespace=B
    )
    rule_b = "tenancy rule 'team-b' (namespace team-b): "
    expect_forbidden(cluster, "LogRetention", "expire-theirs", B, rule_b + "bucket a-logs is not allowed")
    expect_forbidden(cluster, "LogRetention", "delete", B, rule_b + "deletionPolicy Delete is not allowed")
    expect_forbidden(cluster, "Trail", "outside", B, rule_b + "bucket a-logs is not allowed")
    expect_forbidden(cluster, "LogRetention", "follow-outside", B, rule_b + "bucket a-logs is not allowed")
    cluster.apply("LogRetention", "pci-own", {"bucket": "pci-logs", "expirationDays": 400}, namespace=PCI)
    expect_forbidden(
        cluster,
        "LogRetention",
        "pci-own",
        PCI,
        "tenancy rule 'regulated' (namespace team-pci): the operator's own account is not allowed",
    )
    time.sleep(3)  # drift-check ticks of the refused objects come and go
    assert operator_calls(counting_moto) == 0
    assert lifecycle_rules(counting_moto.url, "a-logs") == [FOREIGN_RULE]
    # Allowed, the same kind of object does reach AWS: a Trail of team-b and a LogRetention following it.
    cluster.apply("Trail", "audit", spec("team-b-logs", trailName="team-b-audit"), namespace=B)
    cluster.apply("LogRetention", "keep", {"trailRef": {"name": "audit"}, "expirationDays": 400}, namespace=B)
    cluster.wait_condition("LogRetention", "keep", "Ready", "True", namespace=B, timeout=40)
    assert [r["Expiration"]["Days"] for r in lifecycle_rules(counting_moto.url, "team-b-logs")] == [400]
    assert operator_calls(counting_moto) > 0


def test_a_relabelled_namespace_is_judged_by_its_new_labels_without_a_spec_change(
    cluster: Cluster, policed: Path, counting_moto: CountingMoto
) -> None:
    cluster.apply("Trail", "audit", spec("pci-logs", trailName="pci-audit"), namespace=PCI)
    cluster.apply(
        "LogRetention", "keep", {"trailRef": {"name": "audit"}, "expirationDays": 400}, namespace=PCI
    )
    cluster.wait_condition("Trail", "audit", "Ready", "True", namespace=PCI)
    cluster.wait_condition("LogRetention", "keep", "Ready", "True", namespace=PCI, timeout=40)
    # Labelled as regulated: the rule that selects it refuses the operator's own account, at once.
    label(cluster, PCI, {"compliance": "pci"})
    refusal = "tenancy rule 'regulated' (namespace team-pci): the operator's own account is not allowed"
    expect_forbidden(cluster, "Trail", "audit", PCI, refusal)
    expect_forbidden(cluster, "LogRetention", "keep", PCI, refusal)
    generation = (cluster.get("Trail", "audit", PCI) or {})["metadata"]["generation"]
    # A matchExpressions requirement failing (stage NotIn [sandbox]) lets the next rule decide again.
    label(cluster, PCI, {"stage": "sandbox"})
    cluster.wait_condition("Trail", "audit", "Ready", "True", namespace=PCI)
    cluster.wait_condition("LogRetention", "keep", "Ready", "True", namespace=PCI)
    assert (cluster.get("Trail", "audit", PCI) or {})["metadata"]["generation"] == generation
