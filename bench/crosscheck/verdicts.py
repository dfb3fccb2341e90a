"""The two tools' verdicts side by side, without running either.

Prowler's CSV findings (`-M csv`, `;`-separated, one row per check, region and resource) and the JSON of
`trailkeeper audit --format json` (one entry per control, per trail or account-wide) are reduced to one
verdict per scenario and control: Fail when any subject failed, Pass when every subject passed, Unknown
when trailkeeper could not decide yet (or Prowler answered MANUAL), "-" when the tool said nothing.
Which Prowler checks judge a trailkeeper control comes from Prowler's own maps of the benchmark
(`prowler/compliance/aws/cis_<version>_aws.json`): the checks of the control's requirement in every
version the control has a number in.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASS = "Pass"
FAIL = "Fail"
UNKNOWN = "Unknown"
NONE = "-"

AGREE = "agree"
DISAGREE = "DISAGREE"
UNDECIDED = "tk unknown"
UNMATCHED = "n/a"

# trailkeeper controls with no CIS number that a Prowler check judges alike: TK-BUCKET-BPA is all four
# Block Public Access settings in effect on the bucket or the account, which is what Prowler's check for
# CIS v1.5 2.1.5 asks of every bucket.
EXTRA_CHECKS: Mapping[str, tuple[str, ...]] = {"TK-BUCKET-BPA": ("s3_bucket_level_public_access_block",)}

_PROWLER_STATUS = {"PASS": PASS, "FAIL": FAIL, "MANUAL": UNKNOWN}
_AUDIT_STATE = {True: PASS, False: FAIL, None: UNKNOWN}
_BUCKET_ARN = "arn:aws:s3:::"


@dataclass(frozen=True)
class Finding:
    """One row of Prowler's CSV output."""

    check: str
    status: str
    region: str
    resource: str
    detail: str


@dataclass(frozen=True)
class AuditEntry:
    """One entry of `trailkeeper audit --format json`; `trail` None: account-wide."""

    control: str
    trail: str | None
    passed: bool | None
    detail: str
    cis: Mapping[str, str]


@dataclass(frozen=True)
class Verdict:
    value: str
    detail: str = ""


@dataclass(frozen=True)
class Row:
    scenario: str
    control: str
    trailkeeper: Verdict
    prowler: Verdict
    checks: tuple[str, ...]

    @property
    def outcome(self) -> str:
        return compare(self.trailkeeper.value, self.prowler.value)


def parse_prowler_csv(text: str) -> list[Finding]:
    reader = csv.DictReader(io.StringIO(text), delimiter=";")
    return [
        Finding(row["CHECK_ID"], row["STATUS"], row["REGION"], row["RESOURCE_UID"], row["STATUS_EXTENDED"])
        for row in reader
    ]


def parse_audit_json(text: str) -> list[AuditEntry]:
    entries: list[dict[str, Any]] = json.loads(text)
    return [
        AuditEntry(e["control"], e["trail"], e["passed"], e["detail"], dict(e.get("cis") or {}))
        for e in entries
    ]


def load_compliance_maps(directory: Path) -> dict[str, dict[str, tuple[str, ...]]]:
    """{CIS version: {requirement id: Prowler check ids}} from Prowler's cis_<version>_aws.json files."""
    maps: dict[str, dict[str, tuple[str, ...]]] = {}
    for path in sorted(directory.glob("cis_*_aws.json")):
        version = path.name.removeprefix("cis_").removesuffix("_aws.json")
        document = json.loads(path.read_text())
        maps[version] = {r["Id"]: tuple(r.get("Checks") or ()) for r in document["Requirements"]}
    return maps


def checks_for(
    control: str, cis: Mapping[str, str], maps: Mapping[str, Mapping[str, Sequence[str]]]
) -> tuple[str, ...]:
    """The Prowler checks of `control`: those its requirement lists in each version it is numbered in."""
    found: list[str] = list(EXTRA_CHECKS.get(control, ()))
    for version, number in cis.items():
        for check in maps.get(version, {}).get(number, ()):
            if check not in found:
                found.append(check)
    return tuple(found)


def _worst(values: Iterable[str]) -> str:
    seen = set(values)
    if not seen:
        return NONE
    for value in (FAIL, UNKNOWN):
        if value in seen:
            return value
    return PASS


