"""Writers racing on what trailkeeper shares with others: policies, lifecycle rules, trail names.

Against moto behind the fault front, which answers a duplicate CreateTrail as AWS does and can delay every
write so that writers overlap. A separate ``Shared`` per writer stands for a separate process: its locks do
not see the other's.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.faults import FaultInjector
from support.moto_server import MOTO_DEFAULT_ACCOUNT, InProcessMotoServer, MakeAws
from trailkeeper.api.logretention import LogRetentionSpec
from trailkeeper.api.trail import TrailSpec
from trailkeeper.aws.session import AwsSessions
from trailkeeper.core.bucket_share import BucketShare, has_share, missing_entries
from trailkeeper.core.naming import OWNER_TAG
from trailkeeper.reconcile.errors import RegionFailure
from trailkeeper.reconcile.logretention import RetentionRequest, RetentionTarget, reconcile_log_retention
from trailkeeper.reconcile.shared import Shared
from trailkeeper.reconcile.trail import TrailOutcome, TrailRequest, delete_trail, reconcile_trail
from trailkeeper.reconcile.verified_write import SharedDocument, WritePolicy, write_verified

REGION = "us-east-1"
BUCKET = "race-shared-logs"
FOREIGN_SID = "AnalyticsRead"
FOREIGN_STATEMENT = {
    "Sid": FOREIGN_SID,
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:role/analytics"},
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/reports/*",
}
# Shorter waits than in production; the settle time still exceeds the front's write latency (0.2 s).
QUICK = WritePolicy(settle=0.4, rand=lambda: 0.1)


def trail_spec(bucket: str = BUCKET, **overrides: Any) -> TrailSpec:
    body: dict[str, Any] = {"regions": [REGION], "destination": {"bucket": bucket}}
    body.update(overrides)
    return TrailSpec.model_validate(body)


def shared(policy: WritePolicy = QUICK) -> Shared:
    return Shared(write_policy=policy)


def at_once(*calls: Callable[[], TrailOutcome]) -> list[TrailOutcome]:
    """Run the calls in threads started together; their outcomes in order."""
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        start.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def policy_of(aws: AwsSessions, bucket: str = BUCKET) -> dict[str, Any]:
    try:
        text = aws.client("s3", REGION).get_bucket_policy(Bucket=bucket)["Policy"]
    except ClientError:
        return {"Statement": []}
    return dict(json.loads(text))


def share(trail_name: str, bucket: str = BUCKET) -> BucketShare:
    """A Trail's part in the bucket's shared statements (its trail name is its object's name here)."""
    return BucketShare(bucket, "", MOTO_DEFAULT_ACCOUNT, trail_name)


def sids(policy: dict[str, Any]) -> set[str]:
    return {s.get("Sid") for s in policy.get("Statement", [])}


def add_foreign_statement(aws: AwsSessions, statement: dict[str, Any] = FOREIGN_STATEMENT) -> None:
    """What another tool does: read the policy, add its statement, put it back."""
    policy = policy_of(aws)
    policy.setdefault("Version", "2012-10-17")
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != statement["Sid"]] + [statement]
    aws.client("s3", REGION).put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))


@pytest.fixture
def racing(
    faulty_moto: InProcessMotoServer, fault_injector: FaultInjector, make_aws: MakeAws
) -> tuple[AwsSessions, AwsSessions, AwsSessions]:
    """Two writers' sessions and an observer's, on a reset moto that delays every write 50-200 ms."""
    faulty_moto.reset()
    fault_injector.add_write_latency(0.05, 0.2)
    return (
        make_aws(faulty_moto.url, max_attempts=5),
        make_aws(faulty_moto.url, max_attempts=5),
        make_aws(faulty_moto.url, max_attempts=5),
    )


# -- shared bucket policy ---------------------------------------------------------------------------------


def test_two_processes_applying_trails_that_share_a_bucket_keep_both_statement_sets(
    racing: tuple[AwsSessions, AwsSessions, AwsSessions],
) -> None:
    first, second, observer = racing
    spec = trail_spec()

    outcomes = at_once(
        lambda: reconcile_trail(TrailRequest("team-a", "audit-a", spec), first, shared()),
        lambda: reconcile_trail(TrailRequest("team-b", "audit-b", spec), second, shared()),
    )

    assert [o.failures for o in outcomes] == [[], []]
    policy = policy_of(observer)
    assert missing_entries(policy, share("audit-a")) == [] and missing_entries(policy, share("audit-b")) == []
    assert len(sids(policy)) == 3  # the shared ACL check, write and TLS-only deny


