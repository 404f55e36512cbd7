"""OpenSLO: `aisre slo rules --openslo` equals Sloth on Sloth's own examples, and reads openslo/v1 alerts.

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

from aisre.slo.openslo import openslo_rules, parse_openslo, read_openslo
from aisre.slo.openslo_aisre import to_aisre
from aisre.slo.rules import dump

from .openslo_helpers import FOREIGN_V1, GETTING_STARTED, SLOTH, counter_values
from .test_cli import aisre_cli
from .test_slo_rules import needs_promtool, promtool

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


MINUTES = 360
# Per minute: 1000 requests; errors 0.1% for 2h, 12% for 40m, 0.5% after; latency: slow share varies too.
TOTAL = [1000.0] * MINUTES
ERRORS = [1.0 if m < 120 else 120.0 if m < 160 else 5.0 for m in range(MINUTES)]
SLOW = [20.0 if m < 90 else 300.0 if m < 150 else 8.0 for m in range(MINUTES)]
VERY_SLOW = [1.0 if m < 200 else 40.0 for m in range(MINUTES)]


def input_series(example: str) -> list[dict]:
    ok, bad = counter_values(TOTAL, ERRORS)
    if example == "openslo-getting-started.yml":
        return [
            {"series": 'http_request_duration_seconds_count{job="myservice",code="200"}', "values": ok},
            {"series": 'http_request_duration_seconds_count{job="myservice",code="503"}', "values": bad},
            {"series": 'http_request_duration_seconds_count{job="myservice",code="429"}', "values": bad},
            {"series": 'http_request_duration_seconds_count{job="other",code="500"}', "values": ok},  # not ours
        ]
    fast, slow = counter_values(TOTAL, SLOW)
    under_5s, over_5s = counter_values(TOTAL, VERY_SLOW)
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
    ok, bad = counter_values([1000.0] * 200, [1.0 if m < 120 else 1000.0 for m in range(200)])

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


def test_cli_writes_for_an_openslo_file_the_rules_the_library_computes(tmp_path: Path):
    example = SLOTH / "openslo-kubernetes-apiserver.yml"
    out = aisre_cli(
        "slo", "rules", "--openslo", str(example), "-l", "cmd=examplesgen.sh", "-o", str(tmp_path / "r.yml")
    )
    assert out.returncode == 0, out.stderr
    assert "3 SLOs, 45 recording and 0 alerting rules" in out.stdout  # 15 a SLO, as Sloth: 8 SLI + 7 meta
    assert yaml.safe_load((tmp_path / "r.yml").read_text()) == openslo_rules(read_openslo(example), labels=EXTRA)


def test_v1alpha_bad_over_total_and_spaced_window_placeholders_are_read_as_sloth_templates():
    text = GETTING_STARTED.replace("good:", "bad:").replace('code!~"(5..|429)"', 'code=~"5.."')
    text = text.replace("[{{.window}}]))\n        total", "[{{ .window }}]))\n        total")
    [slo] = parse_openslo(text)
    assert slo.sli.bad is not None and slo.sli.good is None
    expr = openslo_rules([slo])["groups"][0]["rules"][2]["expr"]
    assert expr == (
        '(sum(rate(http_request_duration_seconds_count{job="myservice",code=~"5.."}[1h])))\n/\n'
        '(sum(rate(http_request_duration_seconds_count{job="myservice"}[1h])))\n'
    )


def test_a_v1_slo_with_several_objectives_is_one_slo_per_objective_named_by_index():
    text = FOREIGN_V1.replace("objectives: [{targetPercent: 99.5}]", "objectives: [{target: 0.99}, {target: 0.999}]")
    slos = parse_openslo(text)
    assert [(s.name, s.objective) for s in slos] == [
        ("checkout-availability-0", 0.99),
        ("checkout-availability-1", 0.999),
    ]
    ids = {r["labels"]["sloth_id"] for g in openslo_rules(slos)["groups"] for r in g["rules"] if "record" in r}
    assert ids == {"checkout-checkout-availability-0", "checkout-checkout-availability-1"}
