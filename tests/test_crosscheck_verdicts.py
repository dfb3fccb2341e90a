"""The cross-check's reading of Prowler's CSV and `audit --format json`, and the table it builds from them
(`make crosscheck` runs both tools; these tests need neither). The CSV fixture is Prowler 5.46 output from
a cross-check scenario with its long text columns emptied, one bucket's verdict turned to FAIL and a
MANUAL row added."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.crosscheck.verdicts import (  # noqa: E402
    AGREE,
    DISAGREE,
    FAIL,
    NONE,
    PASS,
    UNDECIDED,
    UNKNOWN,
    UNMATCHED,
    AuditEntry,
    Finding,
    checks_for,
    compare,
    load_compliance_maps,
    parse_audit_json,
    parse_prowler_csv,
    prowler_verdict,
    render_matrix,
    scenario_rows,
    summary,
    trailkeeper_verdict,
)

FIXTURE = REPO / "tests" / "fixtures" / "crosscheck" / "prowler-findings.csv"
LOG_BUCKET = "crosscheck-trail-logs"
MAPS: dict[str, dict[str, tuple[str, ...]]] = {
    "1.5": {
        "3.3": ("cloudtrail_logs_s3_bucket_is_not_publicly_accessible",),
        "2.1.3": ("s3_bucket_no_mfa_delete",),
    },
    "2.0": {"2.1.2": ("s3_bucket_no_mfa_delete", "cloudtrail_bucket_requires_mfa_delete")},
    "6.0": {"4.1": ("cloudtrail_multi_region_enabled",)},
}


@pytest.fixture
def findings() -> list[Finding]:
    return parse_prowler_csv(FIXTURE.read_text())


def test_prowler_csv_rows_are_read_by_column_name(findings: list[Finding]) -> None:
    assert len(findings) == 8
    first = findings[0]
    assert (first.check, first.status, first.region) == (
        "cloudtrail_logs_s3_bucket_is_not_publicly_accessible",
        "FAIL",
        "us-east-1",
    )
    assert first.resource == "arn:aws:cloudtrail:us-east-1:123456789012:trail/audit-trail"
    assert first.detail.startswith(f"S3 Bucket {LOG_BUCKET} from multiregion trail audit-trail")
    assert [f.status for f in findings].count("MANUAL") == 1


def test_compliance_maps_are_read_per_version_from_prowler_files(tmp_path: Path) -> None:
    for version, requirements in (("1.5", {"3.1": ["a"]}), ("6.0", {"4.1": ["a", "b"]})):
        document = {"Requirements": [{"Id": i, "Checks": c} for i, c in requirements.items()]}
        (tmp_path / f"cis_{version}_aws.json").write_text(json.dumps(document))
    (tmp_path / "cisa_aws.json").write_text("{}")  # not a CIS map: left alone

    assert load_compliance_maps(tmp_path) == {"1.5": {"3.1": ("a",)}, "6.0": {"4.1": ("a", "b")}}


def test_a_control_is_judged_by_the_checks_of_its_number_in_every_version() -> None:
    mfa = checks_for("CIS-2.1.3", {"1.5": "2.1.3", "2.0": "2.1.2", "7.0": "3.1.2"}, MAPS)
    assert mfa == ("s3_bucket_no_mfa_delete", "cloudtrail_bucket_requires_mfa_delete")
    assert checks_for("TK-REGIONS", {}, MAPS) == ()
    assert checks_for("TK-BUCKET-BPA", {}, MAPS) == ("s3_bucket_level_public_access_block",)


def test_bucket_findings_count_only_for_the_log_buckets(findings: list[Finding]) -> None:
    check = ("s3_bucket_level_public_access_block",)
    assert prowler_verdict(findings, check, [LOG_BUCKET]).value == PASS
    both = prowler_verdict(findings, check, [LOG_BUCKET, "crosscheck-access-logs"])
    assert both.value == FAIL
    assert "crosscheck-access-logs" in both.detail


def test_prowler_verdict_is_the_worst_over_regions_and_subjects(findings: list[Finding]) -> None:
    assert prowler_verdict(findings, ("cloudtrail_multi_region_enabled",), []).value == PASS
    public = prowler_verdict(findings, ("cloudtrail_logs_s3_bucket_is_not_publicly_accessible",), [])
    assert public.value == FAIL  # FAIL in us-east-1 outweighs MANUAL in eu-west-1
    assert prowler_verdict(findings, ("cloudtrail_kms_encryption_enabled",), []).value == NONE


def test_manual_counts_as_unknown_next_to_a_pass(findings: list[Finding]) -> None:
    only_manual = [f for f in findings if f.status == "MANUAL"]
    passing = [f for f in findings if f.check == "cloudtrail_multi_region_enabled"]
    checks = ("cloudtrail_logs_s3_bucket_is_not_publicly_accessible", "cloudtrail_multi_region_enabled")
    assert prowler_verdict(only_manual + passing, checks, []).value == UNKNOWN


def _entry(
    control: str, trail: str | None, passed: bool | None, cis: dict[str, str] | None = None
) -> AuditEntry:
    return AuditEntry(control, trail, passed, f"{trail}: {passed}", cis or {})


def test_trailkeeper_verdict_fails_when_any_trail_fails_and_is_unknown_before_a_pass() -> None:
    entries = [_entry("CIS-3.4", "a", True), _entry("CIS-3.4", "b", None), _entry("CIS-3.2", "a", True)]
    assert trailkeeper_verdict(entries, "CIS-3.4").value == UNKNOWN
    assert trailkeeper_verdict(entries, "CIS-3.4").detail == "b: None"
    assert trailkeeper_verdict([*entries, _entry("CIS-3.4", "c", False)], "CIS-3.4").value == FAIL
    assert trailkeeper_verdict(entries, "CIS-3.7").value == NONE


@pytest.mark.parametrize(
    ("trailkeeper", "prowler", "outcome"),
    [
        (PASS, PASS, AGREE),
        (FAIL, FAIL, AGREE),
        (PASS, FAIL, DISAGREE),
        (FAIL, PASS, DISAGREE),
        (UNKNOWN, FAIL, UNDECIDED),
        (PASS, NONE, UNMATCHED),
        (UNKNOWN, UNKNOWN, AGREE),
    ],
)
def test_outcome_of_two_verdicts(trailkeeper: str, prowler: str, outcome: str) -> None:
    assert compare(trailkeeper, prowler) == outcome


def test_audit_json_to_rows_and_matrix(findings: list[Finding]) -> None:
    audit = json.dumps(
        [
            {"trail": None, "control": "CIS-3.1", "passed": True, "detail": "ok", "cis": {"6.0": "4.1"}},
            {"trail": None, "control": "TK-REGIONS", "passed": True, "detail": "ok", "cis": {}},
            {
                "trail": "audit-trail",
                "control": "CIS-3.3",
                "passed": True,
                "detail": "BPA",
                "cis": {"1.5": "3.3"},
            },
            {
                "trail": "audit-trail",
                "control": "CIS-2.1.3",
                "passed": False,
                "detail": "off",
                "cis": {"1.5": "2.1.3"},
            },
        ]
    )
    rows = scenario_rows("account-bpa", parse_audit_json(audit), findings, MAPS, [LOG_BUCKET])

    assert [(r.control, r.trailkeeper.value, r.prowler.value, r.outcome) for r in rows] == [
        ("CIS-3.1", PASS, PASS, AGREE),
        ("TK-REGIONS", PASS, NONE, UNMATCHED),
        ("CIS-3.3", PASS, FAIL, DISAGREE),
        ("CIS-2.1.3", FAIL, FAIL, AGREE),
    ]
    assert summary(rows) == {AGREE: 2, DISAGREE: 1, UNDECIDED: 0, UNMATCHED: 1}
    matrix = render_matrix(rows, ["account-bpa", "other"]).splitlines()
    assert matrix[0] == "| control | account-bpa | other |"
    assert "| CIS-3.3 | **P F** |  |" in matrix
    assert "| TK-REGIONS | P - |  |" in matrix
