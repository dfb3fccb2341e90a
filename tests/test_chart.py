"""The Helm chart in charts/trailkeeper, rendered and linted by Helm's own engine.

helm-python-sdk carries Helm v4's Go SDK (libhelm_c.so), so no helm binary is needed: the chart is rendered
as `helm template` and `helm install --dry-run=client` render it (values checked against
values.schema.json first, `fail` refusing bad combinations) and linted as `helm lint --strict` lints it,
with its default values and with each value set in charts/trailkeeper/ci/ (the chart-testing layout).
Every rendered object is validated strictly against the Kubernetes API schemas of each minor version the
chart supports (kubernetes-validate). On top of that: the RBAC grants exactly the API calls kopf makes,
names fit Kubernetes' limits for any release name Helm accepts, two releases live side by side, every
value is documented and the README is generated from those comments, the operator pod meets the
"restricted" Pod Security Standard, and the chart's CRDs are the repository's.
"""

from __future__ import annotations

import base64
import copy
import functools
import importlib.util
import json
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from kopf._cogs.structs import references
from kubernetes_validate import utils as kubernetes_validate_utils
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "trailkeeper"
TEMPLATES = CHART / "templates"
VALUE_SETS_DIR = CHART / "ci"
REPO_CRDS = ROOT / "crds"
PEERING_CRDS = "kopf-peering.yaml"


def _load_module(name: str, path: Path) -> ModuleType:
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) and Path(module.__file__).resolve() == path:
            return module
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The chart's generator (README.md, deploy/) holds the one way the tests render the chart too.
generate = _load_module("trailkeeper_chart_generate", CHART / "hack" / "generate.py")

# A template's `fail` (a combination the chart refuses) and a value the schema refuses.
ChartRefused = helm.HelmRenderError
SchemaRefused = helm.HelmValuesError


# --- rendering ------------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@functools.cache
def _values_file() -> dict[str, Any]:
    return load_yaml(CHART / "values.yaml")


def default_values() -> dict[str, Any]:
    return copy.deepcopy(_values_file())


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values over the defaults (a null drops the key)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def render_chart(
    overrides: dict[str, Any] | None = None, *, release: str = "trailkeeper", namespace: str = "trailkeeper"
) -> list[dict[str, Any]]:
    """The chart's objects for these values, as `helm template` prints them."""
    return generate.objects(generate.render(overrides, release=release, namespace=namespace))


def render_notes(overrides: dict[str, Any] | None = None, **kwargs: str) -> str:
    return generate.render(overrides, **kwargs)["trailkeeper/templates/NOTES.txt"]


def value_sets() -> dict[str, dict[str, Any]]:
    """The value sets of charts/trailkeeper/ci/, by name (the file name without -values.yaml)."""
    return {
        path.name.removesuffix("-values.yaml"): load_yaml(path) or {}
        for path in sorted(VALUE_SETS_DIR.glob("*-values.yaml"))
    }


VALUE_SETS = value_sets()
RENDERINGS = {"defaults": {}, **VALUE_SETS}


