"""The emulated Kubernetes API of the sandbox and of the end-to-end tests.

kmock's ``KubernetesEmulator`` stores objects and answers CRUD, lists and watches over real HTTP,
but it keeps none of the bookkeeping that kopf and kubectl depend on. :class:`KubeEmulator`
keeps kmock's HTTP server, request parsing, discovery endpoints and object store, and replaces
the write path with one that behaves like a kube-apiserver for what this project uses:

* ``resourceVersion`` (one counter for all objects, bumped on every write), ``uid``,
  ``creationTimestamp``, ``generation`` (starts at 1; bumped when anything outside ``metadata``
  and, for kinds with a status subresource, ``status`` changes), ``generateName``;
* writes that change nothing are no-ops: no new resourceVersion, no watch event;
* the ``/status`` subresource: a status write changes only ``status``, a main write never does;
* merge patch, JSON patch (a failing ``test`` op answers 422), PUT; a ``resourceVersion`` in the
  body is a precondition (409 when stale);
* deletion: finalizers hold the object with a ``deletionTimestamp`` until they are all removed;
  no new finalizers while deleting; deleting a namespace deletes its content and then the
  namespace; deleting a CRD deletes its objects and then the CRD;
* lists with ``kind: <Kind>List`` and the list's resourceVersion; label and field selectors;
* watches as JSON lines: the current objects as ADDED, or the changes after a given
  resourceVersion (410 Gone when that is older than the kept history), ``timeoutSeconds``,
  ``sendInitialEvents``; every event carries the object as written;
* ``/api/v1/namespaces`` (kmock's path parser reads ``namespaces/X`` as a namespace, never as the
  object X); namespaced objects need their namespace to exist, like in a cluster;
* CRDs: creating one serves its kind (discovery with short names and categories) and marks it
  Established; kubectl's Table requests are answered from its ``additionalPrinterColumns``,
  evaluated as the apiserver does (first match only, ``date`` cells humanized server-side).

Not emulated: schema validation and defaulting, admission, RBAC, server-side apply (415),
strategic merge for built-in kinds (applied as a merge patch), ``dryRun`` (400 rather than a
silent write), chunked lists (``limit`` is ignored and everything is returned), watch bookmarks
other than the end of the initial events.

kopf against it: log in with :func:`login_to` from an ``@kopf.on.login`` handler, or let kopf's
default login read a kubeconfig written by :func:`write_kubeconfig` (the ``kubernetes`` client
reads ``KUBECONFIG`` when it is imported: set it before that, e.g. in a fresh process).
Cluster-wide and namespaced operation both work; run ``standalone`` (no peering CRDs exist).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import dataclasses
import datetime
import decimal
import functools
import json
import math
import os
import pathlib
import re
import secrets
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Final, Self

import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
import kmock
import kopf
import yaml

JsonObject = dict[str, Any]
ObjectKey = tuple[kmock.resource, str | None, str]

NAMESPACES: Final = kmock.resource("", "v1", "namespaces")
CRDS: Final = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
CRD_CLEANUP_FINALIZER: Final = "customresourcecleanup.apiextensions.k8s.io"
# The namespaces every cluster starts with; kubectl and kopf expect "default" to exist.
INITIAL_NAMESPACES: Final = ("default", "kube-system", "kube-public", "kube-node-lease")

_CUSTOM_RESOURCE_VERBS: Final = frozenset(
    {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
)
# Kubernetes' generateName alphabet: no vowels (no accidental words), no look-alike characters.
_GENERATE_NAME_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"
_DNS_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# Set by the server only; whatever a client sends for them is replaced by the stored values.
_SERVER_METADATA: Final = (
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "resourceVersion",
)
_NAMESPACES_PATH: Final = re.compile(
    r"/api/v1/namespaces(?:/(?P<name>[^/]+)(?:/(?P<sub>status|finalize))?)?/?"
)


# ---------------------------------------------------------------------------------------------
# Errors: Kubernetes Status answers, with the reasons and messages clients match on
# ---------------------------------------------------------------------------------------------


def _qualified(resource: kmock.resource) -> str:
    return f"{resource.plural}.{resource.group}" if resource.group else f"{resource.plural}"


def _status_error(code: int, reason: str, message: str, **details: Any) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=code, reason=reason, message=message, details=details)


def _object_details(resource: kmock.resource, name: str) -> dict[str, Any]:
    return {"name": name, "group": resource.group, "kind": resource.plural}


def _not_found(resource: kmock.resource, name: str) -> kmock.KubernetesError:
    message = f'{_qualified(resource)} "{name}" not found'
    return _status_error(404, "NotFound", message, **_object_details(resource, name))


def _unknown_resource() -> kmock.KubernetesError:
    return _status_error(404, "NotFound", "the server could not find the requested resource")


def _already_exists(resource: kmock.resource, name: str) -> kmock.KubernetesError:
    message = f'{_qualified(resource)} "{name}" already exists'
    return _status_error(409, "AlreadyExists", message, **_object_details(resource, name))


def _conflict(resource: kmock.resource, name: str, why: str) -> kmock.KubernetesError:
    message = f'Operation cannot be fulfilled on {_qualified(resource)} "{name}": {why}'
    return _status_error(409, "Conflict", message, **_object_details(resource, name))


def _invalid(kind: str, resource: kmock.resource, name: str, field: str, why: str) -> kmock.KubernetesError:
    qualified_kind = f"{kind}.{resource.group}" if resource.group else kind
    message = f'{qualified_kind} "{name}" is invalid: {field}: {why}'
    cause = {"reason": "FieldValueInvalid", "message": why, "field": field}
    return _status_error(422, "Invalid", message, name=name, group=resource.group, kind=kind, causes=[cause])


def _bad_request(message: str) -> kmock.KubernetesError:
    return _status_error(400, "BadRequest", message, causes=[{"message": message}])


# ---------------------------------------------------------------------------------------------
# Time: timestamps as the apiserver writes them, ages as kubectl shows them
# ---------------------------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _timestamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(seconds: float) -> str:
    """An age the way kubectl shows it (apimachinery's ``duration.HumanDuration``): 45s, 3m20s, 2d4h."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        return f"{minutes}m{whole % 60}s" if whole % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = divmod(hours // 24, 365)
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


# ---------------------------------------------------------------------------------------------
# Printer columns: the subset of kubectl's JSONPath that CRD columns use, evaluated like the
# apiserver's table convertor (missing keys are no result; only the first result is shown)
# ---------------------------------------------------------------------------------------------

_JSONPATH_STEP: Final = re.compile(
    r"""\.(?P<field>[^.\[\]\s]+)
      | \[(?P<index>-?\d+)\]
      | \[(?P<slice>-?\d*:-?\d*)\]
      | \[(?P<star>\*)\]
      | \[(?P<quoted>'[^']*'|"[^"]*")\]
      | \[\?\(@\.(?P<where>[^\s=!)]+)\s*(?:(?P<op>==|!=)\s*(?P<literal>"[^"]*"|'[^']*'|[^\s)]+))?\s*\)\]
    """,
    re.VERBOSE,
)


def _dig(value: Any, dotted: str) -> tuple[bool, Any]:
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _literal(text: str) -> Any:
    if text[:1] in "'\"":
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        return text


@functools.cache
def _compile_jsonpath(path: str) -> Callable[[Any], list[Any]] | None:
    """A finder of all results of ``path`` in a document, or None for syntax it does not know."""
    steps: list[re.Match[str]] = []
    position = 0
    while position < len(path):
        match = _JSONPATH_STEP.match(path, position)
        if match is None:
            return None
        steps.append(match)
        position = match.end()

    def find(document: Any) -> list[Any]:
        values = [document]
        for step in steps:
            found: list[Any] = []
            for value in values:
                if step["field"] is not None or step["quoted"] is not None:
                    key = step["field"] if step["field"] is not None else step["quoted"][1:-1]
                    if isinstance(value, dict) and key in value:
                        found.append(value[key])
                elif not isinstance(value, list):
                    continue  # kubectl's JSONPath gives no result for array steps on non-arrays
                elif step["index"] is not None:
                    index = int(step["index"])
                    if -len(value) <= index < len(value):
                        found.append(value[index])
                elif step["slice"] is not None:
                    start, stop = (int(part) if part else None for part in step["slice"].split(":"))
                    found.extend(value[start:stop])
                elif step["star"] is not None:
                    found.extend(value)
                else:
                    for item in value:
                        present, actual = _dig(item, step["where"])
                        if step["op"] is None:
                            keep = present
                        else:
                            equal = present and actual == _literal(step["literal"])
                            keep = equal if step["op"] == "==" else not equal
                        if keep:
                            found.append(item)
            values = found
        return values

    return find


def _go_float(number: float) -> str:
    # Go's %v for a float64: the shortest digits, in exponent form from 1e+06 on and below 1e-04.
    if not math.isfinite(number):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(number)]
    digits = decimal.Decimal(repr(number)).normalize()
    exponent = digits.adjusted()
    if -4 <= exponent < 6:
        return format(digits, "f")
    mantissa = format(digits.scaleb(-exponent), "f").rstrip("0").rstrip(".")
    return f"{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"


