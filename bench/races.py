"""`python -m bench.races [--runs N] [--output FILE]`: writers racing on what trailkeeper shares.

Against moto behind the tests' fault front (duplicate CreateTrail refused as AWS does, every write delayed
50-200 ms so that writers overlap). Scenarios, each run from a reset moto:

- ``two-cli-applies``: two `trailkeeper apply` processes at once, each with a Trail and a LogRetention on one
  shared bucket; counts lost own statements and lost lifecycle rules.
- ``one-name-two-namespaces``: two Trails with one `trailName` in two namespaces, reconciled at once by two
  writers that share nothing (as two processes); counts duplicate owners (both succeed), foreign trails
  modified (the trail carries the loser's settings or owner tag) and lost own statements of the winner.
- ``foreign-writer``: another tool adds a statement to the bucket policy at a random moment while a
  trailkeeper pass writes it; counts lost foreign statements and lost own statements, with the re-read
  before each Put and without it.

- ``operator-and-cli`` and ``peering-handover``: the operator process itself, see bench/races_live.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError

from bench.paths import aws_environment, subprocess_env, use_test_support

REGION = "us-east-1"
BUCKET = "race-shared-logs"
# moto's account: the one every Trail of the races writes from.
ACCOUNT = "123456789012"
SCENARIOS = (
    "two-cli-applies",
    "one-name-two-namespaces",
    "foreign-writer",
    "operator-and-cli",
    "peering-handover",
)
LIVE = ("operator-and-cli", "peering-handover")  # bench/races_live.py: the operator process


def _trail(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "trailkeeper.io/v1alpha1",
        "kind": "Trail",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _retention(namespace: str, name: str, trail: str) -> dict[str, Any]:
    return {
        "apiVersion": "trailkeeper.io/v1alpha1",
        "kind": "LogRetention",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"trailRef": {"name": trail}, "expirationDays": 400},
    }


class Races:
    def __init__(self, url: str, injector: Any, make_sessions: Callable[[], Any], reset: Callable[[], None]):
        self.url = url
        self.injector = injector
        self.make_sessions = make_sessions
        self.reset = reset
        self.observer = make_sessions()

    def _fresh(self) -> None:
        self.reset()
        self.injector.clear()
        self.injector.add_write_latency(0.05, 0.2)

    def _policy_sids(self) -> set[str]:
        try:
            text = self.observer.client("s3", REGION).get_bucket_policy(Bucket=BUCKET)["Policy"]
        except ClientError:  # no bucket or no policy: no statements
            return set()
        return {s.get("Sid") for s in json.loads(text).get("Statement", [])}

    def _lost_entries(self, trail_name: str, key_prefix: str = "") -> int:
        """How many of a Trail's entries in the bucket's shared statements (its log path, its trail in the
        write statement's condition, its account in the ACL check...) the policy lacks."""
        from trailkeeper.core.bucket_share import BucketShare, missing_entries

        try:
            policy = json.loads(self.observer.client("s3", REGION).get_bucket_policy(Bucket=BUCKET)["Policy"])
        except ClientError:  # no bucket or no policy: every entry is missing
            policy = None
        return len(missing_entries(policy, BucketShare(BUCKET, key_prefix, ACCOUNT, trail_name)))

    # -- two CLI applies ------------------------------------------------------------------------------

    def two_cli_applies(self, run: int, directory: Path) -> dict[str, int]:
        from trailkeeper.core.naming import lifecycle_rule_id

        self._fresh()
        spec = {"regions": [REGION], "destination": {"bucket": BUCKET}}
        files = []
        for team in ("a", "b"):
            path = directory / f"run{run}-{team}.yaml"
            path.write_text(
                yaml.safe_dump_all(
                    [
                        _trail(f"team-{team}", f"audit-{team}", spec),
                        _retention(f"team-{team}", "keep", f"audit-{team}"),
                    ]
                ),
                encoding="utf-8",
            )
            files.append(path)
        env = {**subprocess_env(), "AWS_ENDPOINT_URL": self.url}
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "trailkeeper", "apply", "-f", str(path)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for path in files
        ]
        codes = [p.wait(timeout=180) for p in processes]
        errors = [p.stderr.read() if p.stderr else "" for p in processes]
        try:
            rules = self.observer.client("s3", REGION).get_bucket_lifecycle_configuration(Bucket=BUCKET)[
                "Rules"
            ]
        except ClientError:  # no configuration: no rules
            rules = []
        rule_ids = {r["ID"] for r in rules}
        lost_statements = 0
        lost_rules = 0
        for index, team in enumerate(("a", "b")):
            if codes[index] != 0:
                continue  # a failed apply says so: nothing it claimed is lost
            lost_statements += self._lost_entries(f"audit-{team}")
            lost_rules += lifecycle_rule_id(f"team-{team}", "keep") not in rule_ids
        return {
            "lost_own_statements": lost_statements,
            "lost_own_rules": lost_rules,
            "failed_applies": sum(1 for c in codes if c != 0),
            "tracebacks": sum("Traceback" in e for e in errors),
        }

    # -- one trailName in two namespaces --------------------------------------------------------------

    def one_name_two_namespaces(self, run: int) -> dict[str, int]:
        from trailkeeper.api.trail import TrailSpec
        from trailkeeper.core.naming import OWNER_TAG
        from trailkeeper.reconcile.shared import Shared
        from trailkeeper.reconcile.trail import TrailRequest, reconcile_trail

        self._fresh()
        specs = {
            "team-a": TrailSpec.model_validate(
                {"regions": [REGION], "trailName": "org-audit", "destination": {"bucket": BUCKET}}
            ),
            # The other Trail wants other settings: if it wrote to the winner's trail, it shows.
            "team-b": TrailSpec.model_validate(
                {
                    "regions": [REGION],
                    "trailName": "org-audit",
                    "destination": {"bucket": BUCKET, "keyPrefix": "team-b"},
                    "logFileValidation": False,
                }
            ),
        }
        outcomes: dict[str, Any] = {}
        start = threading.Barrier(2)

        def reconcile(namespace: str) -> None:
            sessions = self.make_sessions()
            start.wait()
            outcomes[namespace] = reconcile_trail(
                TrailRequest(namespace, "audit", specs[namespace]), sessions, Shared()
            )

        threads = [threading.Thread(target=reconcile, args=(ns,)) for ns in specs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        succeeded = [ns for ns, o in outcomes.items() if not o.failures]
        cloudtrail = self.observer.client("cloudtrail", REGION)
        trails = cloudtrail.describe_trails()["trailList"]
        modified = 0
        lost = 0
        if trails:
            trail = trails[0]
            tags = cloudtrail.list_tags(ResourceIdList=[trail["TrailARN"]])["ResourceTagList"][0]["TagsList"]
            owner = {t["Key"]: t["Value"] for t in tags}.get(OWNER_TAG, "")
            winner = owner.split("/")[0]
            loser_settings = trail.get("S3KeyPrefix") == "team-b"
            modified = int(
                (winner == "team-a" and loser_settings) or (winner == "team-b" and not loser_settings)
            )
            if winner in specs:
                prefix = "team-b" if winner == "team-b" else ""
                lost = self._lost_entries("org-audit", prefix)
        return {
            "duplicate_owners": int(len(succeeded) > 1),
            "foreign_trails_modified": modified,
            "lost_own_statements": lost,
            "trails": len(trails),
        }

    # -- a foreign writer -----------------------------------------------------------------------------

    def foreign_writer(self, run: int, reread: bool, rng: random.Random) -> dict[str, int]:
        from trailkeeper.api.trail import TrailSpec
        from trailkeeper.reconcile.shared import Shared
        from trailkeeper.reconcile.trail import TrailRequest, reconcile_trail
        from trailkeeper.reconcile.verified_write import WritePolicy

        self._fresh()
        s3 = self.observer.client("s3", REGION)
        s3.create_bucket(Bucket=BUCKET)
        sid = f"Foreign{run}"
        statement = {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:role/analytics"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/reports/*",
        }
        spec = TrailSpec.model_validate({"regions": [REGION], "destination": {"bucket": BUCKET}})
        # When the other tool starts its read-modify-write, within the pass's policy write window.
        delay = rng.uniform(0.0, 0.8)

        def foreign() -> None:
            time.sleep(delay)
            try:
                policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
            except ClientError:  # no policy yet
                policy = {"Version": "2012-10-17", "Statement": []}
            policy["Statement"] = [*policy.get("Statement", []), statement]
            s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))

        writer = threading.Thread(target=foreign)
        sessions = self.make_sessions()
        writer.start()
        outcome = reconcile_trail(
            TrailRequest("team-a", "audit", spec), sessions, Shared(write_policy=WritePolicy(reread=reread))
        )
        writer.join(timeout=30)
        sids = self._policy_sids()
        own = 0 if outcome.failures else self._lost_entries("audit")
        return {"lost_foreign_statements": int(sid not in sids), "lost_own_statements": own}


