"""The CRDs are generated from the models: checked-in files match, and the schema agrees with the models."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from trailkeeper.api.crd import KINDS, crd, crd_files
from trailkeeper.api.manifests import SPEC_MODELS, load_manifests
from trailkeeper.cli.main import cli

ROOT = Path(__file__).parent.parent


def openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI `nullable` → JSON Schema type unions, so jsonschema checks manifests like the API server."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def spec_schema(kind: str) -> dict[str, Any]:
    info = next(i for i in KINDS if i.kind == kind)
    schema = crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    result = openapi_to_jsonschema(schema)
    assert isinstance(result, dict)
    return result


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """What the API server's defaulting does: fill absent properties that have a default, recursively."""
    if isinstance(value, dict) and "properties" in schema:
        for name, sub in schema["properties"].items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                apply_defaults(sub, value[name])
    if isinstance(value, list) and "items" in schema:
        for item in value:
            apply_defaults(schema["items"], item)
    return value


def test_checked_in_crds_equal_the_generated_ones() -> None:
    for name, content in crd_files().items():
        assert (ROOT / "crds" / name).read_text(encoding="utf-8") == content, (
            f"crds/{name} is stale: run `make crds`"
        )


def test_crds_command_prints_the_same_documents() -> None:
    result = CliRunner().invoke(cli, ["crds"])
    assert result.exit_code == 0
    documents = [d for d in yaml.safe_load_all(result.output) if d]
    assert [d["spec"]["names"]["kind"] for d in documents] == ["Trail", "LogRetention"]


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_crd_names_columns_and_subresources(info: Any) -> None:
    document = crd(info)
    names = document["spec"]["names"]
    assert names["categories"] == ["trailkeeper"]
    assert names["shortNames"] == list(info.short_names)
    version = document["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = version["additionalPrinterColumns"]
    default = [c["name"].upper() for c in columns if not c.get("priority")]
    expected = {
        "Trail": ["REGIONS", "LOGGING", "DRIFT", "READY", "AGE"],
        "LogRetention": ["BUCKET", "EXPIRE", "DRIFT", "READY", "AGE"],
    }
    assert default == expected[info.kind]
    # `kubectl get -o wide` shows the priority-1 columns too.
    wide = [c["name"].upper() for c in columns if c.get("priority") == 1]
    wide_expected = {
        "Trail": ["REASON", "MESSAGE", "COMPLIANT", "REGION-COUNT", "LAST-CHECK"],
        "LogRetention": ["REASON", "MESSAGE", "LAST-CHECK"],
    }
    assert wide == wide_expected[info.kind]


def test_schema_is_structural() -> None:
    """No $ref, anyOf, propertyNames or additionalProperties: false — Kubernetes rejects them."""
    for content in crd_files().values():
        for forbidden in ("$ref", "anyOf", "propertyNames", "additionalProperties: false"):
            assert forbidden not in content


def test_every_example_validates_against_the_crd_schema_and_the_models() -> None:
    manifests, problems = load_manifests([ROOT / "examples"])
    assert problems == []
    assert len(manifests) >= 4
    for manifest in manifests:
        jsonschema.validate(manifest.body, spec_schema(manifest.kind))


@pytest.mark.parametrize("kind", ["Trail", "LogRetention"])
def test_crd_defaults_equal_model_defaults(kind: str) -> None:
    manifests, _ = load_manifests([ROOT / "examples"])
    schema = spec_schema(kind)
    for manifest in (m for m in manifests if m.kind == kind):
        defaulted = apply_defaults(schema["properties"]["spec"], copy.deepcopy(manifest.body["spec"]))
        model = SPEC_MODELS[kind]
        from_server = model.model_validate(defaulted).model_dump(by_alias=True, exclude_none=True)
        from_models = manifest.spec.model_dump(by_alias=True, exclude_none=True)
        assert from_server == from_models


def test_schema_rejects_what_the_models_reject_field_by_field() -> None:
    schema = spec_schema("Trail")
    bad = {
        "apiVersion": "trailkeeper.io/v1alpha1",
        "kind": "Trail",
        "metadata": {"name": "x"},
        "spec": {"regions": ["us-east-1"], "destination": {"bucket": "acme"}, "resyncSeconds": 5},
    }
    with pytest.raises(jsonschema.ValidationError) as error:
        jsonschema.validate(bad, schema)
    assert list(error.value.absolute_path) == ["spec", "resyncSeconds"]
