"""The four measurements: apply->Ready latency, a burst of Trails, a drift sweep, and the overhead ratio.

Each figure is set beside a baseline measured in the same run (raw boto3 at the same moto server, see
``floor``), so what is read is a ratio that does not depend on how fast this machine or moto is.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.aws_counter import CountingMoto
from bench.config import BenchConfig
from bench.fleet import (
    DESCRIBE_TRAILS,
    REGIONS,
    Organization,
    retention_spec,
    role_arn,
    spread,
    tenancy_policy,
    trail_spec,
)
from bench.floor import (
    FloorRun,
    RawClients,
    create_floor,
    create_trail_set,
    delete_trail_set,
    sweep_floor,
)
from bench.harness import (
    MetricsSample,
    Stage,
    calls_between,
    cpu_seconds,
    memory_kib,
    run_options,
    scrape_metrics,
)
from bench.watch import Key
from support.moto_server import free_port
from trailkeeper.aws.calls import CallRecorder, is_mutating
from trailkeeper.aws.ratelimit import RateLimiter
from trailkeeper.aws.session import AccountRef, AwsSessions, role_session_name
from trailkeeper.reconcile.passes import ObjectRef, PassReport, retention_pass, trail_pass
from trailkeeper.reconcile.shared import TAG_CHECK_EVERY, Shared

# Account indexes of the in-process create passes and of their raw boto3 floor (the fleet's are 0 on):
# each set in accounts of its own, with free trail slots.
INPROC_ACCOUNTS = 800
INPROC_FLOOR_ACCOUNTS = 900

# The services a Trail's or LogRetention's passes call in its account (the compliance evaluation too).
ACCOUNT_SERVICES = ("cloudtrail", "s3", "sns", "s3control", "ec2", "cloudwatch", "logs")

# A Trail that is invalid on purpose: the operator answers it without calling AWS, so its InvalidSpec
# status says the operator is up and watching, without adding AWS work to what is measured.
PROBE = "probe-no-such-region"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _mutating(calls: Mapping[tuple[str, str], int]) -> int:
    return sum(n for (_, operation), n in calls.items() if is_mutating(operation))


def _by_operation(calls: Mapping[tuple[str, str], int]) -> dict[str, int]:
    return {f"{service}:{operation}": n for (service, operation), n in sorted(calls.items())}


def _keys(names: Iterable[str]) -> list[Key]:
    keys: list[Key] = []
    for name in names:
        keys += [("Trail", "default", name), ("LogRetention", "default", name)]
    return keys


def _wait_operator_up(stage: Stage, timeout: float) -> None:
    # Past admission (which regions exist is the operator's knowledge), refused by the operator.
    stage.apply("Trail", PROBE, {"regions": ["us-nowhere-1"], "destination": {"bucket": "probe-logs"}})
    assert stage.cluster is not None
    stage.cluster.wait_condition("Trail", PROBE, "Ready", "False", reason="InvalidSpec", timeout=timeout)


def _delete_and_wait(stage: Stage, keys: list[Key], timeout: float) -> None:
    """Delete the objects (deletionPolicy Delete: their trails go from AWS) and wait until they are gone,
    so the next run finds a free trail slot (AWS allows 5 per region per account)."""
    for kind, _, name in keys:
        stage.delete(kind, name)
    deadline = time.monotonic() + timeout
    while not all(stage.gone(kind, name) for kind, _, name in keys):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{[k[2] for k in keys]} not deleted within {timeout} s")
        time.sleep(0.1)


def _wait_ready(stage: Stage, keys: list[Key], timeout: float, what: str) -> None:
    assert stage.watcher is not None
    watcher = stage.watcher
    if not watcher.wait_for(lambda: watcher.all_ready(keys), timeout):
        missing = [k for k in keys if not watcher.timeline(k).ready_at]
        raise RuntimeError(
            f"{what}: {len(missing)} object(s) not Ready within {timeout} s, e.g. {missing[:3]}"
        )


# -- apply -> Ready ------------------------------------------------------------------------------------


@dataclass
class LatencyResult:
    runs: int
    trail_ready_p50: float
    trail_ready_p95: float
    all_ready_p50: float
    all_ready_p95: float
    cold_all_ready: float
    floor_p50: float
    ratio_p50_to_floor: float
    calls_per_apply: float
    mutating_calls_per_apply: float
    trail_ready: list[float] = field(default_factory=list)
    all_ready: list[float] = field(default_factory=list)
    # Mean calls of one apply, by operation.
    calls_by_operation: dict[str, float] = field(default_factory=dict)


def measure_latency(
    moto: CountingMoto, config: BenchConfig, workdir: Path, operator_src: Path | None = None
) -> LatencyResult:
    """Apply a Trail and its LogRetention together (as `kubectl apply -f dir/` does) and time until the
    Trail is Ready and until both are; one run after another, each with new names, in the operator's own
    account. After each run, outside the time, both are deleted (deletionPolicy Delete) and waited for
    until gone: at most one bench Trail is alive, within AWS's 5 trails per region per account."""
    moto.reset_aws()
    clients = RawClients(moto.url)
    clients.warm()
    create_trail_set(clients, "floor-warm")
    delete_trail_set(clients, "floor-warm")
    floors = []
    for run in range(config.latency_runs):
        started = time.perf_counter()
        create_trail_set(clients, f"floor-lat-{run:02d}")
        floors.append(time.perf_counter() - started)
        delete_trail_set(clients, f"floor-lat-{run:02d}")
    moto.reset_aws()

    trail_ready: list[float] = []
    all_ready: list[float] = []
    calls: list[Counter[tuple[str, str]]] = []
    cold = math.nan
    stage = Stage(moto, workdir, "latency", resync_scale=1.0, operator_src=operator_src)
    with stage.running():
        _wait_operator_up(stage, config.ready_timeout)
        assert stage.watcher is not None
        for run in range(config.warmup_runs + config.latency_runs):
            name = f"lat-{run:02d}"
            keys = _keys([name])
            before = moto.counts()
            started = time.monotonic()
            stage.apply("Trail", name, trail_spec(name, delete=True))
            stage.apply("LogRetention", name, retention_spec(name, delete=True))
            _wait_ready(stage, keys, config.ready_timeout, f"apply of {name}")
            trail_at = stage.watcher.timeline(keys[0]).ready_at
            both_at = max(stage.watcher.timeline(k).ready_at or math.inf for k in keys)
            assert trail_at is not None
            # The last status write is the end of the work; what follows (Events) costs no AWS call.
            time.sleep(0.2)
            after = moto.counts()
            _delete_and_wait(stage, keys, config.ready_timeout)
            if run < config.warmup_runs:
                cold = both_at - started
                continue
            trail_ready.append(trail_at - started)
            all_ready.append(both_at - started)
            calls.append(calls_between(before, after))
        stage.kill_operator()
    floor_p50 = statistics.median(floors)
    all_p50 = statistics.median(all_ready)
    return LatencyResult(
        runs=config.latency_runs,
        trail_ready_p50=statistics.median(trail_ready),
        trail_ready_p95=percentile(trail_ready, 95),
        all_ready_p50=all_p50,
        all_ready_p95=percentile(all_ready, 95),
        cold_all_ready=cold,
        floor_p50=floor_p50,
        ratio_p50_to_floor=all_p50 / floor_p50,
        calls_per_apply=statistics.mean(sum(c.values()) for c in calls),
        mutating_calls_per_apply=statistics.mean(_mutating(c) for c in calls),
        trail_ready=trail_ready,
        all_ready=all_ready,
        calls_by_operation={op: n / len(calls) for op, n in _by_operation(sum(calls, Counter())).items()},
    )


