"""`aisre slo rules`: Sloth-shaped Prometheus rules, checked and unit-tested by the real promtool.

promtool comes from Debian's `prometheus` package (`make test` installs it); without it the
promtool tests are skipped, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aisre.config.slo import SLOConfig
from aisre.slo.rules import dump, prom_duration, rules

from .test_cli import aisre_cli

ROOT = Path(__file__).resolve().parents[1]
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus'; `make test` installs it)"
)
IDS = 'sloth_id="aisre-fraud-availability", sloth_service="aisre", sloth_slo="fraud-availability"'


def example_slos() -> list[SLOConfig]:
    raw = yaml.safe_load((ROOT / "examples" / "slos.yaml").read_text())["slos"]
    return [SLOConfig.model_validate(s) for s in raw]


def availability(objective: float = 0.998) -> SLOConfig:
    return SLOConfig.model_validate(
        {"name": "fraud-availability", "model": "fraud", "objective": objective, "sli": {"kind": "availability"}}
    )


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def promtool_test(tmp_path: Path, slos: list[SLOConfig], test: dict) -> None:
    (tmp_path / "rules.yml").write_text(dump(rules(slos)))
    (tmp_path / "test.yml").write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yml"],
                "evaluation_interval": "1m",
                # promtool would run the alerts group first (a step behind the SLI recordings); Prometheus
                # runs groups independently, so in production an alert may lag one evaluation interval.
                "group_eval_order": [g["name"] for g in rules(slos)["groups"]],
                "tests": [test],
            },
            sort_keys=False,
        )
    )
    out = promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


# Per minute, 1000 requests of model fraud: 0.1% fail for 3 hours, then all of them. Cancelled
# calls (499) and another model's failures are there to be ignored.
TRAFFIC = [
    {
        "series": 'aisre_gateway_requests_total{model="fraud",version="v1",status_class="2xx"}',
        "values": "0+999x180 179820+0x60",
    },
    {
        "series": 'aisre_gateway_requests_total{model="fraud",version="v1",status_class="5xx"}',
        "values": "0+1x180 1180+1000x59",
    },
    {"series": 'aisre_gateway_requests_total{model="fraud",version="v1",status_class="499"}', "values": "0+1000x240"},
    {"series": 'aisre_gateway_requests_total{model="chat",version="v1",status_class="5xx"}', "values": "0+1000x240"},
]


def alert(severity: str) -> dict:
    return {
        "exp_labels": {
            "sloth_severity": severity,
            "sloth_id": "aisre-fraud-availability",
            "sloth_service": "aisre",
            "sloth_slo": "fraud-availability",
        },  # no sloth_window: the alert is the same alert whichever window pair fired it
        "exp_annotations": {
            "title": f"({severity}) aisre fraud-availability SLO error budget burn rate is too fast.",
            "summary": "SLO 'fraud-availability' of model 'fraud' burns its error budget",
        },
    }


@needs_promtool
def test_promtool_accepts_the_rules_of_the_example_slos_and_a_request_slo(tmp_path: Path):
    slos = [*example_slos(), availability()]  # fraud-latency's 200 ms is a bucket bound
    (tmp_path / "rules.yml").write_text(dump(rules(slos)))
    out = promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(slos) * (8 + 7 + 2)} rules found" in out.stdout


@needs_promtool
def test_page_alert_fires_only_once_both_page_windows_burn_past_the_periods_factor(tmp_path: Path):
    # objective 99.8%: budget 0.2%, 0.1% errors burn at 0.5x. At 100% errors from minute 181:
    # the period is 28d (like chat-p99-latency), so page 1h/5m fires at 2% x 672h/1h = 13.44x, i.e. above
    # 0.02688: the 1h ratio is (59 + 1000)/60000 = 0.0176 at 3h01m, (58 + 2000)/60000 = 0.0343 at 3h02m.
    # Ticket 1d/2h fires at 10% x 672h/24h = 2.8x (0.0056): the 1d ratio is 1180/181000 = 0.0065 at 3h01m.
    slo = SLOConfig.model_validate({**availability().model_dump(), "period": "28d"})
    page, ticket = alert("page"), alert("ticket")
    test = {
        "interval": "1m",
        "input_series": TRAFFIC,
        "alert_rule_test": [
            {"eval_time": t, "alertname": "FraudAvailabilitySLO", "exp_alerts": expected}
            for t, expected in [
                ("2h59m", []),
                ("3h", []),
                ("3h1m", [ticket]),
                ("3h2m", [page, ticket]),
                ("3h5m", [page, ticket]),
            ]
        ],
    }
    promtool_test(tmp_path, [slo], test)


@needs_promtool
def test_recorded_error_ratio_burn_rate_and_remaining_budget_equal_hand_computed_values(tmp_path: Path):
    # At 3h: every window saw 0.1% errors -> ratio 0.001, burn 0.001/0.002 = 0.5, half the budget left.
    # At 3h10m: the 5m ratio is 1 (burn 500); the 30d ratio averages the 190 recorded 5m ratios:
    # 180 x 0.001, then (5-k + 1000k)/5000 for k = 1..4, then 6 x 1.0 -> 8.182/190. As in Sloth's output,
    # the burn rates keep the sloth_window of the SLI ratio they divide.
    period_ratio = (180 * 0.001 + sum((5 - k + 1000 * k) / 5000 for k in range(1, 5)) + 6) / 190
    budget = 1 - 0.998

    def sample(expr: str, at: str, value: float, window: str | None = None) -> dict:
        labels = "{" + IDS + (f', sloth_window="{window}"' if window else "") + "}"
        return {"expr": f"{expr}{{{IDS}}}", "eval_time": at, "exp_samples": [{"labels": expr + labels, "value": value}]}

    test = {
        "interval": "1m",
        "input_series": TRAFFIC,
        "promql_expr_test": [
            sample("slo:sli_error:ratio_rate1h", "3h", 0.001, "1h"),
            sample("slo:sli_error:ratio_rate3d", "3h", 0.001, "3d"),
            sample("slo:current_burn_rate:ratio", "3h", 0.001 / budget, "5m"),
            sample("slo:period_burn_rate:ratio", "3h", 0.001 / budget, "30d"),
            sample("slo:period_error_budget_remaining:ratio", "3h", 1 - 0.001 / budget, "30d"),
            sample("slo:sli_error:ratio_rate5m", "3h10m", 1.0, "5m"),
            sample("slo:current_burn_rate:ratio", "3h10m", 1 / budget, "5m"),
            sample("slo:sli_error:ratio_rate30d", "3h10m", period_ratio, "30d"),
            sample("slo:period_error_budget_remaining:ratio", "3h10m", 1 - period_ratio / budget, "30d"),
            sample("slo:objective:ratio", "3h", 0.998),
            sample("slo:error_budget:ratio", "3h", budget),
            sample("slo:time_period:days", "3h", 30),
        ],
    }
    promtool_test(tmp_path, [availability()], test)


@needs_promtool
def test_quality_slo_counts_bad_windows_from_aisre_slo_events_total(tmp_path: Path):
    slo = next(s for s in example_slos() if s.name == "fraud-recall")
    ids = 'sloth_id="aisre-fraud-recall", sloth_service="aisre", sloth_slo="fraud-recall"'
    test = {
        "interval": "1m",
        "input_series": [  # 3 good and 1 bad slice a minute
            {"series": 'aisre_slo_events_total{slo="fraud-recall",outcome="good"}', "values": "0+3x120"},
            {"series": 'aisre_slo_events_total{slo="fraud-recall",outcome="bad"}', "values": "0+1x120"},
            {"series": 'aisre_slo_events_total{slo="other",outcome="bad"}', "values": "0+100x120"},
        ],
        "promql_expr_test": [
            {
                "expr": f"slo:sli_error:ratio_rate1h{{{ids}}}",
                "eval_time": "2h",
                "exp_samples": [{"labels": f'slo:sli_error:ratio_rate1h{{{ids}, sloth_window="1h"}}', "value": 0.25}],
            },
            {
                "expr": f"slo:current_burn_rate:ratio{{{ids}}}",
                "eval_time": "2h",
                "exp_samples": [
                    {"labels": f'slo:current_burn_rate:ratio{{{ids}, sloth_window="5m"}}', "value": 0.25 / (1 - 0.99)}
                ],
            },
        ],
    }
    promtool_test(tmp_path, [slo], test)


def test_latency_threshold_must_be_a_histogram_bucket():
    slo = next(s for s in example_slos() if s.name == "fraud-latency")
    expr = rules([slo])["groups"][0]["rules"][0]["expr"]
    assert 'aisre_inference_duration_seconds_bucket{model="fraud",le="0.2"}[5m]' in expr
    between = SLOConfig.model_validate({**slo.model_dump(), "sli": {"kind": "latency", "threshold_s": 0.15}})
    with pytest.raises(ValueError, match=r"'fraud-latency'.*threshold_s 0.15.*buckets: .*0\.1, 0\.2"):
        rules([between])


def test_request_slo_with_a_where_filter_is_refused_naming_it():
    slo = SLOConfig.model_validate(
        {**availability().model_dump(), "sli": {"kind": "availability", "where": {"tags.x": "y"}}}
    )
    with pytest.raises(ValueError, match=r"'fraud-availability': sli.where \(tags.x\)"):
        rules([slo])


def test_windows_are_sloths_plus_the_alert_windows_and_factors_scale_with_the_period():
    slo = SLOConfig.model_validate(
        {
            **availability(0.99).model_dump(),
            "period": "28d",
            "alerting": {"page": [{"long": "90m", "short": "10m", "budget_percent": 2}], "ticket": []},
        }
    )
    groups = rules([slo], service="shop")["groups"]
    assert [g["name"] for g in groups] == [
        "sloth-slo-sli-recordings-shop-fraud-availability",
        "sloth-slo-meta-recordings-shop-fraud-availability",
        "sloth-slo-alerts-shop-fraud-availability",
    ]
    windows = [r["labels"]["sloth_window"] for r in groups[0]["rules"]]
    assert windows == ["5m", "10m", "30m", "1h", "1h30m", "2h", "6h", "1d", "3d", "4w"]
    [page] = groups[2]["rules"]
    assert page["labels"] == {"sloth_severity": "page"}
    # 2% of 28 days over 90 minutes: 0.02 x 672h / 1.5h = 8.96
    assert "slo:sli_error:ratio_rate10m{" in page["expr"] and "> (8.96 * 0.01)" in page["expr"]
    # the current burn rate reads the page alert's short window, as Sloth's does
    assert groups[1]["rules"][3]["expr"].startswith("slo:sli_error:ratio_rate10m{")
    assert prom_duration(30 * 86400) == "30d" and prom_duration(7 * 86400) == "1w"


def test_cli_writes_the_rules_file_and_refuses_bad_input_in_one_line(tmp_path: Path):
    config = tmp_path / "aisre.yaml"
    config.write_text(yaml.safe_dump({"slos": [availability().model_dump(exclude_defaults=True)]}))
    out = aisre_cli("slo", "rules", "-c", str(config), "-o", str(tmp_path / "rules.yml"))
    assert out.returncode == 0, out.stderr
    written = yaml.safe_load((tmp_path / "rules.yml").read_text())
    assert written == rules([availability()])

    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "examples" / "slos.yaml").read_text().replace("threshold_s: 0.2}", "threshold_s: 0.15}"))
    out = aisre_cli("slo", "rules", "-c", str(bad))
    assert out.returncode == 2
    assert "fraud-latency" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1

    config.write_text("store: sqlite:///x.db\n")
    out = aisre_cli("slo", "rules", "-c", str(config))
    assert out.returncode == 2 and "no SLOs" in out.stderr and "Traceback" not in out.stderr
