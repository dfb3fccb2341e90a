"""docs/api-reference.md, generated from the models: `python -m trailkeeper.api.reference`.

Field paths, types, descriptions, defaults, required-ness and constraints come from the CRD schema the
models generate (`api.crd.crd`): a field's description is its docstring in the models, the same text
`kubectl explain` prints. What no single field says -- the rules across fields checked by validator
functions -- is written here, and `tests/test_api_reference.py` fails when docs/api-reference.md differs
from `render_reference()`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from trailkeeper.api import GROUP, VERSION
from trailkeeper.api.common import (
    ACCOUNT_ID_PATTERN,
    ORGANIZATION_ID_PATTERN,
    REGION_PATTERN,
    ROLE_ARN_PATTERN,
)
from trailkeeper.api.crd import KINDS, KindInfo, crd
from trailkeeper.api.logretention import _THIRTY_DAY_CLASSES, _WATERFALL
from trailkeeper.api.trail import _ENDPOINT_PATTERNS

__all__ = ["Row", "field_paths", "main", "render_reference", "rows"]

GENERATED_NOTE = (
    "<!-- Generated from the pydantic models by"
    " `python -m trailkeeper.api.reference > docs/api-reference.md`; do not edit by hand."
    " tests/test_api_reference.py fails when this file and the models differ. -->"
)

# Patterns said in words; any other pattern is shown as it is.
_PATTERN_WORDS: dict[str, str] = {
    REGION_PATTERN: "an AWS region name such as `us-east-1`, known to botocore for CloudTrail",
    ACCOUNT_ID_PATTERN: "12 digits",
    ORGANIZATION_ID_PATTERN: "`o-` and 10 to 32 lowercase letters or digits",
    ROLE_ARN_PATTERN: "an IAM role ARN, `arn:<partition>:iam::<12 digits>:role/<path and name>`",
}


# --------------------------------------------------------------------------------------------------
# Walking the schema
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One field of one kind, as the reference table shows it."""

    kind: str
    path: str
    type: str
    required: bool
    description: str
    constraints: tuple[str, ...]


def _kind_schema(info: KindInfo) -> dict[str, Any]:
    schema = crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    assert isinstance(schema, dict)
    return schema


def _walk(
    node: Mapping[str, Any], path: str, required: bool
) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    yield path, node, required
    if node.get("type") == "object" and "properties" in node:
        needed = set(node.get("required") or [])
        for name, child in node["properties"].items():
            yield from _walk(child, f"{path}.{name}", name in needed)
    items = node.get("items")
    if node.get("type") == "array" and isinstance(items, Mapping) and "properties" in items:
        needed = set(items.get("required") or [])
        for name, child in items["properties"].items():
            yield from _walk(child, f"{path}[].{name}", name in needed)


def field_paths(info: KindInfo) -> list[str]:
    """Every field path of a kind below `spec` and `status`, in schema order."""
    schema = _kind_schema(info)
    return [
        path for part in ("spec", "status") for path, _, _ in _walk(schema[part], part, False) if path != part
    ]


def _type(node: Mapping[str, Any]) -> str:
    kind = node.get("type")
    if "enum" in node:
        return "string (enum)"
    if kind == "array":
        items = node.get("items") or {}
        inner = _type(items)
        return "list of objects" if inner == "object" else f"list of {inner}"
    if kind == "object":
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return "JSON object"
        if isinstance(node.get("additionalProperties"), Mapping):
            return f"map of string to {_type(node['additionalProperties'])}"
        return "object"
    return str(kind)


def _range(low: Any, high: Any, unit: str = "") -> str | None:
    suffix = f" {unit}" if unit else ""
    if low is not None and high is not None:
        return f"{low} to {high}{suffix}"
    if high is not None:
        return f"at most {high}{suffix}"
    if low is not None:
        return f"at least {low}{suffix}"
    return None


