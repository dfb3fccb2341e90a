"""End to end: Trails of two namespaces against one account, through the real operator and API server.

A live Trail's trail is never taken over, a shared bucket and topic keep each Trail's own statements, a
LogRetention cannot reach across namespaces, and the tenancy policy refuses a Trail before any AWS call:
the operator runs against moto behind a counter of every request it makes (bench/aws_counter.py).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from support.cluster import ApiError, Cluster, OperatorProcess, eventually
from trailkeeper.core.naming import OWNER_TAG

# The counting moto is the bench's (bench/aws_counter.py), outside the installed package.
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.aws_counter import CountingMoto  # noqa: E402

pytestmark = pytest.mark.e2e

A, B = "team-a", "team-b"
ROLE = "arn:aws:iam::222222222222:role/trailkeeper"
POLICY = f"""
rules:
- name: team-b
  namespaces: [{B}]
  ownAccount: true
  buckets: [team-b-*, shared-*]
  trailNames: [team-b-*, audit]
  allowDelete: false
- name: everyone-else
  namespaces: ["*"]
  accounts: ["222222222222"]
"""


def spec(bucket: str, **extra: Any) -> dict[str, Any]:
    return {"regions": ["us-east-1"], "destination": {"bucket": bucket}, "resyncSeconds": 30, **extra}


def aws(service: str, endpoint: str) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)  # type: ignore[call-overload]


def trail_tags(endpoint: str, name: str) -> dict[str, str]:
    cloudtrail = aws("cloudtrail", endpoint)
    arn = cloudtrail.get_trail(Name=name)["Trail"]["TrailARN"]
    tags = cloudtrail.list_tags(ResourceIdList=[arn])["ResourceTagList"][0].get("TagsList") or []
    return {t["Key"]: t["Value"] for t in tags}


def granted_trails(endpoint: str, bucket: str) -> set[str]:
    """The trails the bucket's policy lets CloudTrail write for (by aws:SourceArn), whatever the Sids."""
    policy = json.loads(aws("s3", endpoint).get_bucket_policy(Bucket=bucket)["Policy"])
    return {name for name in ("audit", "audit-b") if f':trail/{name}"' in json.dumps(policy)}


@pytest.fixture
def counting_moto(tmp_path: Path) -> Iterator[CountingMoto]:
    with CountingMoto(tmp_path / "moto.log") as moto:
        yield moto


@pytest.fixture
def policed(cluster: Cluster, counting_moto: CountingMoto, tmp_path: Path) -> Iterator[Path]:
    """The operator, its tenancy policy read from a file, against the counting moto; yields the file."""
    path = tmp_path / "tenancy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    for namespace in (A, B):
        cluster.use_namespace(namespace)
    log = tmp_path / "operator.log"
    with OperatorProcess(cluster.kubeconfig, counting_moto.url, log, "--tenancy-policy", str(path)):
        yield path


def operator_calls(moto: CountingMoto) -> int:
    return sum(c.count for c in moto.counts() if c.caller == "operator")


# -- ownership across namespaces ---------------------------------------------------------------------------


@pytest.mark.parametrize("adopt", [False, True])
def test_a_trail_name_taken_in_another_namespace_is_never_taken_over(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str, adopt: bool
) -> None:
    cluster.apply("Trail", "audit", spec("a-logs"), namespace=A)
    cluster.wait_condition("Trail", "audit", "Ready", "True", namespace=A)
    cluster.apply("Trail", "audit", spec("b-logs", adopt=adopt), namespace=B)
    conflict = cluster.wait_condition("Trail", "audit", "Ready", "False", reason="Conflict", namespace=B)
    assert "owned by the Trail team-a/audit, which exists" in conflict["message"]
    assert "adopt" not in conflict["message"]
    assert any(e["reason"] == "Conflict" for e in cluster.events("audit", namespace=B))
    # B shows no trail of A's; A's trail, tag and status stay as they were, pass after pass.
    assert [r.get("trailArn") for r in cluster.status("Trail", "audit", B)["regions"]] == [None]
    time.sleep(3)
    assert aws("cloudtrail", moto_endpoint).get_trail(Name="audit")["Trail"]["S3BucketName"] == "a-logs"
    assert trail_tags(moto_endpoint, "audit")[OWNER_TAG] == "team-a/audit"
    status_a = cluster.status("Trail", "audit", A)
    assert status_a["phase"] == "Ready" and status_a["regions"][0]["isLogging"] is True
    assert status_a["regions"][0]["bucket"] == "a-logs"
    # Deleting B (deletionPolicy Delete) leaves A's trail.
    cluster.patch_spec("Trail", "audit", {"deletionPolicy": "Delete"}, namespace=B)
    cluster.delete("Trail", "audit", namespace=B)
    eventually(lambda: cluster.get("Trail", "audit", B) is None, what="B's Trail gone")
    assert trail_tags(moto_endpoint, "audit")[OWNER_TAG] == "team-a/audit"


