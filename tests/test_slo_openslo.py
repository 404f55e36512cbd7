"""OpenSLO: `aisre slo rules --openslo` equals Sloth on Sloth's own examples; export/import round trips.

Sloth's example inputs and its generated rules are in tests/golden/sloth/ (Apache-2.0, see NOTICE).
Equivalence is checked three ways: the same rule names, groups and labels; SLI expressions equal
to Sloth's text; and the real `promtool test rules` evaluating Sloth's file and ours on the same
input series, asserting equal values on identical series at several times.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from aisre.config.slo import SLOConfig
from aisre.errors import ConfigError
from aisre.slo.openslo import openslo_rules, parse_openslo, read_openslo
from aisre.slo.openslo_aisre import dump_documents, export_openslo, import_slos, to_aisre
from aisre.slo.rules import dump, rules

from .test_cli import aisre_cli
from .test_slo_rules import needs_promtool, promtool

ROOT = Path(__file__).resolve().parents[1]
SLOTH = ROOT / "tests" / "golden" / "sloth"
EXAMPLES = ["openslo-getting-started.yml", "openslo-kubernetes-apiserver.yml"]
EXTRA = {"cmd": "examplesgen.sh"}  # Sloth's examplesgen.sh adds this label to every rule


def sloth_groups(example: str) -> list[dict]:
    return [g for doc in yaml.safe_load_all((SLOTH / "_gen" / example).read_text()) if doc for g in doc["groups"]]


def our_groups(example: str) -> list[dict]:
    return openslo_rules(read_openslo(SLOTH / example), labels=EXTRA)["groups"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_rules_for_sloths_openslo_examples_have_sloths_groups_names_labels_and_sli_expressions(example: str):
    ours, theirs = our_groups(example), sloth_groups(example)
    assert [g["name"] for g in ours] == [g["name"] for g in theirs]
    for mine, sloth in zip(ours, theirs, strict=True):
        assert [r["record"] for r in mine["rules"]] == [r["record"] for r in sloth["rules"]]
        for a, b in zip(mine["rules"], sloth["rules"], strict=True):
            if a["record"] == "sloth_slo_info":  # Sloth adds its own version; aisre always the objective
                ignored = {"sloth_version", "sloth_objective"}
                assert {k: v for k, v in a["labels"].items() if k not in ignored} == {
                    k: v for k, v in b["labels"].items() if k not in ignored
                }
            elif a["record"] == "slo:sli_error:ratio_rate30d":
                # Sloth labels only sloth_window (the rest comes from the series); aisre also names the ids
                assert b["labels"].items() <= a["labels"].items()
            else:
                assert a["labels"] == b["labels"], a["record"]
            if a["record"].startswith("slo:sli_error:ratio_rate") and a["record"] != "slo:sli_error:ratio_rate30d":
                assert a["expr"] == b["expr"]  # Sloth's own text: 1 - (good / total), window substituted
    assert not any("alert" in r for g in ours for r in g["rules"])  # Sloth: v1alpha SLOs have no alerts


def _as_reference(group: dict) -> dict:
    """Sloth's group with every recorded name prefixed `ref:` (in records and in expressions)."""
    renamed = []
    for rule in group["rules"]:
        expr = re.sub(r"\b(slo:[a-z_:0-9]+)", r"ref:\1", rule["expr"])
        renamed.append(rule | {"record": "ref:" + rule["record"], "expr": expr})
    return {"name": "ref-" + group["name"], "rules": renamed}


def _series(total_per_min: list[float], bad_per_min: list[float]) -> tuple[str, str]:
    good, bad, g, b = [], [], 0.0, 0.0
    for t, e in zip(total_per_min, bad_per_min, strict=True):
        g, b = g + t - e, b + e
        good.append(f"{g:g}")
        bad.append(f"{b:g}")
    return " ".join(good), " ".join(bad)


