"""Prowler in a virtualenv of its own (its pins clash with the project's), kept in a cache outside the
repository keyed by version, and run against moto until its log shows a complete read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VERSION = "5.46.0"
# Prowler's reads of CloudTrail that can break off against moto: it files a multi-region trail under
# whichever region listed it first and reads its event selectors there, which moto answers only in the
# trail's home region. The loop over trails then stops, and the data-event checks judge what was read.
_FLAKY_MODULES = frozenset({"cloudtrail_service"})


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trailkeeper-crosscheck"


def venv_dir(version: str = VERSION) -> Path:
    return cache_root() / f"prowler-{version}"


def ensure_prowler(version: str = VERSION) -> Path:
    """The `prowler` program of `version`, installed into its cached virtualenv first when missing."""
    venv = venv_dir(version)
    program = venv / "bin" / "prowler"
    if program.exists() and _installed_version(venv) == version:
        return program
    python = os.environ.get("CROSSCHECK_PYTHON") or shutil.which("python3") or sys.executable
    print(f"installing prowler=={version} into {venv} (a few minutes, once)", file=sys.stderr)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, f"prowler=={version}"], check=True)
    if _installed_version(venv) != version:
        raise RuntimeError(f"prowler {version} is not what {venv} holds after installing it")
    return program


def _installed_version(venv: Path) -> str | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version; print(version('prowler'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def compliance_dir(version: str = VERSION) -> Path:
    """Where the installed Prowler keeps its maps of the benchmark (cis_<version>_aws.json)."""
    found = sorted(venv_dir(version).glob("lib/python3*/site-packages/prowler/compliance/aws"))
    if not found:
        raise RuntimeError(f"no prowler/compliance/aws under {venv_dir(version)}")
    return found[-1]


@dataclass(frozen=True)
class ProwlerRun:
    csv: str
    attempts: int
    clean: bool
    # The error lines of the last attempt's log, those that made it unclean first.
    errors: tuple[str, ...]


def log_errors(log_text: str) -> tuple[list[str], list[str]]:
    """(errors that leave a check's input incomplete, other errors) of a Prowler JSON-lines log file."""
    flaky: list[str] = []
    other: list[str] = []
    for line in log_text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("level") not in ("ERROR", "CRITICAL"):
            continue
        text = f"{record.get('module')}: {record.get('message')}"
        (flaky if record.get("module") in _FLAKY_MODULES else other).append(text)
    return flaky, other


def run_prowler(
    program: Path,
    *,
    endpoint: str,
    regions: list[str],
    checks: list[str],
    workdir: Path,
    env: dict[str, str],
    attempts: int = 6,
) -> ProwlerRun:
    """Prowler's `checks` in `regions` against the moto at `endpoint`, rerun (up to `attempts` times) until
    its log holds no CloudTrail read error. The account-level s3control calls go to
    `<account>.<endpoint host>`, which does not resolve: the endpoint is also the HTTP proxy, and moto
    serves s3control requests by their path whatever the host."""
    environment = {**env, "AWS_ENDPOINT_URL": endpoint, "HTTP_PROXY": endpoint, "http_proxy": endpoint}
    for name in ("NO_PROXY", "no_proxy", "PYTHONPATH", "VIRTUAL_ENV"):
        environment.pop(name, None)
    workdir.mkdir(parents=True, exist_ok=True)
    flaky: list[str] = []
    other: list[str] = []
    for attempt in range(1, attempts + 1):
        name = f"prowler-{attempt}"
        log = workdir / f"{name}.log"
        log.unlink(missing_ok=True)
        command = [str(program), "aws", "-f", *regions, "--checks", *checks]
        command += ["-M", "csv", "-o", str(workdir), "-F", name, "--no-banner", "--no-color", "-z"]
        command += ["--log-level", "ERROR", "--log-file", str(log)]
        with (workdir / f"{name}.out").open("w") as out:
            subprocess.run(command, env=environment, stdout=out, stderr=subprocess.STDOUT, check=True)
        flaky, other = log_errors(log.read_text() if log.exists() else "")
        if not flaky:
            return ProwlerRun((workdir / f"{name}.csv").read_text(), attempt, True, tuple(other))
    return ProwlerRun(
        (workdir / f"prowler-{attempts}.csv").read_text(), attempts, False, tuple(flaky + other)
    )
