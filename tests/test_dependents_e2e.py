"""End to end: a LogRetention waiting on its Trail is Ready within a second of the Trail, in any order of
apply and after an operator restart, with the wait posted as one TrailNotFound Event, not one per retry."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.cluster import Cluster, OperatorProcess, eventually
from support.moto_server import MotoServer

pytestmark = pytest.mark.e2e

TRAIL = {"regions": ["us-east-1"], "destination": {"bucket": "e2e-dependent"}}
RETENTION = {"trailRef": {"name": "audit"}, "expirationDays": 400}
# The most a LogRetention may lag its Trail: the notification, one pass and one status write.
LAG = 1.0


def ready(cluster: Cluster, kind: str, name: str) -> bool:
    conditions = cluster.status(kind, name).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def ready_times(cluster: Cluster, timeout: float = 30.0) -> tuple[float, float]:
    """When the Trail and when the LogRetention were first seen Ready (monotonic, polled every 50 ms)."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < 2 and time.monotonic() < deadline:
        for kind, name in (("Trail", "audit"), ("LogRetention", "keep")):
            if kind not in seen and ready(cluster, kind, name):
                seen[kind] = time.monotonic()
        time.sleep(0.05)
    assert len(seen) == 2, f"not Ready within {timeout} s: {seen}"
    return seen["Trail"], seen["LogRetention"]


@pytest.fixture
def slow_operator(
    cluster: Cluster, moto_server: MotoServer, moto_endpoint: str, tmp_path: Path
) -> OperatorProcess:
    """The operator at production resync (timer ticks 7.5 s apart): only the notification is fast."""
    moto_server.reset()
    return OperatorProcess(cluster.kubeconfig, moto_endpoint, tmp_path / "operator.log", resync_scale=1.0)


def waiting_for_trail(cluster: Cluster) -> None:
    def reported() -> bool:
        status = cluster.status("LogRetention", "keep")
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        return status.get("observedGeneration") == 1 and conditions.get("Ready", {}).get("reason") == (
            "TrailNotFound"
        )

    eventually(reported, what="TrailNotFound in the LogRetention's status")


def test_retention_applied_first_follows_its_trail_within_a_second(
    cluster: Cluster, slow_operator: OperatorProcess
) -> None:
    with slow_operator:
        cluster.apply("LogRetention", "keep", RETENTION)
        waiting_for_trail(cluster)
        time.sleep(5)  # its own retries have backed off by now
        cluster.apply("Trail", "audit", TRAIL)
        trail_at, retention_at = ready_times(cluster)
        assert retention_at - trail_at <= LAG
        reasons = [e["reason"] for e in cluster.events("keep")]
        assert reasons.count("TrailNotFound") == 1


def test_after_a_restart_a_waiting_retention_follows_its_trail_within_a_second(
    cluster: Cluster, slow_operator: OperatorProcess
) -> None:
    cluster.apply("LogRetention", "keep", RETENTION)
    with slow_operator:
        waiting_for_trail(cluster)
    with slow_operator:
        time.sleep(3)
        cluster.apply("Trail", "audit", TRAIL)
        trail_at, retention_at = ready_times(cluster)
        assert retention_at - trail_at <= LAG
