"""Policy documents are compared by meaning: every spelling AWS may hand back equals what was written."""

from __future__ import annotations

import copy
import json
import random
import urllib.parse
from typing import Any

import pytest

from trailkeeper.core.policy_document import (
    canonical_statement,
    documents_equal,
    parse_policy,
    statements_equal,
)

TRAIL = "arn:aws:cloudtrail:us-east-1:123456789012:trail/audit"
OTHER_TRAIL = "arn:aws:cloudtrail:eu-west-1:123456789012:trail/audit"

BASE: dict[str, Any] = {
    "Sid": "Write",
    "Effect": "Allow",
    "Principal": {"Service": "cloudtrail.amazonaws.com"},
    "Action": "s3:PutObject",
    "Resource": "arn:aws:s3:::b/AWSLogs/123456789012/*",
    "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": TRAIL}},
}


def variant(**changes: Any) -> dict[str, Any]:
    statement = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            statement.pop(key, None)
        else:
            statement[key] = value
    return statement


SAME_MEANING = [
    ("action as a one-element list", variant(Action=["s3:PutObject"])),
    ("action in another letter case", variant(Action="S3:putobject")),
    ("resource as a one-element list", variant(Resource=["arn:aws:s3:::b/AWSLogs/123456789012/*"])),
    ("principal value as a list", variant(Principal={"Service": ["cloudtrail.amazonaws.com"]})),
    (
        "condition value as a list, keys reordered",
        variant(
            Condition={
                "StringEquals": {"aws:SourceArn": [TRAIL], "s3:x-amz-acl": ["bucket-owner-full-control"]}
            }
        ),
    ),
    (
        "condition key in another letter case",
        variant(
            Condition={"StringEquals": {"S3:X-AMZ-ACL": "bucket-owner-full-control", "AWS:SourceArn": TRAIL}}
        ),
    ),
    ("keys of the statement in another order", dict(reversed(list(BASE.items())))),
]

DIFFERENT_MEANING = [
    ("another action", variant(Action="s3:GetObject")),
    ("a NotAction instead of the Action", {**variant(Action=None), "NotAction": "s3:PutObject"}),
    ("another effect", variant(Effect="Deny")),
    ("another resource", variant(Resource="arn:aws:s3:::b/*")),
    ("resource in another letter case", variant(Resource="arn:aws:s3:::B/AWSLogs/123456789012/*")),
    ("another principal kind", variant(Principal={"AWS": "cloudtrail.amazonaws.com"})),
    (
        "one more condition value",
        variant(
            Condition={
                "StringEquals": {
                    "s3:x-amz-acl": "bucket-owner-full-control",
                    "aws:SourceArn": [TRAIL, OTHER_TRAIL],
                }
            }
        ),
    ),
    (
        "a condition operator in another letter case",
        variant(
            Condition={"stringequals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": TRAIL}}
        ),
    ),
    (
        "a StringEquals value in another letter case",
        variant(
            Condition={"StringEquals": {"s3:x-amz-acl": "BUCKET-OWNER-FULL-CONTROL", "aws:SourceArn": TRAIL}}
        ),
    ),
    ("no condition", variant(Condition=None)),
    ("another Sid", variant(Sid="Other")),
]


@pytest.mark.parametrize(("what", "other"), SAME_MEANING, ids=[w for w, _ in SAME_MEANING])
def test_statements_with_the_same_meaning_are_equal(what: str, other: dict[str, Any]) -> None:
    assert statements_equal(BASE, other)
    assert canonical_statement(BASE) == canonical_statement(other)


