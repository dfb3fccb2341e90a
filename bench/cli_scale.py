"""`python -m bench.cli_scale [--quick]`: `trailkeeper apply` and `diff` over many manifests, as a pipeline
runs them, against moto over HTTP behind AWS's hard limits (and, for the pacing rows, CloudTrail's
request quotas), each beside its floor measured in the same run.

The shape: N Trails in 2 regions, 5 to an account (AWS allows 5 trails per region per account), each
acting in its account through `spec.account.roleArn`; the Trails of an account share one bucket (both
regions deliver to it) and one SNS topic per region, and one LogRetention keeps the bucket's logs. The
fewest reads a `diff` needs (the issue's minimum): per account and region 1 DescribeTrails; per trail and
region GetTrailStatus and GetEventSelectors; per bucket its policy and lifecycle; per topic its attributes
and subscriptions. Acting in an account needs its credentials: one STS AssumeRole per account, shown apart.

- **calls**: every request the CLI made (the counting moto tells them by User-Agent), against the minimum;
- **baseline**: raw boto3 issuing exactly the minimum calls from a thread pool of 16 (one AssumeRole per
  account first), run as a process of its own like the CLI, so both pay the interpreter's start;
- **pacing**: `apply` from empty and `diff` at rest with the client-side limiter on, behind the quota
  front; the floor is the busiest (account, region, category) bucket's requests over its documented rate.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.paths import REPO, aws_environment, subprocess_env, use_test_support

REGIONS = ("us-east-1", "eu-west-1")
PER_ACCOUNT = 5  # AWS's limit of trails per region per account
FIRST_ACCOUNT = 100_000_000_000
ROLE_NAME = "trailkeeper-bench"
TOPIC = "cli-alerts"
BASELINE_THREADS = 16
# The documented rates of CloudTrail's quota categories (tests/support/quota.py), per second.
RATES = {"read": 10.0, "write": 1.0, "lookupevents": 2.0, "listinsightsmetricdata": 1.0}
NO_RATE_LIMIT = "--no-rate-limit"

SIZES = (50, 200, 500)
QUICK_SIZES = (20,)
PACING_SIZES = (4, 20)
QUICK_PACING_SIZES = (4,)


@dataclass(frozen=True)
class Fleet:
    """N Trails, PER_ACCOUNT to an account."""

    trails: int

    @property
    def accounts(self) -> list[str]:
        return [str(FIRST_ACCOUNT + i) for i in range((self.trails + PER_ACCOUNT - 1) // PER_ACCOUNT)]

    def trails_of(self, account: str) -> list[str]:
        first = (int(account) - FIRST_ACCOUNT) * PER_ACCOUNT
        return [f"cli-{i:03d}" for i in range(first, min(first + PER_ACCOUNT, self.trails))]

    def minimum(self) -> Counter[str]:
        """The fewest calls a `diff` needs, by operation (STS apart: see the module's docstring)."""
        accounts, regions, trails = len(self.accounts), len(REGIONS), self.trails
        return Counter(
            {
                "DescribeTrails": accounts * regions,
                "GetTrailStatus": trails * regions,
                "GetEventSelectors": trails * regions,
                "GetBucketPolicy": accounts,
                "GetBucketLifecycleConfiguration": accounts,
                "GetTopicAttributes": accounts * regions,
                "ListSubscriptionsByTopic": accounts * regions,
            }
        )

    def manifests(self) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        for account in self.accounts:
            where = {"roleArn": role_arn(account)}
            names = self.trails_of(account)
            for name in names:
                spec = {
                    "regions": list(REGIONS),
                    "destination": {"bucket": f"cli-{account}"},
                    "notifications": {"topicName": TOPIC},
                    "account": where,
                }
                objects.append(_object("Trail", name, spec))
            retention = {
                "trailRef": {"name": names[0]},
                "transitions": [{"days": 90, "storageClass": "GLACIER"}],
                "expirationDays": 400,
                "account": where,
            }
            objects.append(_object("LogRetention", f"keep-{account}", retention))
        return objects


def role_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role/{ROLE_NAME}"


def _object(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "trailkeeper.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "bench"},
        "spec": spec,
    }


# -- the raw-boto3 baseline (a process of its own) -----------------------------------------------------


def _baseline_tasks(account: str, fleet: Fleet, client: Callable[[str, str], Any]) -> list[Callable[[], Any]]:
    """The minimum reads of one account, one callable each."""
    tasks: list[Callable[[], Any]] = []
    bucket = f"cli-{account}"
    s3 = client("s3", REGIONS[0])
    tasks += [lambda: s3.get_bucket_policy(Bucket=bucket)]
    tasks += [lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket)]
    for region in REGIONS:
        cloudtrail, sns = client("cloudtrail", region), client("sns", region)
        topic = f"arn:aws:sns:{region}:{account}:{TOPIC}"
        tasks += [lambda c=cloudtrail: c.describe_trails(includeShadowTrails=True)]
        tasks += [lambda s=sns, t=topic: s.get_topic_attributes(TopicArn=t)]
        tasks += [lambda s=sns, t=topic: s.list_subscriptions_by_topic(TopicArn=t)]
        for name in fleet.trails_of(account):
            arn = f"arn:aws:cloudtrail:{region}:{account}:trail/{name}"
            tasks += [lambda c=cloudtrail, a=arn: c.get_trail_status(Name=a)]
            tasks += [lambda c=cloudtrail, a=arn: c.get_event_selectors(TrailName=a)]
    return tasks