def _go_text(value: Any) -> str | None:
    """A value as Go's JSONPath printer writes it into a ``string`` column."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return value
    # Arrays and maps are written as compact JSON, keys sorted, HTML characters escaped (Go's encoding/json).
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@dataclasses.dataclass(frozen=True)
class PrinterColumn:
    """One column of ``kubectl get``: a CRD's additionalPrinterColumns entry."""

    name: str
    type: str
    json_path: str
    format: str = ""
    description: str = ""
    priority: int = 0

    @classmethod
    def from_crd(cls, column: Mapping[str, Any]) -> PrinterColumn:
        path = str(column.get("jsonPath", ""))
        return cls(
            name=str(column.get("name", "")),
            type=str(column.get("type", "string")),
            json_path=path,
            format=str(column.get("format", "")),
            description=str(
                column.get("description") or f"Custom resource definition column (in JSONPath format): {path}"
            ),
            priority=int(column.get("priority", 0)),
        )

    def definition(self) -> JsonObject:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }

    def cell(self, obj: Mapping[str, Any]) -> Any:
        find = _compile_jsonpath(self.json_path)
        results = find(obj) if find is not None else []
        if not results or results[0] is None:
            return None
        value = results[0]
        match self.type:
            case "string":
                return _go_text(value)
            case "integer" if isinstance(value, int | float) and not isinstance(value, bool):
                return int(value)
            case "number" if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            case "boolean" if isinstance(value, bool):
                return value
            case "date" if isinstance(value, str):
                # The apiserver sends the age, not the timestamp: kubectl prints date cells as they come.
                try:
                    moment = datetime.datetime.fromisoformat(value)
                except ValueError:
                    return "<invalid>"
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=datetime.UTC)
                return human_duration((_now() - moment).total_seconds())
        return None


_NAME_DESCRIPTION: Final = "Name must be unique within a namespace."
_NAME_COLUMN: Final = PrinterColumn("Name", "string", ".metadata.name", "name", _NAME_DESCRIPTION)
_AGE_COLUMN: Final = PrinterColumn("Age", "date", ".metadata.creationTimestamp")
# Columns the real apiserver shows for the built-in kinds people look at in the sandbox.
_BUILTIN_COLUMNS: Final[dict[tuple[str, str], tuple[PrinterColumn, ...]]] = {
    ("", "namespaces"): (_NAME_COLUMN, PrinterColumn("Status", "string", ".status.phase"), _AGE_COLUMN),
    ("", "events"): (
        PrinterColumn("Last Seen", "date", ".lastTimestamp"),
        PrinterColumn("Type", "string", ".type"),
        PrinterColumn("Reason", "string", ".reason"),
        PrinterColumn("Object", "string", ".involvedObject.name"),
        PrinterColumn("Message", "string", ".message"),
        PrinterColumn("Name", "string", ".metadata.name", "name", _NAME_DESCRIPTION, priority=1),
    ),
}


def _table_version(request: kmock.Request) -> str | None:
    """The Table apiVersion a request asks for in its Accept header, or None for plain objects."""
    for media_range in _header(request, "Accept").split(","):
        media_type, *parameters = (part.strip() for part in media_range.split(";"))
        options = dict(parameter.split("=", 1) for parameter in parameters if "=" in parameter)
        if options.get("as") == "Table" and options.get("g") == "meta.k8s.io":
            if options.get("v") in ("v1", "v1beta1"):
                return f"meta.k8s.io/{options['v']}"
        elif media_type in ("application/json", "application/*", "*/*") and "as" not in options:
            return None
    return None


# ---------------------------------------------------------------------------------------------
# Selectors and patches
# ---------------------------------------------------------------------------------------------

_LABEL_REQUIREMENT: Final = re.compile(
    r"\s*(?:(?P<absent>!)\s*(?P<absent_key>[\w./-]+)"
    r"|(?P<key>[\w./-]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[\w.-]*)"
    r"|\s+(?P<set_op>in|notin)\s*\((?P<values>[^)]*)\))?)\s*"
)


def _label_selector(text: str) -> Callable[[Mapping[str, str]], bool]:
    """The labels test of a ``labelSelector``: equality, inequality, existence and set requirements."""
    tests: list[Callable[[Mapping[str, str]], bool]] = []
    for requirement in re.split(r",(?![^()]*\))", text):
        if not requirement.strip():
            continue
        match = _LABEL_REQUIREMENT.fullmatch(requirement)
        if match is None:
            raise _bad_request(f"unable to parse requirement: {requirement!r}")
        tests.append(_label_requirement(match))
    return lambda labels: all(test(labels) for test in tests)


def _label_requirement(match: re.Match[str]) -> Callable[[Mapping[str, str]], bool]:
    if match["absent"]:
        absent_key = match["absent_key"]
        return lambda labels: absent_key not in labels
    key = match["key"]
    if match["op"]:
        value, negated = match["value"], match["op"] == "!="
        return lambda labels: (labels.get(key) == value) != negated
    if match["set_op"]:
        values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
        negated = match["set_op"] == "notin"
        return lambda labels: (labels.get(key) in values) != negated
    return lambda labels: key in labels


