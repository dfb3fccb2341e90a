"""Generate the chart's README.md and the plain manifests in deploy/ from the chart itself.

    .venv/bin/python charts/trailkeeper/hack/generate.py           # write them
    .venv/bin/python charts/trailkeeper/hack/generate.py --check   # exit 1 when one is stale

README.md is values.yaml's comments, its defaults and values.schema.json's types, as a table, around the
text below. deploy/operator/ is Helm's own rendering (helm-python-sdk: Helm v4's engine, no binary) of
the chart with its default values, release `trailkeeper` in namespace `trailkeeper`, minus the labels only
Helm sets; deploy/kustomization.yaml lists it after the CRDs. tests/test_chart.py and tests/test_deploy.py
fail when what is in the repository differs from what this writes.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent.parent
ROOT = CHART.parent.parent
DEPLOY = ROOT / "deploy"
RELEASE = NAMESPACE = "trailkeeper"
# Labels only Helm sets: objects applied with kubectl are not managed by Helm.
HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
GENERATED = "charts/trailkeeper/hack/generate.py"


# --- Helm ------------------------------------------------------------------------------------------------


@functools.cache
def _chart() -> Any:
    import helm_python

    return helm_python.Chart.load(str(CHART))


def render(
    values: dict[str, Any] | None = None, *, release: str = RELEASE, namespace: str = NAMESPACE
) -> dict[str, str]:
    """Helm's rendering of the chart: template path (trailkeeper/templates/x.yaml) -> text.

    Values are checked against values.schema.json first, as `helm install` does; helm_python raises
    HelmValuesError for a refused value and HelmRenderError for a template's `fail`."""
    return dict(_chart().render(values or {}, name=release, namespace=namespace))


def objects(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """The Kubernetes objects of a rendering, in template order (NOTES.txt left out)."""
    docs: list[dict[str, Any]] = []
    for path in sorted(rendered):
        if path.endswith(".yaml"):
            docs.extend(doc for doc in yaml.safe_load_all(rendered[path]) if doc)
    return docs


# --- deploy/ ---------------------------------------------------------------------------------------------

# Plain-manifest file <- the chart templates whose default rendering it holds.
DEPLOY_FILES = {
    "operator/serviceaccount.yaml": ["serviceaccount.yaml"],
    "operator/rbac.yaml": ["clusterrole.yaml", "clusterrolebinding.yaml", "rolebinding.yaml"],
    "operator/deployment.yaml": ["deployment.yaml"],
    "operator/service.yaml": ["service.yaml"],
    "operator/peering.yaml": ["peering.yaml"],
}
CRD_FILES = ["crds/trail.yaml", "crds/logretention.yaml", "crds/kopf-peering.yaml"]

NAMESPACE_MANIFEST = f"""\
# The operator's namespace (helm creates it with --create-namespace). Its pod meets the "restricted"
# Pod Security Standard, so the namespace enforces it.
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels:
    app.kubernetes.io/name: trailkeeper
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
"""

KUSTOMIZATION_HEADER = f"""\
# trailkeeper as plain manifests: the chart's rendering with its default values (all namespaces,
# peering on, one replica, image trailkeeper:<appVersion>), in namespace "{NAMESPACE}". Generated with
# deploy/operator/ by {GENERATED}; do not edit (tests/test_deploy.py compares).
#
#   kubectl apply -f deploy/crds/
#   kubectl wait --for condition=Established crd/trails.trailkeeper.io crd/logretentions.trailkeeper.io \\
#     crd/clusterkopfpeerings.kopf.dev crd/kopfpeerings.kopf.dev
#   kubectl apply -f deploy/operator/        # or: kubectl apply -k deploy/
#
# The CRDs go first because the ClusterKopfPeering object in operator/peering.yaml needs its CRD
# established. No trailkeeper image is published: build it from the Dockerfile and push it, then change
# the image in an overlay (`images:`), and the IAM role with a patch of the ServiceAccount's
# eks.amazonaws.com/role-arn annotation.
"""


def _without_helm_labels(text: str) -> str:
    labels = "|".join(re.escape(label) for label in HELM_ONLY_LABELS)
    return re.sub(rf"^[ \t]+(?:{labels}): .*\n", "", text, flags=re.M)


def _tidy(text: str) -> str:
    """A rendered template as a file: no blank lines left by template actions, one trailing newline."""
    lines = [line for line in text.splitlines() if line.strip()]
    while lines and lines[0] == "---":
        lines.pop(0)
    return "\n".join(lines) + "\n"


def deploy_files() -> dict[str, str]:
    """deploy/ path -> content, for every file this script owns there."""
    rendered = render()
    files = {"operator/namespace.yaml": NAMESPACE_MANIFEST}
    for target, templates in DEPLOY_FILES.items():
        parts = [_tidy(_without_helm_labels(rendered[f"trailkeeper/templates/{name}"])) for name in templates]
        body = "---\n".join(part for part in parts if part.strip())
        source = ", ".join(f"templates/{name}" for name in templates)
        header = f"# Generated by {GENERATED} from the chart's\n# {source} (default values); do not edit.\n"
        files[target] = header + body
    resources = [*CRD_FILES, "operator/namespace.yaml", *DEPLOY_FILES]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    }
    files["kustomization.yaml"] = KUSTOMIZATION_HEADER + yaml.safe_dump(kustomization, sort_keys=False)
    return files


# --- README.md -------------------------------------------------------------------------------------------


