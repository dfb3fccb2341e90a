"""The local control plane harness: where its programs come from, what it refuses, and a cluster of the
user's own (here a second local control plane, reached the way a kind or EKS kubeconfig would be)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests
import yaml

from support.cluster import Cluster, KubeAccess, kube_access
from trailkeeper.localkube.control_plane import LocalControlPlane, PortInUse, check_port_free
from trailkeeper.localkube.tools import ASSETS_ENV, KubeToolsMissing, cache_dir, find_tools


def test_kubebuilder_assets_names_the_programs_to_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("etcd", "kube-apiserver", "kubectl"):
        program = tmp_path / name
        program.write_text("#!/bin/sh\n", encoding="utf-8")
        program.chmod(0o755)
    monkeypatch.setenv(ASSETS_ENV, str(tmp_path))
    tools = find_tools()
    assert (tools.etcd, tools.kube_apiserver, tools.kubectl) == (
        tmp_path / "etcd",
        tmp_path / "kube-apiserver",
        tmp_path / "kubectl",
    )


def test_missing_programs_fail_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etcd").write_text("", encoding="utf-8")  # there, but not executable
    monkeypatch.setenv(ASSETS_ENV, str(tmp_path))
    with pytest.raises(KubeToolsMissing) as missing:
        find_tools()
    message = str(missing.value)
    assert "no etcd, kube-apiserver, kubectl" in message
    assert "make kube-tools" in message and ASSETS_ENV in message and "TRAILKEEPER_KUBECONFIG" in message


def test_the_build_cache_is_keyed_by_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "trailkeeper" / "kube-v1.37.2"


def test_a_taken_port_is_refused_naming_it_and_the_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            PortInUse, match=rf"port {port} on 127.0.0.1 is taken; choose another with --port N"
        ):
            check_port_free(port, "--port")


@pytest.mark.e2e
def test_an_existing_cluster_named_by_its_kubeconfig_is_used_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LocalControlPlane(tmp_path / "theirs") as theirs:
        monkeypatch.setenv("TRAILKEEPER_KUBECONFIG", str(theirs.kubeconfig))
        with kube_access(tmp_path / "ours") as access, Cluster(access) as cluster:
            assert access.url.startswith("http://127.0.0.1:")  # through kubectl proxy
            cluster.apply("Trail", "byo", {"regions": ["us-east-1"], "destination": {"bucket": "byo-logs"}})
            assert cluster.get("Trail", "byo") is not None
            # The operator's identity is a ServiceAccount token for the cluster's own address.
            assert theirs.url in access.operator_kubeconfig.read_text(encoding="utf-8")
            crds = access.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
            names = {item["metadata"]["name"] for item in crds["items"]}
            assert {"trails.trailkeeper.io", "logretentions.trailkeeper.io"} <= names


@pytest.mark.e2e
def test_the_operator_logs_in_with_the_charts_rbac_only(kube: KubeAccess) -> None:
    """What the operator may do is what the chart grants: its ServiceAccount can patch Trail status but
    not read Secrets, so a verb the chart forgets fails the end-to-end tests instead of passing as admin."""
    config = yaml.safe_load(kube.operator_kubeconfig.read_text(encoding="utf-8"))
    user = config["users"][0]
    assert user["name"] == "system:serviceaccount:trailkeeper:trailkeeper"
    token = user["user"]["token"]

    def allowed(verb: str, resource: str, group: str = "", subresource: str = "") -> bool:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": "default",
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                    "subresource": subresource,
                }
            },
        }
        answer = requests.post(
            f"{kube.url}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            json=review,
            headers={"Authorization": f"Bearer {token}"},
            verify=kube.session.verify,
            timeout=10,
        )
        answer.raise_for_status()
        return bool(answer.json()["status"]["allowed"])

    assert allowed("patch", "trails", "trailkeeper.io", "status")
    assert allowed("watch", "logretentions", "trailkeeper.io")
    assert allowed("create", "events")
    assert not allowed("get", "secrets")
    assert not allowed("delete", "trails", "trailkeeper.io")
    assert not allowed("update", "trails", "trailkeeper.io")
