"""`trailkeeper plan -f examples/` as a user runs it: the documents AWS needs, from files alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from trailkeeper.cli.main import cli

ROOT = Path(__file__).parent.parent


def plan(*paths: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["plan", *[arg for p in paths for arg in ("-f", p)]])
    assert result.exit_code == 0, result.output
    return [d for d in yaml.safe_load_all(result.output) if d]


def statements_of(document: Any) -> list[dict[str, Any]]:
    """Every policy statement anywhere in a planned document."""
    found: list[dict[str, Any]] = []
    if isinstance(document, dict):
        if isinstance(document.get("Statement"), list):
            found.extend(document["Statement"])
        for value in document.values():
            found.extend(statements_of(value))
    elif isinstance(document, list):
        for item in document:
            found.extend(statements_of(item))
    return found


def test_plan_of_the_examples_holds_the_statements_aws_documents_for_cloudtrail_delivery() -> None:
    documents = plan(str(ROOT / "examples"))
    trail = next(d for d in documents if d["kind"] == "Trail" and d["name"] == "audit")
    statements = statements_of(trail)
    arn = "arn:aws:cloudtrail:us-east-1:123456789012:trail/org-audit"
    acl = [s for s in statements if s.get("Action") == "s3:GetBucketAcl"]
    write = [s for s in statements if s.get("Action") == "s3:PutObject"]
    publish = [s for s in statements if s.get("Action") == "SNS:Publish"]
    assert acl and write and publish
    assert any(
        "arn:aws:s3:::acme-audit-us-east-1/cloudtrail/AWSLogs/123456789012/*" in s["Resource"] for s in write
    )
    for statement in write:
        assert statement["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
        assert statement["Condition"]["StringEquals"]["s3:x-amz-acl"] == "bucket-owner-full-control"
    # The ACL check names the account, the write the trail (in every region: ArnLike with a * region).
    assert any("123456789012" in str(s["Condition"]) for s in acl)
    assert any(arn.replace("us-east-1", "*") in str(s["Condition"]) for s in write)
    denies = [s for s in statements if s.get("Effect") == "Deny"]
    assert denies and all(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_plan_of_an_invalid_file_exits_1_naming_file_object_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: LogRetention\nmetadata: {name: r}\n"
        "spec: {bucket: acme, expirationDays: 0}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["plan", "-f", str(bad)])
    assert result.exit_code == 1
    assert f"error: {bad}: LogRetention default/r: spec.expirationDays:" in result.output