# -- burst, sweep and overhead (one fleet) -------------------------------------------------------------


@dataclass
class BurstResult:
    trails: int
    objects: int
    accounts: int
    trails_ready_seconds: float
    all_ready_seconds: float
    floor_seconds: float
    ratio_to_floor: float
    peak_rss_mb: float
    idle_rss_mb: float
    operator_cpu_seconds: float
    moto_cpu_seconds: float
    calls: int
    floor_calls: int
    mutating_calls: int
    # From the operator's log: LogRetention passes that found their bucket not made yet (and backed off),
    # and urllib3 discarding connections because more threads call one client than its pool holds.
    retention_retries: int
    connection_pool_full: int
    # The operator's own histograms over the burst (create passes, 16 at a time): sum of pass durations
    # over sum of AWS call durations, and passes counted; None when its metrics endpoint is not served.
    metrics_ratio: float | None = None
    metrics_reconciles: float | None = None
    # The operator's requests to the API server over the burst (from its audit log), by verb.
    api_requests: dict[str, int] = field(default_factory=dict)


@dataclass
class SweepResult:
    objects: int
    resync_period_seconds: float
    compliance_interval_seconds: float | None
    window_seconds: float
    check_spread_seconds: float
    checked_once: int
    checked_twice: int
    valid: bool
    calls: int
    minimum: int
    ratio_to_minimum: float
    mutating_calls: int
    calls_by_operation: dict[str, int]
    minimum_by_operation: dict[str, int]
    operator_cpu_seconds: float
    # The compliance evaluation's account observations in the window, and the reads only they make
    # (GetBucketAcl, GetBucketLogging, GetPublicAccessBlock: CIS controls no drift check needs); the
    # reads both make (trail status, selectors, bucket policy) are shared, made once. See
    # _attribute_compliance.
    compliance_observations: int | None = None
    compliance_observation_calls: dict[str, int] = field(default_factory=dict)
    compliance_only_calls: int | None = None
    # The sweep's calls less the compliance-only reads, against the drift minimum.
    drift_only_calls: int | None = None
    drift_only_ratio_to_minimum: float | None = None
    drift_only_by_operation: dict[str, int] = field(default_factory=dict)
    # Every call of the sweep against the drift minimum plus the compliance-only reads' minimum.
    minimum_with_compliance: int | None = None
    ratio_to_minimum_with_compliance: float | None = None
    # The sweep before it, right after the burst (see measure_fleet).
    first_sweep_calls: int | None = None
    # Drift checks read tags afresh once in `tag_check_every` checks (the operator's --tag-check-every),
    # so one sweep in that many reads them: the first one does (no tag read is kept yet). The sweep as it
    # averages over those sweeps: this one's calls less its tag reads, plus the first's over the cadence.
    tag_check_every: int = 1
    first_sweep_tag_reads: int | None = None
    averaged_calls: float | None = None
    # The operator's requests to the API server over the sweep (from its audit log), by verb.
    api_requests: dict[str, int] = field(default_factory=dict)
    first_sweep_valid: bool | None = None


