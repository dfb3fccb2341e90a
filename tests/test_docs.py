"""Docs that cannot go stale: generated help in docs/cli.md, no path of the machine they were written on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import cli_docs  # noqa: E402

# Home and work folders of a machine: a Linux root or user home, a macOS user folder, a build workspace.
MACHINE_PATH = re.compile(r"(?<![\w.-])/(?:root|work|home/[a-z_][\w-]*|Users/[A-Za-z][\w.-]*)/")
# Paths inside the operator image (its build cache), not on any machine of ours.
IMAGE_PATHS = {"Dockerfile": re.compile(r"--mount=type=cache,target=/[r]oot/\.cache/")}
# The samples below are built from parts so that this file does not hold what it looks for.
ROOT_DIR, WORK_DIR, HOME_DIR = (f"/{name}/" for name in ("root", "work", "home"))


def test_cli_md_help_blocks_are_the_commands_current_help() -> None:
    page = cli_docs.CLI_MD.read_text(encoding="utf-8")
    assert page.count("<!-- help: trailkeeper ") >= 8, "every command's help block is marked"
    assert cli_docs.refreshed(page) == page, "docs/cli.md is stale: run `python scripts/cli_docs.py`"


def test_refreshing_replaces_a_stale_block() -> None:
    stale = "<!-- help: trailkeeper crds -->\n```text\nUsage: old\n```\n"
    assert cli_docs.refreshed(stale).startswith(
        "<!-- help: trailkeeper crds -->\n```text\nUsage: trailkeeper crds [OPTIONS]"
    )


def machine_paths(path: str, text: str) -> list[str]:
    allowed = IMAGE_PATHS.get(path)
    return [
        f"{path}:{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if MACHINE_PATH.search(line) and not (allowed and allowed.search(line))
    ]


def test_no_tracked_file_holds_an_absolute_path_of_a_machine() -> None:
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    found: list[str] = []
    for path in filter(None, tracked):
        file = ROOT / path
        if not file.is_file():
            continue  # deleted in the working tree, not yet in the index
        data = file.read_bytes()
        if b"\0" in data[:4096]:
            continue  # binary
        found += machine_paths(path, data.decode("utf-8", errors="replace"))
    assert found == []


def test_the_path_check_catches_each_kind_of_machine_path() -> None:
    for line in (
        f"KUBECONFIG={WORK_DIR}main/.sandbox/kubeconfig",
        f"see {HOME_DIR}alice/src",
        f"{ROOT_DIR}.cache",
    ):
        assert machine_paths("README.md", line), line
    for line in ("~/.kube/config", "/var/run/secrets/token", "https://example.com/work/x", ".sandbox/work/a"):
        assert not machine_paths("README.md", line), line
    assert not machine_paths("Dockerfile", f"RUN --mount=type=cache,target={ROOT_DIR}.cache/pip \\")
