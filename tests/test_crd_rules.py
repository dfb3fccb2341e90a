"""The CRDs' admission rules, evaluated in process: schema, list types and CEL rules.

What a real API server refuses at admission is decided by the openAPIV3Schema (types, patterns, bounds),
the list types and the CEL rules. Here the schema is checked with jsonschema and the CEL rules with
cel-python (RE2 regexes, like the API server's), so every rule is known to accept the examples, to refuse
the invalid manifests it is meant for, and to name their field.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pytest
import yaml

from trailkeeper.api.admission import LOG_RETENTION_ADMISSION, TRAIL_ADMISSION
from trailkeeper.api.crd import KINDS, KindInfo, crd, schema_at

ROOT = Path(__file__).parent.parent
INVALID = sorted((ROOT / "tests" / "invalid").glob("*.yaml"))
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
INFO = {info.kind: info for info in KINDS}

# Refused by the models only (the operator reports InvalidSpec): what the schema language cannot state.
OPERATOR_ONLY = {
    # The name with the longest region put in for {region} is too long: needs the region list.
    "bucket-template-too-long",
    # A defaulted trail name is metadata.name, whose rules the spec's schema cannot reach.
    "metadata-name-as-trail-name",
    # Shaped like a region but unknown to botocore's endpoint data.
    "unknown-region",
}
# Decided by the API server before the schema: unknown fields (kubectl's strict field validation) and an
# apiVersion it does not serve.
NOT_SCHEMA = {"unknown-field", "wrong-api-version"}

_CEL = celpy.Environment()


def _sum(items: Any) -> Any:
    """The Kubernetes CEL list library's sum() (the admission rules' selector totals use it)."""
    total = celpy.celtypes.IntType(0)
    for item in items:
        total = total + item
    return total


# What the API server adds to standard CEL, as far as the rules use it.
_KUBERNETES_FUNCTIONS = {"sum": _sum}


def root_schema(kind: str) -> dict[str, Any]:
    schema = crd(INFO[kind])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def as_jsonschema(node: Any) -> Any:
    """OpenAPI `nullable` → JSON Schema type unions; Kubernetes extensions dropped (checked apart)."""
    if isinstance(node, list):
        return [as_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def defaulted(schema: dict[str, Any], value: Any) -> Any:
    """The API server's defaulting, then its view of null: a null field is an absent one in CEL."""
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name, sub in props.items():
            if value.get(name) is None and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
        return {
            k: defaulted(props.get(k, schema.get("additionalProperties") or {}), v)
            for k, v in value.items()
            if v is not None
        }
    if isinstance(value, list):
        return [defaulted(schema.get("items") or {}, item) for item in value]
    return value


def nodes(value: Any, path: str, shown: str = "") -> Iterator[tuple[str, Any]]:
    """The values at a rule's path (`[]` steps into every item), with the path as the API server shows it."""
    if not path:
        yield shown, value
        return
    step, _, rest = path.partition(".")
    name = step.removesuffix("[]")
    if not isinstance(value, dict) or name not in value:
        return
    child, where = value[name], f"{shown}.{name}".lstrip(".")
    if step.endswith("[]"):
        for index, item in enumerate(child):
            yield from nodes(item, rest, f"{where}[{index}]")
    else:
        yield from nodes(child, rest, where)


def cel(rule: str, self_value: Any, old_value: Any = None) -> bool:
    activation = {"self": celpy.json_to_cel(self_value)}
    if old_value is not None:
        activation["oldSelf"] = celpy.json_to_cel(old_value)
    result = _CEL.program(_CEL.compile(rule), functions=_KUBERNETES_FUNCTIONS).evaluate(activation)
    assert isinstance(result, celpy.celtypes.BoolType), f"{rule!r} gave {result!r}"
    return bool(result)