@dataclass
class PassTiming:
    passes: int
    wall_seconds: float
    aws_seconds: float
    ratio: float
    calls: int
    mutating_calls: int
    calls_by_operation: dict[str, int] = field(default_factory=dict)


@dataclass
class OverheadResult:
    method: str
    drift_pass: PassTiming
    create_pass: PassTiming
    sweep_floor_seconds: float
    sweep_floor_calls: int
    drift_sweep_ratio_to_floor: float
    create_floor_seconds: float
    create_ratio_to_floor: float
    # From the operator's own histograms over the sweep window, when its metrics endpoint serves them:
    # sum of pass durations / sum of AWS call durations (16 passes at a time on 2 cores: both sums hold
    # time spent waiting for the GIL, unlike the in-process figures).
    metrics_ratio: float | None
    metrics_reconciles: float | None
    metrics_seconds_per_reconcile: float | None
    compliance_observation: PassTiming | None
    # Seconds to assume a new account's role and make its clients (once per account and session name).
    account_setup_seconds: float = math.nan


@dataclass
class FleetResult:
    burst: BurstResult
    sweep: SweepResult
    overhead: OverheadResult


def _mb(kib: int | None) -> float:
    return (kib or 0) / 1024


def measure_fleet(
    moto: CountingMoto, config: BenchConfig, workdir: Path, operator_src: Path | None = None
) -> FleetResult:
    organization = Organization(config.burst_trails, config.fleet_regions)

    # The floor first, on an empty moto, then moto emptied again for the operator.
    moto.reset_aws()
    clients = RawClients(moto.url)
    clients.warm()
    burst_floor = create_floor(clients, organization, config.workers)
    moto.reset_aws()
    clients = RawClients(moto.url)  # the assumed credentials died with moto's reset
    clients.warm()

    metrics_port = free_port()
    # The operator may assume the fleet's roles: the cluster admins' tenancy policy says so.
    policy = workdir / "tenancy.yaml"
    policy.write_text(tenancy_policy(), encoding="utf-8")
    extra: tuple[str, ...] = ("--tenancy-policy", str(policy))
    compliance_interval: float | None = None
    if "--compliance-interval" in run_options(operator_src):
        # Compliance is evaluated per interval as drift is checked per resync period; both default to
        # 300 s, so the bench scales the interval with the period to keep their proportion.
        compliance_interval = config.fleet_period
        extra += ("--compliance-interval", str(compliance_interval))
    stage = Stage(
        moto,
        workdir,
        "fleet",
        resync_scale=config.fleet_resync_scale,
        operator_src=operator_src,
        metrics_port=metrics_port,
        extra_args=extra,
    )
    with stage.running():
        _wait_operator_up(stage, config.ready_timeout)
        burst = _burst(stage, moto, config, organization, burst_floor, metrics_port)
        # The first sweep after the burst is every Trail's first compliance evaluation, with nothing to
        # share yet; the steady state is the sweep after it.
        first, _ = _sweep(stage, moto, config, organization, metrics_port)
        sweep, metrics = _sweep(stage, moto, config, organization, metrics_port)
        sweep.first_sweep_calls = first.calls
        sweep.first_sweep_valid = first.valid
        _average_tag_checks(sweep, first)
        sweep.compliance_interval_seconds = compliance_interval
        # The in-process passes that follow must not share the machine with the operator.
        stage.kill_operator()
        trails = {o["metadata"]["name"]: o for o in stage.list_objects("Trail")}
        retentions = {o["metadata"]["name"]: o for o in stage.list_objects("LogRetention")}
    overhead = _overhead(moto, config, organization, trails, retentions, clients, metrics)
    _attribute_compliance(sweep, overhead)
    return FleetResult(burst, sweep, overhead)