@pytest.mark.parametrize(("what", "other"), DIFFERENT_MEANING, ids=[w for w, _ in DIFFERENT_MEANING])
def test_statements_with_another_meaning_differ(what: str, other: dict[str, Any]) -> None:
    assert not statements_equal(BASE, other)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"Principal": "*"}, {"Principal": {"AWS": "*"}}),
        ({"Principal": "*"}, {"Principal": {"AWS": ["*"]}}),
        ({"Principal": {"AWS": "123456789012"}}, {"Principal": {"AWS": "arn:aws:iam::123456789012:root"}}),
        (
            {"Condition": {"Bool": {"aws:SecureTransport": False}}},
            {"Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ),
        (
            {"Condition": {"Bool": {"aws:SecureTransport": "False"}}},
            {"Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ),
        (
            {"Condition": {"Null": {"aws:TokenIssueTime": True}}},
            {"Condition": {"Null": {"aws:TokenIssueTime": "true"}}},
        ),
        (
            {"Condition": {"NumericLessThan": {"s3:max-keys": 10}}},
            {"Condition": {"NumericLessThan": {"s3:max-keys": "10"}}},
        ),
        ({"Condition": {}}, {}),
        (
            {"Action": ["s3:GetObject", "s3:PutObject", "s3:GetObject"]},
            {"Action": ["s3:putobject", "s3:getobject"]},
        ),
        ({"Sid": ""}, {}),
    ],
    ids=[
        "star-principal",
        "star-principal-list",
        "account-id-vs-root-arn",
        "bool-json-vs-string",
        "bool-string-case",
        "null-operator-bool",
        "number-vs-string",
        "empty-condition",
        "duplicate-actions",
        "empty-sid",
    ],
)
def test_element_spellings_are_equal(a: dict[str, Any], b: dict[str, Any]) -> None:
    common = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    assert statements_equal({**common, **a}, {**common, **b})


def test_principal_account_root_arn_differs_from_a_role_of_that_account() -> None:
    a = {"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "s3:GetObject", "Resource": "*"}
    b = {**a, "Principal": {"AWS": "arn:aws:iam::123456789012:role/r"}}
    assert not statements_equal(a, b)


def test_ignore_sid_compares_everything_but_the_sid() -> None:
    other = variant(Sid="SomethingElse")
    assert not statements_equal(BASE, other)
    assert statements_equal(BASE, other, ignore_sid=True)
    assert statements_equal(BASE, variant(Sid=None), ignore_sid=True)


def document(*statements: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", **top, "Statement": list(statements)}


DENY = {
    "Sid": "Deny",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
VARIABLE = {
    "Sid": "Home",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::b/home/${aws:username}/*",
}


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (document(BASE, DENY), document(DENY, BASE), True),
        (document(BASE, DENY), document(BASE, DENY, copy.deepcopy(BASE)), True),
        ({"Version": "2012-10-17", "Statement": BASE}, document(BASE), True),
        (document(BASE), {"Statement": [BASE]}, True),
        (document(BASE), document(BASE, Id="some-id"), True),
        (document(BASE), {"Version": "2008-10-17", "Statement": [BASE]}, True),
        (None, None, True),
        (None, document(), True),
        (None, {"Version": "2012-10-17"}, True),
        (None, document(BASE), False),
        (document(BASE), document(BASE, DENY), False),
        (document(BASE), document(variant(Resource="arn:aws:s3:::other/*")), False),
        (document(VARIABLE), {"Statement": [VARIABLE]}, False),
        (document(VARIABLE), {"Version": "2008-10-17", "Statement": [VARIABLE]}, False),
        ({"Statement": [VARIABLE]}, {"Version": "2008-10-17", "Statement": [VARIABLE]}, True),
        (document(VARIABLE), document(VARIABLE), True),
    ],
    ids=[
        "statement-order",
        "repeated-statement",
        "single-statement-object",
        "version-absent-without-variables",
        "id-ignored",
        "version-2008-without-variables",
        "both-missing",
        "missing-vs-empty",
        "missing-vs-no-statements",
        "missing-vs-statements",
        "extra-statement",
        "changed-statement",
        "variables-absent-version-means-2008",
        "variables-2008-vs-2012",
        "variables-absent-vs-2008",
        "variables-same-version",
    ],
)
def test_documents_equal(a: dict[str, Any] | None, b: dict[str, Any] | None, equal: bool) -> None:
    assert documents_equal(a, b) is equal
    assert documents_equal(b, a) is equal


def test_documents_equal_counts_sids_unless_ignored() -> None:
    a = document(BASE)
    b = document(variant(Sid="Renamed"))
    assert not documents_equal(a, b)
    assert documents_equal(a, b, ignore_sid=True)


# Property: any re-spelling of a statement AWS might produce is equal; any real change is not -----------

POOL: list[dict[str, Any]] = [
    BASE,
    DENY,
    {
        "Effect": "Allow",
        "Principal": {"AWS": ["arn:aws:iam::111111111111:root", "arn:aws:iam::222222222222:role/x"]},
        "NotAction": ["iam:*", "sts:AssumeRole", "organizations:*"],
        "Resource": ["arn:aws:s3:::b/a/*", "arn:aws:s3:::b/b/*", "arn:aws:s3:::b/c/*"],
        "Condition": {
            "StringLike": {"aws:PrincipalArn": ["arn:aws:iam::*:role/a*", "arn:aws:iam::*:role/b*"]},
            "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]},
            "Bool": {"aws:MultiFactorAuthPresent": True},
        },
    },
]


_LISTABLE = ("Action", "NotAction", "Resource", "NotResource")


def respell_values(value: Any, rng: random.Random, *, lower_case_ok: bool = False) -> Any:
    """A string-or-list value re-spelled: shuffled, an item repeated, a singleton unwrapped or wrapped."""
    items = list(value) if isinstance(value, list) else [value]
    if lower_case_ok:
        items = [v.swapcase() if isinstance(v, str) and rng.random() < 0.5 else v for v in items]
    items = [("true" if v else "false") if isinstance(v, bool) and rng.random() < 0.5 else v for v in items]
    rng.shuffle(items)
    if rng.random() < 0.3:
        items.append(items[0])
    if len(items) == 1 and rng.random() < 0.5:
        return items[0]
    return items


def shuffled(mapping: dict[str, Any], rng: random.Random) -> list[tuple[str, Any]]:
    items = list(mapping.items())
    rng.shuffle(items)
    return items


def respell(statement: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same statement, spelled at random the ways AWS and people do."""
    result: dict[str, Any] = {}
    for key, value in shuffled(statement, rng):
        if key in _LISTABLE:
            result[key] = respell_values(value, rng, lower_case_ok=key in ("Action", "NotAction"))
        elif key == "Principal" and value == "*":
            result[key] = rng.choice(["*", {"AWS": "*"}, {"AWS": ["*"]}])
        elif key == "Principal":
            result[key] = {kind: respell_values(v, rng) for kind, v in shuffled(value, rng)}
        elif key == "Condition":
            result[key] = {
                operator: {
                    (k.upper() if rng.random() < 0.5 else k): respell_values(v, rng)
                    for k, v in shuffled(block, rng)
                }
                for operator, block in shuffled(value, rng)
            }
        else:
            result[key] = value
    return result


def test_random_respellings_of_documents_are_equal() -> None:
    rng = random.Random(20240601)
    for _ in range(300):
        statements = rng.sample(POOL, k=rng.randint(1, len(POOL)))
        original = document(*statements)
        respelled = document(*[respell(s, rng) for s in rng.sample(statements, k=len(statements))])
        assert documents_equal(original, respelled), json.dumps(respelled)


def test_random_real_changes_are_detected() -> None:
    rng = random.Random(7)
    changes = [
        ("Effect", "Deny"),
        ("Action", "s3:DeleteObject"),
        ("Resource", "arn:aws:s3:::elsewhere/*"),
        ("Principal", {"Service": "config.amazonaws.com"}),
        ("Condition", {"StringEquals": {"aws:SourceAccount": "999999999999"}}),
    ]
    for _ in range(100):
        statement = rng.choice(POOL)
        key, value = rng.choice(changes)
        if statement.get(key) == value:
            continue
        changed = {**statement, key: value}
        if "NotAction" in changed and key == "Action":
            del changed["NotAction"]
        assert not documents_equal(document(statement), document(respell(changed, rng)))


# Parsing what AWS returns ---------------------------------------------------------------------------

POLICY = {"Version": "2012-10-17", "Statement": [BASE]}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(POLICY),
        json.dumps(POLICY, indent=4),
        "\n  " + json.dumps(POLICY, separators=(",", ":")) + "\n",
        "\ufeff" + json.dumps(POLICY),
        urllib.parse.quote(json.dumps(POLICY)),
        urllib.parse.quote(json.dumps(POLICY, indent=2)),
    ],
    ids=[
        "plain",
        "indented",
        "compact-with-whitespace",
        "byte-order-mark",
        "url-encoded",
        "url-encoded-indented",
    ],
)
def test_parse_policy_accepts_what_aws_returns(text: str) -> None:
    assert parse_policy(text) == POLICY


@pytest.mark.parametrize("text", [None, "", "   \n"])
def test_parse_policy_of_nothing_is_none(text: str | None) -> None:
    assert parse_policy(text) is None


def test_parse_policy_keeps_percent_signs_inside_plain_json() -> None:
    policy = {
        "Statement": [
            {"Sid": "A", "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/100%25/*"}
        ]
    }
    assert parse_policy(json.dumps(policy)) == policy


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"a string"'])
def test_parse_policy_refuses_what_is_not_a_policy(text: str) -> None:
    with pytest.raises(ValueError):
        parse_policy(text)
