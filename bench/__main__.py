"""`python -m bench [--quick] [--output FILE]`: run every benchmark, print the table, write its JSON
(by default bench/results.json; `make bench-quick` writes .bench/results.json)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.paths import RESULTS, aws_environment, use_test_support


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller numbers, under a minute")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    parser.add_argument(
        "--operator-src",
        type=Path,
        default=None,
        help="a (patched) copy of operator/ to run instead, to measure a proposed change",
    )
    parser.add_argument("--keep-logs", type=Path, default=None, help="keep operator and moto logs here")
    args = parser.parse_args(argv)

    # Before anything imports boto3: the bench's own clients must see only the fake credentials.
    os.environ.update(aws_environment())
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    use_test_support()
    if args.operator_src is not None:
        args.operator_src = args.operator_src.resolve()
        # The in-process passes must run the same code as the operator process.
        sys.path.insert(0, str(args.operator_src))

    from bench.aws_counter import CountingMoto
    from bench.config import FULL, QUICK
    from bench.harness import MachineLoad
    from bench.report import as_json, render, write_json
    from bench.scenarios import measure_fleet, measure_latency

    config = QUICK if args.quick else FULL
    started_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    started = time.monotonic()
    load = MachineLoad()
    load.start()
    with tempfile.TemporaryDirectory(prefix="trailkeeper-bench-") as scratch:
        workdir = args.keep_logs or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        with CountingMoto(workdir / "moto.log") as moto:
            latency = measure_latency(moto, config, workdir, args.operator_src)
            fleet = measure_fleet(moto, config, workdir, args.operator_src)
    document = as_json(config.mode, latency, fleet, started_at, time.monotonic() - started, load.finish())
    write_json(args.output, document)
    print(render(config.mode, latency, fleet, document["machine"]))
    # The command line at scale (bench/cli_scale.py): printed only, against moto servers of its own.
    from bench import cli_scale

    sizes = cli_scale.QUICK_SIZES if args.quick else cli_scale.SIZES
    paced = cli_scale.QUICK_PACING_SIZES if args.quick else cli_scale.PACING_SIZES
    print("\n" + cli_scale.measure(sizes, paced))
    print(f"\nwritten to {args.output} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