def _burst(
    stage: Stage,
    moto: CountingMoto,
    config: BenchConfig,
    organization: Organization,
    floor: FloorRun,
    metrics_port: int,
) -> BurstResult:
    assert stage.watcher is not None
    keys = organization.keys()
    idle = memory_kib(stage.pid, "VmRSS")
    metrics_before = scrape_metrics(metrics_port)
    cpu_before, moto_cpu_before = cpu_seconds(stage.pid), cpu_seconds(moto.pid)
    before = moto.counts()
    api_before = stage.api_requests()
    started = time.monotonic()
    resync = config.fleet_resync_seconds
    for kind, name, spec in organization.manifests(resync):
        stage.apply(kind, name, spec)
    _wait_ready(stage, keys, config.ready_timeout, "burst")
    timelines = stage.watcher.timelines(keys)
    trails_at = max(t.ready_at or math.inf for k, t in timelines.items() if k[0] == "Trail")
    all_at = max(t.ready_at or math.inf for t in timelines.values())
    calls = calls_between(before, moto.counts())
    ratio, reconciles, _ = _metrics_delta(metrics_before, scrape_metrics(metrics_port))
    return BurstResult(
        trails=len(organization.trails),
        objects=len(keys),
        accounts=len(set(organization.accounts.values())),
        trails_ready_seconds=trails_at - started,
        all_ready_seconds=all_at - started,
        floor_seconds=floor.seconds,
        ratio_to_floor=(trails_at - started) / floor.seconds,
        peak_rss_mb=_mb(memory_kib(stage.pid, "VmHWM")),
        idle_rss_mb=_mb(idle),
        operator_cpu_seconds=cpu_seconds(stage.pid) - cpu_before,
        moto_cpu_seconds=cpu_seconds(moto.pid) - moto_cpu_before,
        calls=sum(calls.values()),
        floor_calls=floor.calls,
        mutating_calls=_mutating(calls),
        retention_retries=stage.log_lines("'retention_created' failed temporarily"),
        connection_pool_full=stage.log_lines("Connection pool is full"),
        metrics_ratio=ratio,
        metrics_reconciles=reconciles,
        api_requests=dict(stage.api_requests() - api_before),
    )


def _metrics_delta(
    before: MetricsSample | None, after: MetricsSample | None
) -> tuple[float | None, float | None, float | None]:
    """(pass seconds / AWS seconds, passes, seconds per pass) between two samples of the histograms."""
    if before is None or after is None:
        return None, None, None
    aws = after.aws_seconds - before.aws_seconds
    reconcile = after.reconcile_seconds - before.reconcile_seconds
    passes = after.reconciles - before.reconciles
    return (reconcile / aws if aws else None), passes, (reconcile / passes if passes else None)


