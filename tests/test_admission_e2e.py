"""Each manifest of tests/invalid/ against a real API server: refused at admission naming the field, or,
for the rules a schema cannot express (the regions AWS has, names only the operator can judge), admitted
and then given Ready=False InvalidSpec naming the field by the operator. Which of the two is recorded in
each file's `# admission:` line and asserted here; and the examples are admitted as they are."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.cluster import ApiError, Cluster, OperatorProcess

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted((ROOT / "tests" / "invalid").glob("*.yaml"))
PLURALS = {"Trail": "trails", "LogRetention": "logretentions"}


def header(path: Path, key: str) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"# {key}: "):
            return line.removeprefix(f"# {key}: ").strip()
    raise AssertionError(f"{path.name} has no '# {key}:' line")


def unindexed(path: str) -> str:
    return re.sub(r"\[\d+\]", "", path)


def collection(body: dict[str, Any]) -> str:
    """Where kubectl sends it: the group and version its apiVersion names."""
    namespace = (body.get("metadata") or {}).get("namespace") or "default"
    plural = PLURALS.get(str(body.get("kind")), "trails")
    return f"/apis/{body['apiVersion']}/namespaces/{namespace}/{plural}"


def dry_run(cluster: Cluster, body: dict[str, Any]) -> ApiError | None:
    """POST with dryRun=All and strict field validation (kubectl's default): admission runs in full,
    nothing is stored."""
    try:
        cluster.request("POST", collection(body) + "?dryRun=All&fieldValidation=Strict", body)
    except ApiError as refused:
        return refused
    return None


def test_every_manifest_records_its_outcome() -> None:
    outcomes = {header(path, "admission") for path in CORPUS}
    assert outcomes == {"refused", "operator"}


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_the_api_server_refuses_or_admits_as_recorded(cluster: Cluster, path: Path) -> None:
    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    refused = dry_run(cluster, body)
    expected = header(path, "expect")
    if header(path, "admission") == "refused":
        assert refused is not None, f"{path.name} was admitted"
        if expected == "apiVersion":  # no such group/version is served
            assert refused.status == 404, (path.name, refused)
            return
        causes = (refused.body.get("details") or {}).get("causes") or []
        fields = {str(c.get("field")) for c in causes}
        # The field itself, or the object holding it (a rule on a list names the list).
        assert any(unindexed(expected).startswith(unindexed(f)) for f in fields if f.startswith("spec")) or (
            expected in str(refused.body.get("message"))
        ), (path.name, fields, refused.body.get("message"))
    else:
        assert refused is None, f"{path.name}: {refused}"


def test_what_the_api_server_admits_gets_invalid_spec_naming_the_field(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    admitted = [path for path in CORPUS if header(path, "admission") == "operator"]
    objects: list[tuple[str, str, Path]] = []
    for path in admitted:
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
        if header(path, "expect") != "metadata.name":  # where the name is not the point, one per manifest
            body["metadata"]["name"] = path.stem
        cluster.request("POST", collection(body), body)
        objects.append((body["kind"], body["metadata"]["name"], path))
    for kind, name, path in objects:
        ready = cluster.wait_condition(kind, name, "Ready", "False", reason="InvalidSpec", timeout=30)
        assert header(path, "expect") in ready["message"], (path.name, ready["message"])


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_examples_are_admitted(cluster: Cluster, path: Path) -> None:
    for body in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if body:
            assert dry_run(cluster, body) is None


def test_trail_name_cannot_change_once_made(cluster: Cluster) -> None:
    cluster.apply("Trail", "named", {"regions": ["us-east-1"], "destination": {"bucket": "named-logs"}})
    # Writing out the default (metadata.name) is no change.
    cluster.patch_spec("Trail", "named", {"trailName": "named"})
    with pytest.raises(ApiError) as refused:
        cluster.patch_spec("Trail", "named", {"trailName": "renamed"})
    assert refused.value.status == 422
    causes = refused.value.body["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.trailName"], causes
    stored = cluster.get("Trail", "named")
    assert stored is not None and stored["spec"]["trailName"] == "named"