def test_a_foreign_statement_written_during_the_pass_is_kept(
    racing: tuple[AwsSessions, AwsSessions, AwsSessions], fault_injector: FaultInjector
) -> None:
    writer, _, observer = racing
    observer.client("s3", REGION).create_bucket(Bucket=BUCKET)
    # The foreign tool writes after the pass observed the policy and before the pass writes it (the
    # lifecycle read comes after the policy read in a deep observation).
    fault_injector.before("s3", "GetBucketLifecycleConfiguration", lambda: add_foreign_statement(observer))

    outcome = reconcile_trail(TrailRequest("team-a", "audit-a", trail_spec()), writer, shared())

    assert outcome.failures == []
    assert FOREIGN_SID in sids(policy_of(observer))
    assert missing_entries(policy_of(observer), share("audit-a")) == []


def test_without_the_re_read_that_foreign_statement_is_lost(
    racing: tuple[AwsSessions, AwsSessions, AwsSessions], fault_injector: FaultInjector
) -> None:
    """The same race as above with the re-read switched off: the statement is lost, which is what the
    re-read is for (and shows the scenario does race)."""
    writer, _, observer = racing
    observer.client("s3", REGION).create_bucket(Bucket=BUCKET)
    fault_injector.before("s3", "GetBucketLifecycleConfiguration", lambda: add_foreign_statement(observer))
    no_reread = WritePolicy(reread=False, settle=0.0)

    reconcile_trail(TrailRequest("team-a", "audit-a", trail_spec()), writer, shared(no_reread))

    assert FOREIGN_SID not in sids(policy_of(observer))


def test_own_statements_replaced_by_another_writer_are_written_again(
    racing: tuple[AwsSessions, AwsSessions, AwsSessions], fault_injector: FaultInjector
) -> None:
    writer, _, observer = racing
    s3 = observer.client("s3", REGION)
    foreign_only = json.dumps({"Version": "2012-10-17", "Statement": [FOREIGN_STATEMENT]})
    # The first read-back finds the policy replaced by a writer that never saw our statements.
    replaced, reading = threading.Event(), threading.Lock()

    def replace_once() -> None:
        # The hook's own read comes through the front too: it must not run the hook again.
        if replaced.is_set() or not reading.acquire(blocking=False):
            return
        try:
            if has_share(policy_of(observer), share("audit-a")):
                replaced.set()
                s3.put_bucket_policy(Bucket=BUCKET, Policy=foreign_only)
        finally:
            reading.release()

    fault_injector.before("s3", "GetBucketPolicy", replace_once, count=None)

    outcome = reconcile_trail(TrailRequest("team-a", "audit-a", trail_spec()), writer, shared())

    assert replaced.is_set()
    assert outcome.failures == []
    assert FOREIGN_SID in sids(policy_of(observer))
    assert missing_entries(policy_of(observer), share("audit-a")) == []


def test_a_writer_that_always_undoes_our_part_ends_in_a_named_retryable_failure(
    racing: tuple[AwsSessions, AwsSessions, AwsSessions], fault_injector: FaultInjector
) -> None:
    writer, _, observer = racing
    s3 = observer.client("s3", REGION)
    foreign_only = json.dumps({"Version": "2012-10-17", "Statement": [FOREIGN_STATEMENT]})

    def wipe() -> None:
        with contextlib.suppress(ClientError):  # the bucket is not made yet
            s3.put_bucket_policy(Bucket=BUCKET, Policy=foreign_only)

    fault_injector.before("s3", "GetBucketPolicy", wipe, count=None)

    outcome = reconcile_trail(TrailRequest("team-a", "audit-a", trail_spec()), writer, shared())

    [failure] = outcome.failures
    assert failure.code == "LostUpdate" and failure.retryable
    assert f"bucket-policy/{BUCKET}" in failure.message
    assert outcome.regions[0].trail_arn is None or not outcome.regions[0].is_logging


def test_write_verified_gives_up_after_its_attempts_with_jittered_waits() -> None:
    document: dict[str, list[str]] = {"items": ["theirs"]}
    waits: list[float] = []

    def write(value: dict[str, list[str]]) -> None:
        document["items"] = ["theirs"]  # another writer's Put lands right after ours, every time

    shared_doc = SharedDocument[dict[str, list[str]]](
        resource="bucket-policy/x",
        read=lambda: {"items": list(document["items"])},
        merge=lambda value: {"items": [*value["items"], "ours"]},
        write=write,
        holds=lambda value: "ours" in value["items"],
    )

    with pytest.raises(RegionFailure) as raised:
        write_verified(
            shared_doc, {"items": []}, WritePolicy(attempts=3, sleep=waits.append, rand=lambda: 0.5)
        )

    assert raised.value.code == "LostUpdate" and "bucket-policy/x" in raised.value.message
    assert waits == [0.1, 0.2]


# -- lifecycle configuration ------------------------------------------------------------------------------


