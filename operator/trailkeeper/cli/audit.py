"""`trailkeeper audit`: the CIS CloudTrail and Monitoring controls over an account, whoever made its trails.

Observe-only: it reads the account (`aws.account_state.observe_account`), judges it with the pure
evaluator (`core.compliance.evaluate`) and prints, for the account and per trail, each control's
verdict (PASS, FAIL or UNKNOWN), as a table for people, JSON for scripts or JUnit XML for CI test
reports. Exit 0 when every control passed, 3 when one failed or could not be decided yet (a gate
passes only what was shown to comply), 1 when the account could not be read.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from trailkeeper.aws.account_state import AccountObservation, observe_account
from trailkeeper.aws.errors import AwsError, classify
from trailkeeper.aws.ratelimit import RateLimitTimeoutError
from trailkeeper.aws.session import AccountRef, AwsSessions
from trailkeeper.cli import CONTEXT_SETTINGS
from trailkeeper.core.compliance import (
    ACCOUNT_CONTROL_IDS,
    ControlResult,
    distinct_trails,
    evaluate,
    versions_text,
)
from trailkeeper.core.observed_account import ObservedTrailState

__all__ = [
    "EXIT_FAILED_CONTROLS",
    "WIDTH",
    "AuditRow",
    "audit",
    "audit_rows",
    "render_json",
    "render_junit",
    "render_table",
]

EXIT_FAILED_CONTROLS = 3
EXIT_ERROR = 1
WIDTH = 100
SUITE_NAME = "trailkeeper-cis"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_INDENT = " " * 8
_AWS_ERRORS = (AwsError, ClientError, BotoCoreError, RateLimitTimeoutError)


@dataclass(frozen=True)
class AuditRow:
    """One control's result, for one trail (`trail` set) or for the whole account (`trail` None)."""

    trail: ObservedTrailState | None
    result: ControlResult

    @property
    def subject(self) -> str:
        # Region-scoped trails share a name, so the home region is part of what names a trail.
        return f"{self.trail.home_region}/{self.trail.name}" if self.trail else "account"


def audit_rows(observation: AccountObservation) -> list[AuditRow]:
    """The account-wide controls (CIS-3.1, TK-REGIONS, the Monitoring section), then every other control
    per trail (sorted by home region and name)."""
    state = observation.state
    rows = [AuditRow(None, r) for r in evaluate(state, trail_arns=set()) if r.control in ACCOUNT_CONTROL_IDS]
    # A multi-region trail is listed in every region: shown once, as the judge counts it (its home copy).
    trails = [t for t in distinct_trails(state.trails) if t.arn in observation.trail_arns]
    for trail in sorted(trails, key=lambda t: (t.home_region, t.name, t.arn)):
        rows += [
            AuditRow(trail, result)
            for result in evaluate(state, trail_arns={trail.arn})
            if result.control not in ACCOUNT_CONTROL_IDS
        ]
    return rows


# --------------------------------------------------------------------------------------------------
# Output formats
# --------------------------------------------------------------------------------------------------