def values_comments() -> dict[str, tuple[int, list[str]]]:
    """Each key path of values.yaml (through maps, not into lists) -> (line number, the comment lines
    directly above it)."""
    text = (CHART / "values.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    keys: dict[str, tuple[int, list[str]]] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        for key, value in node.value:
            path = prefix + str(key.value)
            number = key.start_mark.line
            indent = " " * key.start_mark.column
            comments: list[str] = []
            above = number - 1
            while above >= 0 and lines[above].startswith(indent + "#"):
                comments.insert(0, lines[above].strip().lstrip("#").strip())
                above -= 1
            keys[path] = (number + 1, comments)
            walk(value, path + ".")

    walk(yaml.compose(text), "")
    return keys


def _schema_at(schema: dict[str, Any], path: str) -> dict[str, Any]:
    node = schema
    for key in path.split("."):
        node = node["properties"][key]
        node = _resolve(schema, node)
    return node


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return dict(schema["definitions"][name])
    return node


def _type(node: dict[str, Any]) -> str:
    if "oneOf" in node:
        return " or ".join(_type(option) for option in node["oneOf"])
    kind = node.get("type", "object")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"list of {_type(node.get('items') or {})}s"
    if "enum" in node:
        return " \\| ".join(f"`{choice}`" for choice in node["enum"])
    return str(kind)


def _cell(text: str) -> str:
    """Text for a Markdown table cell: no column break, no HTML tag (`<release>`)."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _default(value: Any) -> str:
    text = json.dumps(value, separators=(", ", ": "))
    return "`" + text.replace("|", "\\|") + "`"


def _lookup(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for key in path.split("."):
        node = node[key]
    return node


def values_rows() -> Iterator[tuple[str, str, str, str]]:
    """(key, type, default, description) of every documented value, in values.yaml's order; a group of
    values (image, metrics.service, …) has no type or default of its own: its keys have rows."""
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    documented = {path: comments for path, (_, comments) in values_comments().items() if comments}
    for path, comments in documented.items():
        description = _cell(" ".join(comments))
        if any(other.startswith(path + ".") for other in documented):
            yield path, "", "", description
        else:
            yield path, _type(_schema_at(schema, path)), _default(_lookup(values, path)), description


README_HEAD = """\
# trailkeeper

{description}.

trailkeeper reconciles `Trail` and `LogRetention` objects (group `trailkeeper.io`) into CloudTrail trails,
their S3 buckets and policies, SNS topics and lifecycle rules. This chart installs the operator: one
Deployment (kopf), its ServiceAccount and RBAC, the kopf peering object, a metrics Service, and
optionally a ServiceMonitor, a PodDisruptionBudget and a NetworkPolicy. The CRDs are in `crds/`.

Chart version {version}, trailkeeper {app_version}, Kubernetes {kube_version}.

<!-- Generated by {generated} from Chart.yaml, values.yaml and values.schema.json; do not edit. -->

## The image

No trailkeeper image is published. Build it from the repository's `Dockerfile` and push it to a registry
the cluster pulls from, then install with `image.repository` pointing there:

```sh
docker build -t registry.example.com/trailkeeper:{app_version} .
docker push registry.example.com/trailkeeper:{app_version}
```

The default, `trailkeeper:{app_version}`, is a local name: it works where the image was loaded into the
nodes (`kind load docker-image trailkeeper:{app_version}`, `minikube image load`); elsewhere the pod stays
in `ErrImagePull`, and the install notes say so. Pin it by digest with `image.digest`.

## Install

```sh
helm install trailkeeper charts/trailkeeper --namespace trailkeeper --create-namespace \\
  --set image.repository=registry.example.com/trailkeeper \\
  --set serviceAccount.roleArn=arn:aws:iam::123456789012:role/trailkeeper \\
  --set aws.region=us-east-1
```

`trailkeeper iam-policy` prints the IAM policy the role needs. Helm installs `crds/` on the first install
only and never upgrades or deletes them: apply the new CRDs yourself before `helm upgrade`
(`kubectl apply -f charts/trailkeeper/crds/`), and upgrade with `--reset-then-reuse-values` (with
`--reuse-values` the values a newer chart adds are missing, and the schema refuses the upgrade). The same
objects without Helm are in `deploy/`.

Values are checked against `values.schema.json`: an unknown key (a typo such as `extraArg`) or a value of
the wrong type is refused, naming the key. Combinations that cannot work are refused with what to do
instead: more than one replica without peering, a ServiceMonitor without the metrics Service, a
PodDisruptionBudget that would block every drain, an existing ServiceAccount without its name, no
ServiceAccount token without a projected one mounted in its place.

## Several releases in one cluster

Every object is named by the release (`<release>-trailkeeper`, or `fullnameOverride`), the cluster-scoped
ones too (ClusterRoles, ClusterRoleBindings, the ClusterKopfPeering), so releases with different names
install side by side; a release name can be used once per cluster (the same name in a second namespace
would own the same cluster-scoped objects, and Helm refuses it). Each release has its own peering
object, so the releases do not coordinate: give
each one `watchNamespaces` that no other release serves (sharding by namespace). Two releases serving the
same namespace would both reconcile its objects. Within a release, replicas coordinate through the
peering: one reconciles, the others stand by.

## Values

| Key | Type | Default | Description |
|---|---|---|---|
"""


def readme() -> str:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    head = README_HEAD.format(
        description=chart["description"],
        version=chart["version"],
        app_version=chart["appVersion"],
        kube_version=chart["kubeVersion"].replace("-0", ""),
        generated=GENERATED,
    )
    rows = [
        f"| `{key}` | {kind} | {default} | {description} |"
        if kind or default
        else f"| **`{key}`** | | | {description} |"
        for key, kind, default, description in values_rows()
    ]
    return head + "\n".join(rows) + "\n"


# --- command line ----------------------------------------------------------------------------------------


def outputs() -> dict[Path, str]:
    files = {CHART / "README.md": readme()}
    files.update({DEPLOY / path: text for path, text in deploy_files().items()})
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
