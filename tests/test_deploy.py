"""The plain manifests in deploy/: the chart's default rendering, generated, so the two cannot drift.

`kubectl apply -k deploy/` (or `-f deploy/crds/` then `-f deploy/operator/`) must install what
`helm install trailkeeper charts/trailkeeper -n trailkeeper` installs. deploy/operator/ and
deploy/kustomization.yaml are written by charts/trailkeeper/hack/generate.py from Helm's rendering; these
tests fail when they are not what it writes, and compare the two installs object by object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from support.chart_checks import chart_checks

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NAMESPACE = "trailkeeper"


chart = chart_checks()
generate = chart.generate


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "kustomization.yaml").read_text(encoding="utf-8"))


def deploy_docs(folder: str = "") -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / folder).rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs.extend(doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc)
    return docs


def key(doc: dict[str, Any]) -> tuple[str, str, str]:
    return doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]


def without_helm_labels(doc: dict[str, Any]) -> dict[str, Any]:
    labels = doc["metadata"].get("labels") or {}
    for label in set(generate.HELM_ONLY_LABELS) & set(labels):
        del labels[label]
    return doc


def test_deploy_is_what_the_generator_writes_from_the_chart():
    expected = generate.deploy_files()
    for path, text in expected.items():
        assert (DEPLOY / path).read_text(encoding="utf-8") == text, (
            f"deploy/{path} is stale: run charts/trailkeeper/hack/generate.py"
        )
    operator_files = {f"operator/{path.name}" for path in (DEPLOY / "operator").iterdir()}
    assert operator_files == {path for path in expected if path.startswith("operator/")}


def test_kustomization_lists_every_manifest_once():
    listed = kustomization()["resources"]
    files = {
        str(path.relative_to(DEPLOY)) for path in DEPLOY.rglob("*.yaml") if path.name != "kustomization.yaml"
    }
    assert len(listed) == len(set(listed))
    assert set(listed) == files
    # The CRDs come first: kubectl maps every object before applying, the peering object needs its CRD.
    crds = [entry for entry in listed if entry.startswith("crds/")]
    assert listed[: len(crds)] == crds


def test_crds_are_the_repository_crds_and_the_charts():
    files = {path.name for path in (DEPLOY / "crds").iterdir()}
    assert files == {path.name for path in (chart.CHART / "crds").iterdir()}
    for name in files:
        assert (DEPLOY / "crds" / name).read_bytes() == (chart.CHART / "crds" / name).read_bytes(), name
    for path in chart.REPO_CRDS.glob("*.yaml"):
        assert (DEPLOY / "crds" / path.name).read_bytes() == path.read_bytes(), (
            f"deploy/crds/{path.name} differs from crds/{path.name}: copy it again"
        )


def test_operator_objects_equal_the_chart_defaults():
    rendered = {key(doc): without_helm_labels(doc) for doc in chart.render_chart(namespace=NAMESPACE)}
    plain = {key(doc): doc for doc in deploy_docs("operator")}
    # helm creates the release namespace (--create-namespace); plain manifests must bring their own.
    assert plain.pop(("Namespace", "", NAMESPACE))
    assert set(plain) == set(rendered)
    for name, doc in plain.items():
        assert doc == rendered[name], f"deploy/ {name} differs from the chart's default rendering"


def test_every_object_validates_strictly_against_each_kubernetes_version():
    problems = [problem for doc in deploy_docs() for problem in chart.validate_object(doc)]
    assert not problems, "\n".join(problems)


def test_rbac_grants_what_the_chart_grants():
    account = (NAMESPACE, "trailkeeper")
    plain = chart.effective_permissions(deploy_docs("operator"), account)
    assert plain == chart.effective_permissions(chart.render_chart(namespace=NAMESPACE), account)
    assert plain == chart.expected_permissions([], peering=True)


def test_deployment_is_locked_down_and_probed_where_the_operator_listens():
    docs = deploy_docs("operator")
    chart.assert_locked_down(chart.one(docs, "Deployment"))
    container = chart.operator_container(docs)
    chart.assert_liveness_probe_matches_the_endpoint(container)
    params = chart.run_params(container["args"])
    assert params["all_namespaces"] and not params["namespaces"]
    assert not params["standalone"]


def test_everything_lives_in_the_namespace_the_manifests_create():
    docs = deploy_docs("operator")
    namespace = chart.one(docs, "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    # The pod meets the restricted Pod Security Standard (see the Deployment test), so enforce it.
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering"}
    for doc in docs:
        if doc["kind"] not in cluster_scoped:
            assert doc["metadata"]["namespace"] == NAMESPACE, key(doc)
    peering = chart.one(docs, "ClusterKopfPeering")["metadata"]["name"]
    assert chart.run_params(chart.operator_container(docs)["args"])["peering"] == peering