def test_adopt_takes_a_trail_whose_owner_is_gone(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    cluster.apply("Trail", "audit", spec("a-logs"), namespace=A)  # deletionPolicy Retain
    cluster.wait_condition("Trail", "audit", "Ready", "True", namespace=A)
    cluster.delete("Trail", "audit", namespace=A)
    eventually(lambda: cluster.get("Trail", "audit", A) is None, what="A's Trail gone")
    cluster.apply("Trail", "audit", spec("b-logs"), namespace=B)
    refused = cluster.wait_condition("Trail", "audit", "Ready", "False", reason="Conflict", namespace=B)
    assert "which no longer exists; adopt: true takes it over" in refused["message"]
    cluster.patch_spec("Trail", "audit", {"adopt": True}, namespace=B)
    cluster.wait_condition("Trail", "audit", "Ready", "True", namespace=B)
    assert trail_tags(moto_endpoint, "audit")[OWNER_TAG] == "team-b/audit"
    assert aws("cloudtrail", moto_endpoint).get_trail(Name="audit")["Trail"]["S3BucketName"] == "b-logs"


def test_a_shared_bucket_and_topic_keep_each_namespaces_own_statements(
    cluster: Cluster, operator: OperatorProcess, moto_endpoint: str
) -> None:
    notify = {"topicName": "shared-topic"}
    cluster.apply("Trail", "audit", spec("shared-logs", notifications=notify), namespace=A)
    cluster.wait_condition("Trail", "audit", "Ready", "True", namespace=A)
    b_spec = spec("shared-logs", notifications=notify, trailName="audit-b", deletionPolicy="Delete")
    cluster.apply("Trail", "audit", b_spec, namespace=B)
    cluster.wait_condition("Trail", "audit", "Ready", "True", namespace=B)
    assert granted_trails(moto_endpoint, "shared-logs") == {"audit", "audit-b"}
    cluster.delete("Trail", "audit", namespace=B)
    eventually(lambda: cluster.get("Trail", "audit", B) is None, what="B's Trail gone")
    # B's statements, trail and nothing else went: A's statements, trail, topic and bucket stay.
    assert granted_trails(moto_endpoint, "shared-logs") == {"audit"}
    names = {t["Name"] for t in aws("cloudtrail", moto_endpoint).describe_trails()["trailList"]}
    assert names == {"audit"}
    topics = [t["TopicArn"] for t in aws("sns", moto_endpoint).list_topics()["Topics"]]
    assert [t for t in topics if t.endswith(":shared-topic")]
    assert cluster.condition("Trail", "audit", "Ready", A)["status"] == "True"


def test_a_log_retention_cannot_follow_a_trail_of_another_namespace(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.apply("Trail", "audit", spec("a-logs"), namespace=A)
    cluster.wait_condition("Trail", "audit", "Ready", "True", namespace=A)
    cluster.apply("LogRetention", "keep", {"trailRef": {"name": "audit"}, "expirationDays": 400}, namespace=B)
    waiting = cluster.wait_condition("LogRetention", "keep", "Ready", "False", namespace=B)
    assert waiting["reason"] == "TrailNotFound" and "not found in this namespace" in waiting["message"]
    # A reference is a name in the object's own namespace: there is no way to write another one.
    with pytest.raises(ApiError) as refused:
        cluster.apply("LogRetention", "reach", {"trailRef": {"name": "team-a/audit"}}, namespace=B)
    assert refused.value.status == 422


# -- the tenancy policy ------------------------------------------------------------------------------------


REFUSED = [
    ("role", spec("team-b-logs", account={"roleArn": ROLE}, trailName="team-b-1"), f"role {ROLE} is not"),
    (
        "bucket",
        spec("a-logs", trailName="team-b-2"),
        "bucket a-logs is not allowed (allowed: team-b-*, shared-*)",
    ),
    ("name", spec("team-b-logs", trailName="org-wide"), "trail name org-wide is not allowed"),
    ("delete", spec("team-b-logs", deletionPolicy="Delete", trailName="team-b-3"), "Delete is not allowed"),
]


def test_each_policy_refusal_is_forbidden_named_evented_and_makes_no_aws_call(
    cluster: Cluster, policed: Path, counting_moto: CountingMoto
) -> None:
    counting_moto.reset_counts()
    for name, body, _ in REFUSED:
        cluster.apply("Trail", f"refused-{name}", body, namespace=B)
    for name, _, expected in REFUSED:
        ready = cluster.wait_condition(
            "Trail", f"refused-{name}", "Ready", "False", reason="Forbidden", namespace=B
        )
        assert ready["message"].startswith("tenancy rule 'team-b' (namespace team-b): "), ready
        assert expected in ready["message"]
        events = cluster.events(f"refused-{name}", namespace=B)
        assert any(e["reason"] == "Forbidden" and expected in e["message"] for e in events)
    time.sleep(3)  # drift-check ticks of the refused Trails come and go
    assert operator_calls(counting_moto) == 0
    # Another namespace's rule allows its role; an allowed Trail does reach AWS (the counter sees it).
    cluster.apply("Trail", "allowed", spec("team-b-logs", trailName="team-b-4"), namespace=B)
    cluster.wait_condition("Trail", "allowed", "Ready", "True", namespace=B)
    assert operator_calls(counting_moto) > 0


def test_a_policy_edit_applies_without_a_restart_and_an_unreadable_one_refuses_all(
    cluster: Cluster, policed: Path, counting_moto: CountingMoto
) -> None:
    cluster.apply("Trail", "audit", spec("a-logs"), namespace=A)
    cluster.wait_condition("Trail", "audit", "Ready", "True", namespace=A)
    policed.write_text(
        POLICY.replace('namespaces: ["*"]', f"namespaces: [{A}]\n  ownAccount: false"), encoding="utf-8"
    )
    cluster.patch_spec("Trail", "audit", {"tags": {"edited": "yes"}}, namespace=A)
    refused = cluster.wait_condition("Trail", "audit", "Ready", "False", reason="Forbidden", namespace=A)
    assert "tenancy rule 'everyone-else'" in refused["message"]
    policed.write_text("rules: [{name: x}]", encoding="utf-8")
    cluster.apply("Trail", "late", spec("team-b-logs", trailName="team-b-5"), namespace=B)
    unreadable = cluster.wait_condition("Trail", "late", "Ready", "False", reason="Forbidden", namespace=B)
    assert "the tenancy policy cannot be read" in unreadable["message"]
