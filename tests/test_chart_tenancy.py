"""The chart's tenancy value: rendered into a ConfigMap the operator reads as its policy, mounted so that
an edit reaches the running pod."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from test_chart import VALUE_SETS, SchemaRefused, by_kind, generate, render_chart
from trailkeeper.reconcile.tenancy_file import parse_policy


def deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(by_kind(docs, "Deployment")[0])


def test_no_rules_renders_no_policy_and_no_flag() -> None:
    docs = render_chart({})
    assert not [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-tenancy")]
    container = deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    assert not [a for a in container["args"] if a.startswith("--tenancy-policy")]


def test_rules_become_the_policy_the_operator_reads_from_a_directory_mount() -> None:
    values = VALUE_SETS["everything"]
    docs = render_chart(values)
    (config,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-tenancy")]
    policy = parse_policy(config["data"]["policy.yaml"])
    assert not isinstance(policy, str), policy
    assert [r.name for r in policy.rules] == ["security", "audit", "regulated"]
    assert policy.rule_for("audit-eu").allow_delete is False
    assert policy.rule_for("shop", {"compliance": "pci", "team": "payments"}).name == "regulated"
    assert policy.rule_for("shop", {"compliance": "pci", "team": "web"}).name == "default"
    assert yaml.safe_load(config["data"]["policy.yaml"]) == {"rules": values["tenancy"]["rules"]}
    pod = deployment(docs)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "--tenancy-policy=/etc/trailkeeper/tenancy/policy.yaml" in container["args"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "tenancy"]
    assert mount == {"name": "tenancy", "mountPath": "/etc/trailkeeper/tenancy", "readOnly": True}
    (volume,) = [v for v in pod["volumes"] if v["name"] == "tenancy"]
    assert volume["configMap"]["name"] == config["metadata"]["name"]


def test_a_rule_names_namespaces_or_selects_them_by_label() -> None:
    rule = {"name": "x", "ownAccount": False}
    with pytest.raises(SchemaRefused, match="tenancy/rules/0"):
        generate.render({"tenancy": {"rules": [rule]}})
    bad_operator = {"matchExpressions": [{"key": "team", "operator": "Has"}]}
    with pytest.raises(SchemaRefused, match="namespaceSelector/matchExpressions/0/operator"):
        generate.render({"tenancy": {"rules": [{**rule, "namespaceSelector": bad_operator}]}})
    selected = {**rule, "namespaceSelector": {"matchLabels": {"team": "payments"}}}
    docs = render_chart({"tenancy": {"rules": [selected]}})
    (config,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-tenancy")]
    policy = parse_policy(config["data"]["policy.yaml"])
    assert not isinstance(policy, str), policy
    assert policy.rule_for("shop", {"team": "payments"}).name == "x"
