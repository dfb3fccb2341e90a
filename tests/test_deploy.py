"""The plain manifests in deploy/ and the container image they run.

`kubectl apply -k deploy/` (or `-f deploy/crds/` then `-f deploy/operator/`) must install what
`helm install trailkeeper charts/trailkeeper -n trailkeeper` installs; these tests compare the two object
by object, using the chart evaluator of test_chart.py. The image (Dockerfile, constraints.txt) must run
`trailkeeper run` as the non-root user the manifests expect, from pinned dependencies.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NAMESPACE = "trailkeeper"


def _load_chart_checks() -> Any:
    # By file path, so this works however pytest names test modules (rootdir-relative or as a package):
    # the module pytest already imported if there is one, else a fresh import of the file.
    path = Path(__file__).with_name("test_chart.py")
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) and Path(module.__file__).resolve() == path:
            return module
    spec = importlib.util.spec_from_file_location("chart_checks", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


chart = _load_chart_checks()

# Labels only helm sets; a plain `kubectl apply` does not manage the objects through helm.
HELM_ONLY_LABELS = {"helm.sh/chart", "app.kubernetes.io/managed-by"}


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
    for label in HELM_ONLY_LABELS & set(labels):
        del labels[label]
    return doc


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


# --- the image -----------------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for word, args in self.instructions if word == keyword]


def dockerfile_stages() -> list[Stage]:
    """The Dockerfile's stages: base image (global ARG defaults substituted), alias, instructions."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line.strip())
        pending = ""
    arguments: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in logical:
        word, _, args = instruction.partition(" ")
        word = word.upper()
        if word == "ARG" and not stages:
            name, _, default = args.partition("=")
            arguments[name] = default
        elif word == "FROM":
            image, *alias = re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], args).split()
            stages.append(Stage(image, alias[1] if alias and alias[0].upper() == "AS" else None))
        else:
            stages[-1].instructions.append((word, args.strip()))
    return stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"{args} is shell form: signals would go to a shell, not the operator"
    return value


def test_image_is_multi_stage_on_a_small_python_base():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    for stage in stages:
        assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", stage.base), stage.base
    # The runtime takes the built virtualenv and nothing else from the build stage.
    build, runtime = stages[0], stages[-1]
    assert any(f"--from={build.name}" in args for args in runtime.all("COPY"))
    assert not any("pip install" in args for args in runtime.all("RUN"))


def test_image_runs_as_the_non_root_user_the_deployment_expects():
    (user,) = dockerfile_stages()[-1].all("USER")
    uid, _, gid = user.partition(":")
    # Numeric, so the kubelet can check runAsNonRoot without reading /etc/passwd.
    assert uid.isdigit() and int(uid) != 0 and (not gid or int(gid) != 0)
    pod = chart.one(chart.render_chart(), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid)


def test_image_entrypoint_is_trailkeeper_run():
    runtime = dockerfile_stages()[-1]
    (entrypoint,) = runtime.all("ENTRYPOINT")
    assert exec_form(entrypoint) == ["trailkeeper", "run"]
    # The default arguments must be ones `trailkeeper run` accepts.
    (cmd,) = runtime.all("CMD")
    chart.run_params(exec_form(cmd))


def test_image_installs_with_the_constraints():
    build = dockerfile_stages()[0]
    installs = [
        (index, args)
        for index, (word, args) in enumerate(build.instructions)
        if word == "RUN" and "pip install" in args
    ]
    assert installs and all("-c constraints.txt" in args for _, args in installs)
    copied = next(
        index
        for index, (word, args) in enumerate(build.instructions)
        if word == "COPY" and "constraints.txt" in args.split()
    )
    assert copied < installs[0][0]


def test_dockerignore_keeps_what_the_build_copies():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()]
    # Everything is excluded first, then each build input is let back in.
    assert "*" in lines
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for stage in dockerfile_stages():
        for args in stage.all("COPY"):
            parts = [part for part in args.split() if not part.startswith("--")]
            if "--from" not in args:
                assert set(parts[:-1]) <= kept, args


def constraint_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([A-Za-z0-9_.+!-]+)", line)
        assert match, f"not an exact pin: {line!r}"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"{name} pinned twice"
        pins[name] = match.group(2)
    return pins


def project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_constraints_pin_every_runtime_dependency():
    pins = constraint_pins()
    for dependency in project()["dependencies"]:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is a runtime dependency but not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's {requirement.specifier}"
        )


def test_constraints_hold_no_development_tools():
    runtime = {canonicalize_name(Requirement(dep).name) for dep in project()["dependencies"]}
    tools = {
        canonicalize_name(Requirement(dep).name)
        for extra in project()["optional-dependencies"].values()
        for dep in extra
    }
    assert not (tools - runtime) & set(constraint_pins())


def test_constraints_close_over_the_dependencies_they_can_check():
    # For each pinned package installed here at the pinned version, what it requires must be pinned too;
    # the image build's freeze/diff step catches the rest.
    pins = constraint_pins()
    for name, version in pins.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if dist.version != version:
            continue
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            assert canonicalize_name(requirement.name) in pins, f"{name} needs {requirement.name}, not pinned"
