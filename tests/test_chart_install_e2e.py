"""The chart installed by Helm's own engine into the session's real API server (tests/support/cluster.py).

Every value set of charts/trailkeeper/ci/ installs as a release of its own, side by side in one
namespace, and the API server accepts every object (its own validation, not a copy of the schemas).
Then the operator is started as an installed release would start it: its rendered flags, logged in with a
token of the release's ServiceAccount, allowed only what the release's RBAC grants; it answers on the
health endpoint the probes call and keeps itself alive in the release's own peering object.
"""

from __future__ import annotations

import contextlib
import copy
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import pytest

from support.chart_checks import chart_checks
from support.cluster import KubeAccess, eventually, service_account_kubeconfig
from support.moto_server import free_port

pytestmark = pytest.mark.e2e


chart = chart_checks()
CHART, VALUE_SETS = chart.CHART, chart.VALUE_SETS
render_chart, one, operator_container = chart.render_chart, chart.one, chart.operator_container

NAMESPACE = "chart-e2e"
# The namespaces the value sets restrict the operator to; a RoleBinding needs its namespace.
WATCHED = ("security", "audit")


@pytest.fixture(scope="module")
def helm_client(kube: KubeAccess) -> Iterator[helm.Config]:
    for namespace in (NAMESPACE, *WATCHED):
        kube.ensure_namespace(namespace)
    with helm.Config(kubeconfig_path=str(kube.admin_kubeconfig), namespace=NAMESPACE) as config:
        yield config


@contextlib.contextmanager
def installed(config: helm.Config, release: str, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
    result = config.install(str(CHART), release, values, namespace=NAMESPACE)
    try:
        yield result
    finally:
        config.uninstall(release)


def installable(values: dict[str, Any]) -> dict[str, Any]:
    """The values without a ServiceMonitor: the session's API server has no prometheus-operator CRDs."""
    values = copy.deepcopy(values)
    monitor = values.get("metrics", {}).get("serviceMonitor", {})
    if monitor.get("enabled"):
        monitor["enabled"] = False
    return values


def api_path(doc: dict[str, Any]) -> str:
    api_version, kind = doc["apiVersion"], doc["kind"]
    plural = {
        "NetworkPolicy": "networkpolicies",
        "ClusterKopfPeering": "clusterkopfpeerings",
        "KopfPeering": "kopfpeerings",
    }.get(kind, kind.lower() + "s")
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    namespace = doc["metadata"].get("namespace")
    return (
        f"{base}/namespaces/{namespace}/{plural}/{doc['metadata']['name']}"
        if namespace
        else (f"{base}/{plural}/{doc['metadata']['name']}")
    )


@pytest.mark.parametrize("name", ["defaults", *VALUE_SETS])
def test_every_value_set_installs_into_the_api_server(kube, helm_client, name):
    values = installable(VALUE_SETS.get(name, {}))
    release = f"set-{name}"[:53].rstrip("-")
    with installed(helm_client, release, values) as result:
        assert result["status"] == "deployed"
        for doc in render_chart(values, release=release, namespace=NAMESPACE):
            stored = kube.request("GET", api_path(doc))
            assert stored["metadata"]["labels"]["app.kubernetes.io/instance"] == release


def test_two_releases_live_side_by_side_and_a_release_name_once_per_cluster(helm_client):
    with installed(helm_client, "audit", {}), installed(helm_client, "compliance", {}):
        releases = {item["name"]: item["status"] for item in helm_client.list()}
        assert releases.items() >= {"audit": "deployed", "compliance": "deployed"}.items()
        # The same name in another namespace would own the same cluster-scoped objects: Helm refuses.
        with pytest.raises(helm.HelmError, match="exists and cannot be imported into the current release"):
            helm_client.install(str(CHART), "audit", {}, namespace="audit", create_namespace=True)


def test_the_operator_starts_as_the_release_installs_it(kube, cluster, helm_client, tmp_path):
    health, metrics = free_port(), free_port()
    values = {"liveness": {"port": health}, "metrics": {"port": metrics}}
    release = "started"
    with installed(helm_client, release, values):
        docs = render_chart(values, release=release, namespace=NAMESPACE)
        container = operator_container(docs)
        account = one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
        peering = one(docs, "ClusterKopfPeering")["metadata"]["name"]
        assert peering == "started-trailkeeper"
        env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
        process_env = {
            **os.environ,
            **env,
            "KUBECONFIG": str(
                service_account_kubeconfig(
                    kube, NAMESPACE, account, tmp_path / "kubeconfig", kube.server, kube.ca
                )
            ),
            "POD_ID": "started-0",
            # No AWS is reached: nothing is there to reconcile.
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        log = tmp_path / "operator.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "trailkeeper", "run", *container["args"]],
                env=process_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:

            def answers() -> bool:
                url = f"http://127.0.0.1:{health}/healthz"
                with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
                    return bool(response.status == 200)
                return False

            eventually(answers, timeout=60, what="the health endpoint the probes call")

            def keeps_alive() -> dict[str, Any] | None:
                status = kube.request("GET", f"/apis/kopf.dev/v1/clusterkopfpeerings/{peering}").get("status")
                return status or None

            keepalive = eventually(
                keeps_alive, timeout=60, what=f"a keep-alive in ClusterKopfPeering {peering}"
            )
            assert len(keepalive) == 1
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as response:
                assert b"trailkeeper" in response.read()
            assert process.poll() is None
        except BaseException:
            sys.stderr.write("---- operator log ----\n" + log.read_text(errors="replace")[-6000:])
            raise
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        # A call the release's RBAC does not grant would have been logged as forbidden.
        assert "Forbidden" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-4000:]