def _summary(rows: Sequence[AuditRow]) -> str:
    passed = sum(r.result.passed is True for r in rows)
    failed = sum(r.result.passed is False for r in rows)
    unknown = len(rows) - passed - failed
    return (
        f"{passed} of {len(rows)} controls passed"
        + (f"; {failed} failed" if failed else "")
        + (f"; {unknown} unknown" if unknown else "")
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _clip(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"


def _regions_text(observation: AccountObservation) -> str:
    regions = _count(len(observation.state.enabled_regions), "region")
    return {
        "given": f"{regions} given",
        "described": f"{regions} enabled",
        "seen": f"{regions} where trails were seen (enabled regions unknown)",
    }[observation.regions_source]


def _control_lines(result: ControlResult) -> list[str]:
    mark = {True: "PASS", False: "FAIL", None: "UNKN"}[result.passed]
    head = f"  {mark}  {result.control:<9} {result.title}"
    detail = textwrap.wrap(result.detail, WIDTH, initial_indent=_INDENT, subsequent_indent=_INDENT)
    fix: list[str] = []
    if result.passed is not True and result.remediation:
        fix = textwrap.wrap(
            "fix: " + result.remediation, WIDTH, initial_indent=_INDENT, subsequent_indent=_INDENT + "     "
        )
    return [_clip(head), *detail, *fix]


def render_table(observation: AccountObservation, rows: Sequence[AuditRow]) -> str:
    """A readable report in at most WIDTH columns: the account-wide control, then each trail's."""
    lines = [
        f"Account {observation.state.account_id}: {_regions_text(observation)}, "
        + _count(len({r.trail.arn for r in rows if r.trail}), "trail"),
        "",
        "Account-wide",
    ]
    current: str | None = None
    for row in rows:
        if row.trail is not None and row.trail.arn != current:
            current = row.trail.arn
            kind = "organization" if row.trail.is_organization_trail else ""
            kind = " ".join(filter(None, [kind, "multi-region" if row.trail.is_multi_region else "regional"]))
            lines += [
                "",
                _clip(f"Trail {row.trail.name}  (home {row.trail.home_region}, {kind})"),
                *textwrap.wrap(row.trail.arn, WIDTH, initial_indent="  ", subsequent_indent="  "),
            ]
        lines += _control_lines(row.result)
    lines += ["", _summary(rows)]
    return "\n".join(lines) + "\n"


def render_json(rows: Sequence[AuditRow]) -> str:
    """A list of {trail, trailArn, homeRegion, control, title, passed, state, cis, detail, remediation};
    trail null: account-wide; passed null: Unknown."""
    entries: list[dict[str, Any]] = [
        {
            "trail": row.trail.name if row.trail else None,
            "trailArn": row.trail.arn if row.trail else None,
            "homeRegion": row.trail.home_region if row.trail else None,
            "control": row.result.control,
            "title": row.result.title,
            "passed": row.result.passed,
            "state": row.result.state,
            "cis": dict(row.result.cis),
            "benchmark": versions_text(row.result.cis),
            "detail": row.result.detail,
            "remediation": row.result.remediation,
        }
        for row in rows
    ]
    return json.dumps(entries, indent=2) + "\n"


def render_junit(observation: AccountObservation, rows: Sequence[AuditRow]) -> str:
    """One testsuite, one testcase per (trail, control), a <failure> for each failed control."""
    failures = sum(r.result.passed is False for r in rows)
    skipped = sum(r.result.passed is None for r in rows)
    counts = {"tests": str(len(rows)), "failures": str(failures), "errors": "0", "skipped": str(skipped)}
    root = ET.Element("testsuites", {"name": "trailkeeper", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": SUITE_NAME, **counts})
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "account", "value": observation.state.account_id})
    ET.SubElement(
        properties,
        "property",
        {"name": "regions", "value": ",".join(sorted(observation.state.enabled_regions))},
    )
    for note in observation.notes:
        ET.SubElement(properties, "property", {"name": "note", "value": note})
    for row in rows:
        case = ET.SubElement(
            suite, "testcase", {"classname": row.subject, "name": f"{row.result.control} {row.result.title}"}
        )
        # The JUnit schema wants <failure> before <system-out>.
        if row.result.passed is False:
            failure = ET.SubElement(
                case, "failure", {"message": row.result.detail, "type": row.result.control}
            )
            failure.text = row.result.detail
        elif row.result.passed is None:
            ET.SubElement(case, "skipped", {"message": f"unknown: {row.result.detail}"})
        if row.trail is not None:
            ET.SubElement(case, "system-out").text = row.trail.arn
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# --------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------


def _parse_regions(values: Sequence[str]) -> list[str]:
    regions: list[str] = []
    for value in values:
        for region in (part.strip() for part in value.split(",")):
            if not region:
                continue
            if not _REGION.match(region):
                raise click.BadParameter(f"{region!r} is not an AWS region name", param_hint="--regions")
            if region not in regions:
                regions.append(region)
    return regions


@click.command("audit", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--regions",
    "regions",
    multiple=True,
    metavar="REGION[,REGION...]",
    help="Regions to scan and to require coverage in (comma-separated or repeated). Default: the "
    "account's enabled regions (EC2 DescribeRegions).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "junit"]),
    default="table",
    show_default=True,
    help="table for people, json for scripts, junit for CI test reports.",
)
@click.option(
    "--aws-endpoint-url",
    envvar="AWS_ENDPOINT_URL",
    default=None,
    help="Send every AWS call here (a moto server, a proxy). Default: AWS itself.",
)
@click.option(
    "--aws-region",
    envvar="AWS_REGION",
    default=None,
    help="Region for STS and DescribeRegions (default: boto3's, else the first of --regions).",
)
@click.option("--role-arn", default=None, help="Assume this IAM role and audit its account.")
@click.option("--external-id", default=None, help="External id the role's trust policy requires.")
def audit(
    regions: tuple[str, ...],
    output_format: str,
    aws_endpoint_url: str | None,
    aws_region: str | None,
    role_arn: str | None,
    external_id: str | None,
) -> None:
    """Observe-only CIS CloudTrail and Monitoring audit of an account's existing trails.

    Exit 0: every control passed; 3: a control failed or is unknown; 1: the account could not be read.
    """
    wanted = _parse_regions(regions)
    if external_id and not role_arn:
        raise click.UsageError("--external-id needs --role-arn")
    try:
        account = AccountRef.from_spec(role_arn, external_id)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--role-arn") from error
    sessions = AwsSessions(
        endpoint_url=aws_endpoint_url, default_region=aws_region or (wanted[0] if wanted else None)
    )
    try:
        if not sessions.default_region:
            click.echo("error: no AWS region: pass --aws-region or --regions, or set AWS_REGION", err=True)
            sys.exit(EXIT_ERROR)
        try:
            observation = observe_account(sessions, account, regions=wanted or None)
        except _AWS_ERRORS as error:
            click.echo(f"error: {classify(error)}", err=True)
            sys.exit(EXIT_ERROR)
    finally:
        sessions.close()

    for note in observation.notes:
        click.echo(f"note: {note}", err=True)
    rows = audit_rows(observation)
    if output_format == "json":
        click.echo(render_json(rows), nl=False)
    elif output_format == "junit":
        click.echo(render_junit(observation, rows), nl=False)
    else:
        click.echo(render_table(observation, rows), nl=False)
    sys.exit(0 if all(r.result.passed is True for r in rows) else EXIT_FAILED_CONTROLS)
