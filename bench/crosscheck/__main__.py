"""`python -m bench.crosscheck`: for each scenario, a reset moto account made with boto3 (or, `applied`, by
`trailkeeper apply`), judged by
`trailkeeper audit` and by Prowler's checks of the same controls; prints both verdicts per control and
whether they agree. Exit 0 whatever the verdicts (the table is the result); 1 when a tool could not run."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.paths import REPO, aws_environment, use_test_support


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crosscheck", description=__doc__)
    parser.add_argument("--scenarios", default="", help="comma-separated names (default: all)")
    parser.add_argument("--attempts", type=int, default=6, help="Prowler runs per scenario at most")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the Markdown matrix here")
    parser.add_argument("--keep", type=Path, default=None, help="keep each tool's output in this directory")
    args = parser.parse_args(argv)

    # Before anything imports boto3: only the fake credentials, none of the developer's.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(aws_environment())
    use_test_support()

    from bench.crosscheck import prowler, scenarios, verdicts

    chosen = [s for s in scenarios.SCENARIOS if not args.scenarios or s.name in args.scenarios.split(",")]
    if not chosen:
        parser.error(f"no scenario named {args.scenarios!r}")
    program = prowler.ensure_prowler()
    maps = verdicts.load_compliance_maps(prowler.compliance_dir())

    with tempfile.TemporaryDirectory(prefix="crosscheck-") as scratch:
        workdir = args.keep or Path(scratch)
        rows = _run(chosen, program, maps, workdir, args.attempts)

    names = [s.name for s in chosen]
    print()
    print(verdicts.render_rows(rows))
    print(verdicts.render_matrix(rows, names))
    counts = verdicts.summary(rows)
    print(", ".join(f"{value} {key}" for key, value in counts.items()))
    if args.markdown:
        args.markdown.write_text(verdicts.render_matrix(rows, names))
    return 0


def _run(
    chosen: list[Any],
    program: Path,
    maps: dict[str, dict[str, tuple[str, ...]]],
    workdir: Path,
    attempts: int,
) -> list[Any]:
    import boto3
    from botocore.config import Config

    from bench.crosscheck import applied, prowler, scenarios, verdicts
    from support.cis_moto import MfaDeleteFront
    from support.cloudwatch_delivery import CloudWatchDeliveryFront
    from support.faults import FaultInjector, moto_app
    from support.moto_server import InProcessMotoServer
    from support.s3control_front import s3control_on_endpoint_host

    front = CloudWatchDeliveryFront(moto_app())
    config = Config(retries={"total_max_attempts": 1})
    # Any: boto3's stubs type client() per literal service name.
    session: Any = boto3.session.Session()
    rows: list[verdicts.Row] = []
    # MFA Delete is kept only when the root user's MFA header is sent (the applied scenario sends it).
    with InProcessMotoServer(FaultInjector(MfaDeleteFront(front))) as moto:

        def client(service: str, region: str) -> Any:
            return session.client(service, region_name=region, endpoint_url=moto.url, config=config)

        for scenario in chosen:
            started = time.monotonic()
            moto.reset()
            front.clear()
            env = _tool_env()
            if scenario.applied:
                apply = [
                    *_trailkeeper(),
                    "apply",
                    "--aws-endpoint-url",
                    moto.url,
                    "--aws-region",
                    scenarios.HOME,
                ]
                buckets = applied.build(client, apply, workdir / scenario.name, _proxied(env, moto.url))
            else:
                with s3control_on_endpoint_host():
                    buckets = scenarios.build(scenario.layout, client, front)
            audit = _audit(moto.url, env)
            entries = verdicts.parse_audit_json(audit)
            checks = sorted({c for e in entries for c in verdicts.checks_for(e.control, e.cis, maps)})
            run = prowler.run_prowler(
                program,
                endpoint=moto.url,
                regions=list(scenarios.REGIONS),
                checks=checks,
                workdir=workdir / scenario.name,
                env=env,
                attempts=attempts,
            )
            (workdir / scenario.name / "audit.json").write_text(audit)
            findings = verdicts.parse_prowler_csv(run.csv)
            rows += verdicts.scenario_rows(scenario.name, entries, findings, maps, buckets)
            state = "clean" if run.clean else "NOT clean: " + "; ".join(run.errors[:2])
            print(
                f"{scenario.name}: {scenario.summary} | prowler {run.attempts} run(s), log {state} | "
                f"{time.monotonic() - started:.0f} s",
                file=sys.stderr,
            )
    return rows


def _tool_env() -> dict[str, str]:
    env = {**os.environ, **aws_environment()}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env.pop(name, None)
    return env


def _audit(endpoint: str, env: dict[str, str]) -> str:
    """`trailkeeper audit --format json` from the dev venv. Its s3control call goes to
    `<account>.<endpoint host>`: the endpoint is also its HTTP proxy (see prowler.run_prowler)."""
    from bench.crosscheck.scenarios import HOME, REGIONS

    command = [*_trailkeeper(), "audit", "--format", "json", "--regions", ",".join(REGIONS)]
    command += ["--aws-endpoint-url", endpoint, "--aws-region", HOME]
    done = subprocess.run(command, env=_proxied(env, endpoint), capture_output=True, text=True, check=False)
    if done.returncode not in (0, 3):
        raise RuntimeError(f"trailkeeper audit exited {done.returncode}: {done.stderr}")
    if done.stderr.strip():
        print(done.stderr.strip(), file=sys.stderr)
    return done.stdout


def _trailkeeper() -> list[str]:
    program = Path(sys.executable).parent / "trailkeeper"
    if not program.exists():
        program = REPO / ".venv" / "bin" / "trailkeeper"
    return [str(program)]


def _proxied(env: dict[str, str], endpoint: str) -> dict[str, str]:
    """`env` with the endpoint as HTTP proxy, so s3control calls to `<account>.<endpoint host>` reach it."""
    environment = {**env, "HTTP_PROXY": endpoint, "http_proxy": endpoint}
    for name in ("NO_PROXY", "no_proxy"):
        environment.pop(name, None)
    return environment


if __name__ == "__main__":
    sys.exit(main())