def run_baseline(endpoint: str, trails: int) -> int:
    """Raw boto3: per account one AssumeRole and its clients, then exactly the minimum reads, all from a
    thread pool; returns the reads made."""
    import boto3
    from botocore.config import Config

    fleet = Fleet(trails)
    session = boto3.session.Session()
    config = Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1})
    sts = session.client("sts", region_name=REGIONS[0], endpoint_url=endpoint, config=config)

    def account_tasks(account: str) -> list[Callable[[], Any]]:
        credentials = sts.assume_role(RoleArn=role_arn(account), RoleSessionName="bench")["Credentials"]
        keys = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
        clients: dict[tuple[str, str], Any] = {}

        def client(service: str, region: str) -> Any:
            if (service, region) not in clients:
                make: Callable[..., Any] = session.client
                clients[service, region] = make(
                    service, region_name=region, endpoint_url=endpoint, config=config, **keys
                )
            return clients[service, region]

        return _baseline_tasks(account, fleet, client)

    with ThreadPoolExecutor(BASELINE_THREADS) as pool:
        # Clients are made one account at a time (a boto3 session is not thread-safe while making them).
        tasks = [task for account in fleet.accounts for task in account_tasks(account)]
        list(pool.map(lambda task: task(), tasks))
    assert len(tasks) == sum(fleet.minimum().values())
    return len(tasks)


# -- running the CLI -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    seconds: float
    returncode: int
    output: str


def run_process(args: Sequence[str], endpoint: str) -> Run:
    env = subprocess_env()
    env["AWS_ENDPOINT_URL"] = endpoint
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=3600
    )
    return Run(time.perf_counter() - started, done.returncode, done.stdout + done.stderr)


def run_cli(command: str, manifests: Path, endpoint: str, *extra: str) -> Run:
    return run_process(["-m", "trailkeeper", command, "-f", str(manifests), *extra], endpoint)


def _write(fleet: Fleet, path: Path) -> Path:
    import yaml

    path.write_text(yaml.safe_dump_all(fleet.manifests(), sort_keys=False), encoding="utf-8")
    return path


def _check(run: Run, what: str, codes: tuple[int, ...] = (0,)) -> None:
    if run.returncode not in codes:
        raise RuntimeError(f"{what} exited {run.returncode}:\n{run.output[-3000:]}")
    if "Throttl" in run.output or "Rate exceeded" in run.output:
        raise RuntimeError(f"a throttle reached the output of {what}:\n{run.output[-3000:]}")


def _operator_calls(moto: Any) -> Counter[str]:
    return Counter({c.operation: c.count for c in moto.counts() if c.caller == "operator"})


@dataclass(frozen=True)
class ScaleRow:
    trails: int
    accounts: int
    apply_seconds: float
    policy_writes: int
    buckets: int
    diff_seconds: float
    diff_off_seconds: float
    calls: int
    sts_calls: int
    minimum: int
    baseline_seconds: float
    by_operation: dict[str, int]

    @property
    def ratio(self) -> float:
        return (self.calls - self.sts_calls) / self.minimum

    @property
    def baseline_ratio(self) -> float:
        return self.diff_off_seconds / self.baseline_seconds


