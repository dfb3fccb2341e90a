"""IAM policy documents compared by meaning, not by JSON text.

AWS hands a policy back in a different shape from the one it was given: a one-element list may come back
as a bare string, statements and list items in another order, an account principal as the account's root
ARN. Comparing text would see a change on every pass and rewrite the policy forever (the update loop of
crossplane-contrib/provider-aws#1757), so every comparison here goes through a canonical form in which
all spellings of one meaning are the same value.

What is treated as the same (IAM JSON policy element reference):
- a string and a one-element list, in Action, NotAction, Resource, NotResource, principal values and
  condition values; those lists are sets (order and duplicates do not change what a statement grants);
- the order of statements, and a repeated identical statement;
- `Principal: "*"` and `Principal: {"AWS": "*"}`; an account id and that account's `:root` ARN as an
  AWS principal;
- action names in any letter case (IAM matches service prefix and action name case-insensitively);
- condition key names in any letter case (condition operators stay case-sensitive);
- `true` and `"true"` (and numbers and their decimal strings) as condition values; letter case of the
  values of `Bool` and `Null` conditions;
- an absent and an empty `Condition`; a missing document, `None`, and a document with no statements.

`Version` changes one thing only: whether `${...}` policy variables are substituted (2012-10-17) or read
literally (2008-10-17, also what IAM assumes when `Version` is absent). So the version takes part in the
comparison only for documents that use a policy variable; for all others an absent Version, 2008-10-17
and 2012-10-17 mean the same. The document `Id` is an annotation IAM does not evaluate and is ignored.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Hashable, Mapping
from typing import Any

# The version IAM applies to a document that names none (IAM JSON policy elements: Version).
IMPLIED_VERSION = "2008-10-17"
CURRENT_VERSION = "2012-10-17"

CanonicalStatement = frozenset[tuple[str, Hashable]]

_ACCOUNT_ROOT_ARN = re.compile(r"^arn:aws[a-z-]*:iam::([0-9]{12}):root$")
_BOOLEAN_OPERATORS = ("Bool", "Null")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def canonical_json(value: Any) -> str:
    """A JSON value in one spelling: compact text with sorted keys."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    return canonical_json(value)


def _principal_value(kind: str, value: Any) -> str:
    text = _scalar(value)
    if kind == "AWS":
        # IAM stores an account principal given as "123456789012" as its root ARN and treats both alike.
        match = _ACCOUNT_ROOT_ARN.fullmatch(text)
        if match:
            return match.group(1)
    return text


def _principal(value: Any) -> frozenset[tuple[str, frozenset[str]]]:
    if value == "*":
        value = {"AWS": "*"}
    if not isinstance(value, Mapping):
        return frozenset({("?", frozenset({canonical_json(value)}))})
    return frozenset(
        (str(kind), frozenset(_principal_value(str(kind), item) for item in _as_list(items)))
        for kind, items in value.items()
    )


def _is_boolean_operator(operator: str) -> bool:
    # "Bool", "BoolIfExists", "ForAnyValue:Bool" … and "Null" take true/false in any spelling.
    base = operator.rsplit(":", maxsplit=1)[-1].removesuffix("IfExists")
    return base in _BOOLEAN_OPERATORS


def _condition(value: Any) -> frozenset[tuple[str, str, frozenset[str]]]:
    """A condition as a set of (operator, key, values): every entry must hold, in whatever order."""
    if not isinstance(value, Mapping):
        return frozenset({("?", "", frozenset({canonical_json(value)}))})
    entries: set[tuple[str, str, frozenset[str]]] = set()
    for operator, block in value.items():
        if not isinstance(block, Mapping):
            entries.add((str(operator), "?", frozenset({canonical_json(block)})))
            continue
        boolean = _is_boolean_operator(str(operator))
        for key, values in block.items():
            items = (_scalar(item) for item in _as_list(values))
            normalized = frozenset(item.lower() if boolean else item for item in items)
            entries.add((str(operator), str(key).lower(), normalized))
    return frozenset(entries)


def canonical_statement(statement: Mapping[str, Any], *, ignore_sid: bool = False) -> CanonicalStatement:
    """The statement in a form where every spelling of the same meaning is the same (hashable) value."""
    parts: set[tuple[str, Hashable]] = set()
    for key, value in statement.items():
        if key == "Sid":
            if not ignore_sid and value not in (None, ""):
                parts.add((key, _scalar(value)))
        elif key in ("Action", "NotAction"):
            parts.add((key, frozenset(_scalar(item).lower() for item in _as_list(value))))
        elif key in ("Resource", "NotResource"):
            parts.add((key, frozenset(_scalar(item) for item in _as_list(value))))
        elif key in ("Principal", "NotPrincipal"):
            parts.add((key, _principal(value)))
        elif key == "Condition":
            condition = _condition(value)
            if condition:
                parts.add((key, condition))
        elif key == "Effect":
            parts.add((key, _scalar(value)))
        else:
            parts.add((str(key), canonical_json(value)))
    return frozenset(parts)


def statements_equal(a: Mapping[str, Any], b: Mapping[str, Any], *, ignore_sid: bool = False) -> bool:
    """Whether two statements mean the same; the Sid counts unless `ignore_sid` (it is our merge key)."""
    return canonical_statement(a, ignore_sid=ignore_sid) == canonical_statement(b, ignore_sid=ignore_sid)


def document_statements(document: Mapping[str, Any] | None) -> list[Any]:
    """The statements of a document as a list (IAM also accepts a single statement object)."""
    if document is None:
        return []
    return _as_list(document.get("Statement"))


def uses_policy_variables(document: Mapping[str, Any] | None) -> bool:
    return "${" in canonical_json(document_statements(document))


def canonical_document(
    document: Mapping[str, Any] | None, *, ignore_sid: bool = False
) -> tuple[str, frozenset[Hashable]]:
    """(effective version or "" when it cannot matter, set of canonical statements)."""
    statements: set[Hashable] = set()
    for statement in document_statements(document):
        if isinstance(statement, Mapping):
            statements.add(canonical_statement(statement, ignore_sid=ignore_sid))
        else:
            statements.add(canonical_json(statement))
    version = ""
    if document is not None and uses_policy_variables(document):
        version = str(document.get("Version") or IMPLIED_VERSION)
    return version, frozenset(statements)


def documents_equal(
    a: Mapping[str, Any] | None, b: Mapping[str, Any] | None, *, ignore_sid: bool = False
) -> bool:
    """Whether two policy documents grant and deny the same (see the module docstring for the rules)."""
    return canonical_document(a, ignore_sid=ignore_sid) == canonical_document(b, ignore_sid=ignore_sid)


def parse_policy(text: str | None) -> dict[str, Any] | None:
    """A policy document from the text AWS returned; None for no policy.

    S3 and SNS return plain JSON (any whitespace); IAM returns documents URL-encoded. Both are accepted.
    Raises ValueError when the text is neither a JSON object nor a URL-encoded one.
    """
    if text is None:
        return None
    stripped = text.strip().lstrip("\ufeff").strip()
    if not stripped:
        return None
    candidates = [stripped]
    if "%" in stripped:
        candidates.append(urllib.parse.unquote(stripped).strip())
    if stripped.startswith("%"):
        candidates.reverse()
    for candidate in candidates:
        try:
            document = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if not isinstance(document, dict):
            raise ValueError(f"a policy document must be a JSON object, not {type(document).__name__}")
        return document
    raise ValueError("the policy is not valid JSON (plain or URL-encoded)")