def _field_selector(text: str) -> Callable[[Mapping[str, Any]], bool]:
    """The object test of a ``fieldSelector`` (``a.b=v``, ``a.b==v``, ``a.b!=v``) on any dotted field."""
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    for requirement in text.split(","):
        if not requirement.strip():
            continue
        match = re.fullmatch(r"\s*([\w.-]+)\s*(==|=|!=)\s*(.*?)\s*", requirement)
        if match is None:
            raise _bad_request(f"invalid field selector: {requirement!r}")
        field, op, value = match.groups()

        def test(obj: Mapping[str, Any], f: str = field, v: str = value, n: bool = op == "!=") -> bool:
            present, actual = _dig(obj, f)
            text = "" if not present or actual is None else _go_text(actual)
            return (text == v) != n

        tests.append(test)
    return lambda obj: all(test(obj) for test in tests)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _without(obj: Mapping[str, Any], keys: Iterable[str]) -> JsonObject:
    excluded = set(keys)
    return {key: value for key, value in obj.items() if key not in excluded}


def _header(request: kmock.Request, name: str) -> str:
    for key, value in request.headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def _request_body(request: kmock.Request) -> Any:
    # kmock decodes JSON bodies; the apiserver also accepts YAML, which kmock leaves undecoded.
    if request.data is not None or not request.text.strip():
        return request.data
    if "protobuf" in _header(request, "Content-Type"):
        return _protobuf_namespace(request.body)
    try:
        return yaml.safe_load(request.text)
    except yaml.YAMLError as exc:
        raise _bad_request(f"the body of the request was in an unknown format: {exc}") from exc


def _protobuf_fields(data: bytes) -> Iterator[tuple[int, Any]]:
    """The (field number, value) pairs of a protobuf message; length-delimited values as bytes."""
    position = 0

    def varint() -> int:
        nonlocal position
        result, shift = 0, 0
        while True:
            byte = data[position]
            position += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result

    while position < len(data):
        key = varint()
        field, wire_type = key >> 3, key & 0x07
        if wire_type == 0:
            yield field, varint()
        elif wire_type == 2:
            length = varint()
            yield field, data[position : position + length]
            position += length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            yield field, data[position : position + size]
            position += size
        else:
            raise _bad_request(f"unsupported protobuf wire type {wire_type}")


def _protobuf_namespace(body: bytes) -> JsonObject:
    """The Namespace of a protobuf body, the one kind kubectl sends only as protobuf that the
    sandbox needs (``kubectl create namespace``). Other kinds: 415, send them as JSON."""
    unsupported = _status_error(
        415, "UnsupportedMediaType", "protobuf bodies are read for namespaces only; send JSON (kubectl apply)"
    )
    if not body.startswith(b"k8s\x00"):
        raise unsupported
    envelope = dict(_protobuf_fields(body[4:]))  # runtime.Unknown: 1 typeMeta, 2 raw object
    type_meta = {number: bytes(value).decode() for number, value in _protobuf_fields(envelope.get(1, b""))}
    if (type_meta.get(1), type_meta.get(2)) != ("v1", "Namespace"):
        raise unsupported
    metadata: JsonObject = {}
    names = {1: "name", 2: "generateName"}
    for field, value in _protobuf_fields(dict(_protobuf_fields(envelope.get(2, b""))).get(1, b"")):
        if field in names:  # ObjectMeta: 1 name, 2 generateName, 11 labels, 12 annotations
            metadata[names[field]] = bytes(value).decode()
        elif field in (11, 12):
            entry = {number: bytes(item).decode() for number, item in _protobuf_fields(value)}
            target = metadata.setdefault("labels" if field == 11 else "annotations", {})
            target[entry.get(1, "")] = entry.get(2, "")
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


# ---------------------------------------------------------------------------------------------
# Watching
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Change:
    """One committed write, kept for watches that resume from a resourceVersion."""

    resource_version: int
    type: str
    resource: kmock.resource
    obj: JsonObject
    old: JsonObject | None


@dataclasses.dataclass(eq=False)
class _Watch:
    resource: kmock.resource
    matches: Callable[[Mapping[str, Any]], bool]
    # None ends the stream (server shutdown, resource unregistered).
    queue: asyncio.Queue[JsonObject | None] = dataclasses.field(default_factory=asyncio.Queue)

    def event_for(self, change: _Change) -> JsonObject | None:
        """The change as this watch sees it: an object entering or leaving its selection is
        ADDED or DELETED for it, as the apiserver does for selector-filtered watches."""
        if change.resource != self.resource:
            return None
        now = self.matches(change.obj)
        before = change.old is not None and self.matches(change.old)
        if change.type == "MODIFIED" and now != before:
            return {"type": "ADDED" if now else "DELETED", "object": change.obj}
        return {"type": change.type, "object": change.obj} if now else None


@dataclasses.dataclass(frozen=True)
class _CustomKind:
    """What a CRD declares about one served version of its kind."""

    crd_name: str
    list_kind: str
    columns: tuple[PrinterColumn, ...]


