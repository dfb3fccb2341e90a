"""docs/api-reference.md is generated from the models and describes every field, and only real fields."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from trailkeeper.api.crd import KINDS
from trailkeeper.api.reference import DESCRIPTIONS, field_paths, render_reference, rows

ROOT = Path(__file__).parent.parent
REFERENCE = ROOT / "docs" / "api-reference.md"
REGENERATE = ".venv/bin/python -m trailkeeper.api.reference > docs/api-reference.md"


def test_checked_in_reference_equals_the_generated_one() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render_reference(), (
        f"docs/api-reference.md is out of date with the models; regenerate it: {REGENERATE}"
    )


def test_every_field_of_both_kinds_has_a_description() -> None:
    missing = [f"{row.kind}:{row.path}" for info in KINDS for row in rows(info) if not row.description]
    assert missing == [], f"describe these fields in trailkeeper/api/reference.py: {missing}"


def test_no_description_names_a_field_that_does_not_exist() -> None:
    paths = {(info.kind, path) for info in KINDS for path in field_paths(info)}
    stale = [
        key
        for key in DESCRIPTIONS
        if not (
            (":" in key and tuple(key.split(":", 1)) in paths)
            or (":" not in key and any(path == key for _, path in paths))
        )
    ]
    assert stale == [], f"these descriptions name no field of the models: {stale}"


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