def measure_scale(moto: Any, trails: int, workdir: Path) -> ScaleRow:
    fleet = Fleet(trails)
    manifests = _write(fleet, workdir / f"fleet-{trails}.yaml")
    moto.reset_aws()
    applied = run_cli("apply", manifests, moto.url, NO_RATE_LIMIT)
    _check(applied, f"apply of {trails} Trails")
    policy_writes = _operator_calls(moto)["PutBucketPolicy"]
    moto.reset_counts()
    diffed = run_cli("diff", manifests, moto.url)
    _check(diffed, f"diff of {trails} Trails")
    calls = _operator_calls(moto)
    off = run_cli("diff", manifests, moto.url, NO_RATE_LIMIT)
    _check(off, f"diff of {trails} Trails, limiter off")
    baseline = run_process(
        ["-m", "bench.cli_scale", "--baseline", str(trails), "--endpoint", moto.url], moto.url
    )
    _check(baseline, "the raw-boto3 baseline")
    sts = sum(n for op, n in calls.items() if op in {"AssumeRole", "GetCallerIdentity"})
    return ScaleRow(
        trails=trails,
        accounts=len(fleet.accounts),
        apply_seconds=applied.seconds,
        policy_writes=policy_writes,
        buckets=len(fleet.accounts),
        diff_seconds=diffed.seconds,
        diff_off_seconds=off.seconds,
        calls=sum(calls.values()),
        sts_calls=sts,
        minimum=sum(fleet.minimum().values()),
        baseline_seconds=baseline.seconds,
        by_operation=dict(sorted(calls.items())),
    )


@dataclass(frozen=True)
class PacingRow:
    what: str
    trails: int
    seconds: float
    busiest: tuple[str, str, str]
    busiest_calls: int
    throttled: int

    @property
    def floor(self) -> float:
        return self.busiest_calls / RATES[self.busiest[2]]

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor


def _pacing_row(what: str, trails: int, run: Run, moto: Any, category: str) -> PacingRow:
    passed, throttled = moto.quota_counts()
    ours = {key: n for key, n in passed.items() if key[2] == category}
    busiest = max(ours, key=lambda key: ours[key])
    return PacingRow(what, trails, run.seconds, busiest, ours[busiest], throttled)


def measure_pacing(moto: Any, trails: int, workdir: Path) -> list[PacingRow]:
    """`apply` from empty, then `diff` at rest, both paced by the CLI's limiter, behind the quota front."""
    manifests = _write(Fleet(trails), workdir / f"pacing-{trails}.yaml")
    moto.reset_aws()
    applied = run_cli("apply", manifests, moto.url)
    _check(applied, f"paced apply of {trails} Trails")
    rows = [_pacing_row("apply from empty", trails, applied, moto, "write")]
    moto.reset_counts()
    diffed = run_cli("diff", manifests, moto.url)
    _check(diffed, f"paced diff of {trails} Trails")
    rows.append(_pacing_row("diff at rest", trails, diffed, moto, "read"))
    swept = sweep_at_once(moto, Fleet(trails))
    _check(swept, f"the drift checks of {trails} Trails at once")
    rows.append(_pacing_row("operator sweep at rest", trails, swept, moto, "read"))
    return rows


SWEEP_WORKERS = 16  # the operator's default --max-workers


def sweep_at_once(moto: Any, fleet: Fleet) -> Run:
    """The operator's drift checks of every Trail of `fleet` at the same moment (its worst case: the
    jitter of the periods spreads them otherwise), in-process, 16 at a time, paced by the production
    limiter; the checks of a sweep that reads tags (one in --tag-check-every). Credentials and clients are
    made by a first sweep, untimed, as in an operator that has run a while; the timed one shares none of
    its answers."""
    from trailkeeper.api.trail import TrailSpec
    from trailkeeper.aws.ratelimit import RateLimiter
    from trailkeeper.aws.reads import Reads
    from trailkeeper.aws.session import AwsSessions
    from trailkeeper.reconcile.shared import Shared
    from trailkeeper.reconcile.trail import TrailRequest, reconcile_trail

    limiter = RateLimiter.from_env({})  # the production rates, whatever this process's environment says
    sessions = AwsSessions(endpoint_url=moto.url, default_region=REGIONS[0], rate_limiter=limiter)
    trails = [m for m in fleet.manifests() if m["kind"] == "Trail"]

    def sweep() -> list[str]:
        shared = Shared(cache=Reads())

        def check(manifest: dict[str, Any]) -> list[str]:
            meta, spec = manifest["metadata"], TrailSpec.model_validate(manifest["spec"])
            request = TrailRequest(meta["namespace"], meta["name"], spec, deep=False)
            return [str(f) for f in reconcile_trail(request, sessions, shared).failures]

        with ThreadPoolExecutor(SWEEP_WORKERS) as pool:
            return [failure for failures in pool.map(check, trails) for failure in failures]

    sweep()
    moto.reset_counts()
    started = time.perf_counter()
    failures = sweep()
    return Run(time.perf_counter() - started, 1 if failures else 0, "\n".join(failures))