# ---------------------------------------------------------------------------------------------
# The emulator
# ---------------------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator with the apiserver's bookkeeping; see the module docstring.

    All state changes happen in plain (synchronous) methods, so each write, with its watch
    events, is atomic on the event loop. Objects are in ``objects`` as in kmock (with history).
    """

    # Namespaced objects need an existing namespace, as in a cluster (off: create them anywhere).
    require_namespaces: bool = True
    # How many past changes a watch can resume from before it gets 410 Gone.
    watch_history: int = 10_000
    # kmock keeps every request for assertions; a sandbox runs for hours: keep the latest ones.
    request_history: int = 10_000

    _resource_version: int = attrs.field(default=0, init=False)
    _custom: dict[kmock.resource, _CustomKind] = attrs.field(factory=dict, init=False)
    _watches: set[_Watch] = attrs.field(factory=set, init=False)
    _changes: collections.deque[_Change] = attrs.field(factory=collections.deque, init=False)
    _expired_version: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        # kmock's KubernetesEmulator registers handlers for its own write path, which this class
        # replaces; only the stateless scaffold (discovery, errors, 404 fallback) is kept.
        kmock.KubernetesScaffold.__attrs_post_init__(self)
        self.fallback[kmock.action.LIST] << self._serve_objects
        # kubectl reads a watch only when it is declared as JSON (kmock streams octet-stream).
        self.fallback[kmock.action.WATCH] << {"Content-Type": "application/json"} << self._serve_watch_stream
        self.fallback[kmock.action.FETCH] << self._serve_object
        self.fallback[kmock.action.CREATE] << 201 << self._serve_creation
        self.fallback[kmock.action.UPDATE] << self._serve_patch
        self.fallback[kmock.action.DELETE] << self._serve_deletion
        self.fallback[kmock.method.PUT] << self._serve_replacement
        self.fallback[kmock.method.DELETE] << self._serve_collection_deletion
        with warnings.catch_warnings():
            # kmock reads its bundled file with a deprecated importlib call; not ours to fix.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.resources.load_bundled()
        for name in INITIAL_NAMESPACES:
            self._create_object(NAMESPACES, None, {"metadata": {"name": name}})

    # -- HTTP entry points ------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        match = _NAMESPACES_PATH.fullmatch(raw_request.path)
        if match is None:
            return await super().__call__(raw_request)
        request = await _namespace_request(raw_request, match, request_id=len(self._requests))
        self._requests.append(request)
        return await self._handle(request)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if len(self._requests) > 2 * self.request_history:
            del self._requests[: -self.request_history]
            for reaction in self._payloads:
                del reaction._requests[: -self.request_history]
        try:
            # Skip KubernetesEmulator._handle: it changes objects before routing, without bookkeeping.
            return await super(kmock.KubernetesEmulator, self)._handle(request)
        except kmock.KubernetesError as exc:
            # API errors are answers (404, 409, 422, ...), not failures of the emulator: render
            # them here so that kmock does not collect them as errors of the test.
            return await self._render_error(exc)

    def _get_resources(self) -> list[kmock.resource]:
        # kmock also discovers the kinds of stored objects, deleted ones included, so a kind would
        # outlive its CRD; here only declared (bundled or CRD-registered) kinds are served.
        return kmock.KubernetesScaffold._get_resources(self)

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        discovery = await super()._serve_version(request)
        if isinstance(discovery, dict):
            # The core group's version is "v1", not kmock's "/v1" (kubectl then finds no core kinds).
            discovery["groupVersion"] = str(discovery.get("groupVersion", "")).lstrip("/")
            for entry in discovery.get("resources", []):
                # kmock repeats the kind's short names and categories on its subresources, so that
                # kubectl finds "ns" ambiguous; the apiserver lists subresources without them.
                if "/" in entry["name"]:
                    entry.update(shortNames=[], categories=[], verbs=["get", "patch", "update"])
                entry["verbs"] = sorted(entry["verbs"])
        return discovery

    def _serve_objects(self, request: kmock.Request) -> JsonObject:
        resource = self._served(request)
        matches = self._request_filter(resource, request)
        items = [obj for obj in self._live_objects(resource) if matches(obj)]
        resource_version = str(self._resource_version)
        table_version = _table_version(request)
        if table_version is not None:
            return self._table(resource, items, request, table_version, resource_version)
        return {
            "apiVersion": _api_version(resource),
            "kind": self._list_kind(resource),
            "metadata": {"resourceVersion": resource_version},
            "items": items,
        }

    def _serve_object(self, request: kmock.Request) -> JsonObject:
        resource = self._served(request)
        key = self._key(resource, request)
        obj = self.read_object(*key)
        if obj is None or request.subresource not in (None, *self._info(resource).subresources):
            raise _not_found(resource, key[2])
        table_version = _table_version(request)
        if table_version is not None:
            return self._table(resource, [obj], request, table_version, obj["metadata"]["resourceVersion"])
        return obj

    def _serve_creation(self, request: kmock.Request) -> JsonObject:
        resource = self._served(request)
        _reject_dry_run(request)
        if request.subresource is not None:
            raise _status_error(405, "MethodNotAllowed", "the server does not allow this method")
        namespaced = self._namespaced(resource)
        if namespaced and request.namespace is None:
            raise _status_error(405, "MethodNotAllowed", "a namespaced object is created in its namespace")
        if not namespaced and request.namespace is not None:
            raise _unknown_resource()
        body = _request_body(request)
        if not isinstance(body, dict):
            raise _bad_request("the body of the request must be an object")
        return self._create_object(resource, request.namespace, body)

    def _serve_patch(self, request: kmock.Request) -> JsonObject:
        resource = self._served(request)
        _reject_dry_run(request)
        key = self._key(resource, request)
        old = self._existing(resource, key, request.subresource)
        patch = _request_body(request)
        content_type = _header(request, "Content-Type").split(";")[0].strip()
        new: Any
        if content_type == "application/json-patch+json":
            if not isinstance(patch, list):
                raise _bad_request("a JSON patch must be a list of operations")
            try:
                new = jsonpatch.JsonPatch(patch).apply(copy.deepcopy(old))
            except jsonpatch.InvalidJsonPatch as exc:
                raise _bad_request(str(exc)) from exc
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
                # As the apiserver: 422 for a patch that does not apply, a failed "test" included.
                message = "the server rejected our request due to an error in our request"
                raise _status_error(
                    422, "Invalid", message, causes=[{"reason": "FieldValueInvalid", "message": str(exc)}]
                ) from exc
        elif content_type == "application/merge-patch+json" or (
            content_type == "application/strategic-merge-patch+json" and resource not in self._custom
        ):
            if not isinstance(patch, dict):
                raise _bad_request("a merge patch must be an object")
            new = _merge_patch(copy.deepcopy(old), patch)
        else:
            # Custom resources reject strategic merge in a cluster too; server-side apply is not emulated.
            raise _status_error(
                415, "UnsupportedMediaType", f"the patch type {content_type!r} is not supported"
            )
        return self._update_object(resource, key, old, new, request.subresource)

    def _serve_replacement(self, request: kmock.Request) -> JsonObject:
        resource = self._served(request)
        _reject_dry_run(request)
        if request.name is None:
            raise _status_error(405, "MethodNotAllowed", "the server does not allow this method")
        key = self._key(resource, request)
        old = self._existing(resource, key, request.subresource)
        body = _request_body(request)
        if not isinstance(body, dict):
            raise _bad_request("the body of the request must be an object")
        if body.get("metadata", {}).get("name") != key[2]:
            raise _bad_request(f"the name of the object does not match the name on the URL ({key[2]!r})")
        if resource in self._custom and not body["metadata"].get("resourceVersion"):
            # Custom resources allow no unconditional update.
            kind = self._kind(resource)
            raise _invalid(
                kind, resource, key[2], "metadata.resourceVersion", "must be specified for an update"
            )
        return self._update_object(resource, key, old, body, request.subresource)

    def _serve_deletion(self, request: kmock.Request) -> JsonObject:
        resource = self._served(request)
        _reject_dry_run(request)
        key = self._key(resource, request)
        # DeleteOptions matter only for their preconditions; typed clients send them as protobuf.
        options = request.data
        preconditions = options.get("preconditions") if isinstance(options, dict) else None
        remaining = self._delete_object(resource, key, preconditions or {})
        if remaining is not None:
            return remaining
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": _object_details(resource, key[2]),
        }

    def _serve_collection_deletion(self, request: kmock.Request) -> JsonObject:
        resource = self._served(request)
        _reject_dry_run(request)
        if request.name is not None:
            raise _status_error(405, "MethodNotAllowed", "the server does not allow this method")
        matches = self._request_filter(resource, request)
        doomed = [obj for obj in self._live_objects(resource) if matches(obj)]
        for obj in doomed:
            self._delete_object(
                resource, (resource, obj["metadata"].get("namespace"), obj["metadata"]["name"])
            )
        return {
            "apiVersion": _api_version(resource),
            "kind": self._list_kind(resource),
            "metadata": {"resourceVersion": str(self._resource_version)},
            "items": doomed,
        }

    def _serve_watch_stream(self, request: kmock.Request) -> AsyncIterator[kmock.Payload]:
        resource = self._served(request)
        matches = self._request_filter(resource, request)
        params = request.params
        initial_events = params.get("sendInitialEvents") == "true"
        since: int | None = None
        if params.get("resourceVersion") not in (None, "", "0") and not initial_events:
            try:
                since = int(params["resourceVersion"])
            except ValueError as exc:
                raise _bad_request(f"invalid resourceVersion: {params['resourceVersion']!r}") from exc
        try:
            timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        except ValueError as exc:
            raise _bad_request(f"invalid timeoutSeconds: {params['timeoutSeconds']!r}") from exc
        return self._watch_events(
            resource, matches, since, initial_events=initial_events, timeout=timeout,
            table_version=_table_version(request), request=request,
        )  # fmt: skip

    async def _watch_events(
        self,
        resource: kmock.resource,
        matches: Callable[[Mapping[str, Any]], bool],
        since: int | None,
        *,
        initial_events: bool,
        timeout: float | None,
        table_version: str | None,
        request: kmock.Request,
    ) -> AsyncIterator[kmock.Payload]:
        yield b""  # sends the headers now: clients wait for them before they read any event
        watch = _Watch(resource, matches)
        # The backlog is taken and the watch subscribed with no await in between: no change is lost.
        backlog: list[JsonObject]
        if since is None:
            backlog = [
                {"type": "ADDED", "object": obj} for obj in self._live_objects(resource) if matches(obj)
            ]
            if initial_events:
                backlog.append(self._initial_events_end(resource))
        elif since < self._expired_version:
            message = f"too old resource version: {since} ({self._expired_version})"
            gone = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
            yield {"type": "ERROR", "object": gone | {"message": message, "reason": "Expired", "code": 410}}
            return
        else:
            events = (watch.event_for(change) for change in self._changes if change.resource_version > since)
            backlog = [event for event in events if event is not None]
        self._watches.add(watch)
        try:
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
            for event in backlog:
                yield self._rendered_event(resource, event, request, table_version)
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return
                try:
                    event_or_end = await asyncio.wait_for(watch.queue.get(), remaining)
                except TimeoutError:
                    return  # timeoutSeconds reached: the server ends the watch, the client resumes
                if event_or_end is None:
                    return
                yield self._rendered_event(resource, event_or_end, request, table_version)
        finally:
            self._watches.discard(watch)

    # -- public helpers ---------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The resourceVersion of the latest write."""
        return self._resource_version

    def read_object(
        self, resource: kmock.resource | str, namespace: str | None, name: str
    ) -> JsonObject | None:
        """The stored object (a copy), or None if it does not exist."""
        key = (kmock.resource(resource), namespace, name)
        if key not in self._objects or self._objects[key].deleted:
            return None
        return copy.deepcopy(self._objects[key].raw)

    def resource_for(self, api_version: str, kind: str) -> kmock.resource:
        """The served resource of an ``apiVersion``/``kind`` pair, as kubectl maps manifests."""
        group, _, version = api_version.rpartition("/")
        for resource in self.resources:
            served_kind = self.resources[resource].kind
            if resource.group == group and resource.version == version and served_kind == kind:
                return resource
        raise _status_error(404, "NotFound", f'no matches for kind "{kind}" in version "{api_version}"')

    def apply_manifest(self, manifest: Mapping[str, Any]) -> JsonObject:
        """Create the object of a manifest, or merge the manifest into the existing object.

        For loading CRDs and examples without a client. Unlike ``kubectl apply`` (a three-way
        merge), fields dropped from the manifest stay on an existing object.
        """
        resource = self.resource_for(str(manifest.get("apiVersion", "")), str(manifest.get("kind", "")))
        metadata = manifest.get("metadata") or {}
        namespace = (metadata.get("namespace") or "default") if self._namespaced(resource) else None
        key = (resource, namespace, str(metadata.get("name", "")))
        old = self.read_object(*key)
        if old is None:
            return self._create_object(resource, namespace, manifest)
        new = _merge_patch(copy.deepcopy(old), _without(manifest, {"status"}))
        return self._update_object(resource, key, old, new, None)

    def close_watches(self) -> None:
        """End all open watch streams (clients see a normal end and reconnect)."""
        for watch in list(self._watches):
            watch.queue.put_nowait(None)

    # -- resources --------------------------------------------------------------------------

    def _served(self, request: kmock.Request) -> kmock.resource:
        resource = request.resource
        if resource is None or resource.plural is None or resource not in self.resources:
            raise _unknown_resource()
        return resource

    def _info(self, resource: kmock.resource) -> kmock.ResourceInfo:
        return self.resources[resource]

    def _kind(self, resource: kmock.resource) -> str:
        return self._info(resource).kind or str(resource.plural).capitalize()

    def _list_kind(self, resource: kmock.resource) -> str:
        custom = self._custom.get(resource)
        return custom.list_kind if custom is not None else f"{self._kind(resource)}List"

    def _namespaced(self, resource: kmock.resource) -> bool:
        return self._info(resource).namespaced is not False

    def _has_status(self, resource: kmock.resource) -> bool:
        return "status" in self._info(resource).subresources

    def _key(self, resource: kmock.resource, request: kmock.Request) -> ObjectKey:
        if request.name is None:
            raise _unknown_resource()
        namespace = request.namespace if self._namespaced(resource) else None
        if self._namespaced(resource) and namespace is None:
            raise _not_found(resource, request.name)
        return resource, namespace, request.name

    def _existing(self, resource: kmock.resource, key: ObjectKey, subresource: str | None) -> JsonObject:
        obj = self.read_object(*key)
        if obj is None or (subresource is not None and subresource not in self._info(resource).subresources):
            raise _not_found(resource, key[2])
        return obj

    def _live_objects(self, resource: kmock.resource) -> list[JsonObject]:
        found = [
            copy.deepcopy(obj.raw)
            for (obj_resource, _, _), obj in self._objects.items()
            if obj_resource == resource and not obj.deleted
        ]
        return sorted(found, key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))

    def _live_keys(
        self, *, resource: kmock.resource | None = None, namespace: str | None = None
    ) -> list[ObjectKey]:
        return [
            key
            for key, obj in self._objects.items()
            if not obj.deleted
            and (resource is None or key[0] == resource)
            and (namespace is None or key[1] == namespace)
        ]

    def _request_filter(
        self, resource: kmock.resource, request: kmock.Request
    ) -> Callable[[Mapping[str, Any]], bool]:
        namespace = request.namespace if self._namespaced(resource) else None
        name = request.name
        labels = _label_selector(request.params.get("labelSelector", ""))
        fields = _field_selector(request.params.get("fieldSelector", ""))

        def matches(obj: Mapping[str, Any]) -> bool:
            metadata = obj.get("metadata", {})
            return (
                (namespace is None or metadata.get("namespace") == namespace)
                and (name is None or metadata.get("name") == name)
                and labels(metadata.get("labels") or {})
                and fields(obj)
            )

        return matches

    # -- writes -----------------------------------------------------------------------------

    def _next_resource_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    def _store(self, key: ObjectKey, obj: JsonObject) -> None:
        if key in self._objects:
            self._objects[key].history.append(obj)  # also re-creates a soft-deleted object
        else:
            self._objects[key] = obj

    def _emit(
        self, change_type: str, resource: kmock.resource, obj: JsonObject, old: JsonObject | None
    ) -> None:
        change = _Change(int(obj["metadata"]["resourceVersion"]), change_type, resource, obj, old)
        if len(self._changes) >= self.watch_history:
            self._expired_version = self._changes.popleft().resource_version
        self._changes.append(change)
        for watch in list(self._watches):
            event = watch.event_for(change)
            if event is not None:
                watch.queue.put_nowait(event)

    def _create_object(
        self, resource: kmock.resource, namespace: str | None, manifest: Mapping[str, Any]
    ) -> JsonObject:
        body = copy.deepcopy(dict(manifest))
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise _bad_request("metadata must be an object")
        body["metadata"] = metadata
        kind, api_version = self._kind(resource), _api_version(resource)
        if body.get("apiVersion", api_version) != api_version or body.get("kind", kind) != kind:
            raise _bad_request(f"the object is not a {kind} of {api_version}")
        body["apiVersion"], body["kind"] = api_version, kind

        if self._namespaced(resource):
            namespace = namespace or metadata.get("namespace")
            if metadata.get("namespace", namespace) != namespace:
                raise _bad_request("the namespace of the object does not match the namespace of the request")
            if namespace is None:
                raise _bad_request("a namespaced object needs a namespace")
            metadata["namespace"] = namespace
            self._check_namespace_accepts(namespace)
        else:
            namespace = None
            metadata.pop("namespace", None)

        name = metadata.get("name") or ""
        if not name and metadata.get("generateName"):
            name = self._generated_name(resource, namespace, str(metadata["generateName"]))
        if not name:
            raise _invalid(
                kind, resource, "", "metadata.name", "Required value: name or generateName is required"
            )
        pattern = _DNS_LABEL if resource == NAMESPACES else _DNS_SUBDOMAIN
        if not isinstance(name, str) or len(name) > 253 or not pattern.fullmatch(name):
            why = f"Invalid value: {name!r}: must be a lowercase RFC 1123 name"
            raise _invalid(kind, resource, str(name), "metadata.name", why)
        metadata["name"] = name
        key: ObjectKey = (resource, namespace, name)
        if self.read_object(*key) is not None:
            raise _already_exists(resource, name)

        for field in (*_SERVER_METADATA, "selfLink", "managedFields"):
            metadata.pop(field, None)
        if self._has_status(resource):
            body.pop("status", None)  # the status subresource is written through /status only
        metadata.update(uid=str(uuid.uuid4()), creationTimestamp=_timestamp(_now()), generation=1)
        if resource == NAMESPACES:
            metadata.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            body["status"] = {"phase": "Active"}
        if resource == CRDS:
            body["status"] = self._crd_status(body, None)
            self._register_crd(body)  # before the event: watchers of CRDs rescan discovery on it
        metadata["resourceVersion"] = self._next_resource_version()
        self._store(key, body)
        self._emit("ADDED", resource, body, None)
        return copy.deepcopy(body)

    def _generated_name(self, resource: kmock.resource, namespace: str | None, prefix: str) -> str:
        while True:
            name = prefix[:58] + "".join(secrets.choice(_GENERATE_NAME_ALPHABET) for _ in range(5))
            if self.read_object(resource, namespace, name) is None:
                return name

    def _update_object(
        self,
        resource: kmock.resource,
        key: ObjectKey,
        old: JsonObject,
        new: Any,
        subresource: str | None,
    ) -> JsonObject:
        name, kind = key[2], self._kind(resource)
        if not isinstance(new, dict) or not isinstance(new.get("metadata", {}), dict):
            raise _invalid(kind, resource, name, "metadata", "the object must be an object with metadata")
        new = copy.deepcopy(new)
        metadata = new.setdefault("metadata", {})
        old_metadata = old["metadata"]
        # Optimistic concurrency: a resourceVersion in the written object is a precondition.
        sent_version = metadata.get("resourceVersion")
        if sent_version not in (None, "") and str(sent_version) != old_metadata["resourceVersion"]:
            why = (
                "the object has been modified; please apply your changes to the latest version and try again"
            )
            raise _conflict(resource, name, why)
        if metadata.get("name", name) != name or metadata.get("namespace", key[1]) != key[1]:
            raise _invalid(kind, resource, name, "metadata.name", "field is immutable")

        if subresource == "status":
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
        else:
            result = new
            if self._has_status(resource):
                result.pop("status", None)
                if "status" in old:
                    result["status"] = copy.deepcopy(old["status"])
            result["apiVersion"], result["kind"] = old["apiVersion"], old["kind"]
            for field in (*_SERVER_METADATA, "name", "namespace"):
                if field in old_metadata:
                    metadata[field] = old_metadata[field]
                else:
                    metadata.pop(field, None)
            if old_metadata.get("deletionTimestamp"):
                added = set(metadata.get("finalizers") or []) - set(old_metadata.get("finalizers") or [])
                if added:
                    why = "Forbidden: no new finalizers can be added if the object is being deleted"
                    raise _invalid(kind, resource, name, "metadata.finalizers", why)
            if resource == CRDS:
                result["status"] = self._crd_status(result, old.get("status"))

        if result == old:
            return old  # a write that changes nothing is no write: same resourceVersion, no event
        # Status writes never count as a change of generation; with no status subresource
        # (custom kinds only), the status is part of what the generation counts.
        counted_out = (
            {"metadata"}
            if resource in self._custom and not self._has_status(resource)
            else {"metadata", "status"}
        )
        if subresource != "status" and _without(result, counted_out) != _without(old, counted_out):
            result["metadata"]["generation"] = int(old_metadata.get("generation", 0)) + 1
        if result["metadata"].get("deletionTimestamp") and not result["metadata"].get("finalizers"):
            return self._remove(resource, key, result, old)
        if resource == CRDS:
            self._register_crd(result)
        result["metadata"]["resourceVersion"] = self._next_resource_version()
        self._store(key, result)
        self._emit("MODIFIED", resource, result, old)
        return copy.deepcopy(result)

    def _delete_object(
        self,
        resource: kmock.resource,
        key: ObjectKey,
        preconditions: Mapping[str, Any] | None = None,
    ) -> JsonObject | None:
        """Delete now, or mark for deletion; returns the object while it still exists."""
        obj = self.read_object(*key)
        if obj is None:
            raise _not_found(resource, key[2])
        metadata = obj["metadata"]
        for field in ("uid", "resourceVersion"):
            expected = (preconditions or {}).get(field)
            if expected is not None and expected != metadata.get(field):
                why = (
                    f"Precondition failed: {field} in precondition: {expected}, "
                    f"{field} in object meta: {metadata.get(field)}"
                )
                raise _conflict(resource, key[2], why)
        if metadata.get("deletionTimestamp"):
            return obj  # already being deleted; deleting again changes nothing
        if resource == NAMESPACES:
            # A namespace terminates: its content is deleted first, then the namespace.
            self._mark_deleted(resource, key, obj)
            for content_key in self._live_keys(namespace=key[2]):
                if self.read_object(*content_key) is not None:  # not gone with an earlier one
                    self._delete_object(content_key[0], content_key)
            self._finish_namespace(key[2])
            return self.read_object(*key)
        if resource == CRDS:
            # A CRD is held by its cleanup finalizer until all objects of its kind are gone.
            self._mark_deleted(resource, key, obj, finalizer=CRD_CLEANUP_FINALIZER)
            for served in [r for r, custom in self._custom.items() if custom.crd_name == key[2]]:
                for object_key in self._live_keys(resource=served):
                    if self.read_object(*object_key) is not None:  # not gone with an earlier one
                        self._delete_object(served, object_key)
            self._finish_crd(key[2])
            return self.read_object(*key)
        if metadata.get("finalizers"):
            return self._mark_deleted(resource, key, obj)
        self._remove(resource, key, obj, None)
        return None

    def _mark_deleted(
        self, resource: kmock.resource, key: ObjectKey, obj: JsonObject, *, finalizer: str | None = None
    ) -> JsonObject:
        old = obj
        obj = copy.deepcopy(obj)
        metadata = obj["metadata"]
        metadata["deletionTimestamp"] = _timestamp(_now())
        metadata["deletionGracePeriodSeconds"] = 0
        # The apiserver bumps the generation when it sets the deletionTimestamp.
        metadata["generation"] = int(metadata.get("generation", 0)) + 1
        if finalizer is not None and finalizer not in metadata.setdefault("finalizers", []):
            metadata["finalizers"].append(finalizer)
        if resource == NAMESPACES:
            obj["status"] = {"phase": "Terminating"}
        if resource == CRDS:
            obj["status"] = self._crd_status(obj, old.get("status"))
        metadata["resourceVersion"] = self._next_resource_version()
        self._store(key, obj)
        self._emit("MODIFIED", resource, obj, old)
        return copy.deepcopy(obj)

    def _remove(
        self, resource: kmock.resource, key: ObjectKey, obj: JsonObject, old: JsonObject | None
    ) -> JsonObject:
        final = copy.deepcopy(obj)
        final["metadata"]["resourceVersion"] = self._next_resource_version()
        self._objects[key].delete()
        self._emit("DELETED", resource, final, old)
        if resource == CRDS:
            self._unregister_crd(key[2])
        elif resource in self._custom:
            self._finish_crd(self._custom[resource].crd_name)
        if key[1] is not None:
            self._finish_namespace(key[1])
        return copy.deepcopy(final)

    def _finish_namespace(self, namespace: str) -> None:
        key: ObjectKey = (NAMESPACES, None, namespace)
        obj = self.read_object(*key)
        if obj is None or not obj["metadata"].get("deletionTimestamp") or obj["metadata"].get("finalizers"):
            return
        if not self._live_keys(namespace=namespace):
            self._remove(NAMESPACES, key, obj, None)

    def _check_namespace_accepts(self, namespace: str) -> None:
        if not self.require_namespaces:
            return
        obj = self.read_object(NAMESPACES, None, namespace)
        if obj is None:
            raise _not_found(NAMESPACES, namespace)
        if obj["metadata"].get("deletionTimestamp"):
            message = f"unable to create new content in namespace {namespace} because it is being terminated"
            raise _status_error(403, "Forbidden", message, name=namespace, kind="namespaces")

    # -- custom resource definitions -----------------------------------------------------------

    def _register_crd(self, crd: Mapping[str, Any]) -> None:
        spec, name = crd.get("spec") or {}, crd["metadata"]["name"]
        names = spec.get("names") or {}
        group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")

        def invalid(field: str, why: str) -> kmock.KubernetesError:
            return _invalid("CustomResourceDefinition", CRDS, name, field, why)

        if not group or not plural or not kind:
            raise invalid("spec", "Required value: group, names.plural and names.kind are required")
        if name != f"{plural}.{group}":
            raise invalid("metadata.name", 'Invalid value: must be spec.names.plural+"."+spec.group')
        if spec.get("scope") not in ("Namespaced", "Cluster"):
            raise invalid("spec.scope", 'Unsupported value: supported values: "Cluster", "Namespaced"')
        if not spec.get("versions"):
            raise invalid(
                "spec.versions", "Required value: must have exactly one version marked as storage version"
            )
        for resource in [r for r, custom in self._custom.items() if custom.crd_name == name]:
            del self._custom[resource]
            del self.resources[resource]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            resource = kmock.resource(group, version["name"], plural)
            self.resources[resource] = kmock.ResourceInfo(
                kind=kind,
                singular=names.get("singular") or kind.lower(),
                namespaced=spec["scope"] == "Namespaced",
                verbs=_CUSTOM_RESOURCE_VERBS,
                shortnames=names.get("shortNames") or (),
                categories=names.get("categories") or (),
                subresources=(version.get("subresources") or {}).keys(),
            )
            # A CRD without columns shows its age, as in a cluster.
            columns = [
                PrinterColumn.from_crd(column) for column in version.get("additionalPrinterColumns") or []
            ]
            self._custom[resource] = _CustomKind(
                crd_name=name,
                list_kind=names.get("listKind") or f"{kind}List",
                columns=(_NAME_COLUMN, *columns) if columns else (_NAME_COLUMN, _AGE_COLUMN),
            )

    def _unregister_crd(self, crd_name: str) -> None:
        for resource in [r for r, custom in self._custom.items() if custom.crd_name == crd_name]:
            del self._custom[resource]
            del self.resources[resource]
            for watch in list(self._watches):
                if watch.resource == resource:
                    watch.queue.put_nowait(None)

    def _finish_crd(self, crd_name: str) -> None:
        key: ObjectKey = (CRDS, None, crd_name)
        crd = self.read_object(*key)
        if crd is None or not crd["metadata"].get("deletionTimestamp"):
            return
        served = [r for r, custom in self._custom.items() if custom.crd_name == crd_name]
        if any(self._live_keys(resource=resource) for resource in served):
            return
        released = copy.deepcopy(crd)
        finalizers = released["metadata"].get("finalizers") or []
        released["metadata"]["finalizers"] = [f for f in finalizers if f != CRD_CLEANUP_FINALIZER]
        self._update_object(CRDS, key, crd, released, None)

    def _crd_status(self, crd: Mapping[str, Any], old_status: Mapping[str, Any] | None) -> JsonObject:
        spec = crd.get("spec") or {}
        names = dict(spec.get("names") or {})
        if names.get("kind"):
            names.setdefault("singular", str(names["kind"]).lower())
            names.setdefault("listKind", f"{names['kind']}List")
        storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
        stored = list((old_status or {}).get("storedVersions") or [])
        conditions = {c["type"]: c for c in (old_status or {}).get("conditions") or []}
        moment = _timestamp(_now())
        wanted = [
            ("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
            ("Established", "True", "InitialNamesAccepted", "the initial names have been accepted"),
        ]
        if crd.get("metadata", {}).get("deletionTimestamp"):
            wanted.append(
                (
                    "Terminating",
                    "True",
                    "InstanceDeletionInProgress",
                    "CustomResource deletion is in progress",
                )
            )
        return {
            "conditions": [
                {
                    "type": kind,
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": conditions.get(kind, {}).get("lastTransitionTime", moment),
                }
                for kind, status, reason, message in wanted
            ],
            "acceptedNames": names,
            "storedVersions": stored + [v for v in storage if v not in stored],
        }

    # -- rendering ------------------------------------------------------------------------

    def _columns(self, resource: kmock.resource) -> tuple[PrinterColumn, ...]:
        custom = self._custom.get(resource)
        if custom is not None:
            return custom.columns
        return _BUILTIN_COLUMNS.get((str(resource.group), str(resource.plural)), (_NAME_COLUMN, _AGE_COLUMN))

    def _table(
        self,
        resource: kmock.resource,
        objects: list[JsonObject],
        request: kmock.Request,
        table_version: str,
        resource_version: str,
    ) -> JsonObject:
        columns = self._columns(resource)
        include = request.params.get("includeObject", "Metadata")
        rows: list[JsonObject] = []
        for obj in objects:
            row: JsonObject = {"cells": [column.cell(obj) for column in columns]}
            if include == "Object":
                row["object"] = obj
            elif include != "None":
                row["object"] = {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": table_version,
                    "metadata": obj["metadata"],
                }
            rows.append(row)
        return {
            "kind": "Table",
            "apiVersion": table_version,
            "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": [column.definition() for column in columns],
            "rows": rows,
        }

    def _rendered_event(
        self, resource: kmock.resource, event: JsonObject, request: kmock.Request, table_version: str | None
    ) -> JsonObject:
        if table_version is None or event["type"] not in ("ADDED", "MODIFIED", "DELETED"):
            return event
        obj = event["object"]
        table = self._table(resource, [obj], request, table_version, obj["metadata"]["resourceVersion"])
        return {"type": event["type"], "object": table}

    def _initial_events_end(self, resource: kmock.resource) -> JsonObject:
        return {
            "type": "BOOKMARK",
            "object": {
                "apiVersion": _api_version(resource),
                "kind": self._kind(resource),
                "metadata": {
                    "resourceVersion": str(self._resource_version),
                    "annotations": {"k8s.io/initial-events-end": "true"},
                },
            },
        }


def _api_version(resource: kmock.resource) -> str:
    return f"{resource.group}/{resource.version}" if resource.group else str(resource.version)


def _reject_dry_run(request: kmock.Request) -> None:
    # Better a loud 400 than a "dry" run that writes (kubectl diff and --dry-run=server use it).
    if request.params.get("dryRun"):
        raise _bad_request("dryRun is not supported by the emulated API")


async def _namespace_request(
    raw_request: aiohttp.web.BaseRequest, match: re.Match[str], *, request_id: int
) -> kmock.Request:
    """A parsed request for ``/api/v1/namespaces[/NAME[/status]]``, which kmock misreads."""
    body = await raw_request.read()
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        data = None
    name, method = match["name"], raw_request.method.upper()
    watching = method == "GET" and raw_request.query.get("watch") in ("true", "1")
    actions = {"GET": kmock.action.FETCH, "PATCH": kmock.action.UPDATE, "DELETE": kmock.action.DELETE}
    if watching:
        action: kmock.action | None = kmock.action.WATCH
    elif name is None:
        action = {"GET": kmock.action.LIST, "POST": kmock.action.CREATE}.get(method)
    else:
        action = actions.get(method)
    return kmock.Request(
        id=request_id,
        raw_request=raw_request,
        method=raw_request.method,
        url=raw_request.url,
        params=dict(raw_request.query),
        headers=dict(raw_request.headers),
        cookies=dict(raw_request.cookies),
        body=body,
        text=text,
        data=data,
        action=action,
        resource=NAMESPACES,
        namespace=None,
        name=name,
        subresource=match["sub"],
    )


# ---------------------------------------------------------------------------------------------
# Serving it
# ---------------------------------------------------------------------------------------------


class SandboxAPI:
    """The emulated API served over HTTP on ``host:port`` (a free port when None).

    ::

        async with SandboxAPI() as api:
            write_kubeconfig(path, api.url)
            api.emulator.apply_manifest(crd)
    """

    def __init__(
        self, port: int | None = None, host: str = "127.0.0.1", *, emulator: KubeEmulator | None = None
    ) -> None:
        self._emulator = emulator if emulator is not None else KubeEmulator()
        self._server = kmock.Server(self._emulator, host=host, port=port)
        self._entered = False

    @property
    def emulator(self) -> KubeEmulator:
        return self._emulator

    @property
    def url(self) -> str:
        """E.g. ``http://127.0.0.1:40123``."""
        return str(self._server.url).rstrip("/")

    async def __aenter__(self) -> Self:
        await self._emulator.__aenter__()
        try:
            await self._server.__aenter__()
        except BaseException:
            await self._emulator.__aexit__(None, None, None)
            raise
        self._entered = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Open watches would hold the server's shutdown until their clients give up.
        self._emulator.close_watches()
        await asyncio.sleep(0)
        try:
            await self._server.__aexit__(exc_type, exc_value, traceback)
        finally:
            await self._emulator.__aexit__(exc_type, exc_value, traceback)


def write_kubeconfig(
    path: str | os.PathLike[str],
    url: str,
    namespace: str = "default",
    *,
    name: str = "trailkeeper-sandbox",
) -> pathlib.Path:
    """A kubeconfig for ``url`` with no credentials, for kubectl and for kopf's logins
    (``login_via_client`` and ``login_with_kubeconfig``, selected by ``KUBECONFIG``)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
    }
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    target.chmod(0o600)  # kubeconfigs usually hold credentials; tools warn about readable ones
    return target


def login_to(url: str, *, namespace: str = "default") -> kopf.ConnectionInfo:
    """kopf's connection to the emulated API; return it from an ``@kopf.on.login`` handler.

    ``namespace`` is where kopf posts the events of cluster-scoped objects.
    """
    return kopf.ConnectionInfo(server=url, insecure=True, default_namespace=namespace)


def serve(
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    kubeconfig: str | os.PathLike[str] | None = None,
    manifests: Iterable[Mapping[str, Any]] = (),
    on_ready: Callable[[SandboxAPI], None] | None = None,
) -> None:
    """Serve the emulated API until interrupted (Ctrl+C), with ``manifests`` applied first."""

    async def run() -> None:
        async with SandboxAPI(port, host) as api:
            for manifest in manifests:
                api.emulator.apply_manifest(manifest)
            if kubeconfig is not None:
                write_kubeconfig(kubeconfig, api.url)
            if on_ready is not None:
                on_ready(api)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