def _scalar_constraints(node: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    if "enum" in node:
        found.append("one of " + ", ".join(f"`{value}`" for value in node["enum"]))
    length = _range(node.get("minLength"), node.get("maxLength"), "characters")
    if length:
        found.append(length)
    number = _range(node.get("minimum"), node.get("maximum"))
    if number:
        found.append(number)
    pattern = node.get("pattern")
    if pattern:
        found.append(_PATTERN_WORDS.get(pattern) or f"pattern `{pattern}`")
    return found


def _constraints(node: Mapping[str, Any]) -> list[str]:
    found = _scalar_constraints(node)
    if node.get("type") == "array":
        count = _range(node.get("minItems"), node.get("maxItems"), "items")
        if count:
            found.append(count)
        if node.get("x-kubernetes-list-type") == "set":
            found.append("no duplicates (a set)")
        items = node.get("items") or {}
        if items.get("type") != "object":
            found += [f"each: {text}" for text in _scalar_constraints(items)]
    if node.get("type") == "object" and isinstance(node.get("additionalProperties"), Mapping):
        count = _range(None, node.get("maxProperties"), "entries")
        if count:
            found.append(count)
        found += [f"each value: {text}" for text in _scalar_constraints(node["additionalProperties"])]
    for rule in node.get("x-kubernetes-validations") or []:
        found.append(f"{rule['message']} (checked at admission)")
    return found


def rows(info: KindInfo) -> list[Row]:
    """The reference rows of a kind: every spec and status field below the top level."""
    schema = _kind_schema(info)
    result: list[Row] = []
    for part in ("spec", "status"):
        for path, node, required in _walk(schema[part], part, False):
            if path == part:
                continue
            result.append(
                Row(
                    kind=info.kind,
                    path=path,
                    type=_type(node),
                    required=required and part == "spec",
                    description=str(node.get("description", "")),
                    constraints=tuple(_constraints(node)),
                )
            )
    return result


# --------------------------------------------------------------------------------------------------
# Rules no single field can state (the models' validators; the CRD's CEL rules)
# --------------------------------------------------------------------------------------------------


def _endpoint_forms() -> str:
    forms: dict[str, list[str]] = {}
    for protocol, (_, what) in _ENDPOINT_PATTERNS.items():
        forms.setdefault(what, []).append(f"`{protocol}`")
    return "; ".join(f"{' and '.join(protocols)}: {what}" for what, protocols in forms.items())


def _trail_rules() -> list[tuple[str, str]]:
    return [
        ("`multiRegion: true`", "`regions` holds exactly one region (the home region)."),
        ("`globalServiceEventsRegion`", "Must be one of `regions`."),
        (
            "`eventSelectors` / `advancedEventSelectors`",
            "Mutually exclusive: give one of them (or neither, for all management events).",
        ),
        (
            "`destination.bucket` with `{region}`",
            "The name with each region of `regions` put in must be a valid bucket name.",
        ),
        (
            "`trailName` unset",
            "`metadata.name` becomes the trail name and must obey the trail-name rules.",
        ),
        (
            "`trailName`",
            "Immutable: once the trails are named (`status.trailName`), a different name is refused "
            "with `InvalidSpec`.",
        ),
        ("`notifications.subscriptions[].endpoint`", f"Must fit the protocol: {_endpoint_forms()}."),
        (
            "`notifications.subscriptions[].rawMessageDelivery`",
            "`true` only for `sqs`, `http`, `https` and `firehose`.",
        ),
        (
            "`advancedEventSelectors[].fieldSelectors[]`",
            "At least one of `equals`, `startsWith`, `endsWith`, `notEquals`, `notStartsWith`, "
            "`notEndsWith` is non-empty.",
        ),
        ("`cloudWatchLogs`", "`logGroupArn` and `roleArn` both or neither."),
        (
            "`monitoring`",
            "Sets the trails' CloudWatch Logs delivery itself: `cloudWatchLogs` must be unset. Needs "
            "`notifications` or `monitoring.alarmTopicArn` (the alarms' topic).",
        ),
        (
            "`regions`, `insights`, `destination.sourceAccounts`, `notifications.subscriptions`",
            "No duplicates (subscriptions by `protocol` and `endpoint`).",
        ),
    ]


def _retention_rules() -> list[tuple[str, str]]:
    thirty = " and ".join(f"`{c}`" for c in sorted(_THIRTY_DAY_CLASSES))
    waterfall = " → ".join(f"`{c}`" for c in _WATERFALL)
    return [
        ("`trailRef` / `bucket`", "Exactly one of them."),
        ("`region`", "Only together with `bucket` (a Trail's buckets are in its regions)."),
        (
            "actions",
            "At least one of `transitions`, `expirationDays`, `noncurrentVersionExpirationDays`, "
            "`abortIncompleteMultipartUploadDays` (S3 refuses a rule without an action).",
        ),
        ("`transitions[].days`", "Strictly ascending."),
        (
            "`transitions[].storageClass`",
            f"Each class further down S3's waterfall than the one before: {waterfall}.",
        ),
        (
            f"transitions to {thirty}",
            "At least 30 days after creation, and objects stay 30 days in that class before the next "
            "transition.",
        ),
        ("`expirationDays`", "Later than the last transition's `days`."),
    ]


def _admission_rules(info: KindInfo) -> list[str]:
    admission = info.admission
    found = [f"`{path or '(object)'}`: {rule['message']}" for path, rule in admission.rules]
    found += [f"`{path}` is a list of type `set`: duplicates are refused" for path in admission.sets]
    for path, keys in admission.maps:
        named = ", ".join(f"`{key}`" for key in keys)
        found.append(f"`{path}` is a list of type `map` keyed by {named}: a repeated key is refused")
    return found


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _field_table(table_rows: list[Row], *, spec: bool) -> list[str]:
    lines = (
        ["| Field | Type | Required | Description |", "|---|---|---|---|"]
        if spec
        else ["| Field | Type | Description |", "|---|---|---|"]
    )
    for row in table_rows:
        text = row.description
        if row.constraints:
            text = f"{text} *Constraints:* {'; '.join(row.constraints)}.".strip()
        cells = [f"`{row.path}`", row.type]
        if spec:
            cells.append("yes" if row.required else "")
        cells.append(text)
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return lines


def _rule_table(rules: list[tuple[str, str]]) -> list[str]:
    lines = ["| Where | Rule |", "|---|---|"]
    lines += [f"| {_cell(where)} | {_cell(rule)} |" for where, rule in rules]
    return lines


def _columns(info: KindInfo) -> list[str]:
    lines = ["| Column | From |", "|---|---|"]
    for column in info.columns:
        lines.append(f"| {column['name'].upper()} | `{_cell(column['jsonPath'])}` |")
    return lines


def _kind_section(info: KindInfo, rules: list[tuple[str, str]]) -> list[str]:
    all_rows = rows(info)
    short = ", ".join(f"`{name}`" for name in info.short_names)
    lines = [
        f"## {info.kind}",
        "",
        f"`apiVersion: {GROUP}/{VERSION}`, `kind: {info.kind}`; resource `{info.plural}`, short name "
        f"{short}, namespaced.",
        "",
        "`kubectl get` columns:",
        "",
        *_columns(info),
        "",
        f"### {info.kind} spec",
        "",
        *_field_table([r for r in all_rows if r.path.startswith("spec.")], spec=True),
        "",
        f"### {info.kind} rules across fields",
        "",
        "Checked by the models: `trailkeeper plan`/`apply`/`diff` refuse the manifest (exit 1), the operator "
        "sets `Ready=False` with reason `InvalidSpec` and sends nothing to AWS.",
        "",
        *_rule_table(rules),
        "",
    ]
    admission = _admission_rules(info)
    if admission:
        lines += [
            "A real API server also enforces these at admission (CEL rules and list types in the CRD):",
            "",
            *[f"- {item}" for item in admission],
            "",
        ]
    lines += [
        f"### {info.kind} status",
        "",
        *_field_table([r for r in all_rows if r.path.startswith("status.")], spec=False),
        "",
    ]
    return lines


def render_reference() -> str:
    """docs/api-reference.md, as generated from the models."""
    rules = {"Trail": _trail_rules(), "LogRetention": _retention_rules()}
    lines = [
        "# API reference",
        "",
        GENERATED_NOTE,
        "",
        f"Group `{GROUP}`, version `{VERSION}`. Both kinds are namespaced and belong to the category "
        "`trailkeeper` (`kubectl get trailkeeper` lists both).",
        "",
        "Defaults are applied by the CRD schema and again by the models, so `trailkeeper plan` and the "
        "operator see the same values. Unknown fields are refused (a misspelt field is an error, not "
        "ignored). Paths use `[]` for the items of a list. A field with no default and not required is "
        "unset (null) when left out.",
        "",
        "Besides the spec, every manifest needs `apiVersion: trailkeeper.io/v1alpha1`, a `kind` of "
        "`Trail` or `LogRetention`, and a `metadata.name` that is a DNS-1123 name (lowercase letters, "
        "digits, `-`); `metadata.namespace` defaults to `default`.",
        "",
    ]
    for info in KINDS:
        lines += _kind_section(info, rules[info.kind])
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.write(render_reference())


if __name__ == "__main__":
    main()