def refusals(body: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """(field path, message) of every admission check `body` fails, as a real API server would."""
    kind = body["kind"]
    schema = root_schema(kind)
    found = [
        (
            "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip("."),
            error.message,
        )
        for error in jsonschema.Draft7Validator(as_jsonschema(schema)).iter_errors(body)
    ]
    if found:
        return found  # the API server runs CEL rules only on values of the right shape
    value = defaulted(schema, copy.deepcopy(body))
    old_value = defaulted(schema, copy.deepcopy(old)) if old else None
    admission = TRAIL_ADMISSION if kind == "Trail" else LOG_RETENTION_ADMISSION
    for path in admission.sets:
        for where, items in nodes(value, path):
            if len(set(map(str, items))) != len(items):
                found.append((where, "duplicate entry in a set"))
    for path, keys in admission.maps:
        for where, items in nodes(value, path):
            seen = [tuple(item[k] for k in keys) for item in items]
            if len(set(seen)) != len(seen):
                found.append((where, f"duplicate {keys} in a map list"))
    for path, rule in admission.rules:
        transition = "oldSelf" in rule["rule"]
        if transition and old_value is None:
            continue
        olds = dict(nodes(old_value, path)) if transition else {}
        for where, current in nodes(value, path):
            if transition and where not in olds:
                continue
            if not cel(rule["rule"], current, olds.get(where)):
                at = f"{where}{rule.get('fieldPath', '')}".lstrip(".")
                found.append((at, rule["message"]))
    return found


def load(path: Path) -> dict[str, Any]:
    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(body, dict)
    return body


def expected_path(path: Path) -> str:
    return path.read_text(encoding="utf-8").splitlines()[0].removeprefix("# expect: ").strip()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_passes_every_admission_rule(path: Path) -> None:
    for body in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if body:
            assert refusals(body) == []


@pytest.mark.parametrize("path", [p for p in INVALID if p.stem not in NOT_SCHEMA], ids=lambda p: p.stem)
def test_invalid_manifest_is_refused_at_admission_naming_its_field_or_left_to_the_operator(
    path: Path,
) -> None:
    found = refusals(load(path))
    if path.stem in OPERATOR_ONLY:
        assert found == [], f"{path.name} is refused at admission now: take it out of OPERATOR_ONLY"
        return
    assert found, f"{path.name} passes every admission rule"
    expected = expected_path(path)
    # A list rule names the list, an item rule the item's field: either way one path holds the other.
    assert any(expected.startswith(at) or at.startswith(expected) for at, _ in found), (expected, found)


def test_the_invalid_corpus_is_mostly_refused_at_admission() -> None:
    assert len(INVALID) - len(OPERATOR_ONLY) - len(NOT_SCHEMA) >= 50


def _trail(name: str, trail_name: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"regions": ["us-east-1"], "destination": {"bucket": "acme-audit"}}
    if trail_name is not None:
        spec["trailName"] = trail_name
    return {
        "apiVersion": "trailkeeper.io/v1alpha1",
        "kind": "Trail",
        "metadata": {"name": name},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("old", "new", "refused"),
    [
        (None, None, False),
        ("audit", "audit", False),
        ("audit", "audit-2", True),
        # Unset, the trail name is metadata.name: writing it out is no change, another name is.
        (None, "audit", False),
        (None, "other", True),
        ("audit", None, False),
        ("other", None, True),
    ],
)
def test_the_trail_name_is_immutable_whether_set_or_defaulted(
    old: str | None, new: str | None, refused: bool
) -> None:
    found = refusals(_trail("audit", new), old=_trail("audit", old))
    assert found == ([("spec.trailName", found[0][1])] if refused else [])


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_what_a_rule_walks_is_bounded_so_its_cost_is(info: KindInfo) -> None:
    """The API server estimates a rule's cost from maxItems/maxLength and refuses an unbounded one."""
    admission = TRAIL_ADMISSION if info.kind == "Trail" else LOG_RETENTION_ADMISSION
    schema = root_schema(info.kind)
    unbounded = []
    for path, rule in admission.rules:
        if not path:
            continue  # the root rule reads only spec.trailName and metadata.name, compared once
        node = schema_at(schema, path)
        walked = [(path, node)]
        if node.get("type") == "object" and "properties" in node:
            # A rule on an object reads only the fields it names; has() and size() cost the same for any
            # length, so a field only counted or tested for presence is not walked.
            walking = re.sub(r"(has|size)\(self\.\w+\)", "", rule["rule"])
            named = set(re.findall(r"self\.(\w+)", walking))
            walked = [(f"{path}.{name}", node["properties"][name]) for name in sorted(named)]
        for where, node in (found for start in walked for found in _subtree(start[1], start[0])):
            if node.get("type") == "array" and "maxItems" not in node:
                unbounded.append(where)
            if node.get("type") == "string" and "maxLength" not in node and "enum" not in node:
                unbounded.append(where)
            if isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
                unbounded.append(where)
    assert sorted(set(unbounded)) == []


def _subtree(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from _subtree(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _subtree(node[key], f"{path}[]")


def test_lists_of_unique_scalars_are_sets_and_subscriptions_a_map() -> None:
    trail = root_schema("Trail")
    for path in ("spec.regions", "spec.insights", "spec.destination.sourceAccounts"):
        assert schema_at(trail, path)["x-kubernetes-list-type"] == "set"
    subscriptions = schema_at(trail, "spec.notifications.subscriptions")
    assert subscriptions["x-kubernetes-list-type"] == "map"
    assert subscriptions["x-kubernetes-list-map-keys"] == ["protocol", "endpoint"]
    # Map keys must be required (or defaulted) fields of the items.
    assert {"protocol", "endpoint"} <= set(subscriptions["items"]["required"])


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_every_rule_has_a_message_and_a_valid_field_path(info: KindInfo) -> None:
    admission = TRAIL_ADMISSION if info.kind == "Trail" else LOG_RETENTION_ADMISSION
    schema = root_schema(info.kind)
    for path, rule in admission.rules:
        assert rule["message"], rule
        if "fieldPath" in rule:
            schema_at(schema_at(schema, path), rule["fieldPath"].lstrip("."))
        assert rule.get("reason", "FieldValueInvalid") in (
            "FieldValueInvalid",
            "FieldValueForbidden",
            "FieldValueRequired",
            "FieldValueDuplicate",
        )
