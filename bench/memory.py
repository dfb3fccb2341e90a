"""`python -m bench.memory [--accounts N]`: the operator's memory per AWS account, in-process.

Against the counting moto (a subprocess, so its memory is not counted), one AwsSessions as the operator
makes it runs, for each of N accounts of the fleet (`bench/fleet.py`: account 100000000000 + i, its role
assumed with the Trail's own session name), the passes a running operator makes of that account's Trail
and LogRetention: a create pass of each (the Trail's with the operator's default compliance evaluation,
which observes the account in every enabled region), then a drift check of each. The resident set is read
after every account; the figure is its growth per extra account past the first (which also loads the
service models once for all), printed beside the idle process. With tracemalloc on (the default), the
allocations that grew most between the first account and the last are printed per account, by line.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.paths import aws_environment, use_test_support

MIB = 1024 * 1024


def rss_mib(field: str = "VmRSS") -> float:
    """This process's resident set (VmRSS) or its peak (VmHWM), in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


@dataclass
class MemoryRun:
    accounts: int
    idle_mib: float
    first_mib: float
    last_mib: float
    peak_mib: float
    seconds: float
    clients: int
    first_account_seconds: float

    @property
    def per_account_mib(self) -> float:
        return (self.last_mib - self.first_mib) / max(1, self.accounts - 1)


def _account_passes(sessions: Any, index: int) -> Callable[[], None]:
    """The passes of fleet Trail `index` and its LogRetention in their account: create, then drift check."""
    from bench.fleet import account_id, retention_spec, trail_name, trail_spec
    from trailkeeper.reconcile.compliance import ComplianceSettings
    from trailkeeper.reconcile.passes import ObjectRef, retention_pass, trail_pass
    from trailkeeper.reconcile.shared import Shared

    shared = _account_passes.__dict__.setdefault("shared", Shared())
    compliance = _account_passes.__dict__.setdefault("compliance", ComplianceSettings())
    name, account = trail_name(index), account_id(index)
    ref = ObjectRef("default", name, f"uid-{name}", 1)
    trail, retention = trail_spec(name, account=account), retention_spec(name, account=account)

    def run() -> None:
        created = trail_pass(ref, trail, {}, sessions, shared, trigger="create", compliance=compliance)
        kept = retention_pass(ref, retention, {}, sessions, shared, trigger="create", trail_spec_body=trail)
        for report in (created, kept):
            if report.status.get("phase") != "Ready":
                raise RuntimeError(f"{name}: a pass did not end Ready: {report.status.get('conditions')}")
        trail_pass(ref, trail, created.status, sessions, shared, trigger="timer", compliance=compliance)
        retention_pass(ref, retention, kept.status, sessions, shared, trigger="timer", trail_spec_body=trail)

    return run


def _account_clients(sessions: Any, index: int) -> Callable[[], None]:
    """Only the account's credentials and the clients its passes make (no pass): the clients' own cost."""
    from bench.fleet import REGIONS, account_id, role_arn, trail_name
    from bench.scenarios import ACCOUNT_SERVICES
    from trailkeeper.aws.session import AccountRef, role_session_name

    ref = AccountRef(role_arn(account_id(index)), None, role_session_name("default", trail_name(index)))

    def run() -> None:
        sessions.account_id(ref)
        for region in REGIONS:
            for service in ACCOUNT_SERVICES:
                sessions.client(service, region, ref)

    return run


