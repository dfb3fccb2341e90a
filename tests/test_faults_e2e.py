"""End to end under faults: the real operator process against moto behind a fault injector.

AWS throttles in bursts, answers 5xx in one region, drops connections and stalls; the operator is killed at
random points of its reconciles; the API server answers status writes with 409 Conflict. Each scenario must
end with every Trail Ready and AWS holding exactly what the specs ask for: one trail per (name, region), each
with the owner tag and logging, every owner's statements in every bucket and topic policy, nothing left of a
deleted Trail.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from support.cluster import Cluster, OperatorProcess, eventually
from support.faults import FaultRule
from support.faults_e2e import MotoState, RegionalFaultInjector, client, moto_state
from support.kube_front import KubeFaultFront
from support.moto_server import MOTO_DEFAULT_ACCOUNT, InProcessMotoServer
from trailkeeper.core.bucket_policy import desired_bucket_statements
from trailkeeper.core.bucket_share import (
    ACL_CHECK_SID,
    DENY_INSECURE_TRANSPORT_SID,
    BucketShare,
    share_diffs,
    write_sid,
)
from trailkeeper.core.drift import diff_statements
from trailkeeper.core.naming import OWNER_TAG
from trailkeeper.core.topic_policy import desired_topic_statements

pytestmark = pytest.mark.e2e

REGIONS = ("us-east-1", "eu-west-1")
SEED = 20240611


@pytest.fixture(scope="module")
def regional_moto(aws_test_environment: None) -> Iterator[InProcessMotoServer]:
    with InProcessMotoServer(RegionalFaultInjector(seed=SEED)) as server:
        yield server


@pytest.fixture
def injector(regional_moto: InProcessMotoServer) -> Iterator[RegionalFaultInjector]:
    assert isinstance(regional_moto.injector, RegionalFaultInjector)
    regional_moto.injector.clear()
    regional_moto.reset()
    yield regional_moto.injector
    regional_moto.injector.clear()


@pytest.fixture
def endpoint(regional_moto: InProcessMotoServer, injector: RegionalFaultInjector) -> str:
    return regional_moto.url


# ---------------------------------------------------------------------------------------------
# What AWS must hold once everything converged
# ---------------------------------------------------------------------------------------------


def trail_arn(name: str, region: str) -> str:
    return f"arn:aws:cloudtrail:{region}:{MOTO_DEFAULT_ACCOUNT}:trail/{name}"


def topic_arn(topic: str, region: str) -> str:
    return f"arn:aws:sns:{region}:{MOTO_DEFAULT_ACCOUNT}:{topic}"


def assert_converged(
    state: MotoState, specs: dict[str, dict[str, Any]], deleted: frozenset[str] = frozenset()
) -> None:
    """AWS holds exactly the trails of `specs`, each owned, logging and fully permitted, and nothing of
    the Trails in `deleted`."""
    wanted = sorted((name, region) for name, spec in specs.items() for region in spec["regions"])
    assert state.trail_keys() == wanted, "exactly one trail per (name, region), none of a deleted Trail"
    for trail in state.trails:
        assert trail.tags.get(OWNER_TAG) == f"default/{trail.name}", f"{trail.arn} without its owner tag"
        assert trail.is_logging, f"{trail.arn} does not log"
    owners_left = {t.tags.get(OWNER_TAG) for t in state.trails}
    assert not owners_left & {f"default/{name}" for name in deleted}
    for name, spec in specs.items():
        owner = f"default/{name}"
        by_bucket: dict[str, list[str]] = {}
        for region in spec["regions"]:
            bucket = spec["destination"]["bucket"].replace("{region}", region)
            by_bucket.setdefault(bucket, []).append(trail_arn(name, region))
        for bucket, arns in by_bucket.items():
            desired = desired_bucket_statements(
                owner=owner,
                bucket=bucket,
                key_prefix="",
                account_id=MOTO_DEFAULT_ACCOUNT,
                trail_arns=arns,
                source_accounts=[],
                organization_id=None,
            )
            share = BucketShare(bucket, "", MOTO_DEFAULT_ACCOUNT, name)
            missing = diff_statements(
                f"bucket-policy/{bucket}", desired, state.buckets.get(bucket), owner=owner
            ) + share_diffs(f"bucket-policy/{bucket}", state.buckets.get(bucket), share)
            assert missing == [], f"{owner}'s statements on {bucket}: {missing}"
        topic = str((spec.get("notifications") or {}).get("topicName") or "")
        for region in spec["regions"] if topic else ():
            arn = topic_arn(topic, region)
            desired = desired_topic_statements(
                owner=owner, topic_arn=arn, trail_arns=[trail_arn(name, region)]
            )
            missing = diff_statements(f"topic-policy/{region}", desired, state.topics.get(arn), owner=owner)
            assert missing == [], f"{owner}'s statements on {arn}: {missing}"


def wait_all_ready(cluster: Cluster, names: list[str], timeout: float) -> None:
    for name in names:
        cluster.wait_condition("Trail", name, "Ready", "True", timeout=timeout)


# ---------------------------------------------------------------------------------------------
# Throttling, server errors, resets and delays in bursts
# ---------------------------------------------------------------------------------------------

BURST = {
    "regions": list(REGIONS),
    "destination": {"bucket": "burst-shared"},
    "notifications": {"topicName": "burst-deliveries"},
    "resyncSeconds": 30,
}


def burst_rules() -> list[FaultRule]:
    """Faults in a burst at the start, on every kind of call a reconcile makes: throttles as each service
    spells them, 5xx, dropped connections, and delays on the shared bucket policy's read-modify-write.

    The four Trails share one bucket and one topic, whose updates are serialized, and one DescribeTrails
    per region: a backoff there delays all four, so those calls get single faults; the others get two in a
    row. botocore's retries absorb all of them (the region test covers faults that outlast those retries).
    """
    return [
        FaultRule.throttle("s3", "HeadBucket", count=1),
        FaultRule.throttle("s3", "GetBucketPolicy", count=1),
        FaultRule.throttle("s3", "PutBucketPolicy", count=1),
        FaultRule.slow("s3", "PutBucketPolicy", seconds=0.3, count=3),
        FaultRule.server_error("s3", "PutBucketTagging", status=500, count=1),
        FaultRule.server_error("s3", "PutPublicAccessBlock", status=503, count=1),
        FaultRule.reset("s3", "PutBucketVersioning", count=1),
        FaultRule.throttle("cloudtrail", "DescribeTrails", count=1),
        FaultRule.throttle("cloudtrail", "CreateTrail", count=2),
        FaultRule.server_error("cloudtrail", "PutEventSelectors", status=503, count=2),
        FaultRule.throttle("cloudtrail", "StartLogging", count=2),
        FaultRule.reset("cloudtrail", "GetTrailStatus", count=2),
        FaultRule.throttle("cloudtrail", "GetEventSelectors", count=2),
        FaultRule.throttle("sns", "CreateTopic", count=1),
        FaultRule.throttle("sns", "SetTopicAttributes", count=1),
        FaultRule.throttle("sns", "ListSubscriptionsByTopic", count=2),
        FaultRule.reset("sns", "GetTopicAttributes", count=2),
        FaultRule.server_error("sts", "GetCallerIdentity", status=500, count=1),
    ]


def test_a_throttled_burst_converges_with_no_lost_policy_statements(
    cluster: Cluster, injector: RegionalFaultInjector, endpoint: str, tmp_path: Path
) -> None:
    rules = [injector.add(rule) for rule in burst_rules()]
    specs = {f"burst-{i}": BURST for i in range(4)}
    for name, spec in specs.items():
        cluster.apply("Trail", name, spec)

    with OperatorProcess(cluster.kubeconfig, endpoint, tmp_path / "operator.log") as operator:
        wait_all_ready(cluster, list(specs), timeout=60)

    assert [(r.service, r.operation, r.injected) for r in rules if r.injected < (r.count or 0)] == []
    assert Counter(hit.action for hit in injector.all_hits) == {
        "throttle": 14,
        "error": 5,
        "reset": 5,
        "delay": 3,
    }
    assert_converged(moto_state(endpoint, REGIONS), specs)
    # The four owners' grants are aggregated (assert_converged found each one's entries in them): one
    # ACL check, one write statement for the one path pattern, one TLS-only deny, nothing else.
    shared = moto_state(endpoint, REGIONS).statement_sids("burst-shared")
    assert shared == {ACL_CHECK_SID, write_sid(""), DENY_INSECURE_TRANSPORT_SID}
    assert "Traceback" not in operator.output()


# ---------------------------------------------------------------------------------------------
# One region answering 5xx
# ---------------------------------------------------------------------------------------------


def test_a_region_answering_5xx_leaves_the_other_regions_ready_and_recovers(
    cluster: Cluster, injector: RegionalFaultInjector, endpoint: str, tmp_path: Path
) -> None:
    outage = injector.region("eu-west-1").add(FaultRule.server_error(None, None, status=503, count=None))
    specs = {
        "east-only": {"regions": ["us-east-1"], "destination": {"bucket": "east-only-logs"}},
        "both": {
            "regions": list(REGIONS),
            "destination": {"bucket": "both-{region}"},
            "notifications": {"topicName": "both-deliveries"},
        },
        "west-only": {"regions": ["eu-west-1"], "destination": {"bucket": "west-only-logs"}},
    }
    for name, spec in specs.items():
        cluster.apply("Trail", name, {**spec, "resyncSeconds": 30})

    with OperatorProcess(cluster.kubeconfig, endpoint, tmp_path / "operator.log") as operator:
        cluster.wait_condition("Trail", "east-only", "Ready", "True", timeout=30)
        both = cluster.wait_condition(
            "Trail", "both", "Ready", "False", reason="ServiceUnavailable", timeout=30
        )
        cluster.wait_condition(
            "Trail", "west-only", "Ready", "False", reason="ServiceUnavailable", timeout=30
        )
        assert "Injected fault" in both["message"]  # the 503's own message, as AWS sent it
        regions = {r["region"]: r for r in cluster.status("Trail", "both")["regions"]}
        assert regions["us-east-1"].get("error") is None  # no error: the field is left out
        assert regions["us-east-1"]["isLogging"] is True
        assert regions["us-east-1"]["trailArn"] == trail_arn("both", "us-east-1")
        assert "ServiceUnavailable" in regions["eu-west-1"]["error"]
        during = moto_state(endpoint, ["us-east-1"])
        assert during.trail_keys() == [("both", "us-east-1"), ("east-only", "us-east-1")]
        assert outage.injected > 0

        injector.region("eu-west-1").clear()
        wait_all_ready(cluster, list(specs), timeout=40)

    assert_converged(moto_state(endpoint, REGIONS), specs)
    assert "Traceback" not in operator.output()


# ---------------------------------------------------------------------------------------------
# The operator killed at random points of its reconciles
# ---------------------------------------------------------------------------------------------

KILLS = 4


def reached(injector: RegionalFaultInjector, requests: int) -> bool:
    return len(injector.seen) >= requests


def handled(cluster: Cluster, name: str, generation: int) -> bool:
    return cluster.status("Trail", name).get("observedGeneration") == generation


def test_killed_at_random_points_and_restarted_it_converges_without_duplicates_or_orphans(
    cluster: Cluster, injector: RegionalFaultInjector, endpoint: str, tmp_path: Path
) -> None:
    # Every AWS call a little slow, so a reconcile spans many kill points.
    injector.add(FaultRule.slow(None, None, seconds=0.03, count=None))
    specs: dict[str, dict[str, Any]] = {
        "kill-a": {
            "regions": list(REGIONS),
            "destination": {"bucket": "kill-shared"},
            "notifications": {"topicName": "kill-a-deliveries"},
        },
        "kill-b": {"regions": list(REGIONS), "destination": {"bucket": "kill-shared"}},
        "kill-c": {
            "regions": list(REGIONS),
            "destination": {"bucket": "kill-c-{region}"},
            "notifications": {"topicName": "kill-c-deliveries"},
            "deletionPolicy": "Delete",
        },
    }
    for name, spec in specs.items():
        cluster.apply("Trail", name, {**spec, "resyncSeconds": 30})
    # Between kills the specs change and a Trail is deleted, so kills also land in updates and deletions.
    changes = {
        1: lambda: cluster.patch_spec("Trail", "kill-b", {"tags": {"team": "audit"}}),
        2: lambda: cluster.patch_spec(
            "Trail", "kill-a", {"eventSelectors": [{"readWriteType": "WriteOnly"}]}
        ),
        3: lambda: cluster.delete("Trail", "kill-c"),
    }
    rng = random.Random(SEED)
    for iteration in range(KILLS):
        if iteration in changes:
            changes[iteration]()
        target = len(injector.seen) + rng.randint(1, 40)
        operator = OperatorProcess(
            cluster.kubeconfig, endpoint, tmp_path / f"operator-{iteration}.log"
        ).start()
        try:
            eventually(partial(reached, injector, target), timeout=30, what=f"AWS request #{target}")
        finally:
            operator.kill()
        assert operator.process is not None and operator.process.returncode == -9

    del specs["kill-c"]
    with OperatorProcess(cluster.kubeconfig, endpoint, tmp_path / "operator-final.log") as operator:
        wait_all_ready(cluster, list(specs), timeout=40)
        eventually(lambda: cluster.get("Trail", "kill-c") is None, timeout=30, what="kill-c deleted")
        for name in ("kill-a", "kill-b"):
            eventually(partial(handled, cluster, name, 2), timeout=30, what=f"{name}'s change handled")

    state = moto_state(endpoint, REGIONS)
    assert_converged(state, specs, deleted=frozenset({"kill-c"}))
    assert {t.tags.get("team") for t in state.trails if t.name == "kill-b"} == {"audit"}
    selectors = client("cloudtrail", endpoint, "eu-west-1").get_event_selectors(TrailName="kill-a")
    assert [s["ReadWriteType"] for s in selectors["EventSelectors"]] == ["WriteOnly"]
    assert "Traceback" not in operator.output()


def kill_when_stalled(
    cluster: Cluster, endpoint: str, tmp_path: Path, stall: FaultRule, injector: RegionalFaultInjector
) -> None:
    """Start the operator, kill it while the `stall` rule holds its request, then lift every rule."""
    operator = OperatorProcess(cluster.kubeconfig, endpoint, tmp_path / "operator-1.log").start()
    try:
        eventually(lambda: stall.injected == 1, timeout=30, what=f"{stall.operation} sent")
    finally:
        operator.kill()
    injector.clear()


def test_killed_between_creating_a_bucket_and_tagging_it_the_bucket_is_still_finished(
    cluster: Cluster, injector: RegionalFaultInjector, endpoint: str, tmp_path: Path
) -> None:
    # The tagging request stalls (and is then dropped): the operator is killed while it waits.
    stall = injector.add(FaultRule("reset", "s3", "PutBucketTagging", count=1, delay=3.0))
    spec = {"regions": ["us-east-1"], "destination": {"bucket": "torn-logs"}, "deletionPolicy": "Delete"}
    cluster.apply("Trail", "torn", spec)
    kill_when_stalled(cluster, endpoint, tmp_path, stall, injector)

    with OperatorProcess(cluster.kubeconfig, endpoint, tmp_path / "operator-2.log"):
        cluster.wait_condition("Trail", "torn", "Ready", "True", timeout=30)
        s3 = client("s3", endpoint)
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket="torn-logs")["TagSet"]}
        assert tags.get(OWNER_TAG) == "default/torn"
        block = s3.get_public_access_block(Bucket="torn-logs")["PublicAccessBlockConfiguration"]
        assert all(block.values())
        assert s3.get_bucket_versioning(Bucket="torn-logs").get("Status") == "Enabled"
        cluster.delete("Trail", "torn")
        eventually(lambda: cluster.get("Trail", "torn") is None, what="torn deleted")
    assert "torn-logs" not in moto_state(endpoint, []).buckets


def test_a_region_dropped_while_killed_mid_create_leaves_no_orphaned_trail_after_deletion(
    cluster: Cluster, injector: RegionalFaultInjector, endpoint: str, tmp_path: Path
) -> None:
    # The eu-west-1 trail is made, then StartLogging stalls and the operator is killed: the create
    # handler never finished. The spec then drops eu-west-1, and the Trail is later deleted.
    stall = injector.region("eu-west-1").add(
        FaultRule("reset", "cloudtrail", "StartLogging", count=1, delay=3)
    )
    spec = {"regions": list(REGIONS), "destination": {"bucket": "drop-{region}"}, "deletionPolicy": "Delete"}
    cluster.apply("Trail", "drop", spec)
    kill_when_stalled(cluster, endpoint, tmp_path, stall, injector)
    assert moto_state(endpoint, REGIONS).trail_keys() == [("drop", "eu-west-1"), ("drop", "us-east-1")]
    cluster.patch_spec("Trail", "drop", {"regions": ["us-east-1"]})

    with OperatorProcess(cluster.kubeconfig, endpoint, tmp_path / "operator-2.log"):
        cluster.wait_condition("Trail", "drop", "Ready", "True", timeout=30)
        cluster.delete("Trail", "drop")
        eventually(lambda: cluster.get("Trail", "drop") is None, timeout=20, what="drop deleted")
    assert moto_state(endpoint, REGIONS).trail_keys() == []


# ---------------------------------------------------------------------------------------------
# Status writes answered 409 Conflict
# ---------------------------------------------------------------------------------------------


def simple(bucket: str) -> dict[str, Any]:
    return {"regions": ["us-east-1"], "destination": {"bucket": bucket}, "resyncSeconds": 30}


def test_status_writes_answered_409_are_retried_by_change_handlers_and_drift_checks(
    cluster: Cluster, endpoint: str, tmp_path: Path
) -> None:
    with KubeFaultFront(cluster, tmp_path) as front:
        status_writes_answered_409_are_retried(cluster, front, endpoint, tmp_path)


def status_writes_answered_409_are_retried(
    cluster: Cluster, front: KubeFaultFront, endpoint: str, tmp_path: Path
) -> None:
    first_write = front.conflict_status_patches("trails", "created", count=1)
    cluster.apply("Trail", "created", simple("created-logs"))
    cluster.apply("Trail", "checked", simple("checked-logs"))
    with OperatorProcess(front.kubeconfig, endpoint, tmp_path / "operator.log"):
        cluster.wait_condition("Trail", "checked", "Ready", "True", timeout=20)
        drift_check_write = front.conflict_status_patches("trails", "checked", count=1)
        eventually(lambda: first_write() == 1, timeout=10, what="the create handler's status write refused")
        eventually(lambda: drift_check_write() == 1, timeout=10, what="a drift check's status write refused")
        cloudtrail = client("cloudtrail", endpoint)
        cloudtrail.stop_logging(Name="checked")

        # Drift checks tick every 0.75 s and are due every 1.5 s here (resyncSeconds 30 x 0.05).
        cluster.wait_condition("Trail", "created", "Ready", "True", timeout=5)
        eventually(
            lambda: cloudtrail.get_trail_status(Name="checked")["IsLogging"],
            timeout=5,
            what="drift corrected",
        )
        cluster.wait_condition("Trail", "checked", "Drifted", "True", reason="DriftCorrected", timeout=5)
