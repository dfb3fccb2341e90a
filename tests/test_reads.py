"""The read layer (aws/reads.py): one store, one freshness rule, writes drop what they change."""

from __future__ import annotations

import threading
import time

from trailkeeper.aws.reads import Reads


def test_an_answer_is_taken_while_younger_than_the_readers_max_age() -> None:
    now = [0.0]
    reads = Reads(clock=lambda: now[0])
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert reads.get(("k",), load, max_age=2.0) == 1
    now[0] = 1.5
    assert reads.get(("k",), load, max_age=2.0) == 1  # a change pass takes it
    assert reads.get(("k",), load, max_age=1.0) == 2  # a stricter reader does not
    now[0] = 100.0
    assert reads.get(("k",), load, max_age=150.0) == 2  # a drift check of a long period does


def test_forget_drops_every_answer_under_the_prefix_only() -> None:
    reads = Reads()
    reads.put(("call", "111", "s3", "a"), 1)
    reads.put(("call", "111", "s3", "b"), 2)
    reads.put(("call", "111", "sns", "a"), 3)

    reads.forget(("call", "111", "s3"))

    assert reads.peek(("call", "111", "s3", "a")) is None
    assert reads.peek(("call", "111", "s3", "b")) is None
    kept = reads.peek(("call", "111", "sns", "a"), 10)
    assert kept is not None and kept[1] == 3


def test_concurrent_readers_of_one_key_share_one_load() -> None:
    reads = Reads()
    loads: list[int] = []

    def slow_load() -> str:
        loads.append(1)
        time.sleep(0.2)
        return "answer"

    answers: list[str] = []
    threads = [
        threading.Thread(target=lambda: answers.append(reads.get(("d",), slow_load, max_age=5)))
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == ["answer"] * 5
    assert len(loads) == 1