def prowler_verdict(findings: Iterable[Finding], checks: Sequence[str], buckets: Iterable[str]) -> Verdict:
    """Prowler's verdict over the findings of `checks`; findings about a bucket count only for `buckets`
    (the trails' log buckets: Prowler's S3 checks judge every bucket of the account)."""
    wanted = set(buckets)
    relevant = [
        f
        for f in findings
        if f.check in checks
        and f.status in _PROWLER_STATUS
        and (not f.resource.startswith(_BUCKET_ARN) or f.resource.removeprefix(_BUCKET_ARN) in wanted)
    ]
    value = _worst(_PROWLER_STATUS[f.status] for f in relevant)
    detail = next((f.detail for f in relevant if _PROWLER_STATUS[f.status] == value), "")
    return Verdict(value, detail)


def trailkeeper_verdict(entries: Iterable[AuditEntry], control: str) -> Verdict:
    relevant = [e for e in entries if e.control == control]
    value = _worst(_AUDIT_STATE[e.passed] for e in relevant)
    detail = next((e.detail for e in relevant if _AUDIT_STATE[e.passed] == value), "")
    return Verdict(value, detail)


def compare(trailkeeper: str, prowler: str) -> str:
    if NONE in (trailkeeper, prowler):
        return UNMATCHED
    if trailkeeper == prowler:
        return AGREE
    if trailkeeper == UNKNOWN:
        return UNDECIDED
    return DISAGREE


def scenario_rows(
    scenario: str,
    entries: Sequence[AuditEntry],
    findings: Sequence[Finding],
    maps: Mapping[str, Mapping[str, Sequence[str]]],
    buckets: Iterable[str],
) -> list[Row]:
    """One row per trailkeeper control, in the order `audit` lists them."""
    buckets = tuple(buckets)
    order: dict[str, Mapping[str, str]] = {}
    for entry in entries:
        order.setdefault(entry.control, entry.cis)
    rows = []
    for control, cis in order.items():
        checks = checks_for(control, cis, maps)
        rows.append(
            Row(
                scenario,
                control,
                trailkeeper_verdict(entries, control),
                prowler_verdict(findings, checks, buckets) if checks else Verdict(NONE),
                checks,
            )
        )
    return rows


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------


def render_rows(rows: Sequence[Row], *, width: int = 60) -> str:
    """One line per scenario and control: both verdicts, the outcome and, where they differ, why each said
    so (the detail of the verdict, cut to `width`)."""
    head = ("scenario", "control", "trailkeeper", "prowler", "outcome")
    table = [head, *[(r.scenario, r.control, r.trailkeeper.value, r.prowler.value, r.outcome) for r in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    lines = []
    for index, line in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        row = rows[index - 1] if index else None
        if row is not None and row.outcome in (DISAGREE, UNDECIDED):
            lines.append(f"    trailkeeper: {_cut(row.trailkeeper.detail, width)}")
            lines.append(f"    prowler:     {_cut(row.prowler.detail, width)}")
    return "\n".join(lines) + "\n"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


_MARK = {PASS: "P", FAIL: "F", UNKNOWN: "U", NONE: "-"}


def render_matrix(rows: Sequence[Row], scenarios: Sequence[str]) -> str:
    """Markdown: a line per control, a column per scenario; each cell is trailkeeper's verdict, then
    Prowler's (P, F, U, -), in bold where they disagree."""
    by_key = {(r.scenario, r.control): r for r in rows}
    controls = list(dict.fromkeys(r.control for r in rows))
    lines = [
        "| control | " + " | ".join(scenarios) + " |",
        "|---|" + "---|" * len(scenarios),
    ]
    for control in controls:
        cells = []
        for scenario in scenarios:
            row = by_key.get((scenario, control))
            if row is None:
                cells.append("")
                continue
            cell = f"{_MARK[row.trailkeeper.value]} {_MARK[row.prowler.value]}"
            cells.append(f"**{cell}**" if row.outcome in (DISAGREE, UNDECIDED) else cell)
        lines.append(f"| {control} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary(rows: Sequence[Row]) -> dict[str, int]:
    counts = {AGREE: 0, DISAGREE: 0, UNDECIDED: 0, UNMATCHED: 0}
    for row in rows:
        counts[row.outcome] += 1
    return counts