def _sum(results: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for result in results:
        for key, value in result.items():
            total[key] = total.get(key, 0) + value
    return total


def _live(scenario: str, races: Races, scratch: Path, runs: int, rng: random.Random) -> dict[str, int]:
    from bench.races_live import LiveRaces, live_cluster, operator_process

    live = LiveRaces(races.url, races.observer, scratch, rng)
    with live_cluster(scratch / scenario) as cluster:
        if scenario == "peering-handover":
            results = list(live.peering_handover(cluster, runs))
        else:
            with operator_process(cluster, races.url, scratch / "operator.log"):
                results = [live.operator_and_cli(cluster, run) for run in range(runs)]
    for note in live.notes:
        print(f"  not Ready: {note}", flush=True)
    return _sum(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.races", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="runs of each scenario (default 50)")
    parser.add_argument("--scenario", choices=SCENARIOS, action="append", help="only these (repeatable)")
    parser.add_argument("--output", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    os.environ.update(aws_environment())
    use_test_support()
    from support.moto_server import InProcessMotoServer
    from trailkeeper.aws.ratelimit import RateLimiter
    from trailkeeper.aws.session import AwsSessions

    rng = random.Random(args.seed)
    report: dict[str, Any] = {"runs": args.runs}
    wanted = args.scenario or list(SCENARIOS)
    with InProcessMotoServer() as server, tempfile.TemporaryDirectory() as scratch:

        def make_sessions() -> AwsSessions:
            return AwsSessions(
                endpoint_url=server.url, default_region=REGION, rate_limiter=RateLimiter.disabled()
            )

        races = Races(server.url, server.injector, make_sessions, server.reset)
        for scenario in wanted:
            started = time.monotonic()
            if scenario in LIVE:
                races._fresh()
                report[scenario] = _live(scenario, races, Path(scratch), args.runs, rng)
            elif scenario == "two-cli-applies":
                report[scenario] = _sum([races.two_cli_applies(i, Path(scratch)) for i in range(args.runs)])
            elif scenario == "one-name-two-namespaces":
                report[scenario] = _sum([races.one_name_two_namespaces(i) for i in range(args.runs)])
            else:
                report[scenario] = {
                    "with-reread": _sum([races.foreign_writer(i, True, rng) for i in range(args.runs)]),
                    "without-reread": _sum([races.foreign_writer(i, False, rng) for i in range(args.runs)]),
                }
            print(
                f"{scenario} ({time.monotonic() - started:.0f} s): {json.dumps(report[scenario])}", flush=True
            )
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