def _sweep(
    stage: Stage,
    moto: CountingMoto,
    config: BenchConfig,
    organization: Organization,
    metrics_port: int,
) -> tuple[SweepResult, tuple[MetricsSample, MetricsSample] | None]:
    """From the moment the whole fleet is Ready until every object has done one drift check since.

    The fleet's first checks fall within the spread of its Ready times plus the ±10 % jitter of the
    period; a second check of any object comes at least 0.9 period after its first. The period is chosen
    (config) so the window closes before any second check: the calls counted are one sweep's.
    """
    assert stage.watcher is not None
    watcher = stage.watcher
    keys = organization.keys()
    started = time.monotonic()
    before = moto.counts()
    api_before = stage.api_requests()
    metrics_before = scrape_metrics(metrics_port)
    cpu_before = cpu_seconds(stage.pid)
    period = config.fleet_period
    timeout = 1.1 * period + 60
    if not watcher.wait_for(lambda: watcher.checked_since(keys, started), timeout):
        raise RuntimeError(f"not every object did a drift check within {timeout:.0f} s")
    ended = time.monotonic()
    calls = calls_between(before, moto.counts())
    metrics_after = scrape_metrics(metrics_port)
    cpu = cpu_seconds(stage.pid) - cpu_before
    timelines = watcher.timelines(keys)
    in_window = {k: [at for at, _ in t.drift_checks if started < at <= ended] for k, t in timelines.items()}
    firsts = [min(checks) for checks in in_window.values()]
    twice = sum(1 for checks in in_window.values() if len(checks) > 1)
    # No second check can have begun (and made calls) before the window closed: the next check of each
    # object is due a 0.9 period after its first, less the second-granularity of lastDriftCheckTime and
    # the length of a pass (2 s is ample on moto).
    margin = min(firsts) + 0.9 * period - 2.0 - ended
    minimum = _minimum_for_checks(organization, in_window)
    total, floor_total = sum(calls.values()), sum(minimum.values())
    result = SweepResult(
        objects=len(keys),
        resync_period_seconds=period,
        compliance_interval_seconds=None,
        window_seconds=ended - started,
        check_spread_seconds=max(firsts) - min(firsts),
        checked_once=sum(1 for checks in in_window.values() if len(checks) == 1),
        checked_twice=twice,
        valid=twice == 0 and margin > 0,
        calls=total,
        minimum=floor_total,
        ratio_to_minimum=total / floor_total,
        mutating_calls=_mutating(calls),
        calls_by_operation=_by_operation(calls),
        minimum_by_operation=_by_operation(minimum),
        operator_cpu_seconds=cpu,
        api_requests=dict(stage.api_requests() - api_before),
    )
    metrics = (metrics_before, metrics_after) if metrics_before and metrics_after else None
    return result, metrics


# The reads of tags that drift checks make once in --tag-check-every checks (trails' and topics').
TAG_READS = ("cloudtrail:ListTags", "sns:ListTagsForResource")


def _average_tag_checks(sweep: SweepResult, first: SweepResult) -> None:
    """The steady sweep averaged over the operator's tag-check cadence (see SweepResult)."""
    sweep.tag_check_every = TAG_CHECK_EVERY
    first_tags = sum(first.calls_by_operation.get(op, 0) for op in TAG_READS)
    own_tags = sum(sweep.calls_by_operation.get(op, 0) for op in TAG_READS)
    sweep.first_sweep_tag_reads = first_tags
    sweep.averaged_calls = sweep.calls - own_tags + first_tags / TAG_CHECK_EVERY


def _minimum_for_checks(
    organization: Organization, in_window: dict[Key, list[float]]
) -> Counter[tuple[str, str]]:
    """The minimum of the checks the window holds: one sweep's, plus each extra check's own reads.

    Objects' periods differ by up to ±10 % (jitter), so a window that waits for the last object's check
    can hold a second check of an object with a short period; that check needs its own reads again, and
    DescribeTrails again in its regions: a drift check shares one up to half its period old, so never its
    own previous check's. Per account and region, DescribeTrails is asked as often as the Trail checked
    most often there.
    """
    most: dict[tuple[str, str], int] = {}
    for t in organization.trails:
        for region in t.regions:
            checks = len(in_window[("Trail", "default", t.name)])
            most[(t.account, region)] = max(most.get((t.account, region), 0), checks)
    scaled: Counter[tuple[str, str]] = Counter({DESCRIBE_TRAILS: sum(most.values())})
    for key, reads in organization.object_minimum().items():
        for op, count in reads.items():
            scaled[op] += count * len(in_window[key])
    return scaled