def test_two_processes_putting_lifecycle_rules_on_one_bucket_keep_both(
    racing: tuple[AwsSessions, AwsSessions, AwsSessions],
) -> None:
    first, second, observer = racing
    observer.client("s3", REGION).create_bucket(Bucket=BUCKET)
    spec = LogRetentionSpec.model_validate({"bucket": BUCKET, "region": REGION, "expirationDays": 400})
    target = (RetentionTarget(BUCKET, REGION, "AWSLogs/"),)

    results: list[Any] = [None, None]
    start = threading.Barrier(2)

    def run(index: int, name: str, aws: AwsSessions) -> None:
        start.wait()
        request = RetentionRequest("logs", name, spec, target)
        results[index] = reconcile_log_retention(request, aws, shared())

    threads = [
        threading.Thread(target=run, args=(0, "keep-a", first)),
        threading.Thread(target=run, args=(1, "keep-b", second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [r.failures for r in results] == [[], []]
    rules = observer.client("s3", REGION).get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert {r["ID"] for r in rules} == {"trailkeeper-logs-keep-a", "trailkeeper-logs-keep-b"}


# -- one trail name, two owners ---------------------------------------------------------------------------


@pytest.mark.parametrize("one_process", [True, False], ids=["one-process", "two-processes"])
def test_one_trail_name_in_two_namespaces_gets_one_owner_and_a_conflict(
    racing: tuple[AwsSessions, AwsSessions, AwsSessions], one_process: bool
) -> None:
    first, second, observer = racing
    spec = trail_spec(trailName="org-audit")
    first_shared = shared()
    second_shared = first_shared if one_process else shared()

    outcomes = at_once(
        lambda: reconcile_trail(TrailRequest("team-a", "audit", spec), first, first_shared),
        lambda: reconcile_trail(TrailRequest("team-b", "audit", spec), second, second_shared),
    )

    codes = sorted(f.code for o in outcomes for f in o.failures)
    assert codes == ["Conflict"]
    winner = "team-a/audit" if not outcomes[0].failures else "team-b/audit"
    cloudtrail = observer.client("cloudtrail", REGION)
    [trail] = cloudtrail.describe_trails()["trailList"]
    tags = cloudtrail.list_tags(ResourceIdList=[trail["TrailARN"]])["ResourceTagList"][0]["TagsList"]
    assert {t["Key"]: t["Value"] for t in tags}[OWNER_TAG] == winner
    loser = outcomes[1] if winner == "team-a/audit" else outcomes[0]
    assert "owned by " + winner in str(loser.failures[0])


def test_a_trail_name_taken_between_claim_and_create_leaves_the_winner_its_grant(
    racing: tuple[AwsSessions, AwsSessions, AwsSessions], fault_injector: FaultInjector
) -> None:
    """Both Trails see no trail of the name, so both put their entry (the same trail ARN, two prefixes)
    in the shared statements. The winner's entry must survive the loser's writes, and the loser takes its
    own back out: before, each merge took the other's entry as its own older path and removed it."""
    loser, winner, observer = racing
    winner_spec = trail_spec(trailName="org-audit")
    loser_spec = trail_spec(trailName="org-audit", destination={"bucket": BUCKET, "keyPrefix": "team-b"})
    won: list[TrailOutcome] = []
    # The winner's whole pass runs while the loser's CreateTrail is on its way, after the loser's Put.
    fault_injector.before(
        "cloudtrail",
        "CreateTrail",
        lambda: won.append(reconcile_trail(TrailRequest("team-a", "audit", winner_spec), winner, shared())),
    )

    lost = reconcile_trail(TrailRequest("team-b", "audit", loser_spec), loser, shared())

    assert [f.code for f in lost.failures] == ["Conflict"]
    assert won and won[0].failures == []
    policy = policy_of(observer)
    assert missing_entries(policy, share("org-audit")) == []
    prefixed = BucketShare(BUCKET, "team-b", MOTO_DEFAULT_ACCOUNT, "org-audit")
    assert not has_share(policy, prefixed, anywhere=False)


def test_deleting_the_trail_that_lost_a_name_keeps_the_winners_grant(
    racing: tuple[AwsSessions, AwsSessions, AwsSessions],
) -> None:
    """The loser asks for the same bucket and prefix: its share entries are the winner's, to the byte."""
    first, second, observer = racing
    spec = trail_spec(trailName="org-audit", deletionPolicy="Delete")
    assert reconcile_trail(TrailRequest("team-a", "audit", spec), first, shared()).failures == []
    conflict = reconcile_trail(TrailRequest("team-b", "audit", spec), second, shared())
    assert [f.code for f in conflict.failures] == ["Conflict"]

    deleted = delete_trail(TrailRequest("team-b", "audit", spec), second, shared())

    assert deleted.failures == []
    assert missing_entries(policy_of(observer), share("org-audit")) == []
    assert len(observer.client("cloudtrail", REGION).describe_trails()["trailList"]) == 1
