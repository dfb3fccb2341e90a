"""A pass's shared-document writes confirmed together: one settle time in all, overlapped with the pass."""

from __future__ import annotations

import pytest

from trailkeeper.reconcile.errors import RegionFailure
from trailkeeper.reconcile.verified_write import Confirmations, SharedDocument, WritePolicy, write_verified


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def document(
    store: dict[str, list[str]], name: str, undo_after: int | None = None
) -> SharedDocument[list[str]]:
    """A document holding items; "ours" is this owner's part. With `undo_after`, every write after that
    many reads is undone by another writer at the next read."""
    reads = [0]

    def read() -> list[str]:
        reads[0] += 1
        if undo_after is not None and reads[0] > undo_after:
            store[name] = [item for item in store[name] if item != "ours"]
        return list(store[name])

    def write(items: list[str]) -> None:
        store[name] = items

    return SharedDocument(
        resource=f"bucket-policy/{name}",
        read=read,
        merge=lambda items: sorted({*items, "ours"}),
        write=write,
        holds=lambda items: "ours" in items,
    )


def test_documents_written_in_a_pass_wait_one_settle_time_in_all() -> None:
    clock = FakeClock()
    policy = WritePolicy(settle=0.5, sleep=clock.sleep, clock=clock)
    confirmations = Confirmations(policy)
    store = {"a": ["theirs"], "b": [], "c": []}
    for name in store:
        write_verified(document(store, name), [], policy, later=lambda d: confirmations.add(d, (d.resource,)))
        clock.now += 0.1  # the pass's other work between the writes

    assert clock.sleeps == []  # nothing waited while writing
    assert list(confirmations.confirm()) == []
    # The last write was 0.1 s ago: only the rest of its settle time is waited, once.
    assert clock.sleeps == [pytest.approx(0.4)]
    assert store == {"a": ["ours", "theirs"], "b": ["ours"], "c": ["ours"]}


def test_no_wait_when_the_pass_outlasted_the_settle_time() -> None:
    clock = FakeClock()
    policy = WritePolicy(settle=0.5, sleep=clock.sleep, clock=clock)
    confirmations = Confirmations(policy)
    store: dict[str, list[str]] = {"a": []}
    write_verified(document(store, "a"), [], policy, later=confirmations.add)
    clock.now += 0.7  # e.g. the compliance evaluation

    assert list(confirmations.confirm()) == []
    assert clock.sleeps == []


def test_a_part_undone_after_the_read_back_is_written_again_at_the_confirmation() -> None:
    clock = FakeClock()
    policy = WritePolicy(settle=0.5, sleep=clock.sleep, clock=clock, rand=lambda: 0.0)
    confirmations = Confirmations(policy)
    store: dict[str, list[str]] = {"a": ["theirs"]}
    # Reads: the re-read, the read-back (both see ours), then another writer drops it once.
    reads = [0]
    base = document(store, "a")

    def read() -> list[str]:
        reads[0] += 1
        if reads[0] == 3:
            store["a"] = ["theirs", "late"]
        return base.read()

    racing = SharedDocument(base.resource, read, base.merge, base.write, base.holds)
    write_verified(racing, [], policy, later=lambda d: confirmations.add(d, ("us-east-1",)))

    assert list(confirmations.confirm()) == []
    assert store["a"] == ["late", "ours", "theirs"]


def test_a_part_always_undone_is_a_named_failure_for_the_keys_it_was_filed_under() -> None:
    clock = FakeClock()
    policy = WritePolicy(attempts=2, settle=0.5, sleep=clock.sleep, clock=clock, rand=lambda: 0.0)
    confirmations = Confirmations(policy)
    store: dict[str, list[str]] = {"a": []}
    doc = document(store, "a", undo_after=2)  # holds at the read-back, undone from then on
    write_verified(doc, [], policy, later=lambda d: confirmations.add(d, ("us-east-1", "eu-west-1")))

    [(keys, failure)] = list(confirmations.confirm())

    assert keys == ("us-east-1", "eu-west-1")
    assert isinstance(failure, RegionFailure) and failure.code == "LostUpdate" and failure.retryable
    assert "bucket-policy/a" in failure.message
