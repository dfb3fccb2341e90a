"""The `trailkeeper` command group; each command's work lives in a module of its own."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import click

from trailkeeper import __version__
from trailkeeper.api.manifests import Manifest, load_manifests
from trailkeeper.aws.ratelimit import RateLimiter
from trailkeeper.aws.session import AwsSessions
from trailkeeper.cli import CONTEXT_SETTINGS, LazyGroup
from trailkeeper.cli.pipeline import run_manifests
from trailkeeper.reconcile.shared import TAG_CHECK_EVERY

# The operator (kopf and its settings), the CRD and plan renderers, the IAM policy and `audit` are imported by
# their commands only: `apply` and `diff` in a pipeline start in half the time without them.

# Peering priorities are drawn from 1..PRIORITY_MAX (kopf's default, 0, stays below every replica's).
PRIORITY_MAX = 1_000_000


@click.group(cls=LazyGroup, lazy={"audit": "trailkeeper.cli.audit:audit"}, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="trailkeeper")
def cli() -> None:
    """AWS CloudTrail managed as Kubernetes resources."""


def load_or_exit(paths: tuple[str, ...]) -> list[Manifest]:
    """The valid manifests of the files; on any problem print one line per problem and exit 1."""
    manifests, problems = load_manifests(paths)
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        click.echo(f"{len(problems)} problem(s) found; nothing was sent to AWS", err=True)
        sys.exit(1)
    if not manifests:
        click.echo("error: no Trail or LogRetention objects found in " + ", ".join(paths), err=True)
        sys.exit(1)
    return manifests


manifest_files = click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    required=True,
    type=click.Path(exists=True),
    help="A manifest file or a directory of them (repeatable).",
)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write one file per CRD here instead of printing them.",
)
def crds(output_dir: Path | None) -> None:
    """The CRD YAML generated from the models (what crds/ holds)."""
    from trailkeeper.api.crd import crd_files

    files = crd_files()
    if output_dir is None:
        click.echo("---\n".join(files.values()), nl=False)
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (output_dir / name).write_text(content, encoding="utf-8")
        click.echo(f"wrote {output_dir / name}")


aws_endpoint = click.option(
    "--aws-endpoint-url",
    envvar="AWS_ENDPOINT_URL",
    default=None,
    help="Send every AWS call here (a moto server, a proxy). Default: AWS itself.",
)
aws_region = click.option(
    "--aws-region",
    envvar="AWS_REGION",
    default=None,
    help="Region for STS and bucket look-ups (default: boto3's).",
)


no_rate_limit = click.option(
    "--no-rate-limit",
    is_flag=True,
    help="No client-side AWS rate limit (only for local emulators such as moto).",
)


# The role session of a `diff`: its reads each serve every object of an account (one DescribeTrails for
# all its Trails), so they are made under one session per role, not one per object as writes are.
DIFF_SESSION_NAME = "trailkeeper-diff"


def _sessions(
    endpoint: str | None, region: str | None, rate_limited: bool = True, session_name: str | None = None
) -> AwsSessions:
    # STS and bucket look-ups need some region; us-east-1 answers for every account in the aws partition.
    return AwsSessions(
        endpoint_url=endpoint,
        default_region=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        rate_limiter=None if rate_limited else RateLimiter.disabled(),
        session_name=session_name,
    )


@cli.command(context_settings=CONTEXT_SETTINGS)
@manifest_files
@click.option(
    "--account-id",
    default="123456789012",
    show_default=True,
    help="Account id to write into ARNs (plan is offline and cannot look it up).",
)
def plan(files: tuple[str, ...], account_id: str) -> None:
    """Offline: the AWS documents each manifest becomes, as YAML."""
    from trailkeeper.core.plan import render_plan

    manifests = load_or_exit(files)
    click.echo(render_plan(manifests, account_id=account_id), nl=False)


@cli.command(context_settings=CONTEXT_SETTINGS)
@manifest_files
@aws_endpoint
@aws_region
@no_rate_limit
@click.option(
    "--force-adopt",
    is_flag=True,
    help="With adopt: true, take over trails another Trail's owner tag names. The command line cannot "
    "see whether that Trail still exists: give this only when you know it is gone.",
)
def apply(
    files: tuple[str, ...],
    aws_endpoint_url: str | None,
    aws_region: str | None,
    no_rate_limit: bool,
    force_adopt: bool,
) -> None:
    """One reconcile of the manifests straight against AWS, printing each change made."""
    manifests = load_or_exit(files)
    failed = False
    sessions = _sessions(aws_endpoint_url, aws_region, rate_limited=not no_rate_limit)
    for result in run_manifests(manifests, sessions, act=True, force_adopt=force_adopt):
        if result.changes:
            click.echo(f"{result.ref}:")
            for change in result.changes:
                click.echo(f"  {change}")
        elif not result.failures:
            click.echo(f"{result.ref}: no changes")
        for failure in result.failures:
            failed = True
            click.echo(f"{result.ref}: error: {failure}", err=True)
    sys.exit(1 if failed else 0)


@cli.command(context_settings=CONTEXT_SETTINGS)
@manifest_files
@aws_endpoint
@aws_region
@no_rate_limit
def diff(
    files: tuple[str, ...], aws_endpoint_url: str | None, aws_region: str | None, no_rate_limit: bool
) -> None:
    """Drift of the manifests against AWS. Exit 0: none, 2: drift, 1: error."""
    manifests = load_or_exit(files)
    drift = failed = False
    sessions = _sessions(aws_endpoint_url, aws_region, not no_rate_limit, DIFF_SESSION_NAME)
    for result in run_manifests(manifests, sessions, act=False):
        for item in result.diffs:
            drift = True
            click.echo(
                f"{result.ref}: {item.resource} {item.field}: desired {item.desired}, actual {item.actual}"
            )
        for failure in result.failures:
            failed = True
            click.echo(f"{result.ref}: error: {failure}", err=True)
        if not result.diffs and not result.failures:
            click.echo(f"{result.ref}: no drift")
    sys.exit(1 if failed else 2 if drift else 0)


@cli.command("run", context_settings=CONTEXT_SETTINGS)
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Watch this namespace (repeatable).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Watch every namespace (the default).")
@click.option("--standalone", is_flag=True, help="No peering: do not coordinate with other replicas.")
@click.option("--peering", default="trailkeeper", show_default=True, help="kopf peering object name.")
@click.option(
    "--priority",
    type=click.IntRange(1, PRIORITY_MAX),
    default=None,
    help="Peering priority: of the replicas in one peering the highest runs, the others stand by "
    "(default: a random number, so several replicas elect one).",
)
@click.option(
    "--peering-lifetime",
    type=click.IntRange(2, 3600),
    default=60,
    show_default=True,
    help="Seconds a replica's keep-alive counts: a standby takes over this long after the active one died.",
)
@click.option(
    "--liveness", default=None, help="Serve a liveness probe at this URL, e.g. http://0.0.0.0:8080/healthz."
)
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics on this port.")
@click.option(
    "--resync-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Multiply every object's resyncSeconds (below 1 only for demos and tests).",
)
@click.option(
    "--tag-check-every",
    type=click.IntRange(1, 1000),
    default=TAG_CHECK_EVERY,
    show_default=True,
    help="Drift checks compare tags afresh once in this many (an hour at the default period); every "
    "other setting is compared at each check, and a change to the spec reads tags at once.",
)
@click.option("--max-workers", type=int, default=16, show_default=True, help="Concurrent reconciles.")
@click.option(
    "--compliance-regions",
    default="",
    help="Comma-separated regions CIS-3.1 requires coverage of (default: the account's enabled "
    "regions, from EC2 DescribeRegions).",
)
@click.option(
    "--compliance-interval",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds between compliance evaluations of one Trail (a spec change evaluates at once).",
)
@no_rate_limit
@click.option(
    "--tenancy-policy",
    type=click.Path(dir_okay=False),
    default=None,
    help="The cluster admins' tenancy policy (YAML; the chart mounts its ConfigMap). Default: every "
    "namespace may use the operator's own account and no role.",
)
@click.option("--log-format", type=click.Choice(["plain", "json"]), default="plain", show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
@aws_endpoint
@aws_region
def run_command(
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    standalone: bool,
    peering: str,
    priority: int | None,
    peering_lifetime: int,
    liveness: str | None,
    metrics_port: int | None,
    resync_scale: float,
    tag_check_every: int,
    max_workers: int,
    compliance_regions: str,
    compliance_interval: float,
    no_rate_limit: bool,
    tenancy_policy: str | None,
    log_format: str,
    log_level: str,
    aws_endpoint_url: str | None,
    aws_region: str | None,
) -> None:
    """The operator (kopf) against the cluster in KUBECONFIG / the in-cluster config."""
    from trailkeeper.cli import operate
    from trailkeeper.kube.config import OperatorConfig

    if all_namespaces and namespaces:
        raise click.UsageError("give either -A or -n, not both")
    operate.configure_logging(log_level, log_format)
    config = OperatorConfig(
        namespaces=namespaces,
        resync_scale=resync_scale,
        tag_check_every=tag_check_every,
        max_workers=max_workers,
        peering=None if standalone else peering,
        priority=priority if priority is not None else secrets.randbelow(PRIORITY_MAX) + 1,
        peering_lifetime=peering_lifetime,
        liveness_url=liveness,
        metrics_port=metrics_port,
        compliance_regions=tuple(r.strip() for r in compliance_regions.split(",") if r.strip()),
        compliance_interval=compliance_interval,
        tenancy_policy=tenancy_policy,
    )
    operate.run(config, endpoint_url=aws_endpoint_url, region=aws_region, rate_limited=not no_rate_limit)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".sandbox/kubeconfig"),
    show_default=True,
    help="Where to write the kubeconfig.",
)
@click.option(
    "--port", type=int, default=8443, show_default=True, help="Port of the local Kubernetes API server."
)
@click.option("--aws-port", type=int, default=5000, show_default=True, help="Port of the local moto AWS.")
@click.option(
    "--examples",
    "examples_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("examples"),
    show_default=True,
    help="Manifests to apply at start.",
)
@click.option("--no-examples", is_flag=True, help="Apply nothing at start.")
@click.option(
    "--resync-scale",
    type=float,
    default=0.1,
    show_default=True,
    help="Drift checks this much sooner than resyncSeconds, so a demo shows them.",
)
@click.option(
    "--exit-when-ready",
    is_flag=True,
    hidden=True,
    help="Stop once the examples are Ready (for tests of the sandbox itself).",
)
def sandbox(
    kubeconfig: Path,
    port: int,
    aws_port: int,
    examples_dir: Path,
    no_examples: bool,
    resync_scale: float,
    exit_when_ready: bool,
) -> None:
    """A local Kubernetes API server + a local moto AWS + the operator, until interrupted.

    etcd and kube-apiserver are the programs `make kube-tools` builds once (or those in
    KUBEBUILDER_ASSETS)."""
    from trailkeeper.cli.operate import configure_logging
    from trailkeeper.cli.sandbox import SandboxOptions, run_sandbox

    configure_logging("WARNING", "plain")
    options = SandboxOptions(
        kubeconfig=kubeconfig,
        port=port,
        aws_port=aws_port,
        examples=None if no_examples else examples_dir,
        resync_scale=resync_scale,
        exit_when_ready=exit_when_ready,
    )
    sys.exit(run_sandbox(options))


@cli.command("iam-policy", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--partition", type=click.Choice(["aws", "aws-cn", "aws-us-gov"]), default="aws", show_default=True
)
def iam_policy(partition: str) -> None:
    """The least-privilege IAM policy the operator needs, as JSON."""
    from trailkeeper.iam_policy import render_iam_policy

    click.echo(render_iam_policy(partition), nl=False)


def main() -> None:
    cli(prog_name="trailkeeper")
