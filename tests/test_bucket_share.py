"""Shared-bucket statements: aggregated as AWS documents for many accounts, each Trail's part its own."""

from __future__ import annotations

import json
from typing import Any

import parliament

from support.limits import policy_size
from trailkeeper.core.bucket_share import (
    ACL_CHECK_SID,
    BUCKET_POLICY_MAX_BYTES,
    DENY_INSECURE_TRANSPORT_SID,
    BucketShare,
    add_share,
    has_share,
    missing_entries,
    policy_bytes,
    remove_share,
    write_sid,
)

BUCKET = "central-cloudtrail-logs-000"
FOREIGN = {
    "Sid": "Analytics",
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Action": "s3:GetObject",
    "Resource": "*",
}


def share(account: int, name: str = "organization-audit-trail", prefix: str = "") -> BucketShare:
    return BucketShare(BUCKET, prefix, f"{100000000000 + account}", name)


def by_sid(policy: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in (policy or {}).get("Statement", [])}


def test_a_hundred_accounts_share_one_bucket_within_20_kb_in_three_statements() -> None:
    policy: dict[str, Any] | None = {"Version": "2012-10-17", "Statement": [FOREIGN]}
    for account in range(100):
        policy = add_share(policy, share(account))
    assert policy is not None
    # The size S3 meters, computed independently by the tests' limits front.
    assert policy_bytes(policy) == policy_size(json.dumps(policy, indent=2)) <= BUCKET_POLICY_MAX_BYTES
    statements = by_sid(policy)
    assert set(statements) == {"Analytics", ACL_CHECK_SID, write_sid(""), DENY_INSECURE_TRANSPORT_SID}
    write = statements[write_sid("")]
    assert len(write["Resource"]) == 100 and len(write["Condition"]["ArnLike"]["aws:SourceArn"]) == 100
    assert len(statements[ACL_CHECK_SID]["Condition"]["StringEquals"]["aws:SourceAccount"]) == 100
    assert all(not missing_entries(policy, share(a)) for a in range(100))
    findings = parliament.analyze_policy_string(json.dumps(policy), ignore_private_auditors=True).findings
    assert [f.issue for f in findings if f.severity in ("HIGH", "CRITICAL", "MEDIUM")] == []


def test_adding_twice_changes_nothing_and_a_trail_leaving_keeps_everyone_else() -> None:
    policy = add_share(add_share({"Statement": [FOREIGN]}, share(1)), share(2))
    assert add_share(policy, share(2)) == policy
    without_one = remove_share(policy, share(1))
    assert without_one is not None
    assert not has_share(without_one, share(1)) and has_share(without_one, share(2))
    assert missing_entries(without_one, share(2)) == []
    write = by_sid(without_one)[write_sid("")]
    assert write["Resource"] == [share(2).log_path]
    assert by_sid(without_one)[ACL_CHECK_SID]["Condition"]["StringEquals"]["aws:SourceAccount"] == [
        share(2).account_id
    ]
    # The last one takes the shared statements with it, the TLS deny too; the foreign one stays.
    assert remove_share(without_one, share(2)) == {"Statement": [FOREIGN]}
    assert remove_share(add_share(None, share(3)), share(3)) is None


def test_two_trails_of_one_account_share_its_path_until_the_last_leaves() -> None:
    first, second = share(7, "audit"), share(7, "data-events")
    policy = add_share(add_share(None, first), second)
    assert by_sid(policy)[write_sid("")]["Resource"] == [first.log_path]
    after = remove_share(policy, first)
    assert after is not None and missing_entries(after, second) == []
    assert by_sid(after)[ACL_CHECK_SID]["Condition"]["StringEquals"]["aws:SourceAccount"] == [
        first.account_id
    ]


def test_a_moved_key_prefix_leaves_the_old_pattern_and_others_keep_it() -> None:
    stay, mover = share(1, prefix="logs"), share(2, prefix="logs")
    policy = add_share(add_share(None, stay), mover)
    moved = add_share(policy, share(2, prefix="elsewhere"))
    statements = by_sid(moved)
    assert statements[write_sid("logs")]["Resource"] == [stay.log_path]
    assert statements[write_sid("elsewhere")]["Resource"] == [share(2, prefix="elsewhere").log_path]


def test_entries_added_by_hand_are_kept_and_a_lost_entry_is_found() -> None:
    policy = add_share(None, share(1))
    by_sid(policy)[write_sid("")]["Condition"]["ArnLike"]["aws:SourceArn"].append(
        "arn:aws:cloudtrail:*:999999999999:trail/manual"
    )
    after = add_share(policy, share(2))
    assert "arn:aws:cloudtrail:*:999999999999:trail/manual" in json.dumps(after)
    by_sid(after)[write_sid("")]["Resource"].remove(share(2).log_path)
    assert missing_entries(after, share(2)) == [(write_sid(""), share(2).log_path)]
    assert missing_entries(after, share(1)) == []


def test_a_trail_not_yet_made_adds_beside_an_entry_of_its_name_and_removes_only_its_own_path() -> None:
    """One trail name in two namespaces: until CreateTrail decides, either entry may be the other
    Trail's, so a share that has not claimed its trail moves nothing and takes out only its own path."""
    winner, loser = share(3, "org-audit"), share(3, "org-audit", prefix="team-b")
    policy = add_share(None, winner)
    both = add_share(policy, loser, move=False)
    assert missing_entries(both, winner) == [] and missing_entries(both, loser) == []
    assert missing_entries(add_share(policy, loser), winner) != []  # a claimed share moves its entry
    after = remove_share(both, loser, anywhere=False)
    assert missing_entries(after, winner) == []
    assert not has_share(after, loser, anywhere=False) and has_share(after, loser)
