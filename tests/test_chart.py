"""Structural checks of the Helm chart in charts/trailkeeper, without helm.

No helm binary is needed: a small Go-template evaluator below covers exactly the template subset the
chart uses (if/else/with/range/define, a handful of sprig functions, whitespace trimming), and refuses
anything else, so a template growing beyond it fails here instead of being half-checked. On top of it:
every `.Values` reference exists in values.yaml and is documented there, every template parses as YAML
in every branch, the RBAC rules grant exactly the API calls kopf makes for this operator, the chart's
CRDs are the repository's, and the operator pod is locked down.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kopf._cogs.structs import references

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "trailkeeper"
TEMPLATES = CHART / "templates"
REPO_CRDS = ROOT / "crds"
PEERING_CRDS = "kopf-peering.yaml"


# --- a Go-template evaluator for the chart's subset ---------------------------------------------------


class TemplateError(Exception):
    """The template uses something the evaluator does not know, or refers to a missing value."""


class TemplateFail(Exception):
    """The template called `fail` or `required`: helm would refuse these values."""


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
     |(?P<num>-?\d+)
     |(?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
     |(?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
     |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
     |(?P<punct>:=|\(|\)|\|)
    )""",
    re.X,
)
_KEYWORDS = ("if", "else", "end", "range", "with", "define")


@dataclass
class Branch:
    condition: list[Any] | None  # a parsed pipeline; None for a plain `else`
    body: list[Any] = field(default_factory=list)


@dataclass
class Block:
    keyword: str  # if | with | range | define
    branches: list[Branch]


@dataclass
class Output:
    pipeline: list[Any]
    assign: str | None = None  # `$name := pipeline` prints nothing