def measure(url: str, accounts: int, *, clients_only: bool, trace: bool, top: int) -> MemoryRun:
    from trailkeeper.aws.calls import CallRecorder
    from trailkeeper.aws.ratelimit import RateLimiter
    from trailkeeper.aws.session import AwsSessions

    # As `trailkeeper run` makes it (cli/operate.py), without the limiter: moto has no quotas.
    sessions = AwsSessions(
        endpoint_url=url,
        default_region="us-east-1",
        recorder=CallRecorder(),
        rate_limiter=RateLimiter.disabled(),
    )
    work = _account_clients if clients_only else _account_passes
    gc.collect()
    idle = rss_mib()
    started = time.perf_counter()
    work(sessions, 0)()
    first_seconds = time.perf_counter() - started
    gc.collect()
    first = rss_mib()
    before = None
    if trace:
        tracemalloc.start(8)
        before = tracemalloc.take_snapshot()
    for index in range(1, accounts):
        work(sessions, index)()
        if index % 10 == 0 or index == accounts - 1:
            print(f"  {index + 1:4d} accounts: RSS {rss_mib():7.1f} MiB", file=sys.stderr, flush=True)
    gc.collect()
    last = rss_mib()
    run = MemoryRun(
        accounts=accounts,
        idle_mib=idle,
        first_mib=first,
        last_mib=last,
        peak_mib=rss_mib("VmHWM"),
        seconds=time.perf_counter() - started,
        # Not in an operator from before the shared clients (`--operator-src`): -1.
        clients=getattr(sessions, "live_clients", -1),
        first_account_seconds=first_seconds,
    )
    if before is not None:
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        _print_growth(before, after, accounts - 1, top)
    sessions.close()
    return run


def _print_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, extra: int, top: int) -> None:
    """The allocations that grew most, per extra account: by line of their innermost frame, then by file."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen *>")]
    before, after = before.filter_traces(ignore), after.filter_traces(ignore)
    total = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(f"\ntraced growth: {total / MIB:.1f} MiB, {total / extra / 1024:.0f} KiB per extra account")
    for group in ("lineno", "filename"):
        print(f"\ntop {top} by {group}, KiB per extra account:")
        for stat in after.compare_to(before, group)[:top]:
            frame = stat.traceback[0]
            where = _short(frame.filename) + (f":{frame.lineno}" if group == "lineno" else "")
            print(f"  {stat.size_diff / extra / 1024:8.1f}  {stat.count_diff / extra:7.0f} blocks  {where}")


def _short(filename: str) -> str:
    for marker in ("site-packages/", "trailkeeper/", "lib/python"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def render(run: MemoryRun, label: str) -> str:
    return (
        f"{label}: {run.accounts} accounts in {run.seconds:.0f} s; idle {run.idle_mib:.0f} MiB, after the "
        f"first account {run.first_mib:.0f} MiB ({run.first_account_seconds:.2f} s), after the last "
        f"{run.last_mib:.0f} MiB (peak {run.peak_mib:.0f} MiB); **{run.per_account_mib:.2f} MiB per extra "
        f"account**; {run.clients} live clients"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument(
        "--clients-only", action="store_true", help="make each account's clients, run no pass"
    )
    parser.add_argument("--no-tracemalloc", dest="trace", action="store_false", help="RSS only (faster)")
    parser.add_argument("--top", type=int, default=15, help="allocation lines to print")
    parser.add_argument("--keep-logs", type=Path, default=None, help="keep moto's log here")
    parser.add_argument(
        "--operator-src", type=Path, default=None, help="a (patched) copy of operator/ to measure instead"
    )
    args = parser.parse_args(argv)
    if args.operator_src is not None:
        sys.path.insert(0, str(args.operator_src.resolve()))
    if args.accounts < 2:
        parser.error("--accounts: at least 2 (the figure is per extra account)")

    os.environ.update(aws_environment())
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    use_test_support()
    from bench.aws_counter import CountingMoto

    with tempfile.TemporaryDirectory(prefix="trailkeeper-memory-") as scratch:
        workdir = args.keep_logs or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        with CountingMoto(workdir / "moto.log") as moto:
            run = measure(
                moto.url, args.accounts, clients_only=args.clients_only, trace=args.trace, top=args.top
            )
    label = "clients only" if args.clients_only else "create + drift passes"
    print("\n" + render(run, label))
    return 0


if __name__ == "__main__":
    sys.exit(main())
