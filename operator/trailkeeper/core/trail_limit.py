"""AWS's limit of 5 trails per region per account, checked before a trail is made.

CloudTrail refuses a sixth trail in a region ("Quotas in AWS CloudTrail": 5 trails per region, not
adjustable), and a multi-region trail takes a slot in every region. A pass that would make one therefore
stops before any write (bucket, policy, topic) and says what to do instead; the count comes from the
DescribeTrails answer (shadows included) that the pass reads anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TRAILS_PER_REGION = 5
TRAIL_LIMIT = "TrailLimit"


def _account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""


def account_trails(described: Mapping[str, Mapping[str, Any]], account_id: str) -> list[str]:
    """The trails that take one of `account_id`'s slots in the region `described` lists: its own and the
    shadows of its multi-region trails. An organization trail of the management account shows up in a
    member's list but counts against the management account, so trails of other accounts are left out."""
    return sorted(
        name for name, raw in described.items() if _account_of(str(raw.get("TrailARN", ""))) == account_id
    )


# What to do, said with every TrailLimit (also when CloudTrail itself refused a trail another writer
# raced this pass to the last slot).
ADVICE = (
    "AWS's limit per region, which cannot be raised (multi-region trails count in every region); nothing "
    "was made. Remove one of them, or record this account with fewer trails: one multiRegion Trail per "
    "account with all its event selectors, or an AWS Organizations trail from the management account"
)


def trail_limit_message(region: str, account_id: str, names: list[str]) -> str:
    """Why a new trail cannot be made in `region`, and what to do."""
    return f"account {account_id} already has {len(names)} trails in {region} ({', '.join(names)}), {ADVICE}"


def trail_limit_problem(
    described: Mapping[str, Mapping[str, Any]], account_id: str, region: str, name: str
) -> str | None:
    """Why making the trail `name` in `region` would pass the limit, or None when a slot is free (or the
    trail exists already: changing it takes no new slot)."""
    names = account_trails(described, account_id)
    if name in names or len(names) < TRAILS_PER_REGION:
        return None
    return trail_limit_message(region, account_id, names)