def by_kind(docs: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: Iterable[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def operator_container(docs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def pod_spec(docs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")["spec"]["template"]["spec"]


# --- Helm's engine, lint, and the Kubernetes schemas -------------------------------------------------------


def test_the_engine_is_helms_own():
    assert helm.helm_sdk_version().startswith("v4.")


def test_there_are_value_sets_for_each_use():
    assert len(VALUE_SETS) >= 12
    for needed in ("ha-peering", "namespaced", "existing-serviceaccount", "irsa", "everything"):
        assert needed in VALUE_SETS


@pytest.mark.parametrize("name", RENDERINGS)
def test_chart_lints_strictly(name):
    for kube_version in (f"v{OLDEST_KUBERNETES}.0", f"v{NEWEST_KUBERNETES}.0"):
        report = helm.lint(
            str(CHART), RENDERINGS[name], strict=True, namespace="ops", kube_version=kube_version
        )
        assert report["errors"] == [] and report["messages"] == [], report


# The chart's kubeVersion floor and the newest Kubernetes kubernetes-validate knows.
OLDEST_KUBERNETES = re.search(r"(\d+\.\d+)", load_yaml(CHART / "Chart.yaml")["kubeVersion"]).group(1)
NEWEST_KUBERNETES = kubernetes_validate.latest_version().rsplit(".", 1)[0]
KUBERNETES_VERSIONS = sorted(
    {
        version.rsplit(".", 1)[0]
        for version in kubernetes_validate_utils.all_versions()
        if Version(version) >= Version(OLDEST_KUBERNETES)
    },
    key=Version,
)
# kubernetes-validate re-reads its schema files on every call; they never change during a run.
kubernetes_validate_utils.schema_contents = functools.cache(kubernetes_validate_utils.schema_contents)


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema, of the CRDs the chart ships."""
    schemas = {}
    for path in sorted((CHART / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            for version in crd["spec"]["versions"]:
                api_version = f"{crd['spec']['group']}/{version['name']}"
                schemas[(api_version, crd["spec"]["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return schemas


# The ServiceMonitor fields the chart sets (prometheus-operator monitoring.coreos.com/v1); its CRD is not
# here, so the rendering is held to these.
SERVICE_MONITOR_FIELDS = {
    "spec": {"namespaceSelector", "selector", "endpoints"},
    "endpoint": {"port", "path", "interval", "scrapeTimeout", "relabelings", "metricRelabelings"},
}


def validate_object(doc: dict[str, Any]) -> list[str]:
    """What is wrong with one rendered object, for every Kubernetes version the chart supports."""
    problems = []
    key = (doc["apiVersion"], doc["kind"])
    if key in crd_schemas():
        # The API server checks apiVersion, kind and metadata of every object; the CRD's schema the rest.
        body = {
            field: value for field, value in doc.items() if field not in ("apiVersion", "kind", "metadata")
        }
        schema = dict(crd_schemas()[key])
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            # The API server would drop an unknown field without a word; here it is an error.
            schema.setdefault("additionalProperties", False)
        try:
            jsonschema.validate(body, schema)
        except jsonschema.ValidationError as error:
            problems.append(f"{doc['kind']}: {error.message}")
        return problems
    if key == ("monitoring.coreos.com/v1", "ServiceMonitor"):
        assert set(doc["spec"]) <= SERVICE_MONITOR_FIELDS["spec"], doc["spec"]
        for endpoint in doc["spec"]["endpoints"]:
            assert set(endpoint) <= SERVICE_MONITOR_FIELDS["endpoint"], endpoint
        return problems
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            problems.append(f"{doc['kind']} {doc['metadata']['name']} on {version}: {path}: {error.message}")
    return problems


@pytest.mark.parametrize("name", RENDERINGS)
def test_every_object_validates_strictly_against_each_kubernetes_version(name):
    assert OLDEST_KUBERNETES in KUBERNETES_VERSIONS and NEWEST_KUBERNETES in KUBERNETES_VERSIONS
    docs = render_chart(RENDERINGS[name], namespace="ops")
    problems = [problem for doc in docs for problem in validate_object(doc)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", RENDERINGS)
def test_nothing_renders_as_null(name):
    # e.g. a ServiceAccount with no annotation used to render `annotations:` with nothing under it.
    def nulls(node: Any, path: str) -> Iterator[str]:
        if node is None:
            yield path
        elif isinstance(node, dict):
            for key, child in node.items():
                yield from nulls(child, f"{path}.{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from nulls(child, f"{path}[{index}]")

    for doc in render_chart(RENDERINGS[name]):
        assert not list(nulls(doc, doc["kind"])), list(nulls(doc, doc["kind"]))


def test_install_dry_run_gives_the_rendering_and_the_notes():
    # `helm install --dry-run=client`: release name checks, the install-order manifest and the notes.
    empty_kubeconfig = "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n"
    with helm.Config(namespace="ops", storage_driver="memory", kubeconfig_content=empty_kubeconfig) as config:
        release = config.install(str(CHART), "trailkeeper", {}, dry_run="client", namespace="ops")
        with pytest.raises(helm.HelmReleaseError, match="longer than 53"):
            config.install(str(CHART), "r" * 54, {}, dry_run="client", namespace="ops")
    installed = [doc for doc in yaml.safe_load_all(release["manifest"]) if doc]
    key = lambda doc: (doc["kind"], doc["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, installed)) == sorted(map(key, render_chart(namespace="ops")))
    # Helm's install order: the ServiceAccount and RBAC before the Deployment that uses them.
    kinds = [doc["kind"] for doc in installed]
    assert kinds.index("ServiceAccount") < kinds.index("ClusterRole") < kinds.index("Deployment")
    assert "kubectl -n ops logs deploy/trailkeeper" in release["notes"]


# --- the values: schema, bad combinations, documentation ----------------------------------------------


@functools.cache
def values_schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))


def test_the_schema_is_valid_and_accepts_the_defaults_and_every_value_set():
    schema = values_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    for name, overrides in RENDERINGS.items():
        merged = deep_merge(default_values(), overrides)
        errors = list(jsonschema.Draft7Validator(schema).iter_errors(merged))
        assert not errors, (name, [error.message for error in errors])


def _schema_node(path: str) -> dict[str, Any]:
    """The schema of a values.yaml key; a free-form map's (podSecurityContext) for the keys inside it."""
    node = values_schema()
    for key in path.split("."):
        if key in node.get("properties", {}):
            node = node["properties"][key]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        elif "properties" not in node and node.get("type") == "object":
            return node
        else:
            raise KeyError(f"{path}: the schema has no {key!r}")
        if "$ref" in node:
            node = values_schema()["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def test_the_schema_knows_every_value_and_refuses_others():
    # Every key of values.yaml has a schema; every object with named keys admits no other key.
    for path in generate.values_comments():
        assert _schema_node(path), path

    def closed(node: dict[str, Any], path: str) -> Iterator[str]:
        if "properties" in node and node.get("additionalProperties") is not False:
            yield path
        for key, child in node.get("properties", {}).items():
            yield from closed(child, f"{path}.{key}")

    assert not list(closed(values_schema(), "")), "objects that would accept a misspelt key"
    assert set(values_schema()["properties"]) == set(default_values())


SCHEMA_REFUSALS = {
    "a misspelt top-level key": ({"extraArg": ["--x"]}, "additional properties 'extraArg' not allowed"),
    "a misspelt nested key": (
        {"metrics": {"serviceMonitor": {"enable": True}}},
        "at '/metrics/serviceMonitor': additional properties 'enable' not allowed",
    ),
    "a key of another chart": ({"securityContex": {}}, "additional properties 'securityContex' not allowed"),
    "a number as a string": ({"replicaCount": "2"}, "at '/replicaCount': got string, want integer"),
    "a flag as a string": (
        {"peering": {"enabled": "yes"}},
        "at '/peering/enabled': got string, want boolean",
    ),
    "one namespace not in a list": ({"watchNamespaces": "security"}, "at '/watchNamespaces': got string"),
    "env as a list": ({"env": [{"name": "A", "value": "b"}]}, "at '/env': got array, want object"),
    "a tag in the repository": ({"image": {"repository": "trailkeeper:0.1.0"}}, "at '/image/repository'"),
    "a short digest": ({"image": {"digest": "sha256:abc"}}, "at '/image/digest'"),
    "a lowercase log level": ({"log": {"level": "debug"}}, "at '/log/level'"),
    "an ARN that is not a role": (
        {"serviceAccount": {"roleArn": "arn:aws:iam::123456789012:user/ops"}},
        "at '/serviceAccount/roleArn'",
    ),
    "a namespace twice": (
        {"watchNamespaces": ["a", "a"]},
        "at '/watchNamespaces': items at 0 and 1 are equal",
    ),
    "an invalid namespace": ({"watchNamespaces": ["Security"]}, "at '/watchNamespaces/0'"),
    "a peering lifetime kopf refuses": ({"peering": {"lifetime": 1}}, "at '/peering/lifetime'"),
    "a label value too long": ({"commonLabels": {"team": "x" * 64}}, "at '/commonLabels/team'"),
}


@pytest.mark.parametrize("case", SCHEMA_REFUSALS)
def test_the_schema_refuses(case):
    overrides, message = SCHEMA_REFUSALS[case]
    with pytest.raises(SchemaRefused, match=re.escape(message)):
        generate.render(overrides)
    # `helm lint` says the same.
    report = helm.lint(str(CHART), overrides, strict=True)
    assert any(message in error for error in report["errors"]), report


REFUSED_COMBINATIONS = {
    "replicas without peering": (
        {"replicaCount": 2, "peering": {"enabled": False}},
        "replicaCount above 1 needs peering.enabled",
    ),
    "a ServiceMonitor without its Service": (
        {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}},
        "metrics.serviceMonitor.enabled needs metrics.service.enabled",
    ),
    "an existing ServiceAccount without its name": (
        {"serviceAccount": {"create": False}},
        "serviceAccount.name is required when serviceAccount.create is false",
    ),
    "a budget with both bounds": (
        {"podDisruptionBudget": {"enabled": True, "minAvailable": 1, "maxUnavailable": 1}},
        "set minAvailable or maxUnavailable, not both",
    ),
    "a budget with neither bound": (
        {"podDisruptionBudget": {"enabled": True, "minAvailable": "", "maxUnavailable": ""}},
        "needs podDisruptionBudget.minAvailable or podDisruptionBudget.maxUnavailable",
    ),
    "a budget that blocks every drain": (
        {"podDisruptionBudget": {"enabled": True, "minAvailable": 1, "maxUnavailable": ""}},
        "podDisruptionBudget.minAvailable (1) is not below replicaCount (1)",
    ),
    "no token and none mounted": (
        {"automountServiceAccountToken": False},
        "automountServiceAccountToken false needs extraVolumes and extraVolumeMounts",
    ),
}


@pytest.mark.parametrize("case", REFUSED_COMBINATIONS)
def test_bad_combinations_are_refused_with_what_to_do(case):
    overrides, message = REFUSED_COMBINATIONS[case]
    with pytest.raises(ChartRefused, match=re.escape(message)):
        render_chart(overrides)


def leaf_values() -> set[str]:
    """The documented values that are not groups of other documented values: the knobs."""
    documented = [path for path, (_, comments) in generate.values_comments().items() if comments]
    return {path for path in documented if not any(other.startswith(path + ".") for other in documented)}


def _lookup(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return KeyError
        node = node[key]
    return node


def test_the_value_sets_turn_every_knob():
    defaults = default_values()
    turned = {
        path
        for overrides in VALUE_SETS.values()
        for path in leaf_values()
        if _lookup(overrides, path) is not KeyError and _lookup(overrides, path) != _lookup(defaults, path)
    }
    assert leaf_values() - turned == set()


def test_the_everything_set_turns_every_knob_it_can_at_once():
    everything = VALUE_SETS["everything"]
    # Those left at their default there: each has a set of its own with the other choice.
    defaults = default_values()
    untouched = {
        path for path in leaf_values() if _lookup(everything, path) in (KeyError, _lookup(defaults, path))
    }
    # Turning these would switch others off: no RBAC, no ServiceAccount to annotate, no Service for the
    # ServiceMonitor, no replicas, no readiness settings, no tag. Each has a value set of its own.
    assert untouched == {
        "rbac.create",
        "serviceAccount.create",
        "metrics.service.enabled",
        "peering.enabled",
        "readiness.enabled",
        "image.digest",
    }
    assert len(render_chart(everything)) >= 12


# The values.yaml comment scan (generate.values_comments) and the templates' use of values.
_VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z0-9_]+)+)")


def values_references() -> dict[str, set[str]]:
    """Every `.Values.a.b` path in the templates, helpers and NOTES.txt -> the files using it."""
    refs: dict[str, set[str]] = {}
    for path in TEMPLATES.iterdir():
        for match in _VALUES_REF.finditer(path.read_text(encoding="utf-8")):
            refs.setdefault(match.group(1)[1:], set()).add(path.name)
    # `with .Values.x` / `range` blocks read their keys through the dot.
    for path, names in {"podDisruptionBudget": ("minAvailable", "maxUnavailable", "enabled")}.items():
        for name in names:
            refs.setdefault(f"{path}.{name}", set()).add("_helpers.tpl")
    return refs


def test_every_values_reference_exists_in_values_yaml():
    values = default_values()
    refs = values_references()
    assert refs, "no .Values references found: the regex or the templates moved"
    for path, files in sorted(refs.items()):
        assert _lookup(values, path) is not KeyError, f".Values.{path} is not in values.yaml ({files})"


def test_every_value_is_documented_and_used_by_a_template():
    keys = generate.values_comments()
    refs = set(values_references())
    needed = {path for path in keys if "." not in path}
    for ref in refs:
        parts = ref.split(".")
        needed.update(".".join(parts[: index + 1]) for index in range(len(parts)))
    undocumented = sorted(path for path in needed if not keys.get(path, (0, []))[1])
    assert not undocumented, f"values without a comment line above them: {undocumented}"
    unused = sorted(
        path
        for path in keys
        if not any(path == ref or path.startswith(ref + ".") or ref.startswith(path + ".") for ref in refs)
    )
    assert not unused, f"values.yaml keys no template uses: {unused}"


def test_values_key_scan_sees_the_whole_file():
    def paths(value: Any, prefix: str = "") -> set[str]:
        if not isinstance(value, dict):
            return set()
        found = set()
        for key, child in value.items():
            found.add(prefix + key)
            found |= paths(child, prefix + key + ".")
        return found

    assert set(generate.values_comments()) == paths(default_values())


def test_the_readme_is_generated_from_the_values():
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    assert readme == generate.readme(), "run charts/trailkeeper/hack/generate.py"
    for path in leaf_values():
        assert f"| `{path}` |" in readme


def test_chart_metadata():
    chart = load_yaml(CHART / "Chart.yaml")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "trailkeeper"
    assert chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?", chart["version"])
    # The image tag defaults to appVersion: it must name the release of the code beside it.
    assert chart["appVersion"] == project["version"]
    assert urlsplit(chart["home"]).scheme == "https"
    assert chart["sources"] and all(urlsplit(source).scheme == "https" for source in chart["sources"])
    # The icon is inline: the chart's icon.svg as a data URL.
    prefix = "data:image/svg+xml;base64,"
    assert chart["icon"].startswith(prefix)
    assert base64.b64decode(chart["icon"].removeprefix(prefix)) == (CHART / "icon.svg").read_bytes()
    # The image says where it comes from with the same address.
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    source = re.search(r'org\.opencontainers\.image\.source="([^"]+)"', dockerfile)
    assert source and source.group(1) in chart["sources"]


# --- RBAC: what the chart grants, and what kopf calls -----------------------------------------------------

# One permission: (apiGroup, resource, verb, resourceName or None for any name).
Grant = tuple[str, str, str, str | None]


def expand(*rows: tuple[Any, ...]) -> set[Grant]:
    grants: set[Grant] = set()
    for group, resources, verbs, *names in rows:
        for resource in resources:
            for verb in verbs:
                for name in names or [None]:
                    grants.add((group, resource, verb, name))
    return grants


def rule_grants(rules: list[dict[str, Any]]) -> set[Grant]:
    grants: set[Grant] = set()
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    for name in rule.get("resourceNames") or [None]:
                        grants.add((group, resource, verb, name))
    return grants


CLUSTER = "<cluster>"


def effective_permissions(docs: list[dict[str, Any]], account: tuple[str, str]) -> dict[str, set[Grant]]:
    """What the ServiceAccount (namespace, name) may do: scope (CLUSTER or a namespace) -> grants.

    Fails when a binding names a subject other than the operator's account, or a role is bound by nothing.
    """
    roles = {("ClusterRole", doc["metadata"]["name"]): doc for doc in by_kind(docs, "ClusterRole")}
    roles |= {
        ("Role", doc["metadata"]["namespace"], doc["metadata"]["name"]): doc for doc in by_kind(docs, "Role")
    }
    permissions: dict[str, set[Grant]] = {}
    bound: set[tuple[str, ...]] = set()
    for binding in by_kind(docs, "ClusterRoleBinding") + by_kind(docs, "RoleBinding"):
        subjects = [(s["kind"], s.get("namespace"), s["name"]) for s in binding["subjects"]]
        assert subjects == [("ServiceAccount", *account)], binding["metadata"]["name"]
        ref = binding["roleRef"]
        assert ref["apiGroup"] == "rbac.authorization.k8s.io"
        scope = binding["metadata"]["namespace"] if binding["kind"] == "RoleBinding" else CLUSTER
        key = ("ClusterRole", ref["name"]) if ref["kind"] == "ClusterRole" else ("Role", scope, ref["name"])
        assert key in roles, f"{binding['metadata']['name']} binds a role the chart does not define: {key}"
        bound.add(key)
        permissions.setdefault(scope, set()).update(rule_grants(roles[key]["rules"]))
    assert bound == set(roles), f"roles bound by nothing: {set(roles) - bound}"
    return permissions


# The API calls kopf 1.45 makes for this operator, each with where it happens (paths inside the kopf
# package, .venv/lib/python3.11/site-packages/kopf). kopf makes no GET of a single object, no PUT
# (update) and no DELETE: it lists+watches, merge/JSON-patches and posts events. Discovery (/api,
# /apis, /version in _cogs/clients/scanning.py) is non-resource and open to every authenticated user.

# In the watched namespaces (everywhere when watching all of them).
SERVED_GRANTS = expand(
    # _core/reactor/queueing.py watcher -> _cogs/clients/watching.py continuous_watch:
    # fetching.fetch_objs (list) and then watch_objs (watch) of each served resource.
    ("trailkeeper.io", ["trails", "logretentions"], ["list", "watch"]),
    # _core/actions/application.py patch_and_check -> _cogs/clients/patching.py patch_obj:
    # finalizers and kopf's annotations, merge-patch and JSON-patch of the object.
    ("trailkeeper.io", ["trails", "logretentions"], ["patch"]),
    # _cogs/clients/patching.py patch_obj: `status` goes to the /status subresource when the CRD has one;
    # kube/status_writer.py merge-patches /status through the same client (api.patch).
    ("trailkeeper.io", ["trails/status", "logretentions/status"], ["patch"]),
    # _core/engines/posting.py poster -> _cogs/clients/events.py post_event: POST to
    # references.EVENTS, the core v1 events (events.k8s.io is only excluded from EVERYTHING).
    ("", ["events"], ["create"]),
)


def namespaced_peering_grants(name: str) -> set[Grant]:
    # Peering restricted to namespaces: _core/engines/peering.py guess_selectors -> NAMESPACED_PEERINGS_K.
    return expand(
        # _core/reactor/orchestration.py + queueing.py watcher: the peering resource is listed and watched.
        ("kopf.dev", ["kopfpeerings"], ["list", "watch"]),
        # _core/engines/peering.py touch/clean -> patching.patch_obj of settings.peering.name only.
        ("kopf.dev", ["kopfpeerings"], ["patch"], name),
    )


def cluster_peering_grants(name: str) -> set[Grant]:
    # Cluster-wide peering: _core/engines/peering.py guess_selectors -> CLUSTER_PEERINGS_K.
    return expand(
        ("kopf.dev", ["clusterkopfpeerings"], ["list", "watch"]),
        ("kopf.dev", ["clusterkopfpeerings"], ["patch"], name),
    )


# Always cluster-wide: _core/reactor/observation.py resource_observer -> queueing.watcher on
# references.CRDS (list + watch).
CRD_GRANTS = expand(("apiextensions.k8s.io", ["customresourcedefinitions"], ["list", "watch"]))
# Always: kube/handlers.py registers a kopf.index on namespaces (their labels, for the tenancy rules'
# namespaceSelector), listed and watched cluster-wide like any cluster-scoped resource by the same
# queueing.watcher; restricted to namespaces, _core/reactor/observation.py namespace_observer also lists
# (fetching.fetch_objs) and watches references.NAMESPACES.
NAMESPACE_GRANTS = expand(("", ["namespaces"], ["list", "watch"]))


def expected_permissions(
    watch_namespaces: list[str], peering: bool, peering_name: str = "trailkeeper"
) -> dict[str, set[Grant]]:
    if not watch_namespaces:
        return {
            CLUSTER: CRD_GRANTS
            | NAMESPACE_GRANTS
            | SERVED_GRANTS
            | (cluster_peering_grants(peering_name) if peering else set())
        }
    served = SERVED_GRANTS | (namespaced_peering_grants(peering_name) if peering else set())
    return {CLUSTER: CRD_GRANTS | NAMESPACE_GRANTS} | dict.fromkeys(watch_namespaces, served)


MODES = {
    "all-namespaces": {},
    "all-namespaces-standalone": {"peering": {"enabled": False}},
    "namespaced": {"watchNamespaces": ["security", "audit"]},
    "namespaced-standalone": {"watchNamespaces": ["security"], "peering": {"enabled": False}},
}


def test_kopf_still_uses_the_resources_the_rbac_table_names():
    # The table above was read from kopf's source; these are the selectors it follows.
    assert (references.EVENTS.group, references.EVENTS.any_name) == ("", "events")
    assert (references.CRDS.group, references.CRDS.any_name) == (
        "apiextensions.k8s.io",
        "customresourcedefinitions",
    )
    assert (references.NAMESPACES.group, references.NAMESPACES.any_name) == ("", "namespaces")
    assert (references.CLUSTER_PEERINGS_K.group, references.CLUSTER_PEERINGS_K.any_name) == (
        "kopf.dev",
        "clusterkopfpeerings",
    )
    assert (references.NAMESPACED_PEERINGS_K.group, references.NAMESPACED_PEERINGS_K.any_name) == (
        "kopf.dev",
        "kopfpeerings",
    )


def test_operator_reaches_kubernetes_only_through_kopfs_client():
    # The table lists kopf's calls; trailkeeper's handlers use kopf's (kopf.event, kopf.index), and the
    # status writer one more through kopf's own client: a merge patch of /status. No other API client.
    package = ROOT / "operator" / "trailkeeper"
    sources = {
        str(path.relative_to(package)): path.read_text(encoding="utf-8") for path in package.rglob("*.py")
    }
    other_clients = re.compile(r"^\s*(?:import|from)\s+(?:kubernetes|pykube|kubernetes_asyncio)\b", re.M)
    assert not [module for module, text in sources.items() if other_clients.search(text)]
    kopf_client = re.compile(r"^\s*from\s+kopf\._cogs\.clients\b", re.M)
    assert {module for module, text in sources.items() if kopf_client.search(text)} == {
        "kube/status_writer.py"
    }
    writer = sources["kube/status_writer.py"]
    assert set(re.findall(r"kopf_api\.(\w+)\(", writer)) == {"patch"}
    assert '"/status"' in writer


def test_rbac_table_covers_exactly_the_repository_crds():
    served = {(group, resource) for group, resource, _, _ in SERVED_GRANTS if group != ""}
    expected = set()
    for path in REPO_CRDS.glob("*.yaml"):
        crd = load_yaml(path)
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        expected.add((group, plural))
        # kopf patches /status only when the CRD declares the subresource (patching.py patch_obj).
        if any("status" in (version.get("subresources") or {}) for version in crd["spec"]["versions"]):
            expected.add((group, f"{plural}/status"))
    assert served == expected


@pytest.mark.parametrize("mode", MODES)
def test_rbac_grants_exactly_the_calls_kopf_makes(mode):
    overrides = MODES[mode]
    values = deep_merge(default_values(), overrides)
    docs = render_chart(overrides, namespace="ops")
    granted = effective_permissions(docs, ("ops", "trailkeeper"))
    assert granted == expected_permissions(values["watchNamespaces"], values["peering"]["enabled"])


@pytest.mark.parametrize("name", RENDERINGS)
def test_every_value_set_grants_only_what_kopf_needs(name):
    overrides = RENDERINGS[name]
    values = deep_merge(default_values(), overrides)
    docs = render_chart(overrides, release="audit", namespace="ops")
    if not values["rbac"]["create"]:
        assert not [doc for doc in docs if doc["apiVersion"].startswith("rbac.authorization.k8s.io/")]
        return
    account = pod_spec(docs)["serviceAccountName"]
    peering = flag_values(operator_container(docs)["args"], "--peering") or ["-"]
    assert effective_permissions(docs, ("ops", account)) == expected_permissions(
        values["watchNamespaces"], values["peering"]["enabled"], peering[0]
    )


def test_the_peering_is_named_by_the_release_and_only_it_may_be_patched():
    docs = render_chart(release="audit", namespace="ops")
    (peering,) = by_kind(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "audit-trailkeeper"
    assert flag_values(operator_container(docs)["args"], "--peering") == ["audit-trailkeeper"]
    granted = effective_permissions(docs, ("ops", "audit-trailkeeper"))[CLUSTER]
    assert {name for group, _, verb, name in granted if group == "kopf.dev" and verb == "patch"} == {
        "audit-trailkeeper"
    }
    named = render_chart({"peering": {"name": "shared"}, "watchNamespaces": ["a"]}, release="audit")
    assert [doc["metadata"]["name"] for doc in by_kind(named, "KopfPeering")] == ["shared"]


def test_rbac_follows_an_existing_service_account():
    docs = render_chart({"serviceAccount": {"create": False, "name": "audit-operator"}})
    assert not by_kind(docs, "ServiceAccount")
    assert pod_spec(docs)["serviceAccountName"] == "audit-operator"
    assert effective_permissions(docs, ("trailkeeper", "audit-operator")) == expected_permissions([], True)


# --- names, and two releases in one cluster -----------------------------------------------------------------

DNS_1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
IANA_SERVICE_NAME = re.compile(r"(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?")


def name_problems(doc: dict[str, Any]) -> list[str]:
    """Where an object's names break the rules the API server applies (apimachinery validation)."""
    problems = []
    kind, name = doc["kind"], doc["metadata"]["name"]
    if kind == "Service":
        # A Service name becomes a DNS label: ValidateServiceName (DNS-1035).
        if not (len(name) <= 63 and DNS_1035_LABEL.fullmatch(name)):
            problems.append(f"Service name {name!r}")
    elif kind.startswith(("Cluster", "Role")) and doc["apiVersion"].startswith("rbac."):
        # RBAC objects: ValidateRBACName, a path segment.
        if not name or "/" in name or "%" in name or name in (".", ".."):
            problems.append(f"{kind} name {name!r}")
    elif not (len(name) <= 253 and DNS_1123_SUBDOMAIN.fullmatch(name)):
        problems.append(f"{kind} name {name!r}")
    if kind == "Deployment":
        # Pods are named <deployment>-<replicaset hash>-<5 chars>; their hostname is cut at 63.
        template = doc["spec"]["template"]["spec"]
        for container in template["containers"]:
            for port in container.get("ports", []):
                if not (len(port["name"]) <= 15 and IANA_SERVICE_NAME.fullmatch(port["name"])):
                    problems.append(f"port name {port['name']!r}")
        if not DNS_1123_SUBDOMAIN.fullmatch(template["serviceAccountName"]):
            problems.append(f"serviceAccountName {template['serviceAccountName']!r}")
    for labels in _all_labels(doc):
        for key, value in labels.items():
            if not (len(value) <= 63 and LABEL_VALUE.fullmatch(value)):
                problems.append(f"label {key}={value!r}")
    return problems


def _all_labels(doc: dict[str, Any]) -> Iterator[dict[str, str]]:
    yield doc["metadata"].get("labels") or {}
    if doc["kind"] == "Deployment":
        yield doc["spec"]["template"]["metadata"].get("labels") or {}
        yield doc["spec"]["selector"]["matchLabels"]


# Release names Helm accepts (at most 53 characters, DNS-1123 subdomain): short, the longest, dots, a
# leading digit, one that already contains the chart's name.
RELEASE_NAMES = [
    "trailkeeper",
    "a",
    "r" * 53,
    "audit-" + "x" * 47,
    "0-audit",
    "prod.eu-west-1.audit",
    "9" * 53,
    "security-trailkeeper-" + "z" * 32,
    "a.b",
    # Names YAML would read as a number, a boolean or null if they were not quoted.
    "123",
    "1e5",
    "yes",
    "null",
]


@pytest.mark.parametrize("release", RELEASE_NAMES)
def test_names_stay_within_kubernetes_limits_for_any_release_name(release):
    helm.validate_release_name(release)  # Helm accepts it
    for name in ("everything", "defaults", "monitoring", "namespaced"):
        docs = render_chart(RENDERINGS[name], release=release, namespace="ops")
        problems = [problem for doc in docs for problem in name_problems(doc)]
        assert not problems, (name, problems)
        keys = [(doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"]) for doc in docs]
        assert len(keys) == len(set(keys)), "two objects of one kind with one name"
    for override in ("x" * 63, "f"):
        docs = render_chart({"fullnameOverride": override}, release=release)
        assert not [problem for doc in docs for problem in name_problems(doc)]


def test_metrics_service_names_are_kept_unique_when_shortened():
    names = {
        release: one(render_chart(release=release, namespace="ops"), "Service")["metadata"]["name"]
        for release in ("r" * 53, "r" * 52, "0-audit", "audit", "a.b", "a-b")
    }
    assert names["audit"] == "audit-trailkeeper-metrics"
    assert len(set(names.values())) == len(names), names


def release_objects(
    release: str, namespace: str, overrides: dict[str, Any] | None = None
) -> set[tuple[str, ...]]:
    """(kind, namespace or "" when cluster-scoped, name) of a release's objects."""
    docs = render_chart(overrides, release=release, namespace=namespace)
    return {(doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]) for doc in docs}


def test_two_releases_live_in_one_cluster():
    # Two cluster-wide releases, in their own namespaces or in one.
    for first, second in ((("audit", "ops"), ("compliance", "security")), (("a", "ops"), ("b", "ops"))):
        left, right = release_objects(*first), release_objects(*second)
        assert not left & right, left & right
        cluster_scoped = {key for key in left | right if not key[1]}
        assert {key[0] for key in cluster_scoped} == {
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterKopfPeering",
        }
    # Sharding: each release serves its own namespaces, with RoleBindings and KopfPeerings there.
    left = release_objects("shard-a", "ops", {"watchNamespaces": ["team-a", "team-b"]})
    right = release_objects("shard-b", "ops", {"watchNamespaces": ["team-c"]})
    assert not left & right


def test_each_release_works_in_its_own_peering():
    for release in ("audit", "compliance"):
        docs = render_chart(release=release, namespace="ops")
        peering = one(docs, "ClusterKopfPeering")["metadata"]["name"]
        assert run_params(operator_container(docs)["args"])["peering"] == peering
        assert release in peering


# --- the operator pod ----------------------------------------------------------------------------------

# The volume types the "restricted" Pod Security Standard allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def assert_restricted(pod: dict[str, Any]) -> None:
    """The pod meets the "restricted" Pod Security Standard (pod-security-admission's checks)."""
    pod_context = pod.get("securityContext") or {}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for volume in pod.get("volumes", []):
        assert set(volume) - {"name"} <= RESTRICTED_VOLUMES, volume
    for container in pod["containers"] + pod.get("initContainers", []):
        context = container.get("securityContext") or {}
        assert context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True
        assert context.get("runAsUser", pod_context.get("runAsUser")) != 0
        assert context["allowPrivilegeEscalation"] is False
        assert "ALL" in context["capabilities"]["drop"]
        assert set(context["capabilities"].get("add") or []) <= {"NET_BIND_SERVICE"}
        seccomp = context.get("seccompProfile") or pod_context.get("seccompProfile")
        assert seccomp["type"] in ("RuntimeDefault", "Localhost")
        assert not context.get("privileged")
        assert not container.get("ports") or all("hostPort" not in port for port in container["ports"])


def assert_locked_down(deployment: dict[str, Any]) -> None:
    """Restricted, and more: a read-only root filesystem, the image's non-root user, no capabilities."""
    pod = deployment["spec"]["template"]["spec"]
    assert_restricted(pod)
    assert pod["securityContext"]["runAsUser"] != 0
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize("name", RENDERINGS)
def test_the_operator_pod_meets_the_restricted_pod_security_standard(name):
    assert_restricted(pod_spec(render_chart(RENDERINGS[name])))


@pytest.mark.parametrize("mode", MODES)
def test_deployment_is_locked_down_by_default(mode):
    assert_locked_down(one(render_chart(MODES[mode]), "Deployment"))


def test_security_contexts_are_values():
    pod = pod_spec(render_chart(VALUE_SETS["security-context"]))
    assert pod["securityContext"]["runAsUser"] == 20000
    # Values merge into the defaults: what is not overridden stays.
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["containers"][0]["securityContext"]["privileged"] is False


def flag_values(args: list[str], flag: str) -> list[str]:
    """The values given to `flag` as `--flag=value` or `--flag value` / `-n value`."""
    found = []
    for index, arg in enumerate(args):
        if arg.startswith(flag + "="):
            found.append(arg.split("=", 1)[1])
        elif arg == flag and index + 1 < len(args):
            found.append(args[index + 1])
    return found


def assert_liveness_probe_matches_the_endpoint(container: dict[str, Any]) -> None:
    (liveness,) = flag_values(container["args"], "--liveness")
    endpoint = urlsplit(liveness)
    assert endpoint.scheme == "http"
    assert endpoint.hostname == "0.0.0.0", "kopf must listen on the pod IP for the kubelet to reach it"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        if probe in container:
            action = container[probe]["httpGet"]
            port = ports[action["port"]] if isinstance(action["port"], str) else action["port"]
            assert (action["path"], port) == (endpoint.path, endpoint.port)


@pytest.mark.parametrize("name", RENDERINGS)
def test_probes_call_the_operator_health_endpoint(name):
    assert_liveness_probe_matches_the_endpoint(operator_container(render_chart(RENDERINGS[name])))


def test_readiness_probe_can_be_left_out():
    assert "readinessProbe" in operator_container(render_chart())
    assert "readinessProbe" not in operator_container(render_chart({"readiness": {"enabled": False}}))


@pytest.mark.parametrize("mode", MODES)
def test_operator_flags_follow_the_values(mode):
    overrides = MODES[mode]
    values = deep_merge(default_values(), overrides)
    args = operator_container(render_chart(overrides))["args"]
    if values["watchNamespaces"]:
        assert flag_values(args, "-n") == values["watchNamespaces"]
        assert "-A" not in args
    else:
        assert "-A" in args and not flag_values(args, "-n")
    if values["peering"]["enabled"]:
        assert flag_values(args, "--peering") == ["trailkeeper"]
        assert "--standalone" not in args
    else:
        assert "--standalone" in args and not flag_values(args, "--peering")
    assert flag_values(args, "--resync-scale") == [str(values["resyncScale"])]
    assert flag_values(args, "--max-workers") == [str(values["maxWorkers"])]
    assert flag_values(args, "--log-level") == [values["log"]["level"]]
    assert flag_values(args, "--log-format") == [values["log"]["format"]]


def run_params(args: list[str]) -> dict[str, Any]:
    """The options `trailkeeper run` starts with for these args: click parses and validates them."""
    from trailkeeper.cli.main import cli

    command = cli.commands["run"]  # type: ignore[attr-defined]
    with command.make_context("run", list(args)) as context:
        return dict(context.params)


@pytest.mark.parametrize("name", RENDERINGS)
def test_trailkeeper_run_accepts_the_rendered_flags(name):
    overrides = RENDERINGS[name]
    values = deep_merge(default_values(), overrides)
    docs = render_chart(overrides)
    params = run_params(operator_container(docs)["args"])
    assert params["namespaces"] == tuple(values["watchNamespaces"])
    assert params["all_namespaces"] is not bool(values["watchNamespaces"])
    assert params["standalone"] is not values["peering"]["enabled"]
    if values["peering"]["enabled"]:
        peerings = by_kind(docs, "ClusterKopfPeering") + by_kind(docs, "KopfPeering")
        assert {doc["metadata"]["name"] for doc in peerings} == {params["peering"]}
    assert params["liveness"] == f"http://0.0.0.0:{values['liveness']['port']}/healthz"
    assert params["metrics_port"] == values["metrics"]["port"]
    assert params["resync_scale"] == values["resyncScale"]
    assert params["max_workers"] == values["maxWorkers"]
    assert params["log_level"] == values["log"]["level"]
    assert params["log_format"] == values["log"]["format"]


def test_extra_args_come_after_the_charts_flags():
    args = operator_container(render_chart(VALUE_SETS["proxy-and-ca"]))["args"]
    assert args[-1] == "--compliance-regions=eu-west-1,us-east-1"
    assert run_params(args)["compliance_regions"] == "eu-west-1,us-east-1"


def test_environment_of_the_operator():
    container = operator_container(render_chart({"aws": {"region": "eu-west-1"}}))
    env = {item["name"]: item for item in container["env"]}
    assert env["AWS_REGION"]["value"] == "eu-west-1"
    assert "AWS_ENDPOINT_URL" not in env
    # kopf's peering identity: the pod name, unique per replica.
    assert env["POD_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    container = operator_container(render_chart({"aws": {"endpointUrl": "http://moto:5000"}}))
    assert {"name": "AWS_ENDPOINT_URL", "value": "http://moto:5000"} in container["env"]
    container = operator_container(render_chart(VALUE_SETS["proxy-and-ca"]))
    env = {item["name"]: item for item in container["env"]}
    assert env["HTTPS_PROXY"] == {"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"}
    assert env["TRAILKEEPER_AWS_RATE_CLOUDTRAIL_WRITE"]["value"] == "0.5"
    assert env["AWS_MAX_ATTEMPTS"]["valueFrom"]["configMapKeyRef"]["name"] == "trailkeeper-tuning"


def test_extra_volumes_are_mounted_beside_tmp():
    docs = render_chart(VALUE_SETS["proxy-and-ca"])
    mounts = {mount["name"]: mount for mount in operator_container(docs)["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod_spec(docs)["volumes"]}
    assert mounts["tmp"]["mountPath"] == "/tmp" and "emptyDir" in volumes["tmp"]
    assert mounts["corporate-ca"]["mountPath"] == "/etc/trailkeeper/ca"
    assert volumes["corporate-ca"]["configMap"] == {"name": "corporate-ca"}


def test_a_projected_token_replaces_the_automatic_one():
    docs = render_chart(VALUE_SETS["projected-token"])
    assert pod_spec(docs)["automountServiceAccountToken"] is False
    mounts = {mount["mountPath"] for mount in operator_container(docs)["volumeMounts"]}
    assert "/var/run/secrets/kubernetes.io/serviceaccount" in mounts
    # The default: the pod mounts its token, the ServiceAccount does not hand one to other pods.
    docs = render_chart()
    assert pod_spec(docs)["automountServiceAccountToken"] is True
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False


def test_image_defaults_to_the_app_version_and_may_be_pinned_by_digest():
    chart = load_yaml(CHART / "Chart.yaml")
    assert operator_container(render_chart())["image"] == f"trailkeeper:{chart['appVersion']}"
    assert operator_container(render_chart({"image": {"tag": "dev"}}))["image"] == "trailkeeper:dev"
    pinned = VALUE_SETS["private-registry"]["image"]
    assert operator_container(render_chart(VALUE_SETS["private-registry"]))["image"] == (
        f"{pinned['repository']}@{pinned['digest']}"
    )


def test_the_notes_say_that_the_default_image_must_be_built():
    notes = render_notes(namespace="ops")
    assert "no trailkeeper image is published" in notes
    assert "docker build -t <registry>/trailkeeper:0.1.0 ." in notes
    assert "--set image.repository=<registry>/trailkeeper" in notes
    assert "published" not in render_notes(VALUE_SETS["private-registry"], namespace="ops")


@pytest.mark.parametrize("mode", MODES)
def test_install_notes_render(mode):
    notes = render_notes(MODES[mode], namespace="ops")
    assert "kubectl -n ops logs deploy/trailkeeper" in notes
    for namespace in MODES[mode].get("watchNamespaces", []):
        assert namespace in notes


def test_never_two_active_operator_pods():
    # kopf has no leader election. _core/engines/peering.py process_peering_event pauses every operator
    # that sees a live peer of higher priority; each replica draws its own (tests/test_peering_e2e.py).
    deployment = one(render_chart(), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    # Nor an old and a new pod side by side during a rollout.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert one(render_chart({"replicaCount": 0}), "Deployment")["spec"]["replicas"] == 0
    replicated = one(render_chart(VALUE_SETS["ha-peering"]), "Deployment")
    assert replicated["spec"]["replicas"] == 3
    args = operator_container([replicated])["args"]
    assert {"--peering=trailkeeper", "--peering-lifetime=30"} <= set(args)
    assert not any(arg.startswith("--priority") for arg in args), "each pod draws its own priority"


def test_pod_placement_values_reach_the_pod():
    docs = render_chart(VALUE_SETS["everything"])
    pod, placement = pod_spec(docs), VALUE_SETS["everything"]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets"):
        assert pod[key] == placement[key]
    template = one(docs, "Deployment")["spec"]["template"]
    assert template["metadata"]["annotations"] == placement["podAnnotations"]
    assert template["metadata"]["labels"]["tier"] == "control"


def test_topology_spread_selects_the_operator_pods_unless_told_otherwise():
    docs = render_chart(VALUE_SETS["ha-peering"])
    (constraint,) = pod_spec(docs)["topologySpreadConstraints"]
    assert constraint["labelSelector"] == {
        "matchLabels": one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    }
    own = {"matchLabels": {"app": "other"}}
    docs = render_chart(
        {
            "topologySpreadConstraints": [
                {**VALUE_SETS["ha-peering"]["topologySpreadConstraints"][0], "labelSelector": own}
            ]
        }
    )
    assert pod_spec(docs)["topologySpreadConstraints"][0]["labelSelector"] == own


@pytest.mark.parametrize("name", RENDERINGS)
def test_common_labels_are_on_every_object(name):
    overrides = RENDERINGS[name]
    labels = deep_merge(default_values(), overrides).get("commonLabels") or {}
    for doc in render_chart(overrides):
        assert labels.items() <= doc["metadata"]["labels"].items(), doc["kind"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_deployment_annotations():
    docs = render_chart(VALUE_SETS["labels-and-placement"])
    assert one(docs, "Deployment")["metadata"]["annotations"] == {"reloader.stakater.com/auto": "true"}
    assert "annotations" not in one(render_chart(), "Deployment")["metadata"]


def test_service_account_annotations():
    assert "annotations" not in one(render_chart(), "ServiceAccount")["metadata"]
    annotations = one(render_chart(VALUE_SETS["irsa"]), "ServiceAccount")["metadata"]["annotations"]
    assert annotations == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/trailkeeper",
        "eks.amazonaws.com/sts-regional-endpoints": "true",
    }


# --- metrics, budget, network policy -----------------------------------------------------------------------


def test_metrics_service_reaches_the_metrics_port():
    docs = render_chart(VALUE_SETS["monitoring"])
    service, container = one(docs, "Service"), operator_container(docs)
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert {"name": "metrics", "containerPort": 9300, "protocol": "TCP"} in container["ports"]
    assert (port["port"], port["targetPort"]) == (8443, "metrics")
    assert "--metrics-port=9300" in container["args"]
    assert service["metadata"]["annotations"] == {"example.com/scrape": "true"}
    assert not by_kind(render_chart(VALUE_SETS["no-metrics-service"]), "Service")


def test_service_monitor_scrapes_the_metrics_service_from_its_own_namespace():
    docs = render_chart(VALUE_SETS["monitoring"], namespace="ops")
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service")
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ops"]}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("1m", "15s")
    assert endpoint["relabelings"] == VALUE_SETS["monitoring"]["metrics"]["serviceMonitor"]["relabelings"]
    assert endpoint["metricRelabelings"][0]["action"] == "drop"
    default = one(
        render_chart({"metrics": {"serviceMonitor": {"enabled": True}}}, namespace="ops"), "ServiceMonitor"
    )
    assert default["metadata"]["namespace"] == "ops"


def test_disruption_budget_covers_the_operator_pods():
    docs = render_chart(VALUE_SETS["ha-peering"])
    budget = one(docs, "PodDisruptionBudget")
    assert budget["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": one(docs, "Deployment")["spec"]["selector"]["matchLabels"]},
    }
    assert (
        one(render_chart(VALUE_SETS["ha-min-available"]), "PodDisruptionBudget")["spec"]["minAvailable"]
        == "50%"
    )


def test_network_policy_opens_the_metrics_port_and_dns_and_https_only():
    docs = render_chart(VALUE_SETS["network-policy"])
    policy = one(docs, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert ingress["from"] == VALUE_SETS["network-policy"]["networkPolicy"]["metricsFrom"]
    ports = {(port["port"], port["protocol"]) for rule in policy["egress"] for port in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP")}
    closed = one(render_chart({"networkPolicy": {"enabled": True, "egress": []}}), "NetworkPolicy")
    assert closed["spec"]["egress"] == []


@pytest.mark.parametrize("mode", MODES)
def test_rendered_kinds(mode):
    overrides = MODES[mode]
    values = deep_merge(default_values(), overrides)
    docs = render_chart(overrides)
    kinds = sorted(doc["kind"] for doc in docs)
    namespaces = values["watchNamespaces"]
    peering = values["peering"]["enabled"]
    expected = ["ClusterRole", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "ServiceAccount"]
    expected += ["RoleBinding"] * len(namespaces) if namespaces else ["ClusterRoleBinding"]
    if peering:
        expected += ["KopfPeering"] * len(namespaces) if namespaces else ["ClusterKopfPeering"]
    assert kinds == sorted(expected)


def test_namespaced_mode_binds_and_peers_in_each_listed_namespace():
    docs = render_chart(VALUE_SETS["namespaced"])
    assert {doc["metadata"]["namespace"] for doc in by_kind(docs, "RoleBinding")} == {"security", "audit"}
    peerings = by_kind(docs, "KopfPeering")
    assert {(doc["metadata"]["namespace"], doc["metadata"]["name"]) for doc in peerings} == {
        ("security", "trailkeeper"),
        ("audit", "trailkeeper"),
    }


def test_resource_names_follow_the_release():
    docs = render_chart(release="audit", namespace="ops")
    assert one(docs, "Deployment")["metadata"]["name"] == "audit-trailkeeper"
    assert {doc["metadata"]["name"] for doc in by_kind(docs, "ClusterRole")} == {
        "audit-trailkeeper-cluster",
        "audit-trailkeeper-namespaced",
    }
    assert all(
        doc["metadata"]["namespace"] == "ops" for doc in docs if doc["kind"] in ("Deployment", "Service")
    )
    assert one(render_chart(VALUE_SETS["fullname-override"], release="x"), "Deployment")["metadata"][
        "name"
    ] == ("audit-keeper")


# --- CRDs -------------------------------------------------------------------------------------------------


def test_chart_crds_are_the_repository_crds_plus_kopf_peering():
    repo = {path.name for path in REPO_CRDS.glob("*.yaml")}
    chart = {path.name for path in (CHART / "crds").iterdir()}
    assert chart == repo | {PEERING_CRDS}
    for name in repo:
        assert (CHART / "crds" / name).read_bytes() == (REPO_CRDS / name).read_bytes(), (
            f"charts/trailkeeper/crds/{name} differs from crds/{name}: copy it again"
        )


def test_the_crds_validate_strictly_against_each_kubernetes_version():
    # CRDs are API objects too: a field an older API server does not know is refused (or dropped) there.
    crds = [
        crd
        for path in sorted((CHART / "crds").glob("*.yaml"))
        for crd in yaml.safe_load_all(path.read_text())
    ]
    problems = [problem for crd in crds for problem in validate_object(crd)]
    assert not problems, "\n".join(problems)


def test_helm_sees_the_crds():
    names = {crd["filename"] for crd in generate._chart().crds}
    assert names == {f"trailkeeper/crds/{path.name}" for path in (CHART / "crds").iterdir()}


def test_peering_crds_match_what_kopf_and_the_rbac_expect():
    crds = {
        doc["spec"]["names"]["plural"]: doc
        for doc in yaml.safe_load_all((CHART / "crds" / PEERING_CRDS).read_text())
    }
    assert set(crds) == {references.CLUSTER_PEERINGS_K.any_name, references.NAMESPACED_PEERINGS_K.any_name}
    for plural, crd in crds.items():
        assert crd["metadata"]["name"] == f"{plural}.{references.CLUSTER_PEERINGS_K.group}"
        assert crd["spec"]["group"] == references.CLUSTER_PEERINGS_K.group
        assert [version["name"] for version in crd["spec"]["versions"]] == [
            references.CLUSTER_PEERINGS_K.version
        ]
        # With a status subresource kopf would patch <plural>/status, which the RBAC does not grant.
        assert all("subresources" not in version for version in crd["spec"]["versions"])
    assert crds["clusterkopfpeerings"]["spec"]["scope"] == "Cluster"
    assert crds["kopfpeerings"]["spec"]["scope"] == "Namespaced"
