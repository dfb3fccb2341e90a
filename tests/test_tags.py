"""The tags trailkeeper keeps on what it made: its record of its own keys, and what a change does."""

from __future__ import annotations

import pytest

from trailkeeper.api.trail import MANAGED_TAGS_KEY, OWNER_TAG_KEY, TrailSpec
from trailkeeper.core.drift import NONE_TEXT, diff_tags
from trailkeeper.core.tags import (
    AWS_TAG_LIMIT,
    OWN_TAG_KEYS,
    desired_tags,
    dropped_keys,
    managed_record,
    recorded_keys,
    tag_change,
)


def test_the_record_names_exactly_the_spec_keys_among_those_present() -> None:
    record = managed_record(["team", "cost-center"])
    present = ["team", "cost-center", "backup", OWNER_TAG_KEY, "Team"]
    assert recorded_keys(record, present) == {"team", "cost-center"}


@pytest.mark.parametrize("count", [0, 1, 15, 16, 48])
def test_the_record_fits_a_tag_value_for_any_spec(count: int) -> None:
    keys = [f"k{i:03d}-" + "x" * 120 for i in range(count)]
    record = managed_record(keys)
    assert len(record) <= 256
    assert recorded_keys(record, keys) == set(keys)


def test_an_unreadable_record_names_no_key() -> None:
    assert recorded_keys("edited by hand", ["team"]) == set()
    assert recorded_keys("3:abcd", ["team"]) == set()
    assert recorded_keys(None, ["team"]) == set()


def test_desired_tags_are_the_spec_owner_and_record() -> None:
    tags = desired_tags({"team": "audit"}, "security/audit")
    assert tags == {
        "team": "audit",
        OWNER_TAG_KEY: "security/audit",
        MANAGED_TAGS_KEY: managed_record(["team"]),
    }
    assert set(OWN_TAG_KEYS) == {OWNER_TAG_KEY, MANAGED_TAGS_KEY}


def test_a_key_the_record_names_and_the_spec_dropped_is_removed_and_foreign_keys_stay() -> None:
    actual = {**desired_tags({"team": "audit", "cost-center": "42"}, "o"), "backup": "daily"}
    desired = desired_tags({"team": "platform"}, "o")

    change = tag_change(desired, actual)

    assert change.remove == ["cost-center"]
    assert change.put == {"team": "platform", MANAGED_TAGS_KEY: managed_record(["team"])}
    assert change.merged == {**desired, "backup": "daily"}


def test_keys_the_previous_spec_had_count_as_ours_without_a_record() -> None:
    # A resource tagged before the record existed: the previous spec (kopf's last handled one) tells.
    actual = {"team": "audit", "cost-center": "42", "backup": "daily", OWNER_TAG_KEY: "o"}
    desired = desired_tags({"team": "audit"}, "o")
    assert dropped_keys(desired, actual) == []
    assert dropped_keys(desired, actual, also_dropped=["cost-center", "gone"]) == ["cost-center"]


def test_aws_and_trailkeeper_keys_are_never_dropped() -> None:
    actual = {"aws:cloudformation:stack-name": "s", "trailkeeper.io/other": "x"}
    assert dropped_keys({}, actual, also_dropped=list(actual)) == []


def test_diff_tags_names_each_key_to_set_or_remove() -> None:
    actual = {**desired_tags({"team": "audit", "cost-center": "42"}, "o"), "backup": "daily"}
    desired = desired_tags({"team": "platform"}, "o")

    diffs = diff_tags("bucket/acme", desired, actual)

    assert [(d.field, d.desired, d.actual) for d in diffs] == [
        ("Tags[team]", "platform", "audit"),
        (f"Tags[{MANAGED_TAGS_KEY}]", managed_record(["team"]), managed_record(["team", "cost-center"])),
        ("Tags[cost-center]", NONE_TEXT, "42"),
    ]
    assert diff_tags("bucket/acme", desired, {**desired, "backup": "daily"}) == []


def test_a_spec_holds_at_most_the_tags_aws_leaves_beside_trailkeepers_own() -> None:
    base = {"regions": ["us-east-1"], "destination": {"bucket": "acme-audit"}}
    allowed = AWS_TAG_LIMIT - len(OWN_TAG_KEYS)
    TrailSpec.model_validate({**base, "tags": {f"k{i}": "v" for i in range(allowed)}})
    with pytest.raises(ValueError, match="tags"):
        TrailSpec.model_validate({**base, "tags": {f"k{i}": "v" for i in range(allowed + 1)}})
    with pytest.raises(ValueError, match="reserved"):
        TrailSpec.model_validate({**base, "tags": {MANAGED_TAGS_KEY: "x"}})
