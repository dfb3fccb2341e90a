"""Reading manifests from files: YAML documents → validated specs, or one problem per bad field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from trailkeeper.api.logretention import LogRetentionSpec
from trailkeeper.api.trail import TrailSpec

API_VERSION = "trailkeeper.io/v1alpha1"
SPEC_MODELS: dict[str, type[TrailSpec] | type[LogRetentionSpec]] = {
    "Trail": TrailSpec,
    "LogRetention": LogRetentionSpec,
}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# A model-level message may name its field first ("regions: …"); that becomes the problem's path.
_FIELD_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9]*(?:[.\[][A-Za-z0-9\]]*)*): (.*)$", re.DOTALL)


@dataclass(frozen=True)
class FieldProblem:
    """A field of an object and why its value is refused."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Problem:
    """One problem of one object in one file, as printed to the user."""

    file: str
    object: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.object}: {self.path}: {self.reason}"


@dataclass(frozen=True)
class Manifest:
    """A valid object read from a file."""

    file: str
    kind: str
    namespace: str
    name: str
    spec: TrailSpec | LogRetentionSpec
    body: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def _loc_to_path(prefix: str, loc: Iterable[int | str]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "list[", "dict[")) or part in ("str", "int", "bool"):
            # pydantic's names of validator steps and union branches are not fields
            continue
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            path += f".{part}" if path else part
        else:
            path += f"[{part!r}]"
    return path


def validation_problems(error: ValidationError, prefix: str = "spec") -> list[FieldProblem]:
    """Turn pydantic's errors into one problem per field, with camelCase paths as the user wrote them."""
    problems: list[FieldProblem] = []
    for item in error.errors(include_url=False):
        path = _loc_to_path(prefix, item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        match = _FIELD_PREFIX.match(message)
        if match and item["type"] == "value_error":
            path = f"{path}.{match.group(1)}" if path else match.group(1)
            message = match.group(2)
        if item["type"] == "string_pattern_mismatch":
            pattern = (item.get("ctx") or {}).get("pattern", "")
            message = f"{item['input']!r} does not have the required form (pattern {pattern})"
        if item["type"] == "extra_forbidden":
            message = "unknown field (not part of the API; check its spelling)"
        problems.append(FieldProblem(path, message))
    return problems


def parse_spec(kind: str, spec: Any) -> TrailSpec | LogRetentionSpec | list[FieldProblem]:
    """Validate a spec of `kind`; the model, or the problems naming each bad field."""
    model: type[BaseModel] = SPEC_MODELS[kind]
    if not isinstance(spec, dict):
        return [FieldProblem("spec", "must be an object")]
    try:
        parsed = model.model_validate(spec)
    except ValidationError as error:
        return validation_problems(error)
    assert isinstance(parsed, TrailSpec | LogRetentionSpec)
    return parsed


def check_object(body: Any) -> tuple[str, str, str, list[FieldProblem]]:
    """(kind, namespace, name, problems) of a Kubernetes object body of one of our kinds."""
    if not isinstance(body, dict):
        return ("?", "?", "?", [FieldProblem("", "a manifest must be a YAML mapping")])
    kind = str(body.get("kind", "?"))
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    name = str(metadata.get("name", "?"))
    namespace = str(metadata.get("namespace") or "default")
    problems: list[FieldProblem] = []
    if body.get("apiVersion") != API_VERSION:
        problems.append(FieldProblem("apiVersion", f"must be {API_VERSION}, not {body.get('apiVersion')!r}"))
    if kind not in SPEC_MODELS:
        problems.append(FieldProblem("kind", f"must be one of {', '.join(SPEC_MODELS)}, not {kind!r}"))
        return (kind, namespace, name, problems)
    if not _NAME.fullmatch(name) or len(name) > 253:
        problems.append(
            FieldProblem("metadata.name", "must be a DNS-1123 label of lowercase letters, digits and '-'")
        )
    if not _NAME.fullmatch(namespace) or len(namespace) > 63:
        problems.append(FieldProblem("metadata.namespace", "must be a DNS-1123 label"))
    if "spec" not in body:
        problems.append(FieldProblem("spec", "is required"))
        return (kind, namespace, name, problems)
    parsed = parse_spec(kind, body["spec"])
    if isinstance(parsed, list):
        problems.extend(parsed)
    elif isinstance(parsed, TrailSpec) and parsed.trail_name is None:
        # metadata.name becomes the trail name; it must then obey the trail-name rules.
        from trailkeeper.api.trail import trail_name_problem

        reason = trail_name_problem(name)
        if reason:
            problems.append(FieldProblem("metadata.name", f"is used as the trail name and {reason}"))
    return (kind, namespace, name, problems)


def _files(paths: Iterable[str | Path]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file()
            )
        else:
            yield path


# libyaml's parser, in the PyPI wheels: the pure-Python one took most of a pipeline `diff`'s loading time.
try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # a PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class _StrictLoader(_SafeLoader):
    """YAML's safe loader refusing a mapping that repeats a key: PyYAML keeps the last value silently,
    where kubectl refuses duplicate fields, and `adopt: false` … `adopt: true` must not mean true."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} at line {line}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_manifests(paths: Iterable[str | Path]) -> tuple[list[Manifest], list[Problem]]:
    """Every object of our kinds in the files (directories recursively), and every problem found."""
    manifests: list[Manifest] = []
    problems: list[Problem] = []
    for path in _files(paths):
        try:
            documents = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_StrictLoader))
        except (OSError, UnicodeDecodeError) as error:
            problems.append(Problem(str(path), "-", "", f"cannot read: {error}"))
            continue
        except yaml.YAMLError as error:
            problems.append(Problem(str(path), "-", "", f"not valid YAML: {error}"))
            continue
        for document in documents:
            if document is None:
                continue
            kind, namespace, name, field_problems = check_object(document)
            ref = f"{kind} {namespace}/{name}"
            if field_problems:
                problems.extend(Problem(str(path), ref, p.path, p.reason) for p in field_problems)
                continue
            parsed = parse_spec(kind, document["spec"])
            assert not isinstance(parsed, list)
            manifests.append(Manifest(str(path), kind, namespace, name, parsed, document))
    seen: dict[tuple[str, str, str], str] = {}
    for manifest in manifests:
        key = (manifest.kind, manifest.namespace, manifest.name)
        if key in seen:
            problems.append(
                Problem(
                    manifest.file, manifest.ref, "metadata.name", f"duplicate of the object in {seen[key]}"
                )
            )
        seen[key] = manifest.file
    return manifests, problems
