"""What reconciles of different objects share within one process: per-resource locks and the read layer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from trailkeeper.aws.reads import Reads
from trailkeeper.reconcile.verified_write import WritePolicy


class KeyedLocks:
    """One lock per key (a bucket, a topic).

    A bucket has one policy and one lifecycle configuration that several Trails and LogRetentions may
    edit; read-modify-write of it must be serialized or one writer's statements are lost.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield


SHARED_READ_SHARE = 0.5
# Tags are compared every this many drift checks (the operator's --tag-check-every): an hour at the default
# period. They name owners and labels, not what is logged, and are a read per trail-region and topic.
TAG_CHECK_EVERY = 12
T = TypeVar("T")


@dataclass
class Shared:
    """Process-wide state handed to every reconcile."""

    locks: KeyedLocks = field(default_factory=KeyedLocks)
    # The read layer (aws/reads.py): DescribeTrails and ListTags per account and region, kept by its rule.
    cache: Reads = field(default_factory=Reads)
    # The operator's --resync-scale: an object's drift-check period is resyncSeconds times this.
    resync_scale: float = 1.0
    # The operator's --tag-check-every: a drift check reads tags afresh once in this many (1: every one).
    tag_check_every: int = TAG_CHECK_EVERY
    # How writes of shared documents (policies, lifecycle configurations) re-read and check.
    write_policy: WritePolicy = field(default_factory=WritePolicy)
    # Where a pass runs its regions side by side (the CLI: each account and region's quota is then kept
    # busy by its own work); None: one after another.
    region_pool: Executor | None = None

    def each_region(self, step: Callable[[T], None], regions: Iterable[T]) -> None:
        """`step` for each region, side by side when there is a region pool."""
        items = list(regions)
        if self.region_pool is None or len(items) < 2:
            for item in items:
                step(item)
        else:
            list(self.region_pool.map(step, items))

    def shared_read_age(self, resync_seconds: int) -> float:
        """How old a read shared within a sweep a drift check may take: half its period, so that it never
        takes its own previous check's read, and drift is seen within one and a half periods."""
        return SHARED_READ_SHARE * resync_seconds * self.resync_scale

    def tag_read_age(self, resync_seconds: int) -> float:
        """How old a tag read a drift check may take: just under `tag_check_every` periods, so one check in
        that many reads tags afresh (1: as any shared read). A change pass and a write never take it."""
        return (self.tag_check_every - SHARED_READ_SHARE) * resync_seconds * self.resync_scale


@dataclass(frozen=True)
class Change:
    """One mutating action taken on AWS, as printed by `apply` and put in Events."""

    resource: str
    action: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.action}"
