"""Every property of both CRDs has a description `kubectl explain` can print, written on the models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from trailkeeper.api.crd import KINDS, KindInfo, crd, schema_at


def root_schema(info: KindInfo) -> dict[str, Any]:
    schema = crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def properties(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property below `node`: nested objects, list items' properties and map values' properties."""
    for name, child in (node.get("properties") or {}).items():
        yield f"{path}.{name}", child
        yield from properties(child, f"{path}.{name}")
    for key, step in (("items", "[]"), ("additionalProperties", "{}")):
        inner = node.get(key)
        if isinstance(inner, dict):
            yield from properties(inner, path + step)


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_every_property_has_a_description(info: KindInfo) -> None:
    found = dict(properties(root_schema(info), info.singular))
    # The API server refuses a CRD that describes metadata; kubectl explain prints ObjectMeta's text.
    described = {path for path, node in found.items() if str(node.get("description", "")).strip()}
    missing = sorted(set(found) - described - {f"{info.singular}.metadata"})
    assert missing == [], f"{len(described)} of {len(found)} properties described; missing: {missing}"
    assert len(found) > (40 if info.kind == "LogRetention" else 80)


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_the_kind_itself_is_described(info: KindInfo) -> None:
    assert len(root_schema(info)["description"]) > 80


def test_metadata_carries_nothing_the_api_server_forbids() -> None:
    for info in KINDS:
        assert root_schema(info)["properties"]["metadata"] == {"type": "object"}


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_a_defaulted_property_says_its_default(info: KindInfo) -> None:
    for path, node in properties(root_schema(info), info.singular):
        if "default" in node:
            assert "Default: `" in node["description"], path


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_descriptions_are_one_paragraph(info: KindInfo) -> None:
    for path, node in properties(root_schema(info), info.singular):
        text = node.get("description", "")
        assert "\n" not in text and "  " not in text, path


@pytest.mark.parametrize(
    ("kind", "path", "words"),
    [
        # What `kubectl explain trail.spec.destination` and its fields print.
        ("Trail", "spec.destination", ["bucket", "prefix"]),
        ("Trail", "spec.destination.bucket", ["{region}", "3 to 63", "xn--"]),
        ("Trail", "spec.destination.createBucket", ["public-access", "NoSuchBucket", "Default: `true`"]),
        ("Trail", "spec.destination.keyPrefix", ["AWSLogs", "200", 'Default: `""`']),
        ("Trail", "spec.regions", ["us-east-1", "1 to 40", "no duplicates", "deletionPolicy"]),
        ("Trail", "spec.trailName", ["metadata.name", "3 to 128", "Immutable"]),
        ("Trail", "spec.resyncSeconds", ["30 to 86400", "Default: `300`"]),
        ("Trail", "spec.driftPolicy", ["Correct", "Report", 'Default: `"Correct"`']),
        ("LogRetention", "spec", ["bucket", "expiry"]),
        ("LogRetention", "spec.trailRef", ["exactly one of `trailRef` and `bucket`"]),
        ("LogRetention", "spec.transitions", ["ascending", "waterfall", "at most 6"]),
        ("LogRetention", "spec.expirationDays", ["later than every transition", "Unset"]),
    ],
)
def test_explained_fields_say_what_a_user_needs(kind: str, path: str, words: list[str]) -> None:
    info = next(i for i in KINDS if i.kind == kind)
    text = schema_at(root_schema(info), path)["description"]
    for word in words:
        assert word in text, f"{kind} {path}: {word!r} not in {text!r}"
