"""Several replicas in one kopf peering: the one of the highest priority reconciles, the others stand by,
and one of them takes over when the active replica dies. Real operator processes, a real API server with
kopf's peering CRDs (as the chart and deploy/ install them), and moto."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cluster import Cluster, OperatorProcess, eventually
from support.moto_server import MotoServer

pytestmark = pytest.mark.e2e

PEERING = "trailkeeper"
LIFETIME = 4  # seconds a keep-alive counts: how long a standby waits after the active replica died


def spec(bucket: str) -> dict[str, object]:
    return {"regions": ["us-east-1"], "destination": {"bucket": bucket}}


@pytest.fixture
def peering(cluster: Cluster) -> str:
    """The ClusterKopfPeering the chart installs (its CRD is installed with trailkeeper's)."""
    cluster.request(
        "POST",
        "/apis/kopf.dev/v1/clusterkopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING}},
    )
    return PEERING


def replica(cluster: Cluster, endpoint: str, log: Path, priority: int) -> OperatorProcess:
    return OperatorProcess(
        cluster.kubeconfig,
        endpoint,
        log,
        "--priority",
        str(priority),
        "--peering-lifetime",
        str(LIFETIME),
        peering=PEERING,
    )


def peer_priorities(cluster: Cluster) -> list[int]:
    peering = cluster.request("GET", f"/apis/kopf.dev/v1/clusterkopfpeerings/{PEERING}")
    return sorted(int(peer["priority"]) for peer in (peering.get("status") or {}).values())


def handled(process: OperatorProcess) -> int:
    return process.output().count("Handler 'trail_created' succeeded")


def test_one_replica_reconciles_and_a_standby_takes_over_when_it_dies(
    cluster: Cluster, peering: str, moto_server: MotoServer, moto_endpoint: str, tmp_path: Path
) -> None:
    moto_server.reset()
    # A replica starts paused and works only once the peering shows no live peer above it: the standby,
    # started second, never works while the active one lives.
    active = replica(cluster, moto_endpoint, tmp_path / "active.log", priority=20).start()
    standby = replica(cluster, moto_endpoint, tmp_path / "standby.log", priority=10)
    try:
        eventually(
            lambda: peer_priorities(cluster) == [20], timeout=20, what="the first replica in the peering"
        )
        standby.start()
        eventually(
            lambda: peer_priorities(cluster) == [10, 20], timeout=20, what="both replicas in the peering"
        )
        cluster.apply("Trail", "peered-first", spec("peered-first-logs"))
        cluster.wait_condition("Trail", "peered-first", "Ready", "True", timeout=20)
        assert (handled(active), handled(standby)) == (1, 0)

        active.kill()
        cluster.apply("Trail", "peered-second", spec("peered-second-logs"))
        cluster.wait_condition("Trail", "peered-second", "Ready", "True", timeout=LIFETIME + 20)
        assert "Resuming operations" in standby.output()
        assert handled(standby) == 1
        assert "Traceback" not in standby.output() + active.output()
    finally:
        active.kill()
        standby.stop()