def _attribute_compliance(sweep: SweepResult, overhead: OverheadResult) -> None:
    """Split the sweep's calls into drift checks and compliance observations of the account.

    An observation's calls are counted in-process (one observe of the same account in the same state);
    the operations it makes and a drift check never does (GetBucketAcl, ...) tell how many observations
    fell in the window. Without such an operation, or without an observation, nothing is split.
    """
    observation = overhead.compliance_observation
    if observation is None:
        return
    sweep.compliance_observation_calls = dict(observation.calls_by_operation)
    own = [
        op
        for op in observation.calls_by_operation
        if op not in overhead.drift_pass.calls_by_operation and op not in sweep.minimum_by_operation
    ]
    if not own:
        return
    ratios = [sweep.calls_by_operation.get(op, 0) / observation.calls_by_operation[op] for op in own]
    count = round(statistics.median(ratios))
    compliance_only = {op: count * observation.calls_by_operation[op] for op in own}
    drift_only = {op: max(0, n - compliance_only.get(op, 0)) for op, n in sweep.calls_by_operation.items()}
    sweep.compliance_observations = count
    sweep.compliance_only_calls = sum(compliance_only.values())
    sweep.drift_only_by_operation = {op: n for op, n in drift_only.items() if n}
    sweep.drift_only_calls = sum(drift_only.values())
    sweep.minimum_with_compliance = sweep.minimum + sweep.compliance_only_calls
    sweep.ratio_to_minimum_with_compliance = sweep.calls / sweep.minimum_with_compliance
    sweep.drift_only_ratio_to_minimum = sweep.drift_only_calls / sweep.minimum


def _in_process_sessions(moto: CountingMoto) -> AwsSessions:
    return AwsSessions(
        endpoint_url=moto.url,
        default_region="us-east-1",
        recorder=CallRecorder(),
        rate_limiter=RateLimiter.disabled(),
    )


def _warm_accounts(
    sessions: AwsSessions, accounts: Mapping[str, str], regions: Sequence[str] = REGIONS
) -> float:
    """Make, for each named object in its account, the credentials (AssumeRole, with the session name
    its passes use) and clients its passes will use in `regions`, as a running operator has them; the
    seconds per account this took."""
    started = time.perf_counter()
    for name, account in accounts.items():
        ref = AccountRef(role_arn(account), None, role_session_name("default", name))
        sessions.account_id(ref)
        for region in regions:
            for service in ACCOUNT_SERVICES:
                sessions.client(service, region, ref)
    return (time.perf_counter() - started) / max(1, len(set(accounts.values())))


def _ref(obj: Mapping[str, Any]) -> ObjectRef:
    meta = obj["metadata"]
    return ObjectRef(meta.get("namespace") or "default", meta["name"], meta["uid"], meta.get("generation"))


def _timed(sessions: AwsSessions, runs: Iterable[Callable[[], Any]], check: bool = True) -> PassTiming:
    """Run each zero-argument pass in turn; its wall time against the AWS time its calls took."""
    recorder = sessions.recorder
    assert recorder is not None
    recorder.reset()
    wall = 0.0
    passes = 0
    for run in runs:
        started = time.perf_counter()
        report = run()
        wall += time.perf_counter() - started
        passes += 1
        if check and report.status.get("phase") != "Ready":
            raise RuntimeError(f"an in-process pass did not end Ready: {report.status.get('conditions')}")
    calls = recorder.snapshot()
    aws = sum(c.seconds for c in calls)
    return PassTiming(
        passes=passes,
        wall_seconds=wall,
        aws_seconds=aws,
        ratio=wall / aws if aws else math.nan,
        calls=len(calls),
        mutating_calls=sum(1 for c in calls if c.mutating),
        calls_by_operation=_by_operation(Counter((c.service, c.operation) for c in calls)),
    )


def _compliance_observation(sessions: AwsSessions, account: str, regions: Sequence[str]) -> PassTiming | None:
    """One observation of one fleet account for the CIS evaluation, as the operator's compliance check
    makes it (every trail of the compliance regions and every bucket they deliver to); None when this
    operator has no such evaluation. One member account stands for each."""
    try:
        from trailkeeper.aws.account_state import observe_account
    except ImportError:
        return None
    ref = AccountRef(role_arn(account))
    return _timed(sessions, [lambda: observe_account(sessions, ref, regions=list(regions))], check=False)