MINUTES = 360
# Per minute: 1000 requests; errors 0.1% for 2h, 12% for 40m, 0.5% after; latency: slow share varies too.
TOTAL = [1000.0] * MINUTES
ERRORS = [1.0 if m < 120 else 120.0 if m < 160 else 5.0 for m in range(MINUTES)]
SLOW = [20.0 if m < 90 else 300.0 if m < 150 else 8.0 for m in range(MINUTES)]
VERY_SLOW = [1.0 if m < 200 else 40.0 for m in range(MINUTES)]


def input_series(example: str) -> list[dict]:
    ok, bad = _series(TOTAL, ERRORS)
    if example == "openslo-getting-started.yml":
        return [
            {"series": 'http_request_duration_seconds_count{job="myservice",code="200"}', "values": ok},
            {"series": 'http_request_duration_seconds_count{job="myservice",code="503"}', "values": bad},
            {"series": 'http_request_duration_seconds_count{job="myservice",code="429"}', "values": bad},
            {"series": 'http_request_duration_seconds_count{job="other",code="500"}', "values": ok},  # not ours
        ]
    fast, slow = _series(TOTAL, SLOW)
    under_5s, over_5s = _series(TOTAL, VERY_SLOW)
    count = " ".join(f"{1000 * (m + 1)}" for m in range(MINUTES))
    return [
        {"series": 'apiserver_request_total{code="200",verb="GET"}', "values": ok},
        {"series": 'apiserver_request_total{code="500",verb="GET"}', "values": bad},
        {"series": 'apiserver_request_duration_seconds_bucket{le="0.4",verb="GET"}', "values": fast},
        {"series": 'apiserver_request_duration_seconds_bucket{le="5",verb="GET"}', "values": under_5s},
        {"series": 'apiserver_request_duration_seconds_count{verb="GET"}', "values": count},
        {"series": 'apiserver_request_duration_seconds_bucket{le="0.4",verb="WATCH"}', "values": "0+1x360"},
        {"series": 'apiserver_request_duration_seconds_count{verb="WATCH"}', "values": "0+1000x360"},
    ]


WINDOW_OF = {"slo:current_burn_rate:ratio": "5m", "slo:period_burn_rate:ratio": "30d"}
WINDOW_OF["slo:period_error_budget_remaining:ratio"] = "30d"


