"""docs/api-reference.md is generated from the models and describes every field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from trailkeeper.api.crd import KINDS
from trailkeeper.api.reference import field_paths, render_reference, rows

ROOT = Path(__file__).parent.parent
REFERENCE = ROOT / "docs" / "api-reference.md"
REGENERATE = ".venv/bin/python -m trailkeeper.api.reference > docs/api-reference.md"


def test_checked_in_reference_equals_the_generated_one() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render_reference(), (
        f"docs/api-reference.md is out of date with the models; regenerate it: {REGENERATE}"
    )


def test_every_field_of_both_kinds_has_a_description() -> None:
    missing = [f"{row.kind}:{row.path}" for info in KINDS for row in rows(info) if not row.description]
    assert missing == [], f"give these fields a docstring in trailkeeper/api/: {missing}"


def test_every_field_path_appears_in_the_reference() -> None:
    text = render_reference()
    for info in KINDS:
        for path in field_paths(info):
            assert f"| `{path}` |" in text, f"{info.kind} {path} is missing from the reference"


def test_module_prints_the_reference() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trailkeeper.api.reference"], capture_output=True, text=True, check=True
    )
    assert result.stdout == render_reference()