def _overhead(
    moto: CountingMoto,
    config: BenchConfig,
    organization: Organization,
    trails: Mapping[str, Mapping[str, Any]],
    retentions: Mapping[str, Mapping[str, Any]],
    clients: RawClients,
    metrics: tuple[MetricsSample, MetricsSample] | None,
) -> OverheadResult:
    """The reconcile functions the operator's handlers call, run here one at a time against the same
    moto with a CallRecorder: wall time per pass against the time its AWS calls took."""
    sessions = _in_process_sessions(moto)
    shared = Shared()
    accounts = organization.accounts
    names = list(accounts)
    by_name = {n: trails[n]["spec"] for n in names}

    def drift_trail(name: str) -> Callable[[], PassReport]:
        obj = trails[name]
        return lambda: trail_pass(_ref(obj), obj["spec"], obj["status"], sessions, shared, trigger="timer")

    def drift_retention(name: str) -> Callable[[], PassReport]:
        obj = retentions[name]
        return lambda: retention_pass(
            _ref(obj),
            obj["spec"],
            obj["status"],
            sessions,
            shared,
            trigger="timer",
            trail_spec_body=by_name[name],
        )

    # Clients made and models loaded before timing, as in an operator that has been running a while.
    _warm_accounts(sessions, accounts, organization.region_names)
    _timed(sessions, [drift_trail(names[0]), drift_retention(names[0])])
    sweep_runs: list[Callable[[], PassReport]] = []
    for name in names:
        sweep_runs += [drift_trail(name)] + ([drift_retention(name)] if name in retentions else [])
    drift = _timed(sessions, sweep_runs)
    floor = sweep_floor(clients, organization)
    member = organization.member_trails[0]
    observation = _compliance_observation(sessions, member.account, organization.region_names)

    def create(name: str, account: str) -> list[Callable[[], PassReport]]:
        ref = ObjectRef("default", name, f"uid-{name}", 1)
        spec = trail_spec(name, account=account)
        retention = retention_spec(name, account=account)
        return [
            lambda: trail_pass(ref, spec, {}, sessions, shared, trigger="create"),
            lambda: retention_pass(
                ref, retention, {}, sessions, shared, trigger="create", trail_spec_body=spec
            ),
        ]

    # Spread over accounts as the fleet is.
    per_account, passes = config.trails_per_account, range(config.create_passes)
    create_runs: list[Callable[[], PassReport]] = []
    created_in = spread([f"inproc-{i:03d}" for i in passes], per_account, INPROC_ACCOUNTS)
    for name, account in created_in.items():
        create_runs += create(name, account)
    # A new account's first pass also assumes its role and makes its clients: timed apart.
    account_setup = _warm_accounts(sessions, created_in)
    created = _timed(sessions, create_runs)
    floor_in = spread([f"floor-inproc-{i:03d}" for i in passes], per_account, INPROC_FLOOR_ACCOUNTS)
    started = time.perf_counter()
    for name, account in floor_in.items():
        create_trail_set(clients, name, account)
    create_floor_seconds = time.perf_counter() - started

    metrics_ratio, metrics_reconciles, per_reconcile = _metrics_delta(*(metrics or (None, None)))
    return OverheadResult(
        method="in-process passes; operator histograms too" if metrics_ratio is not None else "in-process",
        drift_pass=drift,
        create_pass=created,
        sweep_floor_seconds=floor.seconds,
        sweep_floor_calls=floor.calls,
        drift_sweep_ratio_to_floor=drift.wall_seconds / floor.seconds,
        create_floor_seconds=create_floor_seconds,
        create_ratio_to_floor=created.wall_seconds / create_floor_seconds,
        metrics_ratio=metrics_ratio,
        metrics_reconciles=metrics_reconciles,
        metrics_seconds_per_reconcile=per_reconcile,
        compliance_observation=observation,
        account_setup_seconds=account_setup,
    )


def describe_trails_count(sweep: SweepResult) -> int:
    service, operation = DESCRIBE_TRAILS
    return sweep.calls_by_operation.get(f"{service}:{operation}", 0)
