"""A corpus of invalid manifests: each is rejected with a problem naming the offending field."""

from __future__ import annotations

from pathlib import Path

import pytest

from trailkeeper.api.manifests import load_manifests

CORPUS = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))


def expected_path(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: <field path>'"
    return first.removeprefix("# expect: ").strip()


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_invalid_manifest_is_rejected_naming_the_field(path: Path) -> None:
    manifests, problems = load_manifests([path])
    assert manifests == []
    assert problems, f"{path.name} was accepted"
    expected = expected_path(path)
    paths = [p.path for p in problems]
    assert expected in paths, f"expected a problem at {expected}, got {[str(p) for p in problems]}"
    for problem in problems:
        assert problem.file == str(path)
        assert problem.object.endswith(("/bad", "/bad-retention", "/a"))
        assert len(problem.reason) > 10


def test_every_problem_is_reported_not_only_the_first(tmp_path: Path) -> None:
    bad = tmp_path / "two.yaml"
    bad.write_text(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: Trail\nmetadata: {name: two}\n"
        "spec: {regions: [nowhere-1], destination: {bucket: BAD}, resyncSeconds: 1}\n",
        encoding="utf-8",
    )
    _, problems = load_manifests([bad])
    assert {p.path for p in problems} >= {"spec.regions[0]", "spec.destination.bucket", "spec.resyncSeconds"}


def test_unparsable_yaml_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("kind: Trail\nspec: [unclosed\n", encoding="utf-8")
    manifests, problems = load_manifests([bad])
    assert manifests == []
    assert "not valid YAML" in problems[0].reason
