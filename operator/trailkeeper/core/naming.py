"""Stable names trailkeeper gives to what it owns: the owner tag, policy statement Sids, lifecycle rule IDs.

A bucket has one policy and one lifecycle configuration that other tools (and other Trails) share, so
trailkeeper marks its own parts with names derived from the owning object alone. The same object always
gets the same names, and two objects never share one, which is what lets merges replace exactly their
own parts and leave every other statement and rule as it was.
"""

from __future__ import annotations

import hashlib
import re

from trailkeeper.api.trail import OWNER_TAG_KEY

# The tag on every trail, bucket and topic trailkeeper makes; the API models reserve the same key.
OWNER_TAG = OWNER_TAG_KEY
SID_PREFIX = "Trailkeeper"
_SID_HASH_CHARS = 16
_SID_PATTERN = re.compile(rf"^{SID_PREFIX}[0-9a-f]{{{_SID_HASH_CHARS}}}$")

# CloudTrail, S3 and SNS: a tag value is at most 256 characters.
TAG_VALUE_MAX = 256
# S3 PutBucketLifecycleConfiguration: a rule ID is at most 255 characters.
LIFECYCLE_RULE_ID_MAX = 255
_RULE_ID_HASH_CHARS = 16

# Every purpose a statement of ours can serve. A merge removes the statements of all of them, so a
# purpose that is no longer desired (sourceAccounts emptied, organizationId removed) leaves nothing behind.
PURPOSE_BUCKET_ACL_CHECK = "bucket-acl-check"
PURPOSE_BUCKET_WRITE = "bucket-write"
PURPOSE_SOURCE_ACCOUNTS_ACL_CHECK = "source-accounts-acl-check"
PURPOSE_SOURCE_ACCOUNTS_WRITE = "source-accounts-write"
PURPOSE_ORGANIZATION_WRITE = "organization-write"
PURPOSE_DENY_INSECURE_TRANSPORT = "deny-insecure-transport"
PURPOSE_TOPIC_PUBLISH = "topic-publish"
PURPOSES: tuple[str, ...] = (
    PURPOSE_BUCKET_ACL_CHECK,
    PURPOSE_BUCKET_WRITE,
    PURPOSE_SOURCE_ACCOUNTS_ACL_CHECK,
    PURPOSE_SOURCE_ACCOUNTS_WRITE,
    PURPOSE_ORGANIZATION_WRITE,
    PURPOSE_DENY_INSECURE_TRANSPORT,
    PURPOSE_TOPIC_PUBLISH,
)


def owner_key(namespace: str, name: str) -> str:
    """The owner of everything a Trail or LogRetention makes: the value of the `trailkeeper.io/owner` tag.

    `<namespace>/<name>`, unless that exceeds AWS's 256-character tag-value limit (a 63-character namespace
    and a 253-character name do): then it is cut and ends in a hash of the full one, as lifecycle rule IDs
    are, so it stays unique per object and the same on every run.
    """
    full = f"{namespace}/{name}"
    if len(full) <= TAG_VALUE_MAX:
        return full
    suffix = "-" + _sha256_hex(full)[:_RULE_ID_HASH_CHARS]
    return full[: TAG_VALUE_MAX - len(suffix)] + suffix


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def statement_sid(owner: str, purpose: str) -> str:
    """The Sid of the owner's statement for one purpose.

    IAM allows only ASCII letters and digits in a Sid, so the owner (which holds '/' and '-') goes in as a
    hash. Sixteen hex digits make an accidental clash with another owner's Sid practically impossible.
    """
    return SID_PREFIX + _sha256_hex(f"{owner}|{purpose}")[:_SID_HASH_CHARS]


def owner_sids(owner: str) -> set[str]:
    """Every Sid the owner can have, one per known purpose, whether or not the purpose is desired now."""
    return {statement_sid(owner, purpose) for purpose in PURPOSES}


def is_trailkeeper_sid(sid: object) -> bool:
    """Whether a Sid has the shape of ours (of any owner)."""
    return isinstance(sid, str) and _SID_PATTERN.fullmatch(sid) is not None


def lifecycle_rule_id(namespace: str, name: str) -> str:
    """The ID of a LogRetention's lifecycle rule: `trailkeeper-<namespace>-<name>`.

    A namespace (63) and a name (253) can together exceed S3's 255-character limit; such an ID is cut and
    ends in a hash of the full one, so it stays unique per object and the same on every run.
    """
    full = f"trailkeeper-{namespace}-{name}"
    if len(full) <= LIFECYCLE_RULE_ID_MAX:
        return full
    suffix = "-" + _sha256_hex(full)[:_RULE_ID_HASH_CHARS]
    return full[: LIFECYCLE_RULE_ID_MAX - len(suffix)] + suffix
