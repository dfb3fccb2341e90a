"""CustomResourceDefinitions generated from the models: the models are the one source of the schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from trailkeeper.api.logretention import LogRetentionSpec, LogRetentionStatus
from trailkeeper.api.trail import TrailSpec, TrailStatus

GROUP = "trailkeeper.io"
VERSION = "v1alpha1"
CATEGORY = "trailkeeper"


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[dict[str, Any], ...]
    # CEL rules a real API server enforces at admission; the models enforce the same rules again.
    spec_rules: tuple[dict[str, str], ...] = ()
    field_rules: tuple[tuple[str, dict[str, str]], ...] = ()
    set_fields: tuple[str, ...] = ()


def _condition_column(name: str, condition: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="{condition}")].status',
    }


_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _ready_column(name: str, field: str) -> dict[str, Any]:
    """A field of the Ready condition, shown by `kubectl get -o wide` only (priority 1)."""
    return {
        "name": name,
        "type": "string",
        "priority": 1,
        "jsonPath": f'.status.conditions[?(@.type=="Ready")].{field}',
    }


# `-o wide` adds why an object is (not) Ready and how long ago AWS was last compared with its spec.
_WIDE = (
    _ready_column("Reason", "reason"),
    _ready_column("Message", "message"),
)
_LAST_CHECK = {"name": "Last-Check", "type": "date", "priority": 1, "jsonPath": ".status.lastDriftCheckTime"}

TRAIL = KindInfo(
    kind="Trail",
    plural="trails",
    singular="trail",
    short_names=("trl",),
    spec=TrailSpec,
    status=TrailStatus,
    columns=(
        {"name": "Regions", "type": "string", "jsonPath": ".spec.regions"},
        {"name": "Logging", "type": "string", "jsonPath": ".status.regions[*].isLogging"},
        _condition_column("Drift", "Drifted"),
        _condition_column("Ready", "Ready"),
        _AGE,
        *_WIDE,
        {**_condition_column("Compliant", "Compliant"), "priority": 1},
        {"name": "Region-Count", "type": "integer", "priority": 1, "jsonPath": ".status.regionCount"},
        _LAST_CHECK,
    ),
    spec_rules=(
        {
            "rule": "!self.multiRegion || size(self.regions) == 1",
            "message": "regions: a multiRegion trail has exactly one (home) region",
        },
        {
            "rule": "!has(self.globalServiceEventsRegion) || self.globalServiceEventsRegion in self.regions",
            "message": "globalServiceEventsRegion must be one of regions",
        },
        {
            "rule": "size(self.eventSelectors) == 0 || size(self.advancedEventSelectors) == 0",
            "message": "eventSelectors and advancedEventSelectors are mutually exclusive",
        },
    ),
    field_rules=(("trailName", {"rule": "self == oldSelf", "message": "trailName is immutable"}),),
    set_fields=("regions", "insights"),
)

LOG_RETENTION = KindInfo(
    kind="LogRetention",
    plural="logretentions",
    singular="logretention",
    short_names=("lret",),
    spec=LogRetentionSpec,
    status=LogRetentionStatus,
    columns=(
        {"name": "Bucket", "type": "string", "jsonPath": ".status.buckets[*].bucket"},
        {"name": "Expire", "type": "integer", "jsonPath": ".spec.expirationDays"},
        _condition_column("Drift", "Drifted"),
        _condition_column("Ready", "Ready"),
        _AGE,
        *_WIDE,
        _LAST_CHECK,
    ),
    spec_rules=(
        {
            "rule": "has(self.trailRef) != has(self.bucket)",
            "message": "give exactly one of trailRef and bucket",
        },
    ),
)

KINDS = (TRAIL, LOG_RETENTION)


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Pydantic's JSON schema → a Kubernetes structural schema.

    $refs are inlined, `anyOf [X, null]` becomes X with `nullable`, null defaults and titles go, and
    `additionalProperties: false` goes too (Kubernetes forbids it beside `properties`; pruning drops
    unknown fields instead, and the models reject them).
    """
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b != {"type": "null"}]
        nullable = len(branches) < len(node["anyOf"])
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(branches) == 1:
            result = _structural({**branches[0], **rest}, defs)
            if nullable:
                result["nullable"] = True
            return result
    out: dict[str, Any] = {}
    for key, value in node.items():
        # propertyNames is JSON Schema but not part of Kubernetes' schema language (the models check keys).
        if key in ("title", "$defs", "propertyNames") or (key == "additionalProperties" and value is False):
            continue
        if key == "default" and value is None:
            continue
        if key in ("properties",):
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        else:
            out[key] = _structural(value, defs)
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        # A free-form JSON object (an SNS filter policy): kept as given.
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("type") == "object" and out.get("additionalProperties") is True:
        del out["additionalProperties"]
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def model_schema(model: type[BaseModel], mode: str = "validation") -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode=mode)  # type: ignore[arg-type]
    schema = _structural(raw, raw.get("$defs", {}))
    assert isinstance(schema, dict)
    return schema


def crd(info: KindInfo) -> dict[str, Any]:
    spec_schema = model_schema(info.spec)
    for field in info.set_fields:
        # Tells a real API server the list is a set: duplicates are rejected at admission.
        spec_schema["properties"][field]["x-kubernetes-list-type"] = "set"
    for field, rule in info.field_rules:
        spec_schema["properties"][field].setdefault("x-kubernetes-validations", []).append(dict(rule))
    if info.spec_rules:
        spec_schema["x-kubernetes-validations"] = [dict(rule) for rule in info.spec_rules]
    status_schema = model_schema(info.status, mode="serialization")
    status_schema.pop("required", None)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{info.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [dict(c) for c in info.columns],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_yaml(info: KindInfo) -> str:
    header = "# Generated from the pydantic models by `trailkeeper crds`; do not edit by hand.\n"
    return header + yaml.safe_dump(crd(info), sort_keys=False, width=120)


def crd_files() -> dict[str, str]:
    """File name → content of every CRD, as kept in crds/."""
    return {f"{info.singular}.yaml": crd_yaml(info) for info in KINDS}