@needs_promtool
@pytest.mark.parametrize("example", EXAMPLES)
def test_promtool_finds_our_rules_and_sloths_equal_on_every_series_at_every_time(tmp_path: Path, example: str):
    ours, theirs = our_groups(example), sloth_groups(example)
    (tmp_path / "ours.yml").write_text(dump({"groups": ours}))
    (tmp_path / "sloth.yml").write_text(dump({"groups": [_as_reference(g) for g in theirs]}))
    for name in ("ours.yml", "sloth.yml"):
        out = promtool("check", "rules", name, cwd=tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr

    tests = []
    records = [r for r in theirs[0]["rules"] + theirs[1]["rules"] if r["record"].startswith("slo:")]
    ids = [r["labels"] for g in theirs for r in g["rules"] if r["record"] == "slo:objective:ratio"]
    for rule in records:
        record = rule["record"]
        window = rule["labels"].get("sloth_window") or WINDOW_OF.get(record)
        for at in ("10m", "1h", "2h20m", "3h", "5h59m"):
            expected = [
                {"labels": "{" + ", ".join(f'{k}="{v}"' for k, v in (slo | _window(window)).items()) + "}", "value": 1}
                for slo in ids
            ]
            tests.append(
                {  # 1 where our series and Sloth's have identical labels and equal values. The tolerance is
                    # for Sloth's objective, 0.9990000000000001 (99.9 / 100): 1e-13 apart near zero budget left
                    "expr": f"abs({record} - ref:{record}) <= bool (1e-9 * abs(ref:{record}) + 1e-12)",
                    "eval_time": at,
                    "exp_samples": expected,
                }
            )
    order = [g["name"] for g in ours] + ["ref-" + g["name"] for g in theirs]
    test = {"interval": "1m", "input_series": input_series(example), "promql_expr_test": tests}
    (tmp_path / "test.yml").write_text(
        yaml.safe_dump(
            {
                "rule_files": ["ours.yml", "sloth.yml"],
                "evaluation_interval": "1m",
                "group_eval_order": order,
                "tests": [test],
            },
            sort_keys=False,
        )
    )
    out = promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert len(tests) >= 13 * 5


def _window(window: str | None) -> dict[str, str]:
    return {} if window is None else {"sloth_window": window}


@needs_promtool
def test_the_equality_check_fails_when_a_value_differs(tmp_path: Path):
    """The comparison above can fail: a 1% change in one query's ratio is caught by promtool."""
    example = "openslo-getting-started.yml"
    text = (SLOTH / example).read_text().replace('code!~"(5..|429)"', 'code!~"(5..)"')
    ours = openslo_rules(parse_openslo(text), labels=EXTRA)["groups"]
    theirs = sloth_groups(example)
    (tmp_path / "ours.yml").write_text(dump({"groups": ours}))
    (tmp_path / "sloth.yml").write_text(dump({"groups": [_as_reference(g) for g in theirs]}))
    labels = next(r["labels"] for r in theirs[0]["rules"] if r["record"] == "slo:sli_error:ratio_rate1h")
    record = "slo:sli_error:ratio_rate1h"
    test = {
        "interval": "1m",
        "input_series": input_series(example),
        "promql_expr_test": [
            {
                "expr": f"abs({record} - ref:{record}) <= bool (1e-9 * abs(ref:{record}))",
                "eval_time": "1h",
                "exp_samples": [{"labels": "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}", "value": 1}],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(
        yaml.safe_dump({"rule_files": ["ours.yml", "sloth.yml"], "evaluation_interval": "1m", "tests": [test]})
    )
    out = promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert out.returncode != 0 and out.stderr.rstrip().endswith("0E+00")  # got 0 where 1 was expected


# --- export / import ------------------------------------------------------------------------------------


def example_slos() -> list[SLOConfig]:
    raw = yaml.safe_load((ROOT / "examples" / "slos.yaml").read_text())["slos"]
    return [SLOConfig.model_validate(s) for s in raw]


def variants() -> list[SLOConfig]:
    base = {"model": "fraud", "objective": 0.995, "sli": {"kind": "availability"}}
    return [
        SLOConfig.model_validate(spec)
        for spec in (
            base | {"name": "fraud_avail", "version": "v2", "description": "requests that did not fail"},
            base
            | {
                "name": "fraud-custom-alerts",
                "period": "7d",
                "alerting": {
                    "page": [{"long": "90m", "short": "10m", "budget_percent": 3}],
                    "ticket": [{"long": "1d", "short": "2h", "budget_percent": 10, "burn_rate": 2.5}],
                    "labels": {"team": "risk"},
                    "notify": ["oncall", "ML_team"],
                    "annotations": {"runbook": "https://runbooks.example/fraud"},
                },
            },
            base | {"name": "fraud-quiet", "alerting": {"enabled": False}},
            {
                "name": "fraud-correct",
                "model": "fraud",
                "objective": 0.99,
                "budgeting": "timeslices",
                "timeslice": "10m",
                "sli": {"kind": "correctness"},
            },
            {"name": "chat-ttft", "model": "chat", "objective": 0.99, "sli": {"kind": "ttft", "threshold_s": 0.5}},
        )
    ]


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


FOREIGN_V1 = """
apiVersion: openslo/v1
kind: SLI
metadata: {name: checkout-errors}
spec:
  ratioMetric:
    counter: true
    good:
      metricSource:
        type: Prometheus
        spec: {query: 'http_requests_total{job="checkout",code!~"5.."}'}
    total:
      metricSource:
        type: Prometheus
        spec: {query: 'http_requests_total{job="checkout"}'}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout-availability}
spec:
  service: checkout
  indicatorRef: checkout-errors
  budgetingMethod: Occurrences
  timeWindow: [{duration: 4w, isRolling: true}]
  objectives: [{targetPercent: 99.5}]
  alertPolicies:
    - kind: AlertPolicy
      metadata: {name: fast-burn}
      spec:
        conditions:
          - kind: AlertCondition
            metadata: {name: fast-burn}
            spec:
              severity: page
              condition: {kind: burnrate, op: gte, threshold: 14.4, lookbackWindow: 1h}
        notificationTargets: [{targetRef: pager}]
    - alertPolicyRef: slow-burn
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: slow-burn}
spec:
  conditions: [{conditionRef: slow-burn}]
  notificationTargets: [{targetRef: pager}]
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {name: slow-burn}
spec:
  severity: warning
  condition: {kind: burnrate, op: gt, threshold: 1, lookbackWindow: 3d, alertAfter: 6h}
"""


def test_openslo_v1_on_foreign_promql_maps_burnrate_conditions_onto_page_and_ticket_windows():
    [slo] = parse_openslo(FOREIGN_V1)
    assert (slo.name, slo.service, slo.objective, slo.period) == ("checkout-availability", "checkout", 0.995, "4w")
    # a bare counter selector is rated over Sloth's windows
    assert slo.sli.good == 'sum(rate(http_requests_total{job="checkout",code!~"5.."}[{{.window}}]))'
    [page], [ticket] = slo.alerting.page, slo.alerting.ticket
    assert (page.long, page.short, page.burn_rate) == ("1h", "5m", 14.4)  # no short window given: long / 12
    assert (ticket.long, ticket.short, ticket.burn_rate) == ("3d", "6h", 1.0)  # alertAfter is the short window
    groups = openslo_rules([slo])["groups"]
    assert [r["labels"]["sloth_window"] for r in groups[0]["rules"]] == [
        "5m",
        "30m",
        "1h",
        "2h",
        "6h",
        "1d",
        "3d",
        "4w",
    ]
    alerts = {r["labels"]["sloth_severity"]: r["expr"] for r in groups[2]["rules"]}
    assert "slo:sli_error:ratio_rate5m{" in alerts["page"] and "> (14.4 * 0.005)" in alerts["page"]
    assert "slo:sli_error:ratio_rate6h{" in alerts["ticket"] and "> (1 * 0.005)" in alerts["ticket"]
    assert isinstance(to_aisre(slo), str)  # not on aisre's metrics


@needs_promtool
def test_a_foreign_openslo_page_alert_fires_once_both_windows_burn_past_its_threshold(tmp_path: Path):
    [slo] = parse_openslo(FOREIGN_V1)
    (tmp_path / "rules.yml").write_text(dump(openslo_rules([slo])))
    ok, bad = _series([1000.0] * 200, [1.0 if m < 120 else 1000.0 for m in range(200)])

    def alert(severity: str) -> dict:
        return {
            "exp_labels": {
                "sloth_severity": severity,
                "sloth_id": "checkout-checkout-availability",
                "sloth_service": "checkout",
                "sloth_slo": "checkout-availability",
            },
            "exp_annotations": {
                "title": f"({severity}) checkout checkout-availability SLO error budget burn rate is too fast.",
                "summary": "SLO 'checkout-availability' of service 'checkout' burns its error budget",
            },
        }

    page, ticket = alert("page"), alert("ticket")
    # 0.1% errors, then all requests fail from minute 120. Ticket (1x over 3d, 6h from alertAfter): 0.5% of
    # errors; at 2h both windows hold 1179 / 120000 = 0.98%. Page (14.4x over 1h, 5m = 1h / 12): 7.2%;
    # the 1h ratio is (56 + 4000) / 60000 = 6.8% at 2h3m, (55 + 5000) / 60000 = 8.4% at 2h4m.
    test = {
        "interval": "1m",
        "input_series": [
            {"series": 'http_requests_total{job="checkout",code="200"}', "values": ok},
            {"series": 'http_requests_total{job="checkout",code="500"}', "values": bad},
        ],
        "alert_rule_test": [
            {"eval_time": t, "alertname": "CheckoutAvailabilitySLO", "exp_alerts": e}
            for t, e in [("1h59m", []), ("2h", [ticket]), ("2h3m", [ticket]), ("2h4m", [page, ticket])]
        ],
    }
    groups = [g["name"] for g in openslo_rules([slo])["groups"]]
    (tmp_path / "test.yml").write_text(
        yaml.safe_dump(
            {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "group_eval_order": groups, "tests": [test]}
        )
    )
    out = promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


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


# --- unsupported input ----------------------------------------------------------------------------------

GETTING_STARTED = (SLOTH / "openslo-getting-started.yml").read_text()


@pytest.mark.parametrize(
    ("text", "path", "supported"),
    [
        (GETTING_STARTED.replace("queryType: promql", "queryType: sql", 1), "ratioMetrics.good.queryType", "promql"),
        (GETTING_STARTED.replace("[{{.window}}]", "[5m]", 1), "ratioMetrics.good.query", "{{.window}}"),
        (GETTING_STARTED.replace("unit: Day", "unit: Month"), "spec.timeWindows[0]", "Minute, Hour, Day or Week"),
        (GETTING_STARTED.replace("target: 0.999", "target: 99.9"), "spec.objectives[0].target", "(0, 1)"),
        (GETTING_STARTED.replace("openslo/v1alpha", "openslo/v2alpha"), "apiVersion", "openslo/v1"),
        (GETTING_STARTED.replace("  service:", "  budgetingMethod: Timeslices\n  service:"), "budgetingMethod", ""),
        (GETTING_STARTED.replace("      target:", "      targt:"), "spec.objectives[0].targt", "unknown key"),
        (FOREIGN_V1.replace("budgetingMethod: Occurrences", "budgetingMethod: RatioTimeslices"), "budgeting", ""),
        (FOREIGN_V1.replace("isRolling: true", "isRolling: false"), "spec.timeWindow[0]", "isRolling: true"),
        (FOREIGN_V1.replace("ratioMetric:", "thresholdMetric:"), "thresholdMetric", "ratioMetric"),
        (FOREIGN_V1.replace("type: Prometheus", "type: Datadog", 1), "good.metricSource.type", "Prometheus"),
        (FOREIGN_V1.replace("op: gte", "op: lt"), "condition.op", "gt, gte"),
        (FOREIGN_V1.replace("[{targetPercent: 99.5}]", "[{targetPercent: 99.5, op: lt}]"), "[0].op", "gt, gte"),
        (FOREIGN_V1.replace("[{targetPercent: 99.5}]", "[{target: 0.9, op: lt, value: 500}]"), ".value", "ratioMetric"),
        (FOREIGN_V1.replace("kind: burnrate, op: gte", "kind: errorrate, op: gte"), "condition.kind", "burnrate"),
        (FOREIGN_V1.replace("severity: warning", "severity: info"), "spec.severity", "page"),
        (FOREIGN_V1.replace("conditionRef: slow-burn", "conditionRef: nope"), "conditionRef", "no AlertCondition"),
        (FOREIGN_V1.replace("indicatorRef: checkout-errors", "indicatorRef: nope"), "indicatorRef", "no SLI"),
        (FOREIGN_V1.replace("lookbackWindow: 3d", "lookbackWindow: 3 days"), "lookbackWindow", "shorthand"),
        (FOREIGN_V1.replace("lookbackWindow: 3d", "lookbackWindow: 5w"), "lookbackWindow", "longer than"),
        (FOREIGN_V1.replace("  conditions: [", "  alertWhenNoData: true\n  conditions: ["), "alertWhenNoData", ""),
        (
            FOREIGN_V1.replace("objectives: [{targetPercent: 99.5}]", "objectives: [{target: 0.9, indicatorRef: x}]"),
            "indicatorRef",
            "composite",
        ),
    ],
)
def test_unsupported_openslo_is_refused_naming_the_document_the_key_path_and_what_is_supported(
    text: str, path: str, supported: str
):
    with pytest.raises(ConfigError) as info:
        parse_openslo(text)
    [problem] = info.value.problems
    assert problem.startswith("document ")
    assert path in problem and supported in problem


def test_timeslices_over_foreign_promql_cannot_be_rules_but_aisres_slice_counter_can():
    text = FOREIGN_V1.replace("budgetingMethod: Occurrences", "budgetingMethod: Timeslices").replace(
        "[{targetPercent: 99.5}]", "[{targetPercent: 99.5, timeSliceTarget: 0.95, timeSliceWindow: 5m}]"
    )
    with pytest.raises(ConfigError, match="Timeslices over arbitrary PromQL"):
        openslo_rules(parse_openslo(text))
    recall = [s for s in example_slos() if s.name == "fraud-recall"]
    assert openslo_rules(parse_openslo(dump_documents(export_openslo(recall)))) == rules(recall)


def test_cli_refuses_a_bad_openslo_file_one_line_per_problem_without_traceback(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        GETTING_STARTED.replace("queryType: promql", "queryType: sql", 1)
        + "---\n"
        + FOREIGN_V1.replace("op: gte", "op: lt")
    )
    out = aisre_cli("slo", "rules", "--openslo", str(bad))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2
    assert "document 1 (SLO 'sloth-slo-my-service')" in lines[0] and "queryType" in lines[0]
    assert "document 3 (SLO 'checkout-availability')" in lines[1] and "op" in lines[1]
    out = aisre_cli("slo", "rules", "--openslo", str(tmp_path / "missing.yaml"))
    assert out.returncode == 2 and "cannot read" in out.stderr and "Traceback" not in out.stderr
    out = aisre_cli("slo", "rules", "--openslo", str(bad), "-l", "no-equals")
    assert out.returncode == 2 and "--label" in out.stderr


def _mutations(node, rng):
    """Copies of a parsed YAML tree with one value replaced or one key dropped."""
    import copy

    paths = []

    def walk(value, path):
        if isinstance(value, dict):
            for k, v in value.items():
                paths.append((*path, k))
                walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                paths.append((*path, i))
                walk(v, (*path, i))

    walk(node, ())
    odd = [None, 0, -1, 1.5, True, "", "x", "5m", "{{.window}}", [], {}, {"a": 1}, ["x"], 1e308]
    for path in rng.sample(paths, min(len(paths), 30)):
        for replacement in rng.sample(odd, 2) + ["<drop>"]:
            tree = copy.deepcopy(node)
            parent = tree
            for key in path[:-1]:
                parent = parent[key]
            if replacement == "<drop>":
                del parent[path[-1]]
            else:
                parent[path[-1]] = replacement
            yield tree


def test_mutated_openslo_files_are_read_or_refused_with_config_errors_never_a_crash():
    import random

    rng = random.Random(9)
    sources = [
        GETTING_STARTED,
        FOREIGN_V1,
        dump_documents(export_openslo(variants()[1:2])),  # SLI, SLO, 2 x (AlertPolicy, AlertCondition), target
    ]
    checked = 0
    for text in sources:
        docs = [d for d in yaml.safe_load_all(text) if d]
        for i in range(len(docs)):
            for mutated in _mutations(docs[i], rng):
                candidate = yaml.safe_dump_all([*docs[:i], mutated, *docs[i + 1 :]])
                try:
                    slos = parse_openslo(candidate)
                    openslo_rules(slos)
                    import_slos(slos)
                except ConfigError as exc:
                    assert exc.problems and all(p.startswith(("document ", "no SLO document")) for p in exc.problems)
                checked += 1
    assert checked > 300
