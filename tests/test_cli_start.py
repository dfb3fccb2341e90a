"""What a pipeline's `trailkeeper apply` / `diff` loads at its start: only what those commands use."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from trailkeeper.cli.main import cli

# Modules only other commands use: the operator and its settings (kopf), `audit`, the CRD and IAM renderers.
OTHER_COMMANDS_ONLY = ("kopf", "trailkeeper.kube.config", "trailkeeper.cli.audit", "trailkeeper.api.crd")


def test_the_command_line_starts_without_the_other_commands_modules() -> None:
    probe = (
        "import sys, trailkeeper.cli.main\n"
        f"print(sorted(m for m in {OTHER_COMMANDS_ONLY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_audit_is_listed_and_loaded_when_asked_for() -> None:
    listing = CliRunner().invoke(cli, ["--help"])
    assert listing.exit_code == 0
    assert "audit" in listing.output
    assert "Observe-only CIS" in listing.output

    audit_help = CliRunner().invoke(cli, ["audit", "--help"])
    assert audit_help.exit_code == 0, audit_help.output
    assert "--role-arn" in audit_help.output


def test_an_unknown_command_is_still_refused() -> None:
    result = CliRunner().invoke(cli, ["audits"])
    assert result.exit_code == 2
    assert "No such command 'audits'" in result.output
