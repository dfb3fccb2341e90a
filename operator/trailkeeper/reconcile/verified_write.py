"""Writes of a document other writers share (a bucket policy, a topic policy, a lifecycle configuration).

AWS has no conditional write for these: each Put replaces the whole document, so a read-modify-write
racing another writer's loses whichever part the later Put did not hold. Within one process the per-resource
lock of ``Shared.locks`` keeps trailkeeper's own writers apart. Across processes (a CLI apply beside the
operator, another tool) the write is narrowed and checked instead:

- the document is read again just before the Put, so the merge starts from what is there now, not from what
  the pass observed seconds earlier;
- it is read back just after, and once more after a short settle time (another trailkeeper process that
  re-read before our Put may land its Put after our first read-back): when this owner's part is missing or
  differs, another writer replaced the document in between, and the merge is done again from that read
  and written again, after a jittered wait;
- when the attempts run out, the resource is named in a retryable failure, never reported as written.

A foreign writer whose Put lands between our re-read and our Put still loses its change: that window (one
round trip) is what remains, see docs/reliability.md.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from trailkeeper.reconcile.errors import RegionFailure

D = TypeVar("D")

# Writes tried before giving up; the waits between them grow from this base, with full jitter.
WRITE_ATTEMPTS = 4
# Seconds between the read-back and the confirming read: longer than a Put takes to land (S3 and SNS
# answer in well under a second), so a Put that raced ours has landed by then.
SETTLE_SECONDS = 0.5
_WAIT_BASE = 0.2
_WAIT_CAP = 2.0


@dataclass(frozen=True)
class SharedDocument(Generic[D]):
    """How to read, merge into, write and check one shared document.

    ``merge`` applies this owner's change to a document as read; ``holds`` tells whether a document as
    read carries this owner's part as desired.
    """

    resource: str
    read: Callable[[], D]
    merge: Callable[[D], D]
    write: Callable[[D], None]
    holds: Callable[[D], bool]


@dataclass(frozen=True)
class WritePolicy:
    """How hard a shared-document write tries. ``reread`` False merges into the document the pass
    observed (no read just before the Put): only to measure what the re-read saves. ``settle`` is the
    wait before the confirming read."""

    attempts: int = WRITE_ATTEMPTS
    reread: bool = True
    settle: float = SETTLE_SECONDS
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random


def write_verified(document: SharedDocument[D], observed: D, policy: WritePolicy | None = None) -> int:
    """Put this owner's part into ``document``; the number of Puts it took.

    ``observed`` is the document as the pass read it (used as is only when ``policy.reread`` is off).
    Raises a retryable :class:`RegionFailure` ``LostUpdate`` naming the resource when every attempt was
    undone by another writer.
    """
    policy = policy or WritePolicy()
    current = document.read() if policy.reread else observed
    for attempt in range(policy.attempts):
        document.write(document.merge(current))
        current = document.read()
        if document.holds(current):
            policy.sleep(policy.settle)
            current = document.read()
            if document.holds(current):
                return attempt + 1
        if attempt + 1 < policy.attempts:
            policy.sleep(policy.rand() * min(_WAIT_CAP, _WAIT_BASE * 2.0**attempt))
    raise RegionFailure(
        "LostUpdate",
        f"{document.resource}: another writer replaced it after each of {policy.attempts} writes; "
        "this object's part is not in place",
        retryable=True,
    )
