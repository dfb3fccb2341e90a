"""The sizes of a full and a quick bench run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchConfig:
    mode: str
    latency_runs: int
    burst_trails: int
    # Drift-check period of the fleet = resync_seconds * resync_scale. It must exceed the spread of the
    # fleet's Ready times enough that one window holds exactly one check of every object (see sweep).
    fleet_resync_seconds: int
    fleet_resync_scale: float
    create_passes: int
    ready_timeout: float
    # The fleet's Trails per account (AWS allows 5 per region; an organization has one or a few each).
    trails_per_account: int = 1
    # The regions of the fleet's region-scoped member Trails: the first n of AWS's 17 default-enabled
    # regions (bench/fleet.py DEFAULT_REGIONS); a multiRegion member records all with one trail. All 17:
    # the quick run (20 members, 181 trail-regions) got Ready in 9.4 s against a 7.2 s raw-boto3 floor,
    # 4.2 s of operator CPU, on a loaded 2-core machine.
    fleet_regions: int = 17
    # The operator's default --max-workers: the raw-boto3 floor of the burst uses as many threads.
    workers: int = 16
    # The first apply of a stage also pays for the operator's start and its first AWS clients.
    warmup_runs: int = 1

    @property
    def fleet_period(self) -> float:
        return self.fleet_resync_seconds * self.fleet_resync_scale


FULL = BenchConfig(
    mode="full",
    latency_runs=20,
    burst_trails=200,
    # 200 members over 17 regions get Ready over about 100 s (10x the quick run): a 300 s period keeps
    # that spread and the ±10 % jitter inside one sweep window.
    fleet_resync_seconds=3000,
    fleet_resync_scale=0.1,
    create_passes=20,
    ready_timeout=300.0,
)

QUICK = BenchConfig(
    mode="quick",
    latency_runs=5,
    burst_trails=20,
    # 21 accounts' Trails get Ready over about 10 s: a 20 s period keeps the sweep window clean.
    fleet_resync_seconds=200,
    fleet_resync_scale=0.1,
    create_passes=5,
    ready_timeout=60.0,
)
