"""Merges touch only the owner's statements and rules; everything else comes back exactly as it was."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from trailkeeper.core.bucket_policy import desired_bucket_statements
from trailkeeper.core.merge import (
    lifecycle_rules_equal,
    merge_lifecycle_rules,
    merge_statements,
    owner_statements,
    remove_owner_statements,
)
from trailkeeper.core.naming import PURPOSE_ORGANIZATION_WRITE, owner_sids, statement_sid
from trailkeeper.core.policy_document import documents_equal

OWNER_A = "security/audit"
OWNER_B = "team-b/audit"
ACCOUNT = "123456789012"

# Statements other people and tools wrote, in the odd forms real policies hold.
FOREIGN: list[dict[str, Any]] = [
    {
        "Sid": "PublicRead",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::acme-audit/public/*",
    },
    {
        "Effect": "Deny",
        "Principal": {"AWS": ["arn:aws:iam::111111111111:root", "222222222222"]},
        "NotAction": ["s3:GetObject", "s3:ListBucket"],
        "Resource": ["arn:aws:s3:::acme-audit", "arn:aws:s3:::acme-audit/*"],
        "Condition": {
            "StringNotEquals": {"aws:PrincipalOrgID": ["o-aaaaaaaaaa", "o-bbbbbbbbbb"]},
            "Bool": {"aws:ViaAWSService": False},
        },
    },
    {
        # Written by the CloudTrail console: a look-alike of ours that is not ours.
        "Sid": "AWSCloudTrailWrite20150319",
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::acme-audit/AWSLogs/123456789012/*",
        "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
    },
    {
        # Shaped like one of ours, but of an owner that does not exist: still foreign.
        "Sid": "Trailkeeper0000000000000000",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": ["s3:PutObject"],
        "Resource": "arn:aws:s3:::acme-audit/access/*",
    },
]


def ours(owner: str = OWNER_A, **overrides: Any) -> list[dict[str, Any]]:
    arguments: dict[str, Any] = {
        "owner": owner,
        "bucket": "acme-audit",
        "key_prefix": "",
        "account_id": ACCOUNT,
        "trail_arns": [f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/{owner.replace('/', '-')}"],
        # An owner's own statements: the grants for other accounts and an organization (the statements
        # every trail needs are shared by all Trails of a bucket: test_bucket_share).
        "source_accounts": ["210987654321"],
        "organization_id": None,
    }
    arguments.update(overrides)
    return desired_bucket_statements(**arguments)


def foreign_of(document: dict[str, Any] | None, *owners: str) -> list[Any]:
    sids = set().union(*(owner_sids(o) for o in owners)) if owners else set()
    return [s for s in (document or {}).get("Statement", []) if s.get("Sid") not in sids]


def existing_policy() -> dict[str, Any]:
    return {"Version": "2012-10-17", "Id": "AcmePolicy", "Statement": copy.deepcopy(FOREIGN)}


def test_foreign_statements_are_kept_exactly_and_in_order() -> None:
    existing = existing_policy()
    merged = merge_statements(existing, OWNER_A, ours())
    assert merged is not None
    assert foreign_of(merged, OWNER_A) == FOREIGN
    assert merged["Statement"][len(FOREIGN) :] == ours()


def test_the_existing_version_id_and_other_elements_are_kept() -> None:
    existing = {"Id": "x", "Version": "2008-10-17", "Statement": copy.deepcopy(FOREIGN)}
    merged = merge_statements(existing, OWNER_A, ours())
    assert merged is not None
    assert list(merged) == ["Id", "Version", "Statement"]
    assert (merged["Id"], merged["Version"]) == ("x", "2008-10-17")


def test_a_document_without_version_stays_without() -> None:
    merged = merge_statements({"Statement": copy.deepcopy(FOREIGN)}, OWNER_A, ours())
    assert merged is not None and "Version" not in merged


def test_merging_into_nothing_makes_a_2012_document() -> None:
    assert merge_statements(None, OWNER_A, ours()) == {"Version": "2012-10-17", "Statement": ours()}


def test_the_inputs_are_not_changed() -> None:
    existing = existing_policy()
    desired = ours()
    before = (copy.deepcopy(existing), copy.deepcopy(desired))
    merged = merge_statements(existing, OWNER_A, desired)
    assert merged is not None
    merged["Statement"][0]["Sid"] = "changed"
    merged["Statement"][-1]["Effect"] = "changed"
    assert (existing, desired) == before


@pytest.mark.parametrize(
    "existing",
    [
        None,
        {"Version": "2012-10-17", "Statement": copy.deepcopy(FOREIGN)},
        {"Statement": copy.deepcopy(FOREIGN[0])},
    ],
    ids=["none", "foreign", "single-statement-object"],
)
def test_merging_twice_is_a_fixed_point(existing: dict[str, Any] | None) -> None:
    once = merge_statements(existing, OWNER_A, ours())
    twice = merge_statements(once, OWNER_A, ours())
    assert twice == once
    assert json.dumps(twice) == json.dumps(once)


def test_our_statements_are_replaced_where_they_stand() -> None:
    first = merge_statements(existing_policy(), OWNER_A, ours())
    assert first is not None
    # Someone appends a statement after ours; our update must not move ours below it.
    later = {"Sid": "Later", "Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket", "Resource": "*"}
    first["Statement"].append(later)
    updated = merge_statements(first, OWNER_A, ours(key_prefix="new"))
    assert updated is not None
    sids = [s.get("Sid") for s in updated["Statement"]]
    assert sids[-1] == "Later"
    assert updated["Statement"][len(FOREIGN) : -1] == ours(key_prefix="new")


def test_a_purpose_no_longer_desired_is_removed() -> None:
    with_org = merge_statements(existing_policy(), OWNER_A, ours(organization_id="o-abcdefghij"))
    assert statement_sid(OWNER_A, PURPOSE_ORGANIZATION_WRITE) in json.dumps(with_org)
    without = merge_statements(with_org, OWNER_A, ours())
    assert statement_sid(OWNER_A, PURPOSE_ORGANIZATION_WRITE) not in json.dumps(without)
    assert foreign_of(without, OWNER_A) == FOREIGN


def test_two_owners_on_one_bucket_keep_each_others_statements() -> None:
    with_a = merge_statements(existing_policy(), OWNER_A, ours(OWNER_A))
    with_both = merge_statements(with_a, OWNER_B, ours(OWNER_B))
    assert owner_statements(with_both, OWNER_A) == ours(OWNER_A)
    assert owner_statements(with_both, OWNER_B) == ours(OWNER_B)
    # A changes its statements: B's stay exactly as they were, and where they were.
    changed_a = merge_statements(with_both, OWNER_A, ours(OWNER_A, key_prefix="moved"))
    assert changed_a is not None and with_both is not None
    assert owner_statements(changed_a, OWNER_B) == ours(OWNER_B)
    assert changed_a["Statement"][-len(ours(OWNER_B)) :] == with_both["Statement"][-len(ours(OWNER_B)) :]
    assert foreign_of(changed_a, OWNER_A, OWNER_B) == FOREIGN


def test_removing_an_owner_leaves_everyone_else() -> None:
    with_both = merge_statements(
        merge_statements(existing_policy(), OWNER_A, ours(OWNER_A)), OWNER_B, ours(OWNER_B)
    )
    without_a = remove_owner_statements(with_both, OWNER_A)
    assert without_a is not None
    assert owner_statements(without_a, OWNER_A) == []
    assert owner_statements(without_a, OWNER_B) == ours(OWNER_B)
    assert foreign_of(without_a, OWNER_B) == FOREIGN


def test_removing_the_last_statements_returns_none() -> None:
    only_ours = merge_statements(None, OWNER_A, ours())
    assert remove_owner_statements(only_ours, OWNER_A) is None
    assert merge_statements(only_ours, OWNER_A, []) is None
    assert remove_owner_statements(None, OWNER_A) is None


def test_removing_an_absent_owner_changes_nothing() -> None:
    existing = existing_policy()
    assert remove_owner_statements(existing, OWNER_A) == existing


def test_owner_statements_lists_only_the_owners() -> None:
    merged = merge_statements(existing_policy(), OWNER_A, ours())
    assert owner_statements(merged, OWNER_A) == ours()
    assert owner_statements(merged, OWNER_B) == []
    assert owner_statements(None, OWNER_A) == []


def test_desired_statements_must_carry_the_owners_distinct_sids() -> None:
    with pytest.raises(ValueError, match="owner's Sids"):
        merge_statements(None, OWNER_A, [*ours(), {"Sid": "Foreign", "Effect": "Allow"}])
    with pytest.raises(ValueError, match="owner's Sids"):
        merge_statements(None, OWNER_A, ours(OWNER_B))
    with pytest.raises(ValueError, match="distinct"):
        merge_statements(None, OWNER_A, [*ours(), ours()[0]])


def test_a_merged_policy_equals_a_reordered_respelling_by_meaning() -> None:
    merged = merge_statements(existing_policy(), OWNER_A, ours())
    assert merged is not None
    respelled = {"Version": "2012-10-17", "Statement": list(reversed(merged["Statement"]))}
    assert documents_equal(merged, respelled)


# Lifecycle rules ------------------------------------------------------------------------------------

OUR_ID = "trailkeeper-security-audit-retention"
FOREIGN_RULES: list[dict[str, Any]] = [
    {"ID": "expire-tmp", "Status": "Enabled", "Prefix": "tmp/", "Expiration": {"Days": 1}},
    {
        "ID": "archive-access-logs",
        "Status": "Disabled",
        "Filter": {"And": {"Prefix": "access/", "Tags": [{"Key": "a", "Value": "b"}]}},
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
    },
    {"Status": "Enabled", "Filter": {}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}},
]


GLACIER_90 = {"Days": 90, "StorageClass": "GLACIER"}
IA_30 = {"Days": 30, "StorageClass": "STANDARD_IA"}
TAG = {"Key": "k", "Value": "v"}


def our_rule(days: int = 365) -> dict[str, Any]:
    return {"ID": OUR_ID, "Status": "Enabled", "Filter": {"Prefix": "AWSLogs/"}, "Expiration": {"Days": days}}


def test_adding_our_rule_keeps_foreign_rules_exactly() -> None:
    merged = merge_lifecycle_rules(copy.deepcopy(FOREIGN_RULES), OUR_ID, our_rule())
    assert merged == [*FOREIGN_RULES, our_rule()]


def test_replacing_our_rule_keeps_its_position() -> None:
    existing = [FOREIGN_RULES[0], our_rule(), *FOREIGN_RULES[1:]]
    assert merge_lifecycle_rules(existing, OUR_ID, our_rule(30)) == [
        FOREIGN_RULES[0],
        our_rule(30),
        *FOREIGN_RULES[1:],
    ]


def test_removing_our_rule_keeps_the_others() -> None:
    existing = [FOREIGN_RULES[0], our_rule(), *FOREIGN_RULES[1:]]
    assert merge_lifecycle_rules(existing, OUR_ID, None) == FOREIGN_RULES
    assert merge_lifecycle_rules([our_rule()], OUR_ID, None) == []


def test_lifecycle_merge_is_a_fixed_point_and_leaves_inputs_alone() -> None:
    existing = copy.deepcopy(FOREIGN_RULES)
    once = merge_lifecycle_rules(existing, OUR_ID, our_rule())
    assert merge_lifecycle_rules(once, OUR_ID, our_rule()) == once
    assert existing == FOREIGN_RULES


def test_a_rule_with_another_id_is_refused() -> None:
    with pytest.raises(ValueError):
        merge_lifecycle_rules([], OUR_ID, {**our_rule(), "ID": "other"})


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (our_rule(), dict(reversed(list(our_rule().items()))), True),
        (our_rule(), {**our_rule(), "Filter": None, "Prefix": "AWSLogs/"}, True),
        (our_rule(), {**{k: v for k, v in our_rule().items() if k != "Filter"}, "Prefix": "AWSLogs/"}, True),
        (our_rule(), {**our_rule(), "Filter": {"And": {"Prefix": "AWSLogs/"}}}, True),
        (our_rule(), {**our_rule(), "Transitions": [], "NoncurrentVersionTransitions": []}, True),
        (our_rule(), {**our_rule(), "Expiration": {"Days": 365, "ExpiredObjectDeleteMarker": False}}, True),
        (
            {**our_rule(), "Transitions": [GLACIER_90, IA_30]},
            {**our_rule(), "Transitions": [{"StorageClass": "STANDARD_IA", "Days": 30}, GLACIER_90]},
            True,
        ),
        (
            {**our_rule(), "Transitions": [GLACIER_90]},
            {**our_rule(), "Transition": GLACIER_90},
            True,
        ),
        ({**our_rule(), "Filter": {}}, {**our_rule(), "Filter": {"Prefix": ""}}, True),
        ({**our_rule(), "Filter": {}}, {k: v for k, v in our_rule().items() if k != "Filter"}, True),
        (our_rule(), our_rule(30), False),
        (our_rule(), {**our_rule(), "Status": "Disabled"}, False),
        (our_rule(), {**our_rule(), "Filter": {"Prefix": "other/"}}, False),
        (our_rule(), {**our_rule(), "Filter": {"And": {"Prefix": "AWSLogs/", "Tags": [TAG]}}}, False),
        (our_rule(), {**our_rule(), "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}, False),
        (our_rule(), {**our_rule(), "ID": "other"}, False),
        (our_rule(), None, False),
        (None, None, True),
    ],
    ids=[
        "key-order",
        "legacy-prefix-null-filter",
        "legacy-prefix-no-filter",
        "and-with-prefix-only",
        "empty-lists",
        "delete-marker-false",
        "transition-order",
        "legacy-transition",
        "empty-filter-vs-empty-prefix",
        "empty-filter-vs-none",
        "other-days",
        "disabled",
        "other-prefix",
        "extra-tag-filter",
        "extra-action",
        "other-id",
        "missing",
        "both-missing",
    ],
)
def test_lifecycle_rules_equal(a: dict[str, Any] | None, b: dict[str, Any] | None, equal: bool) -> None:
    assert lifecycle_rules_equal(a, b) is equal
    assert lifecycle_rules_equal(b, a) is equal