def _tokens(action: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(action):
        if not action[pos:].strip():
            break
        match = _TOKEN.match(action, pos)
        if not match or match.end() == pos:
            raise TemplateError(f"cannot parse {action!r} at {action[pos:]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _parse_pipeline(tokens: list[tuple[str, str]]) -> list[Any]:
    """A pipeline is a list of commands; a command is a list of operands."""
    pipeline: list[Any] = [[]]
    stack: list[list[Any]] = []
    for kind, text in tokens:
        if text == "(":
            stack.append(pipeline)
            pipeline = [[]]
        elif text == ")":
            inner, pipeline = pipeline, stack.pop()
            pipeline[-1].append(("sub", inner))
        elif text == "|":
            pipeline.append([])
        elif kind == "str":
            pipeline[-1].append(("lit", json.loads(text)))
        elif kind == "num":
            pipeline[-1].append(("lit", int(text)))
        else:
            pipeline[-1].append((kind, text))
    if stack or any(not command for command in pipeline):
        raise TemplateError(f"unbalanced pipeline {tokens!r}")
    return pipeline


def _parse_action(action: str) -> tuple[str, list[Any] | str | None, str | None]:
    """(keyword or "output", parsed pipeline or define name, assigned variable)."""
    word = action.split(None, 1)[0] if action else ""
    rest = action[len(word) :].strip()
    if word == "else" and rest.startswith("if "):
        return "else if", _parse_pipeline(_tokens(rest[3:])), None
    if word in ("else", "end"):
        if rest:
            raise TemplateError(f"unexpected {action!r}")
        return word, None, None
    if word == "define":
        return word, json.loads(rest), None
    if word in _KEYWORDS:
        return word, _parse_pipeline(_tokens(rest)), None
    tokens = _tokens(action)
    if len(tokens) > 2 and tokens[0][0] == "var" and tokens[1][1] == ":=":
        return "output", _parse_pipeline(tokens[2:]), tokens[0][1]
    return "output", _parse_pipeline(tokens), None


def parse_template(text: str) -> list[Any]:
    """The template as a tree of text, Output and Block nodes, with Go's `{{-`/`-}}` trimming applied."""
    pieces: list[tuple[str, str]] = []
    pos = 0
    for match in _ACTION.finditer(text):
        before = text[pos : match.start()]
        if match.group(1):
            before = before.rstrip()
        pieces.append(("text", before))
        pieces.append(("action", match.group(2).strip()))
        pos = match.end()
        if match.group(3):
            rest = text[pos:]
            pos += len(rest) - len(rest.lstrip())
    pieces.append(("text", text[pos:]))

    root: list[Any] = []
    body, open_blocks = root, []
    for kind, content in pieces:
        if kind == "text":
            if content:
                body.append(content)
            continue
        if content.startswith("/*"):
            continue
        keyword, pipeline, assign = _parse_action(content)
        if keyword in ("if", "with", "range", "define"):
            block = Block(keyword, [Branch(pipeline)])  # type: ignore[arg-type]
            body.append(block)
            open_blocks.append(block)
            body = block.branches[-1].body
        elif keyword in ("else", "else if"):
            if not open_blocks or open_blocks[-1].keyword == "define":
                raise TemplateError(f"{content!r} outside if/with/range")
            open_blocks[-1].branches.append(Branch(pipeline))  # type: ignore[arg-type]
            body = open_blocks[-1].branches[-1].body
        elif keyword == "end":
            if not open_blocks:
                raise TemplateError("unmatched end")
            open_blocks.pop()
            body = open_blocks[-1].branches[-1].body if open_blocks else root
        else:
            body.append(Output(pipeline, assign))  # type: ignore[arg-type]
    if open_blocks:
        raise TemplateError("missing end")
    return root


def truthy(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings, lists and maps are false."""
    return value not in (None, False, 0, "") and not (isinstance(value, (list, dict)) and not value)


def to_text(value: Any) -> str:
    if value is None:
        return ""  # helm prints a missing value as nothing
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TemplateError(f"printing a {type(value).__name__} ({value!r}) would give Go's map/slice syntax")


def _indent(width: int, text: str) -> str:
    pad = " " * width
    return pad + text.replace("\n", "\n" + pad)


def _to_yaml(value: Any) -> str:
    # helm's toYaml: sigs.k8s.io/yaml (sorted keys, block style) without the trailing newline.
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


PLACEHOLDER = "tpl-placeholder"


def _sample(empty: Any) -> Any:
    """A stand-in for an empty value in the neutralising mode, of the same shape so the YAML around fits."""
    if isinstance(empty, dict):
        return {"tpl-key": PLACEHOLDER}
    if isinstance(empty, list):
        return [PLACEHOLDER]
    return PLACEHOLDER


class Renderer:
    """Evaluates parsed templates against a root context {Values, Release, Chart}.

    every_branch=True is the neutralising mode: each if/else branch is rendered (one after the other),
    an empty `range` runs once over a placeholder, and `fail`/`required` do not stop rendering, so that
    all of a template's text goes through the YAML parser whatever the values.
    """

    def __init__(self, context: dict[str, Any], defines: dict[str, list[Any]], *, every_branch: bool = False):
        self.context = context
        self.defines = defines
        self.every_branch = every_branch
        self.functions: dict[str, Callable[..., Any]] = {
            "not": lambda value: not truthy(value),
            "and": lambda *values: next((v for v in values if not truthy(v)), values[-1]),
            "or": lambda *values: next((v for v in values if truthy(v)), values[-1]),
            "eq": lambda value, *others: any(value == other for other in others),
            "ne": lambda a, b: a != b,
            "gt": lambda a, b: a > b,
            "lt": lambda a, b: a < b,
            "int": lambda value: int(value or 0),
            "default": lambda fallback, value=None: value if truthy(value) else fallback,
            "quote": lambda *values: " ".join(json.dumps(to_text(v)) for v in values),
            "toYaml": _to_yaml,
            "nindent": lambda width, text: "\n" + _indent(width, text),
            "indent": _indent,
            "trunc": lambda width, text: text[:width],
            "trimSuffix": lambda suffix, text: text.removesuffix(suffix),
            "contains": lambda needle, text: needle in text,
            "replace": lambda old, new, text: text.replace(old, new),
            "printf": lambda fmt, *args: re.sub(r"%[sdv]", "{}", fmt).format(*map(to_text, args)),
            "join": lambda sep, values: sep.join(map(to_text, values)),
            "include": self._include,
            "required": self._required,
            "fail": self._fail,
        }

    def _include(self, name: str, dot: Any) -> str:
        if name not in self.defines:
            raise TemplateError(f"include of undefined template {name!r}")
        # Helpers compute names and labels: always evaluated for real, never neutralised.
        inner = Renderer(self.context, self.defines)
        return inner.render(self.defines[name], dot, {"$": dot})

    def _required(self, message: str, value: Any) -> Any:
        if not truthy(value) and not self.every_branch:
            raise TemplateFail(message)
        return value

    def _fail(self, message: str) -> str:
        if self.every_branch:
            return ""
        raise TemplateFail(message)

    def _resolve(self, base: Any, path: str, origin: str) -> Any:
        value = base
        for key in [part for part in path.split(".") if part]:
            if not isinstance(value, dict) or key not in value:
                # helm would print nothing for a missing value; here it is a mistake to report.
                raise TemplateError(f"{origin} refers to a missing key {key!r}")
            value = value[key]
        return value

    def _operand(self, operand: tuple[str, Any], dot: Any, variables: dict[str, Any]) -> Any:
        kind, text = operand
        if kind == "lit":
            return text
        if kind == "sub":
            return self._pipeline(text, dot, variables)
        if kind == "field":
            return self._resolve(dot, text, text)
        if kind == "var":
            name, _, path = text.partition(".")
            if name not in variables:
                raise TemplateError(f"undefined variable {name}")
            return self._resolve(variables[name], path, text)
        raise TemplateError(f"unexpected {text!r}")

    def _pipeline(self, pipeline: list[Any], dot: Any, variables: dict[str, Any]) -> Any:
        result: Any = None
        for index, command in enumerate(pipeline):
            head = command[0]
            if head[0] == "ident":
                if head[1] not in self.functions:
                    raise TemplateError(f"unknown function {head[1]!r}")
                args = [self._operand(operand, dot, variables) for operand in command[1:]]
                if index:
                    args.append(result)
                result = self.functions[head[1]](*args)
            elif len(command) == 1 and not index:
                result = self._operand(head, dot, variables)
            else:
                raise TemplateError(f"cannot evaluate {command!r}")
        return result

    def render(self, nodes: list[Any], dot: Any, variables: dict[str, Any]) -> str:
        out: list[str] = []
        variables = dict(variables)  # Go scopes `:=` to the enclosing block
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, Output):
                value = self._pipeline(node.pipeline, dot, variables)
                if node.assign:
                    variables[node.assign] = value
                else:
                    out.append(to_text(value))
            elif node.keyword == "define":
                continue
            else:
                out.append(self._block(node, dot, variables))
        return "".join(out)

    def _block(self, block: Block, dot: Any, variables: dict[str, Any]) -> str:
        head, *others = block.branches
        if self.every_branch:
            subject = self._pipeline(head.condition, dot, variables) if head.condition else None
            if block.keyword == "range":
                items = list(subject.values() if isinstance(subject, dict) else subject or [])
                parts = [self.render(head.body, item, variables) for item in items or [PLACEHOLDER]]
            else:
                inner = dot
                if block.keyword == "with":
                    inner = subject if truthy(subject) else _sample(subject)
                parts = [self.render(head.body, inner, variables)]
            parts += [self.render(branch.body, dot, variables) for branch in others]
            return "".join(parts)
        if block.keyword == "range":
            subject = self._pipeline(head.condition, dot, variables)  # type: ignore[arg-type]
            items = list(subject.values() if isinstance(subject, dict) else subject or [])
            if items:
                return "".join(self.render(head.body, item, variables) for item in items)
            return self.render(others[0].body, dot, variables) if others else ""
        for index, branch in enumerate(block.branches):
            if branch.condition is None:
                return self.render(branch.body, dot, variables)
            value = self._pipeline(branch.condition, dot, variables)
            if truthy(value):
                inner = value if block.keyword == "with" and index == 0 else dot
                return self.render(branch.body, inner, variables)
        return ""


def collect_defines(nodes: list[Any]) -> dict[str, list[Any]]:
    return {
        node.branches[0].condition: node.branches[0].body
        for node in nodes
        if isinstance(node, Block) and node.keyword == "define"
    }


# --- the chart -----------------------------------------------------------------------------------------


# libyaml when present: the tests parse a few hundred rendered documents.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)


def load_all(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=_LOADER))


@functools.cache
def _values_file() -> dict[str, Any]:
    return load_yaml(CHART / "values.yaml")


def default_values() -> dict[str, Any]:
    return copy.deepcopy(_values_file())


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def template_files() -> list[Path]:
    return sorted(path for path in TEMPLATES.iterdir() if path.suffix == ".yaml")


@functools.cache
def _parsed(path: Path) -> list[Any]:
    return parse_template(path.read_text(encoding="utf-8"))


def _helpers() -> dict[str, list[Any]]:
    return collect_defines(_parsed(TEMPLATES / "_helpers.tpl"))


def _context(values: dict[str, Any], release: str, namespace: str) -> dict[str, Any]:
    chart = load_yaml(CHART / "Chart.yaml")
    return {
        "Values": values,
        "Release": {"Name": release, "Namespace": namespace, "Service": "Helm"},
        "Chart": {"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
    }


def render_text(
    path: Path,
    overrides: dict[str, Any] | None = None,
    *,
    release: str = "trailkeeper",
    namespace: str = "trailkeeper",
    every_branch: bool = False,
) -> str:
    values = deep_merge(default_values(), overrides or {})
    context = _context(values, release, namespace)
    renderer = Renderer(context, _helpers(), every_branch=every_branch)
    return renderer.render(_parsed(path), context, {"$": context})


def render_chart(
    overrides: dict[str, Any] | None = None, *, release: str = "trailkeeper", namespace: str = "trailkeeper"
) -> list[dict[str, Any]]:
    """The chart's objects for these values, as `helm template` would print them."""
    docs: list[dict[str, Any]] = []
    for path in template_files():
        text = render_text(path, overrides, release=release, namespace=namespace)
        docs.extend(doc for doc in load_all(text) if doc)
    return docs


def by_kind(docs: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: Iterable[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def operator_container(docs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


# --- RBAC: what the chart grants, and what kopf calls -----------------------------------------------------

# One permission: (apiGroup, resource, verb, resourceName or None for any name).
Grant = tuple[str, str, str, str | None]


def expand(*rows: tuple[Any, ...]) -> set[Grant]:
    grants: set[Grant] = set()
    for group, resources, verbs, *names in rows:
        for resource in resources:
            for verb in verbs:
                for name in names or [None]:
                    grants.add((group, resource, verb, name))
    return grants


def rule_grants(rules: list[dict[str, Any]]) -> set[Grant]:
    grants: set[Grant] = set()
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    for name in rule.get("resourceNames") or [None]:
                        grants.add((group, resource, verb, name))
    return grants


CLUSTER = "<cluster>"


def effective_permissions(docs: list[dict[str, Any]], account: tuple[str, str]) -> dict[str, set[Grant]]:
    """What the ServiceAccount (namespace, name) may do: scope (CLUSTER or a namespace) -> grants.

    Fails when a binding names a subject other than the operator's account, or a role is bound by nothing.
    """
    roles = {("ClusterRole", doc["metadata"]["name"]): doc for doc in by_kind(docs, "ClusterRole")}
    roles |= {
        ("Role", doc["metadata"]["namespace"], doc["metadata"]["name"]): doc for doc in by_kind(docs, "Role")
    }
    permissions: dict[str, set[Grant]] = {}
    bound: set[tuple[str, ...]] = set()
    for binding in by_kind(docs, "ClusterRoleBinding") + by_kind(docs, "RoleBinding"):
        subjects = [(s["kind"], s.get("namespace"), s["name"]) for s in binding["subjects"]]
        assert subjects == [("ServiceAccount", *account)], binding["metadata"]["name"]
        ref = binding["roleRef"]
        assert ref["apiGroup"] == "rbac.authorization.k8s.io"
        scope = binding["metadata"]["namespace"] if binding["kind"] == "RoleBinding" else CLUSTER
        key = ("ClusterRole", ref["name"]) if ref["kind"] == "ClusterRole" else ("Role", scope, ref["name"])
        assert key in roles, f"{binding['metadata']['name']} binds a role the chart does not define: {key}"
        bound.add(key)
        permissions.setdefault(scope, set()).update(rule_grants(roles[key]["rules"]))
    assert bound == set(roles), f"roles bound by nothing: {set(roles) - bound}"
    return permissions


# The API calls kopf 1.45 makes for this operator, each with where it happens (paths inside the kopf
# package, .venv/lib/python3.11/site-packages/kopf). kopf makes no GET of a single object, no PUT
# (update) and no DELETE: it lists+watches, merge/JSON-patches and posts events. Discovery (/api,
# /apis, /version in _cogs/clients/scanning.py) is non-resource and open to every authenticated user.

# In the watched namespaces (everywhere when watching all of them).
SERVED_GRANTS = expand(
    # _core/reactor/queueing.py watcher -> _cogs/clients/watching.py continuous_watch:
    # fetching.fetch_objs (list) and then watch_objs (watch) of each served resource.
    ("trailkeeper.io", ["trails", "logretentions"], ["list", "watch"]),
    # _core/actions/application.py patch_and_check -> _cogs/clients/patching.py patch_obj:
    # finalizers and kopf's annotations, merge-patch and JSON-patch of the object.
    ("trailkeeper.io", ["trails", "logretentions"], ["patch"]),
    # _cogs/clients/patching.py patch_obj: `status` goes to the /status subresource when the CRD has one.
    ("trailkeeper.io", ["trails/status", "logretentions/status"], ["patch"]),
    # _core/engines/posting.py poster -> _cogs/clients/events.py post_event: POST to
    # references.EVENTS, the core v1 events (events.k8s.io is only excluded from EVERYTHING).
    ("", ["events"], ["create"]),
)
# Peering restricted to namespaces: _core/engines/peering.py guess_selectors -> NAMESPACED_PEERINGS_K.
NAMESPACED_PEERING_GRANTS = expand(
    # _core/reactor/orchestration.py + queueing.py watcher: the peering resource is listed and watched.
    ("kopf.dev", ["kopfpeerings"], ["list", "watch"]),
    # _core/engines/peering.py touch/clean -> patching.patch_obj of settings.peering.name only.
    ("kopf.dev", ["kopfpeerings"], ["patch"], "trailkeeper"),
)
# Cluster-wide peering: _core/engines/peering.py guess_selectors -> CLUSTER_PEERINGS_K.
CLUSTER_PEERING_GRANTS = expand(
    ("kopf.dev", ["clusterkopfpeerings"], ["list", "watch"]),
    ("kopf.dev", ["clusterkopfpeerings"], ["patch"], "trailkeeper"),
)
# Always cluster-wide: _core/reactor/observation.py resource_observer -> queueing.watcher on
# references.CRDS (list + watch).
CRD_GRANTS = expand(("apiextensions.k8s.io", ["customresourcedefinitions"], ["list", "watch"]))
# Only when restricted to namespaces: _core/reactor/observation.py namespace_observer lists
# (fetching.fetch_objs) and watches references.NAMESPACES; cluster-wide it skips both.
NAMESPACE_GRANTS = expand(("", ["namespaces"], ["list", "watch"]))


def expected_permissions(watch_namespaces: list[str], peering: bool) -> dict[str, set[Grant]]:
    if not watch_namespaces:
        return {CLUSTER: CRD_GRANTS | SERVED_GRANTS | (CLUSTER_PEERING_GRANTS if peering else set())}
    served = SERVED_GRANTS | (NAMESPACED_PEERING_GRANTS if peering else set())
    return {CLUSTER: CRD_GRANTS | NAMESPACE_GRANTS} | dict.fromkeys(watch_namespaces, served)


MODES = {
    "all-namespaces": {},
    "all-namespaces-standalone": {"peering": {"enabled": False}},
    "namespaced": {"watchNamespaces": ["security", "audit"]},
    "namespaced-standalone": {"watchNamespaces": ["security"], "peering": {"enabled": False}},
}


def test_kopf_still_uses_the_resources_the_rbac_table_names():
    # The table above was read from kopf's source; these are the selectors it follows.
    assert (references.EVENTS.group, references.EVENTS.any_name) == ("", "events")
    assert (references.CRDS.group, references.CRDS.any_name) == (
        "apiextensions.k8s.io",
        "customresourcedefinitions",
    )
    assert (references.NAMESPACES.group, references.NAMESPACES.any_name) == ("", "namespaces")
    assert (references.CLUSTER_PEERINGS_K.group, references.CLUSTER_PEERINGS_K.any_name) == (
        "kopf.dev",
        "clusterkopfpeerings",
    )
    assert (references.NAMESPACED_PEERINGS_K.group, references.NAMESPACED_PEERINGS_K.any_name) == (
        "kopf.dev",
        "kopfpeerings",
    )


# The one module that calls the API itself, and the kubernetes-client methods it may call: each maps to a
# grant of the table above (patch_namespaced_custom_object_status: patch of <plural>/status).
DIRECT_CALLERS = {"kube/status_writer.py": {"patch_namespaced_custom_object_status"}}


def test_operator_reaches_kubernetes_only_through_kopf_and_the_status_writer():
    # The table lists kopf's calls; trailkeeper's handlers use kopf's (kopf.event, kopf.index) and the
    # status writer. Any other direct API client would make calls the table does not know about.
    direct = re.compile(r"^\s*(?:import|from)\s+(?:kubernetes|pykube)\b", re.M)
    package = ROOT / "operator" / "trailkeeper"
    importers = {
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if direct.search(path.read_text(encoding="utf-8"))
    }
    assert importers == set(DIRECT_CALLERS), "add the calls of a new direct caller to the RBAC table"
    for module, allowed in DIRECT_CALLERS.items():
        text = (package / module).read_text(encoding="utf-8")
        called = set(re.findall(r"\.((?:patch|create|delete|get|list|replace|read)_\w+)\(", text))
        assert called == allowed, f"{module} calls {sorted(called)}"


def test_rbac_table_covers_exactly_the_repository_crds():
    served = {(group, resource) for group, resource, _, _ in SERVED_GRANTS if group != ""}
    expected = set()
    for path in REPO_CRDS.glob("*.yaml"):
        crd = load_yaml(path)
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        expected.add((group, plural))
        # kopf patches /status only when the CRD declares the subresource (patching.py patch_obj).
        if any("status" in (version.get("subresources") or {}) for version in crd["spec"]["versions"]):
            expected.add((group, f"{plural}/status"))
    assert served == expected


@pytest.mark.parametrize("mode", MODES)
def test_rbac_grants_exactly_the_calls_kopf_makes(mode):
    overrides = MODES[mode]
    values = deep_merge(default_values(), overrides)
    docs = render_chart(overrides, namespace="ops")
    granted = effective_permissions(docs, ("ops", "trailkeeper"))
    assert granted == expected_permissions(values["watchNamespaces"], values["peering"]["enabled"])


def test_peering_patch_is_limited_to_the_configured_peering_object():
    docs = render_chart({"peering": {"name": "audit-ops"}})
    granted = effective_permissions(docs, ("trailkeeper", "trailkeeper"))[CLUSTER]
    assert ("kopf.dev", "clusterkopfpeerings", "patch", "audit-ops") in granted
    assert not any(
        verb == "patch" and name != "audit-ops" for group, _, verb, name in granted if group == "kopf.dev"
    )


def test_rbac_follows_an_existing_service_account():
    docs = render_chart({"serviceAccount": {"create": False, "name": "audit-operator"}})
    assert not by_kind(docs, "ServiceAccount")
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "audit-operator"
    assert effective_permissions(docs, ("trailkeeper", "audit-operator")) == expected_permissions([], True)


def test_an_existing_service_account_must_be_named():
    with pytest.raises(TemplateFail, match=r"serviceAccount\.name"):
        render_chart({"serviceAccount": {"create": False}})


# --- values -----------------------------------------------------------------------------------------------

_VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z0-9_]+)+)")
_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_]+):(?:\s|$)")


def values_references() -> dict[str, set[str]]:
    """Every `.Values.a.b` path in the templates, helpers and NOTES.txt -> the files using it."""
    refs: dict[str, set[str]] = {}
    for path in TEMPLATES.iterdir():
        for match in _VALUES_REF.finditer(path.read_text(encoding="utf-8")):
            refs.setdefault(match.group(1)[1:], set()).add(path.name)
    return refs


def values_key_lines() -> dict[str, tuple[int, list[str]]]:
    """Each key path of values.yaml -> (line number, the comment lines directly above it)."""
    lines = (CHART / "values.yaml").read_text(encoding="utf-8").splitlines()
    keys: dict[str, tuple[int, list[str]]] = {}
    parents: list[tuple[int, str]] = []
    for number, line in enumerate(lines):
        match = _KEY_LINE.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        while parents and parents[-1][0] >= indent:
            parents.pop()
        path = ".".join([name for _, name in parents] + [match["key"]])
        parents.append((indent, match["key"]))
        comments: list[str] = []
        above = number - 1
        while (
            above >= 0
            and lines[above].strip().startswith("#")
            and lines[above].startswith(" " * indent + "#")
        ):
            comments.insert(0, lines[above].strip().lstrip("#").strip())
            above -= 1
        keys[path] = (number + 1, comments)
    return keys


def lookup(values: dict[str, Any], path: str) -> Any:
    value: Any = values
    for key in path.split("."):
        assert isinstance(value, dict) and key in value, f".Values.{path} is not in values.yaml"
        value = value[key]
    return value


def test_every_values_reference_exists_in_values_yaml():
    values = default_values()
    refs = values_references()
    assert refs, "no .Values references found: the regex or the templates moved"
    for path, files in sorted(refs.items()):
        try:
            lookup(values, path)
        except AssertionError as error:
            raise AssertionError(f"{error} (used in {', '.join(sorted(files))})") from None


def test_every_referenced_and_every_top_level_value_is_documented():
    keys = values_key_lines()
    refs = set(values_references())
    needed = {path for path in keys if "." not in path}
    for ref in refs:
        parts = ref.split(".")
        needed.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    undocumented = sorted(path for path in needed if not keys.get(path, (0, []))[1])
    assert not undocumented, f"values without a comment line above them: {undocumented}"


def test_every_value_is_used_by_a_template():
    # A value no template reads is a setting that silently does nothing.
    refs = set(values_references())
    keys = values_key_lines()
    unused = sorted(
        path
        for path in keys
        if not any(path == ref or path.startswith(ref + ".") or ref.startswith(path + ".") for ref in refs)
    )
    assert not unused, f"values.yaml keys no template uses: {unused}"


def test_values_key_scan_sees_the_whole_file():
    # The line scanner must find the same keys yaml does, or the two tests above check too little.
    def paths(value: Any, prefix: str = "") -> set[str]:
        if not isinstance(value, dict):
            return set()
        found = set()
        for key, child in value.items():
            found.add(prefix + key)
            found |= paths(child, prefix + key + ".")
        return found

    assert set(values_key_lines()) == paths(default_values())


def test_chart_metadata():
    chart = load_yaml(CHART / "Chart.yaml")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "trailkeeper"
    assert chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?", chart["version"])
    # The image tag defaults to appVersion: it must name the release of the code beside it.
    assert chart["appVersion"] == project["version"]


# --- templates parse, in every branch and in each mode --------------------------------------------------


@pytest.mark.parametrize("path", template_files(), ids=lambda path: path.name)
def test_every_branch_of_every_template_parses_as_kubernetes_objects(path):
    text = render_text(path, every_branch=True)
    docs = [doc for doc in load_all(text) if doc is not None]
    for doc in docs:
        assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), doc
        assert doc["metadata"]["name"], doc


