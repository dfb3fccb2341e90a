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
- a pass that writes several documents confirms them together (:class:`Confirmations`): each is read once
  more when its own settle time is over, at the end of the pass, so the pass waits at most one settle
  time in all, and only for what its other work did not already cover;
- when the attempts run out, the resource is named in a retryable failure, never reported as written.

A foreign writer whose Put lands between our re-read and our Put still loses its change: that window (one
round trip) is what remains, see docs/reliability.md.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from trailkeeper.aws.errors import classify
from trailkeeper.reconcile.errors import AWS_ERRORS, RegionFailure

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
    clock: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class _Pending:
    due: float  # when the settle time after the read-back is over
    document: SharedDocument[Any]
    guard: Callable[[], AbstractContextManager[Any]]
    keys: tuple[str, ...]  # what the caller files a failure of this document under


@dataclass
class Confirmations:
    """The documents one pass wrote whose confirming read is still to come.

    Each write's read-back is immediate; the read after the settle time is left here and made by
    :meth:`confirm` at the end of the pass, for every document at once: the pass's other work (the trails,
    the compliance evaluation) runs during the settle time instead of after it.
    """

    policy: WritePolicy
    _pending: list[_Pending] = field(default_factory=list)

    def add(
        self,
        document: SharedDocument[Any],
        keys: tuple[str, ...] = (),
        guard: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        self._pending.append(_Pending(self.policy.clock() + self.policy.settle, document, guard, keys))

    def forget(self, keys: tuple[str, ...]) -> None:
        """No confirming read for the documents filed under `keys`: the pass took its part back out."""
        self._pending = [p for p in self._pending if p.keys != keys]

    def confirm(self) -> Iterator[tuple[tuple[str, ...], RegionFailure]]:
        """Wait for the last settle time to be over, read each document again, and write again (as
        :func:`write_verified` does, under its ``guard``) each whose part another writer undid; yields the
        keys and failure of each still lost after every attempt."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        wait = max(p.due for p in pending) - self.policy.clock()
        if wait > 0:
            self.policy.sleep(wait)
        for item in pending:
            try:
                with item.guard():
                    current = item.document.read()
                    if not item.document.holds(current):
                        write_verified(item.document, current, self.policy)
            except RegionFailure as failure:
                yield item.keys, failure
            except AWS_ERRORS as error:
                yield item.keys, RegionFailure.from_aws(classify(error))


def write_verified(
    document: SharedDocument[D],
    observed: D,
    policy: WritePolicy | None = None,
    later: Callable[[SharedDocument[D]], None] | None = None,
) -> int:
    """Put this owner's part into ``document``; the number of Puts it took.

    ``observed`` is the document as the pass read it (used as is only when ``policy.reread`` is off).
    With ``later`` (a pass's :meth:`Confirmations.add`), the confirming read after the settle time is left
    to it instead of waited for here. Raises a retryable :class:`RegionFailure` ``LostUpdate`` naming the
    resource when every attempt was undone by another writer.
    """
    policy = policy or WritePolicy()
    current = document.read() if policy.reread else observed
    for attempt in range(policy.attempts):
        document.write(document.merge(current))
        current = document.read()
        if document.holds(current):
            if later is not None:
                later(document)
                return attempt + 1
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
