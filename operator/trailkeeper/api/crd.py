"""CustomResourceDefinitions generated from the models: the models are the one source of the schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from trailkeeper.api import GROUP, VERSION
from trailkeeper.api.admission import LOG_RETENTION_ADMISSION, TRAIL_ADMISSION, Admission
from trailkeeper.api.logretention import LogRetentionSpec, LogRetentionStatus
from trailkeeper.api.trail import TrailSpec, TrailStatus

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
    # What `kubectl explain <kind>` prints first.
    description: str
    # CEL rules and list types a real API server enforces at admission; the models enforce them again.
    admission: Admission


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
    description=(
        "AWS CloudTrail trails kept as the spec says: one region-scoped trail per listed region (or one "
        "multi-region trail), the S3 bucket they deliver to and its policy, an optional SNS topic and "
        "CloudWatch Logs delivery, event selectors, Insights and tags. Changes made in AWS by hand are "
        "found every resyncSeconds and corrected or reported (driftPolicy)."
    ),
    admission=TRAIL_ADMISSION,
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
    description=(
        "An S3 lifecycle rule (storage-class transitions, expiry) kept on the bucket(s) of a Trail, or on "
        "a given bucket. trailkeeper edits only its own rule and leaves the bucket's other rules alone."
    ),
    admission=LOG_RETENTION_ADMISSION,
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


def _explained(node: Any) -> Any:
    """Descriptions as `kubectl explain` prints them: one paragraph, ending with the default if any."""
    if isinstance(node, list):
        return [_explained(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _explained(value) for key, value in node.items()}
    if "description" in out:
        text = " ".join(str(out["description"]).split())
        if "default" in out:
            default = out["default"]
            if isinstance(default, dict):
                default = {k: v for k, v in default.items() if v is not None}
            text = f"{text} Default: `{json.dumps(default, separators=(', ', ': '))}`."
        out["description"] = text
    return out


def schema_at(root: dict[str, Any], path: str) -> dict[str, Any]:
    """The schema node at `path` below the object's root (`spec.regions`, `[]` for list items)."""
    node = root
    for step in filter(None, path.split(".")):
        name = step.removesuffix("[]")
        node = node["properties"][name]
        if step.endswith("[]"):
            node = node["items"]
    return node


def _admit(root: dict[str, Any], admission: Admission) -> None:
    for path in admission.sets:
        schema_at(root, path)["x-kubernetes-list-type"] = "set"
    for path, keys in admission.maps:
        schema_at(root, path).update(
            {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}
        )
    for path, rule in admission.rules:
        schema_at(root, path).setdefault("x-kubernetes-validations", []).append(dict(rule))


def _strip_defaults(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("default", None)
        for value in node.values():
            _strip_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _strip_defaults(value)


def _no_defaults_in_atomic_lists(node: dict[str, Any]) -> None:
    """No schema default inside the items of an atomic list (the models still apply them, and the
    descriptions still say them). Server-side apply compares an atomic list as one value: the stored list
    would carry defaults that the applied one does not, and a second field manager (kubectl after Flux,
    Flux after kubectl) would meet a conflict over a list both wrote the same."""
    for sub in (node.get("properties") or {}).values():
        _no_defaults_in_atomic_lists(sub)
    items = node.get("items")
    if isinstance(items, dict):
        if node.get("x-kubernetes-list-type", "atomic") == "atomic":
            _strip_defaults(items)
        else:
            _no_defaults_in_atomic_lists(items)


def crd(info: KindInfo) -> dict[str, Any]:
    spec_schema = _explained(model_schema(info.spec))
    status_schema = _explained(model_schema(info.status, mode="serialization"))
    status_schema.pop("required", None)
    root: dict[str, Any] = {
        "type": "object",
        "description": info.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": f"API group and version of the object: `{GROUP}/{VERSION}`.",
            },
            "kind": {"type": "string", "description": f"Kind of the object: `{info.kind}`."},
            # The API server forbids describing metadata; kubectl explain shows ObjectMeta's own text.
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    _admit(root, info.admission)
    _no_defaults_in_atomic_lists(spec_schema)
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
                    "schema": {"openAPIV3Schema": root},
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
