"""GitOps against a real API server: applied as Flux applies (server-side apply, field manager
`kustomize-controller`), as Argo CD diffs (`kubectl diff`, a server-side dry run), while the operator
writes status, finalizers and its annotations. The re-apply of a changed file never conflicts, a Ready
object at rest shows no diff, and the operator owns no field of `spec`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.cluster import Cluster, OperatorProcess, eventually

pytestmark = pytest.mark.e2e

FLUX = "kustomize-controller"
MANIFEST = """\
apiVersion: trailkeeper.io/v1alpha1
kind: Trail
metadata:
  name: gitops
  namespace: default
spec:
  regions: [us-east-1]
  destination:
    bucket: gitops-audit-logs
  tags:
    team: {team}
---
apiVersion: trailkeeper.io/v1alpha1
kind: LogRetention
metadata:
  name: gitops
  namespace: default
spec:
  trailRef: {{name: gitops}}
  expirationDays: {days}
"""


def write(tmp_path: Path, team: str, days: int) -> Path:
    path = tmp_path / "gitops.yaml"
    path.write_text(MANIFEST.format(team=team, days=days), encoding="utf-8")
    return path


def flux_apply(cluster: Cluster, path: Path) -> str:
    done = cluster.kubectl_run("apply", "--server-side", f"--field-manager={FLUX}", "-f", str(path))
    assert done.returncode == 0, done.stderr
    return done.stdout


def spec_managers(obj: dict[str, Any]) -> dict[str, list[str]]:
    """Each field manager that owns anything under spec, with what it owns there."""
    owners: dict[str, list[str]] = {}
    for entry in obj["metadata"].get("managedFields") or []:
        spec = (entry.get("fieldsV1") or {}).get("f:spec")
        if spec:
            owners.setdefault(entry["manager"], []).append(json.dumps(spec, sort_keys=True))
    return owners


def test_flux_style_apply_reapply_and_diff_never_conflict_with_the_operator(
    cluster: Cluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    path = write(tmp_path, team="audit", days=400)
    flux_apply(cluster, path)
    cluster.wait_condition("Trail", "gitops", "Ready", "True", timeout=30)
    cluster.wait_condition("LogRetention", "gitops", "Ready", "True", timeout=30)

    # At rest: kubectl diff (what Argo CD shows) finds nothing, exit 0.
    at_rest = cluster.kubectl_run("diff", "--server-side", f"--field-manager={FLUX}", "-f", str(path))
    assert (at_rest.returncode, at_rest.stdout) == (0, ""), at_rest.stdout + at_rest.stderr
    plain = cluster.kubectl_run("diff", "-f", str(path))
    assert (plain.returncode, plain.stdout) == (0, ""), plain.stdout + plain.stderr

    # The operator has written status, its finalizer and annotations; none of that is the file's.
    trail = cluster.get("Trail", "gitops")
    assert trail is not None and trail["metadata"].get("finalizers")
    assert set(spec_managers(trail)) == {FLUX}
    retention = cluster.get("LogRetention", "gitops")
    assert retention is not None and set(spec_managers(retention)) == {FLUX}

    # The file changes; the re-apply (no --force-conflicts) goes through and is carried out.
    generation = trail["metadata"]["generation"]
    changed = write(tmp_path, team="security", days=500)
    out = flux_apply(cluster, changed)
    assert "serverside-applied" in out
    cluster.wait_condition("Trail", "gitops", "Ready", "True", timeout=30)

    def handled() -> bool:
        status = cluster.status("Trail", "gitops")
        return status.get("observedGeneration") == generation + 1

    eventually(handled, timeout=30, what="the changed Trail handled")
    eventually(
        lambda: cluster.status("LogRetention", "gitops").get("observedGeneration") == 2,
        timeout=30,
        what="the changed LogRetention handled",
    )
    after = cluster.kubectl_run("diff", "--server-side", f"--field-manager={FLUX}", "-f", str(changed))
    assert (after.returncode, after.stdout) == (0, ""), after.stdout + after.stderr
    trail = cluster.get("Trail", "gitops")
    assert trail is not None and set(spec_managers(trail)) == {FLUX}


def test_client_side_apply_as_argo_cd_does_by_default_reapplies_and_diffs_clean(
    cluster: Cluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    path = write(tmp_path, team="audit", days=400)
    done = cluster.kubectl_run("apply", "-f", str(path))
    assert done.returncode == 0, done.stderr
    cluster.wait_condition("Trail", "gitops", "Ready", "True", timeout=30)
    at_rest = cluster.kubectl_run("diff", "-f", str(path))
    assert (at_rest.returncode, at_rest.stdout) == (0, ""), at_rest.stdout + at_rest.stderr
    again = cluster.kubectl_run("apply", "-f", str(write(tmp_path, team="platform", days=400)))
    assert again.returncode == 0, again.stderr
    assert "trail.trailkeeper.io/gitops configured" in again.stdout
    trail = cluster.get("Trail", "gitops")
    assert trail is not None and trail["spec"]["tags"] == {"team": "platform"}
    assert set(spec_managers(trail)) == {"kubectl-client-side-apply"}
