"""OpenSLO export and import: aisre SLOs -> OpenSLO v1 -> the same SLOs, and the same Prometheus rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from aisre.config.slo import SLOConfig
from aisre.errors import ConfigError
from aisre.slo.openslo import openslo_rules, parse_openslo
from aisre.slo.openslo_aisre import dump_documents, export_openslo, import_slos
from aisre.slo.rules import rules

from .openslo_helpers import FOREIGN_V1, example_slos, variants
from .test_cli import aisre_cli


def test_export_then_import_gives_back_the_same_slos():
    slos = example_slos() + variants()
    text = dump_documents(export_openslo(slos))
    imported, notes = import_slos(parse_openslo(text))
    assert notes == []
    assert imported == slos


def test_export_is_openslo_v1_sli_slo_and_one_burnrate_alert_policy_per_window():
    [slo] = [s for s in variants() if s.name == "fraud-custom-alerts"]
    docs = export_openslo([slo], service="shop")
    kinds = [d["kind"] for d in docs]
    assert (
        kinds
        == ["SLI", "SLO", "AlertPolicy", "AlertCondition", "AlertPolicy", "AlertCondition"]
        + ["AlertNotificationTarget"] * 2
    )
    # alerting.notify: the policies' targets; a receiver name that is not an RFC 1123 label gets one + annotation
    targets = [t["targetRef"] for t in docs[2]["spec"]["notificationTargets"]]
    assert targets[0] == "oncall" and re.fullmatch(r"ml-team-[0-9a-f]{8}", targets[1])
    assert [d["metadata"]["name"] for d in docs[6:]] == targets
    assert docs[7]["metadata"]["annotations"] == {"aisre/receiver": "ML_team"}
    sli, spec = docs[0]["spec"]["ratioMetric"], docs[1]["spec"]
    assert sli["bad"]["metricSource"]["spec"]["query"] == (
        'sum(rate(aisre_gateway_requests_total{model="fraud",status_class="5xx"}[{{.window}}]))'
    )
    assert spec["service"] == "shop" and spec["budgetingMethod"] == "Occurrences"
    assert spec["timeWindow"] == [{"duration": "7d", "isRolling": True}]
    page = docs[3]["spec"]
    # 3% of 7 days over 90 minutes: 0.03 x 168h / 1.5h = 3.36
    assert page["severity"] == "page"
    assert page["condition"] == {"kind": "burnrate", "op": "gt", "threshold": 3.36, "lookbackWindow": "90m"}
    assert docs[3]["metadata"]["annotations"]["aisre/short-window"] == "10m"
    assert docs[5]["spec"]["condition"]["threshold"] == 2.5


def test_rules_from_the_exported_openslo_file_equal_aisres_own_rules(tmp_path: Path):
    config = tmp_path / "aisre.yaml"
    rows = [s.model_dump(mode="json", exclude_defaults=True) for s in example_slos() + variants()]
    receivers = [{"name": name, "webhook": "http://127.0.0.1:9/hook"} for name in ("oncall", "ML_team")]
    config.write_text(yaml.safe_dump({"notifications": {"receivers": receivers}, "slos": rows}))
    out = aisre_cli("slo", "export", "--openslo", "-c", str(config), "-o", str(tmp_path / "openslo.yaml"))
    assert out.returncode == 0, out.stderr
    out = aisre_cli("slo", "rules", "--openslo", str(tmp_path / "openslo.yaml"), "-o", str(tmp_path / "a.yml"))
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load((tmp_path / "a.yml").read_text()) == rules(example_slos() + variants())

    out = aisre_cli("slo", "import", str(tmp_path / "openslo.yaml"), "-o", str(tmp_path / "back.yaml"))
    assert out.returncode == 0, out.stderr
    back = yaml.safe_load((tmp_path / "back.yaml").read_text())["slos"]
    assert [SLOConfig.model_validate(s) for s in back] == example_slos() + variants()


def test_import_names_the_slos_that_are_not_aisres_and_says_where_they_can_be_served(tmp_path: Path):
    foreign = tmp_path / "foreign.yaml"
    foreign.write_text(FOREIGN_V1)
    out = aisre_cli("slo", "import", str(foreign))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "checkout-availability" in out.stderr and "aisre slo rules --openslo" in out.stderr

    mixed = tmp_path / "mixed.yaml"
    mixed.write_text(dump_documents(export_openslo(example_slos()[:1])) + "---\n" + FOREIGN_V1)
    out = aisre_cli("slo", "import", str(mixed))
    assert out.returncode == 0, out.stderr
    assert [s["name"] for s in yaml.safe_load(out.stdout)["slos"]] == ["fraud-latency"]
    assert "note:" in out.stderr and "checkout-availability" in out.stderr


def test_timeslices_over_foreign_promql_cannot_be_rules_but_aisres_slice_counter_can():
    text = FOREIGN_V1.replace("budgetingMethod: Occurrences", "budgetingMethod: Timeslices").replace(
        "[{targetPercent: 99.5}]", "[{targetPercent: 99.5, timeSliceTarget: 0.95, timeSliceWindow: 5m}]"
    )
    with pytest.raises(ConfigError, match="Timeslices over arbitrary PromQL"):
        openslo_rules(parse_openslo(text))
    recall = [s for s in example_slos() if s.name == "fraud-recall"]
    assert openslo_rules(parse_openslo(dump_documents(export_openslo(recall)))) == rules(recall)
