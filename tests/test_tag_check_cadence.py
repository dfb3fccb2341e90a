"""Drift checks compare trail and topic tags afresh once in `tag_check_every` checks (--tag-check-every);
every other setting at each check, and a change pass always reads tags."""

from __future__ import annotations

from click.testing import CliRunner

from test_reconcile_tags import REGION, TOPIC_ARN, TRAIL_ARN, request, spec
from trailkeeper.api.trail import OWNER_TAG_KEY
from trailkeeper.aws.reads import Reads
from trailkeeper.aws.session import AwsSessions
from trailkeeper.cli.main import cli
from trailkeeper.reconcile.shared import Shared
from trailkeeper.reconcile.trail import reconcile_trail

PERIOD = 300  # the spec's default resyncSeconds
TAG_READS = {("cloudtrail", "ListTags"), ("sns", "ListTagsForResource")}
TAGS = {"team": "audit"}
# The drift an untag by hand of `team` on the topic and the trail shows.
UNTAGGED = {(f"topic/{REGION}", "Tags[team]"), (f"trail/{REGION}", "Tags[team]")}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Found = tuple[set[tuple[str, str]], int]


def drift_check(aws: AwsSessions, shared: Shared, tags: dict[str, str] = TAGS) -> Found:
    """(resource, field) of the drift found under Report, and the tag reads it made."""
    aws.recorder.reset()
    report = reconcile_trail(request(spec(tags), act=False, deep=False), aws, shared)
    reads = sum(n for op, n in aws.recorder.counts().items() if op in TAG_READS)
    return {(d.resource, d.field) for d in report.diffs}, reads


def untag_by_hand(aws: AwsSessions) -> None:
    aws.client("sns", REGION).untag_resource(ResourceArn=TOPIC_ARN, TagKeys=["team"])
    aws.client("cloudtrail", REGION).remove_tags(ResourceId=TRAIL_ARN, TagsList=[{"Key": "team"}])


def test_tags_are_read_once_in_tag_check_every_drift_checks_and_drift_then_shows(aws: AwsSessions) -> None:
    reconcile_trail(request(spec(TAGS)), aws, Shared())
    clock = Clock()
    shared = Shared(cache=Reads(clock=clock), tag_check_every=3)

    assert drift_check(aws, shared) == (set(), 2)  # the first check reads trail and topic tags
    untag_by_hand(aws)
    seen = []
    for _ in range(3):
        clock.now += PERIOD
        seen.append(drift_check(aws, shared))

    # Two checks take the tags kept; the third, three periods after the read, reads them and sees drift.
    assert seen[:2] == [(set(), 0), (set(), 0)]
    assert seen[2] == (UNTAGGED, 2)


def untagged_a_period_after_a_drift_check(aws: AwsSessions, tag_check_every: int) -> tuple[Clock, Shared]:
    """A Trail made, drift-checked once (its tags kept), untagged by hand, one period later."""
    reconcile_trail(request(spec(TAGS)), aws, Shared())
    clock = Clock()
    shared = Shared(cache=Reads(clock=clock), tag_check_every=tag_check_every)
    drift_check(aws, shared)
    untag_by_hand(aws)
    clock.now += PERIOD
    return clock, shared


def test_every_check_reads_tags_with_tag_check_every_1(aws: AwsSessions) -> None:
    _, shared = untagged_a_period_after_a_drift_check(aws, 1)

    assert drift_check(aws, shared) == (UNTAGGED, 2)


def test_a_change_pass_reads_tags_whatever_a_drift_check_kept(aws: AwsSessions) -> None:
    clock, shared = untagged_a_period_after_a_drift_check(aws, 12)

    changed = reconcile_trail(request(spec(TAGS)), aws, shared)

    assert {(c.resource, c.action) for c in changed.changes} >= {
        (f"topic/{REGION}", "set tags"),
        (f"trail/{REGION}", "set tags"),
    }
    # The write dropped the kept tags: the next drift check reads what it wrote and finds no drift.
    clock.now += PERIOD
    assert drift_check(aws, shared) == (set(), 2)


def test_run_refuses_a_tag_check_every_below_one() -> None:
    result = CliRunner().invoke(cli, ["run", "--tag-check-every", "0"])

    assert result.exit_code == 2
    assert "--tag-check-every" in result.output and "0 is not in the range" in result.output


def test_a_drift_check_reads_the_owner_afresh_before_it_corrects_a_trail(aws: AwsSessions) -> None:
    reconcile_trail(request(spec(TAGS)), aws, Shared())
    clock = Clock()
    shared = Shared(cache=Reads(clock=clock), tag_check_every=12)
    drift_check(aws, shared)  # keeps the tags, ours
    # Meanwhile the trail is handed to another Trail and stopped: the kept tags still say it is ours.
    cloudtrail = aws.client("cloudtrail", REGION)
    cloudtrail.add_tags(ResourceId=TRAIL_ARN, TagsList=[{"Key": OWNER_TAG_KEY, "Value": "other/team"}])
    cloudtrail.stop_logging(Name=TRAIL_ARN)
    clock.now += PERIOD

    outcome = reconcile_trail(request(spec(TAGS), deep=False), aws, shared)

    assert [(f.code, "other/team" in f.message) for f in outcome.failures] == [("Conflict", True)]
    assert cloudtrail.get_trail_status(Name=TRAIL_ARN)["IsLogging"] is False
    # The kept tags were dropped: the next check finds the owner at its claim, before comparing anything.
    clock.now += PERIOD
    again = reconcile_trail(request(spec(TAGS), deep=False), aws, shared)
    assert [f.code for f in again.failures] == ["Conflict"]
    assert [d for d in again.diffs if d.resource == f"trail/{REGION}"] == []


def test_a_drift_check_does_not_tag_a_topic_no_longer_its_own(aws: AwsSessions) -> None:
    tagged = {"team": "audit", "cost": "sec"}
    reconcile_trail(request(spec(tagged)), aws, Shared())
    clock = Clock()
    shared = Shared(cache=Reads(clock=clock), tag_check_every=12)
    sns = aws.client("sns", REGION)
    sns.untag_resource(ResourceArn=TOPIC_ARN, TagKeys=["cost"])
    assert drift_check(aws, shared, tagged)[0] == {(f"topic/{REGION}", "Tags[cost]")}  # kept: ours
    sns.tag_resource(ResourceArn=TOPIC_ARN, Tags=[{"Key": OWNER_TAG_KEY, "Value": "other/team"}])
    clock.now += PERIOD

    reconcile_trail(request(spec(tagged), deep=False), aws, shared)

    tags = {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=TOPIC_ARN)["Tags"]}
    assert tags[OWNER_TAG_KEY] == "other/team" and "cost" not in tags
    # What it read is kept instead: the next check knows the topic is not its own, and reads no tags.
    clock.now += PERIOD
    assert drift_check(aws, shared, tagged) == (set(), 0)