@pytest.mark.parametrize("mode", MODES)
def test_install_notes_render(mode):
    notes = render_text(TEMPLATES / "NOTES.txt", MODES[mode], namespace="ops")
    assert "kubectl -n ops logs deploy/trailkeeper" in notes
    for namespace in MODES[mode].get("watchNamespaces", []):
        assert namespace in notes


def test_templates_use_only_known_helpers():
    defined = set(_helpers())
    for path in TEMPLATES.iterdir():
        for name in re.findall(r'include "([^"]+)"', path.read_text(encoding="utf-8")):
            assert name in defined, f"{path.name} includes undefined {name!r}"


@pytest.mark.parametrize("mode", MODES)
def test_rendered_kinds(mode):
    overrides = MODES[mode]
    values = deep_merge(default_values(), overrides)
    docs = render_chart(overrides)
    kinds = sorted(doc["kind"] for doc in docs)
    namespaces = values["watchNamespaces"]
    peering = values["peering"]["enabled"]
    expected = ["ClusterRole", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "ServiceAccount"]
    expected += ["RoleBinding"] * len(namespaces) if namespaces else ["ClusterRoleBinding"]
    if peering:
        expected += ["KopfPeering"] * len(namespaces) if namespaces else ["ClusterKopfPeering"]
    assert kinds == sorted(expected)