def render(scale: list[ScaleRow], pacing: list[PacingRow], start: float) -> str:
    lines = [
        "| N Trails x 2 regions (accounts) | `diff` | calls (+STS) | minimum | ratio | limiter off | "
        "raw boto3 | ratio | `apply` (limiter off) | policy writes / buckets |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in scale:
        lines.append(
            f"| {r.trails} ({r.accounts}) | {r.diff_seconds:.1f} s "
            f"| {r.calls - r.sts_calls} (+{r.sts_calls}) | {r.minimum} | {r.ratio:.2f} "
            f"| {r.diff_off_seconds:.1f} s | {r.baseline_seconds:.1f} s "
            f"| {r.baseline_ratio:.2f} | {r.apply_seconds:.1f} s | {r.policy_writes} / {r.buckets} |"
        )
    lines += [
        "",
        f"process start (`trailkeeper --version`): {start:.2f} s, counted in every CLI time above",
        "",
        "| paced run, behind the quota front | N Trails | time | busiest bucket | its calls | floor | ratio "
        "| throttled |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for p in pacing:
        account, region, category = p.busiest
        lines.append(
            f"| {p.what} | {p.trails} | {p.seconds:.1f} s | {account} {region} {category} "
            f"| {p.busiest_calls} | {p.floor:.1f} s | {p.ratio:.2f} | {p.throttled} |"
        )
    if scale:
        lines += ["", f"calls by operation at N={scale[-1].trails}: {json.dumps(scale[-1].by_operation)}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=20 and one pacing size")
    parser.add_argument("--sizes", default=None, help="comma-separated N (default 50,200,500)")
    parser.add_argument("--pacing", default=None, help="comma-separated N for the pacing rows (default 4,20)")
    parser.add_argument("--keep-logs", type=Path, default=None, help="keep moto's logs and manifests here")
    parser.add_argument("--baseline", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline is not None:
        print(run_baseline(args.endpoint, args.baseline))
        return 0
    sizes = _sizes(args.sizes, QUICK_SIZES if args.quick else SIZES)
    pacing_sizes = _sizes(args.pacing, QUICK_PACING_SIZES if args.quick else PACING_SIZES)
    print(measure(sizes, pacing_sizes, args.keep_logs))
    return 0


def measure(sizes: Sequence[int], pacing_sizes: Sequence[int], keep: Path | None = None) -> str:
    """Both tables, measured against counting moto servers of their own; as markdown."""
    import os

    os.environ.update(aws_environment())
    use_test_support()
    from bench.aws_counter import CountingMoto

    with tempfile.TemporaryDirectory(prefix="trailkeeper-cli-bench-") as scratch:
        workdir = keep or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        compile_bytecode()
        start = run_process(["-m", "trailkeeper", "--version"], "").seconds
        with CountingMoto(workdir / "moto.log") as moto:
            warm(moto.url)
            scale = [measure_scale(moto, n, workdir) for n in sizes]
        pacing: list[PacingRow] = []
        with CountingMoto(workdir / "moto-quota.log", quota=True) as moto:
            warm(moto.url)
            for n in pacing_sizes:
                pacing += measure_pacing(moto, n, workdir)
    return render(scale, pacing, start)


def compile_bytecode() -> None:
    """Compile the package's bytecode, as `pip install` does (and the image has): where
    PYTHONDONTWRITEBYTECODE is set, every CLI process would otherwise compile trailkeeper's modules again
    at its start (0.05 s of it here), a cost no installed copy has."""
    import compileall

    compileall.compile_dir(str(REPO / "operator" / "trailkeeper"), quiet=1)


def warm(endpoint: str) -> None:
    """One read of each service the runs use, in the operator's own account, before anything is timed: moto
    loads a service's models on its first request to it (0.3 to 0.4 s for S3 and SNS each), a cost AWS has
    not and the floors do not count."""
    import boto3

    for region in REGIONS:
        for service, read in (
            ("sts", "get_caller_identity"),
            ("s3", "list_buckets"),
            ("sns", "list_topics"),
            ("cloudtrail", "describe_trails"),
        ):
            getattr(boto3.client(service, region_name=region, endpoint_url=endpoint), read)()


def _sizes(text: str | None, default: Sequence[int]) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()] if text else list(default)


if __name__ == "__main__":
    sys.exit(main())
