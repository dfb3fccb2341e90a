"""The tags trailkeeper keeps on what it made (trails, buckets, topics): the spec's, merged with others'.

A resource trailkeeper made may also carry tags of other tools or people, and those stay. To remove a key
the spec dropped, and only such a key, trailkeeper must know which keys it set before. That record lives
on the resource itself, in the `trailkeeper.io/tags` tag, written in the same call as the keys it names:
it survives operator restarts, works for `trailkeeper apply` as for the operator, and is never behind the
tags it describes (a removal is made before the record that drops the key, see `TagChange`).

A tag value holds at most 256 characters from the same set as keys, so the keys cannot be listed with a
separator. The record holds a short hash of each key instead: `<width>:` and then `width` hex digits per
key, the widest that fits (16 digits for up to 15 keys, 5 for 48). A foreign key is taken for ours only
when its hash equals one of a dropped key's: with 5 digits, about one chance in a million per pair.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from trailkeeper.api.trail import MANAGED_TAGS_KEY, OWNER_TAG_KEY, RESERVED_TAG_PREFIX

# CloudTrail, S3 and SNS each allow 50 tags on a resource; trailkeeper's own are the owner and the record.
AWS_TAG_LIMIT = 50
OWN_TAG_KEYS = (OWNER_TAG_KEY, MANAGED_TAGS_KEY)
_VALUE_MAX = 256
_MAX_WIDTH = 16


def _hash(key: str, width: int) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:width]


def managed_record(keys: Iterable[str]) -> str:
    """The value of the record tag naming `keys` (the spec's keys a pass puts on a resource)."""
    unique = sorted(set(keys))
    if not unique:
        return "0:"
    width = min(_MAX_WIDTH, (_VALUE_MAX - 3) // len(unique))
    return f"{width}:" + "".join(sorted(_hash(key, width) for key in unique))


def recorded_keys(value: str | None, present: Iterable[str]) -> set[str]:
    """The keys among `present` that a record value names; none when there is no record or it is not ours
    (changed by hand into something unreadable: then no key is taken for ours)."""
    if not value or ":" not in value:
        return set()
    width_text, hashes = value.split(":", 1)
    if not width_text.isdigit() or not 1 <= int(width_text) <= _MAX_WIDTH or len(hashes) % int(width_text):
        return set()
    width = int(width_text)
    names = {hashes[i : i + width] for i in range(0, len(hashes), width)}
    return {key for key in present if _hash(key, width) in names}


def desired_tags(spec_tags: Mapping[str, str], owner: str) -> dict[str, str]:
    """Every tag trailkeeper puts on a resource it made: the spec's, the owner tag and the record."""
    return {**spec_tags, OWNER_TAG_KEY: owner, MANAGED_TAGS_KEY: managed_record(spec_tags)}


def dropped_keys(
    desired: Mapping[str, str], actual: Mapping[str, str], also_dropped: Iterable[str] = ()
) -> list[str]:
    """Keys on the resource that trailkeeper set earlier (by its record, or `also_dropped`: the keys the
    previous spec had) and the spec no longer has. Never AWS's keys nor trailkeeper's own."""
    ours = recorded_keys(actual.get(MANAGED_TAGS_KEY), actual) | (set(also_dropped) & set(actual))
    return sorted(
        key
        for key in ours
        if key not in desired
        and not key.lower().startswith("aws:")
        and not key.startswith(RESERVED_TAG_PREFIX)
    )


@dataclass(frozen=True)
class TagChange:
    """What puts a resource's tags back: `remove` first, then `put` (the record among them), so that a pass
    stopped in between leaves a record naming a key already gone, never a key of ours it does not name."""

    put: dict[str, str]
    remove: list[str]
    # The whole tag set afterwards, for S3, whose PutBucketTagging replaces the set in one call.
    merged: dict[str, str]


def tag_change(
    desired: Mapping[str, str], actual: Mapping[str, str], also_dropped: Iterable[str] = ()
) -> TagChange:
    remove = dropped_keys(desired, actual, also_dropped)
    put = {key: value for key, value in desired.items() if actual.get(key) != value}
    merged = {key: value for key, value in actual.items() if key not in remove}
    merged.update(desired)
    return TagChange(put=put, remove=remove, merged=merged)