def test_namespaced_mode_binds_and_peers_in_each_listed_namespace():
    docs = render_chart({"watchNamespaces": ["security", "audit"]})
    assert {doc["metadata"]["namespace"] for doc in by_kind(docs, "RoleBinding")} == {"security", "audit"}
    peerings = by_kind(docs, "KopfPeering")
    assert {(doc["metadata"]["namespace"], doc["metadata"]["name"]) for doc in peerings} == {
        ("security", "trailkeeper"),
        ("audit", "trailkeeper"),
    }


def test_optional_objects_and_their_values():
    docs = render_chart(
        {
            "metrics": {"service": {"enabled": False}},
            "serviceAccount": {"roleArn": "arn:aws:iam::123456789012:role/trailkeeper"},
        }
    )
    assert not by_kind(docs, "Service")
    annotations = one(docs, "ServiceAccount")["metadata"]["annotations"]
    assert annotations == {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/trailkeeper"}

    docs = render_chart({"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}})
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [endpoint["port"] for endpoint in monitor["spec"]["endpoints"]] == [
        port["name"] for port in service["spec"]["ports"]
    ]
    with pytest.raises(TemplateFail, match=r"metrics\.service\.enabled"):
        render_chart({"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}})


def test_metrics_service_reaches_the_metrics_port():
    docs = render_chart({"metrics": {"port": 9300}})
    service, container = one(docs, "Service"), operator_container(docs)
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert {"name": "metrics", "containerPort": 9300} in container["ports"]
    assert port["targetPort"] == "metrics"
    assert "--metrics-port=9300" in container["args"]


def test_pod_placement_values_reach_the_pod():
    placement = {
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        "priorityClassName": "system-cluster-critical",
        "podAnnotations": {"example.com/team": "security"},
        "imagePullSecrets": [{"name": "regcred"}],
    }
    pod = one(render_chart(placement), "Deployment")["spec"]["template"]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets"):
        assert pod["spec"][key] == placement[key]
    assert pod["metadata"]["annotations"] == placement["podAnnotations"]


# --- the operator Deployment ----------------------------------------------------------------------------


def assert_locked_down(deployment: dict[str, Any]) -> None:
    """Non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp."""
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for container in pod["containers"] + pod.get("initContainers", []):
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not context.get("privileged")


def flag_values(args: list[str], flag: str) -> list[str]:
    """The values given to `flag` as `--flag=value` or `--flag value` / `-n value`."""
    found = []
    for index, arg in enumerate(args):
        if arg.startswith(flag + "="):
            found.append(arg.split("=", 1)[1])
        elif arg == flag and index + 1 < len(args):
            found.append(args[index + 1])
    return found


def assert_liveness_probe_matches_the_endpoint(container: dict[str, Any]) -> None:
    (liveness,) = flag_values(container["args"], "--liveness")
    endpoint = urlsplit(liveness)
    assert endpoint.scheme == "http"
    assert endpoint.hostname == "0.0.0.0", "kopf must listen on the pod IP for the kubelet to reach it"
    probe = container["livenessProbe"]["httpGet"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    port = ports[probe["port"]] if isinstance(probe["port"], str) else probe["port"]
    assert (probe["path"], port) == (endpoint.path, endpoint.port)


@pytest.mark.parametrize("mode", MODES)
def test_deployment_is_locked_down(mode):
    assert_locked_down(one(render_chart(MODES[mode]), "Deployment"))


def test_deployment_security_context_cannot_be_loosened_by_values():
    # The hardening is written into the template, not read from values.
    text = (TEMPLATES / "deployment.yaml").read_text(encoding="utf-8")
    for line in text.splitlines():
        if re.match(r"\s*(runAsNonRoot|readOnlyRootFilesystem|allowPrivilegeEscalation|runAsUser):", line):
            assert "{{" not in line, line


def test_liveness_probe_calls_the_operator_health_endpoint():
    container = operator_container(render_chart({"liveness": {"port": 8181}}))
    assert_liveness_probe_matches_the_endpoint(container)
    assert "--liveness=http://0.0.0.0:8181/healthz" in container["args"]


@pytest.mark.parametrize("mode", MODES)
def test_operator_flags_follow_the_values(mode):
    overrides = MODES[mode]
    values = deep_merge(default_values(), overrides)
    args = operator_container(render_chart(overrides))["args"]
    if values["watchNamespaces"]:
        assert flag_values(args, "-n") == values["watchNamespaces"]
        assert "-A" not in args
    else:
        assert "-A" in args and not flag_values(args, "-n")
    if values["peering"]["enabled"]:
        assert flag_values(args, "--peering") == [values["peering"]["name"]]
        assert "--standalone" not in args
    else:
        assert "--standalone" in args and not flag_values(args, "--peering")
    assert flag_values(args, "--resync-scale") == [str(values["resyncScale"])]
    assert flag_values(args, "--max-workers") == [str(values["maxWorkers"])]
    assert flag_values(args, "--log-level") == [values["log"]["level"]]
    assert flag_values(args, "--log-format") == [values["log"]["format"]]


def run_params(args: list[str]) -> dict[str, Any]:
    """The options `trailkeeper run` starts with for these args: click parses and validates them."""
    from trailkeeper.cli.main import cli

    command = cli.commands["run"]  # type: ignore[attr-defined]
    with command.make_context("run", list(args)) as context:
        return dict(context.params)


@pytest.mark.parametrize("mode", MODES)
def test_trailkeeper_run_accepts_the_rendered_flags(mode):
    overrides = MODES[mode]
    values = deep_merge(default_values(), overrides)
    params = run_params(operator_container(render_chart(overrides))["args"])
    assert params["namespaces"] == tuple(values["watchNamespaces"])
    assert params["all_namespaces"] is not bool(values["watchNamespaces"])
    assert params["standalone"] is not values["peering"]["enabled"]
    assert params["peering"] == values["peering"]["name"] or not values["peering"]["enabled"]
    assert params["liveness"] == f"http://0.0.0.0:{values['liveness']['port']}/healthz"
    assert params["metrics_port"] == values["metrics"]["port"]
    assert params["resync_scale"] == values["resyncScale"]
    assert params["max_workers"] == values["maxWorkers"]
    assert params["log_level"] == values["log"]["level"]
    assert params["log_format"] == values["log"]["format"]


def test_aws_settings_reach_the_environment():
    container = operator_container(render_chart({"aws": {"region": "eu-west-1"}}))
    env = {item["name"]: item for item in container["env"]}
    assert env["AWS_REGION"]["value"] == "eu-west-1"
    assert "AWS_ENDPOINT_URL" not in env
    # kopf's peering identity: the pod name, unique per replica.
    assert env["POD_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    container = operator_container(render_chart({"aws": {"endpointUrl": "http://moto:5000"}}))
    assert {"name": "AWS_ENDPOINT_URL", "value": "http://moto:5000"} in container["env"]


def test_image_defaults_to_the_app_version():
    chart = load_yaml(CHART / "Chart.yaml")
    assert operator_container(render_chart())["image"] == f"trailkeeper:{chart['appVersion']}"
    assert operator_container(render_chart({"image": {"tag": "dev"}}))["image"] == "trailkeeper:dev"


def test_never_two_active_operator_pods():
    # kopf has no leader election. _core/engines/peering.py process_peering_event pauses every operator
    # that sees a live peer of higher priority; each replica draws its own (tests/test_peering_e2e.py).
    deployment = one(render_chart(), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    # Nor an old and a new pod side by side during a rollout.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert one(render_chart({"replicaCount": 0}), "Deployment")["spec"]["replicas"] == 0
    replicated = one(render_chart({"replicaCount": 3, "peering": {"lifetime": 30}}), "Deployment")
    assert replicated["spec"]["replicas"] == 3
    args = operator_container([replicated])["args"]
    assert {"--peering=trailkeeper", "--peering-lifetime=30"} <= set(args)
    assert not any(arg.startswith("--priority") for arg in args), "each pod draws its own priority"
    # Standalone, every replica would reconcile every object.
    with pytest.raises(TemplateFail, match="replicaCount"):
        render_chart({"replicaCount": 2, "peering": {"enabled": False}})


def test_read_only_root_filesystem_has_a_writable_tmp():
    pod = one(render_chart(), "Deployment")["spec"]["template"]["spec"]
    (mount,) = operator_container([one(render_chart(), "Deployment")])["volumeMounts"]
    volume = next(volume for volume in pod["volumes"] if volume["name"] == mount["name"])
    assert mount["mountPath"] == "/tmp" and "emptyDir" in volume


def test_resource_names_follow_the_release():
    docs = render_chart(release="audit", namespace="ops")
    assert one(docs, "Deployment")["metadata"]["name"] == "audit-trailkeeper"
    assert {doc["metadata"]["name"] for doc in by_kind(docs, "ClusterRole")} == {
        "audit-trailkeeper-cluster",
        "audit-trailkeeper-namespaced",
    }
    assert all(
        doc["metadata"]["namespace"] == "ops" for doc in docs if doc["kind"] in ("Deployment", "Service")
    )


# --- CRDs -------------------------------------------------------------------------------------------------


def test_chart_crds_are_the_repository_crds_plus_kopf_peering():
    repo = {path.name for path in REPO_CRDS.glob("*.yaml")}
    chart = {path.name for path in (CHART / "crds").iterdir()}
    assert chart == repo | {PEERING_CRDS}
    for name in repo:
        assert (CHART / "crds" / name).read_bytes() == (REPO_CRDS / name).read_bytes(), (
            f"charts/trailkeeper/crds/{name} differs from crds/{name}: copy it again"
        )


def test_peering_crds_match_what_kopf_and_the_rbac_expect():
    crds = {
        doc["spec"]["names"]["plural"]: doc
        for doc in yaml.safe_load_all((CHART / "crds" / PEERING_CRDS).read_text())
    }
    assert set(crds) == {references.CLUSTER_PEERINGS_K.any_name, references.NAMESPACED_PEERINGS_K.any_name}
    for plural, crd in crds.items():
        assert crd["metadata"]["name"] == f"{plural}.{references.CLUSTER_PEERINGS_K.group}"
        assert crd["spec"]["group"] == references.CLUSTER_PEERINGS_K.group
        assert [version["name"] for version in crd["spec"]["versions"]] == [
            references.CLUSTER_PEERINGS_K.version
        ]
        # With a status subresource kopf would patch <plural>/status, which the RBAC does not grant.
        assert all("subresources" not in version for version in crd["spec"]["versions"])
    assert crds["clusterkopfpeerings"]["spec"]["scope"] == "Cluster"
    assert crds["kopfpeerings"]["spec"]["scope"] == "Namespaced"


# --- the evaluator itself ---------------------------------------------------------------------------------


def _render_snippet(text: str, values: dict[str, Any], *, every_branch: bool = False) -> str:
    context = {"Values": values}
    return Renderer(context, {}, every_branch=every_branch).render(
        parse_template(text), context, {"$": context}
    )


def test_evaluator_trims_whitespace_like_go_templates():
    text = "a:\n  {{- if .Values.on }}\n  b: 1\n  {{- end }}\nc: {{ .Values.name | quote }}\n"
    assert _render_snippet(text, {"on": True, "name": "x"}) == 'a:\n  b: 1\nc: "x"\n'
    assert _render_snippet(text, {"on": False, "name": "x"}) == 'a:\nc: "x"\n'


def test_evaluator_refuses_what_it_does_not_know():
    with pytest.raises(TemplateError, match="missing key"):
        _render_snippet("{{ .Values.nope }}", {})
    with pytest.raises(TemplateError, match="unknown function"):
        _render_snippet("{{ tpl .Values.x . }}", {"x": ""})


def test_neutraliser_renders_every_branch():
    text = (
        "{{- if .Values.on }}\nthen: 1\n{{- else }}\notherwise: 1\n{{- end }}\n"
        "{{- range .Values.items }}\nitem: {{ . }}\n{{- end }}\n"
    )
    assert yaml.safe_load(_render_snippet(text, {"on": False, "items": []}, every_branch=True)) == {
        "then": 1,
        "otherwise": 1,
        "item": PLACEHOLDER,
    }
