"""deploy/grafana and deploy/prometheus, checked with real parts: the dashboard is importable-shaped, every query
parses (real promtool), every metric it reads is on the /metrics of a real `aisre serve` (or is a rule of
`aisre slo rules`), Sloth's two Grafana dashboards find every rule and label they query (evaluated by promtool's
rule engine), and the scrape config passes `promtool check config`."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .grafana_live import METRICS_TOKEN, LiveAisre

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "aisre-overview.json"
PROMETHEUS_YML = ROOT / "deploy" / "prometheus" / "prometheus.yml"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not found (apt-get install prometheus)")

#: Grafana's variables as a query reaches Prometheus (a multi-value variable becomes a regex).
VARIABLES = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "model": ".*", "version": ".*", "slo": ".*"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
PROMQL_WORDS |= {"offset", "inf", "nan"}
#: Series Prometheus itself writes for the rules it evaluates.
PROMETHEUS_SERIES = {"ALERTS", "ALERTS_FOR_STATE"}


def substitute(expr: str, values: dict[str, str]) -> str:
    """`$name` and `${name}` replaced (longest names first, so $__rate_interval is not read as $__range...)."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    assert "$" not in expr, f"an unknown template variable is left in {expr!r}"
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (strings, label matchers, ranges, grouping and functions removed)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", " ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        if s[m.end() :].lstrip().startswith("(") or m.group(0).lower() in PROMQL_WORDS:
            continue  # a function call or a keyword
        names.add(m.group(0))
    return names


def test_metric_names_finds_selected_metrics_and_ignores_the_rest():
    expr = (
        'histogram_quantile(0.99, sum by (le, model) (rate(a_bucket{model=~".*", x="b c"}[5m])))'
        " / on(x) group_left b:rec:ratio + 1e-3 * scalar(c_total) > bool 2"
    )
    assert metric_names(expr) == {"a_bucket", "b:rec:ratio", "c_total"}


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the panels, template variables substituted."""
    return [substitute(t["expr"], VARIABLES) for p in panels(dashboard) for t in p.get("targets", [])]


def variable_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(series selector, label) of each label_values(...) template variable."""
    out = []
    for v in dashboard["templating"]["list"]:
        if v["type"] == "query":
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", v["query"]["query"])
            assert m, f"variable {v['name']}: expected label_values(selector, label), got {v['query']!r}"
            out.append((substitute(m.group(1), VARIABLES), m.group(2)))
    return out


def test_dashboard_is_importable_shaped():
    d = load_dashboard()
    assert d["uid"] and len(d["uid"]) <= 40 and d["title"] and 36 <= d["schemaVersion"] <= 41
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("model", "version"):
        assert variables[name]["type"] == "query" and variables[name]["query"]["query"].startswith("label_values(")
        assert variables[name]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    ids = [p["id"] for p in panels(d)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in panels(d):
        grid = p["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, p["title"]
        if p["type"] == "row":
            continue
        assert p["title"] and p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], f"panel {p['title']!r} has no query"
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), p["title"]
        for t in p["targets"]:
            assert t["expr"].strip() and t["datasource"] == p["datasource"], p["title"]
    # panels of one row never overlap
    cells = set()
    for p in panels(d):
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['title']!r} overlaps another at {(x, y)}"
                cells.add((x, y))


def test_committed_dashboard_is_what_its_generator_writes():
    spec = importlib.util.spec_from_file_location("generate_dashboard", DASHBOARD.with_name("generate.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == DASHBOARD.read_text(), "run: python deploy/grafana/generate.py"


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@needs_promtool
def test_every_dashboard_query_parses_with_promtool(tmp_path: Path):
    d = load_dashboard()
    queries = dashboard_queries(d) + [selector for selector, _ in variable_queries(d)]
    rules = [{"record": f"grafana:query_{i}", "expr": q} for i, q in enumerate(queries)]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "aisre-overview", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


def test_promtool_catches_a_broken_query(tmp_path: Path):
    """The check above can fail: a query with an unbalanced parenthesis is refused."""
    if PROMTOOL is None:
        pytest.skip("promtool not found")
    path = tmp_path / "broken.yml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "a:b", "expr": "sum(rate(x[5m])"}]}]})
    )
    assert promtool("check", "rules", str(path)).returncode != 0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveAisre]:
    server = LiveAisre(tmp_path_factory.mktemp("live-aisre"))
    try:
        server.send_traffic()
        yield server
    finally:
        server.stop()


def live_series(live: LiveAisre, wanted: set[str], timeout_s: float = 60.0) -> dict[str, list[dict[str, str]]]:
    """Sample name -> label sets of a live /metrics, scraped until every `wanted` name shows (the monitoring
    jobs and the SLO judge publish a few seconds after start) or the time is up."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        series: dict[str, list[dict[str, str]]] = {}
        for family in text_string_to_metric_families(live.metrics_text()):
            for sample in family.samples:
                series.setdefault(sample.name, []).append(sample.labels)
        if wanted <= set(series) or time.monotonic() > deadline:
            return series
        time.sleep(0.5)


@functools.lru_cache
def slo_rules(config: Path) -> dict[str, Any]:
    """The real CLI: `aisre slo rules -c CONFIG`, parsed (once per config file: the tests only read it)."""
    cmd = [sys.executable, "-m", "aisre", "slo", "rules", "-c", str(config)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def recorded(rules: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                out.setdefault(rule["record"], []).append(rule.get("labels", {}))
    return out


def test_every_metric_the_dashboard_reads_is_exported_by_a_live_aisre_serve(live: LiveAisre):
    d = load_dashboard()
    queries = dashboard_queries(d)
    wanted = set().union(*(metric_names(q) for q in queries))
    rules = recorded(slo_rules(live.config))
    series = live_series(live, wanted - set(rules))
    missing = sorted(wanted - set(series) - set(rules) - PROMETHEUS_SERIES)
    assert not missing, f"the dashboard reads metrics aisre does not export: {missing}\n{live.log()}"
    # a {__name__=~"..."} selector matches at least one live metric
    for q in queries:
        for pattern in re.findall(r'__name__=~"([^"]+)"', q):
            assert any(re.fullmatch(pattern, name) for name in series), f"nothing matches {pattern!r}"
    # each variable's label is on its metric
    for selector, label in variable_queries(d):
        (name,) = metric_names(selector)
        assert any(label in labels for labels in series[name]), f"{name} has no label {label!r}"
    # the legends name labels the series carry
    for p in panels(d):
        for t in p.get("targets", []):
            names = metric_names(substitute(t["expr"], VARIABLES)) & set(series)
            for label in re.findall(r"\{\{(\w+)\}\}", t.get("legendFormat", "")):
                assert any(label in labels for n in names for labels in series[n]), (p["title"], label)


def test_the_rules_of_aisre_slo_rules_read_only_live_metrics(live: LiveAisre):
    """The SLO rules' inputs (request counters, aisre_slo_events_total) are on the same /metrics."""
    rules = slo_rules(live.config)
    made = set(recorded(rules))
    read = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            read |= metric_names(rule["expr"])
    series = live_series(live, read - made)
    assert read - made and not read - made - set(series), sorted(read - made - set(series))


# Sloth's Grafana dashboards, grafana.com 14348 "SLO / Detail" (revision 5) and 14643 "SLO / High level"
# (revision 2): their queries, with their variables ($service, $slo, $sli_window, $min_burning_rate).
SLOTH_SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
SLOTH_DETAIL = [
    "slo:current_burn_rate:ratio > ${min_burning_rate}",
    'slo:objective:ratio{sloth_service="${service}", sloth_slo="${slo}"}',
    *(
        f'1 - (max(slo:sli_error:ratio_rate{w}{{sloth_service="${{service}}", sloth_slo="${{slo}}"}}) OR on() vector(0))'
        for w in SLOTH_SLI_WINDOWS
    ),
    'sloth_slo_info{sloth_service="${service}", sloth_slo="${slo}"}',
    'slo:current_burn_rate:ratio{sloth_service="${service}", sloth_slo="${slo}"} or on() vector(0)',
    'slo:period_error_budget_remaining:ratio{sloth_service="${service}", sloth_slo="${slo}"} or on() vector(1)',
    'slo:current_burn_rate:ratio{sloth_service="${service}", sloth_slo="${slo}"} > 0',
    'max(ALERTS{sloth_service="${service}", sloth_slo="${slo}", sloth_severity="ticket"}) OR on() vector(0)',
    'max(ALERTS{sloth_service="${service}", sloth_slo="${slo}", sloth_severity="page"}) or on() vector(0)',
]
SLOTH_DETAIL_VARIABLES = [("slo:objective:ratio", "sloth_service"), ("slo:objective:ratio", "sloth_slo")]
SLOTH_HIGH_LEVEL = [
    "count(sloth_slo_info)",
    "count(max(sloth_slo_info) by (sloth_service))",
    "avg(slo:current_burn_rate:ratio)",
    'max(ALERTS{sloth_id!="",sloth_severity="ticket"}) OR on() vector(0)',
    'max(ALERTS{sloth_id!="",sloth_severity="page"}) OR on() vector(0)',
    "slo:current_burn_rate:ratio > ${min_burning_rate}",
    "slo:current_burn_rate:ratio",
    "slo:period_error_budget_remaining:ratio",
]
#: Labels their legends and tables show.
SLOTH_LEGEND_LABELS = {"sloth_id", "sloth_service", "sloth_slo"}
#: Sloth's metadata rules, which its dashboards (and the brief) name.
SLOTH_META = (
    "slo:objective:ratio",
    "slo:error_budget:ratio",
    "slo:time_period:days",
    "slo:current_burn_rate:ratio",
    "slo:period_burn_rate:ratio",
    "slo:period_error_budget_remaining:ratio",
    "sloth_slo_info",
)
SLOTH_VALUES = {"service": "aisre", "slo": "chat-availability", "min_burning_rate": "1"}


@pytest.fixture(scope="module")
def sloth_rules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return slo_rules(sloth_config(tmp_path_factory.mktemp("sloth")))


def sloth_config(tmp_path: Path) -> Path:
    """Two SLOs as a user writes them: a request SLI (gateway counters) and a judged one (aisre_slo_events_total)."""
    doc = {
        "store": f"sqlite:///{tmp_path / 'aisre.db'}",
        "models": {"chat": {"protocol": "openai", "versions": {"v1": {"replicas": ["http://127.0.0.1:9/v1"]}}}},
        "slos": [
            {"name": "chat-availability", "model": "chat", "objective": 0.99, "sli": {"kind": "availability"}},
            {"name": "chat-drift", "model": "chat", "objective": 0.9, "sli": {"kind": "drift"}},
        ],
    }
    path = tmp_path / "aisre.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_aisre_slo_rules_define_every_rule_and_label_sloths_dashboards_query(sloth_rules: dict[str, Any]):
    rules = sloth_rules
    made = recorded(rules)
    ids = {"sloth_id", "sloth_service", "sloth_slo"}
    queried = set().union(*(metric_names(substitute(q, SLOTH_VALUES)) for q in SLOTH_DETAIL + SLOTH_HIGH_LEVEL))
    for name in sorted((queried | set(SLOTH_META)) - PROMETHEUS_SERIES):
        assert name in made, f"Sloth's dashboards query {name}, which aisre slo rules does not record"
        slos = {labels["sloth_slo"] for labels in made[name]}
        assert slos == {"chat-availability", "chat-drift"}, name
        for labels in made[name]:
            assert ids <= set(labels) and labels["sloth_service"] == "aisre", (name, labels)
            assert labels["sloth_id"] == f"aisre-{labels['sloth_slo']}"
            if name.startswith("slo:sli_error:ratio_rate"):
                assert labels["sloth_window"] == name.removeprefix("slo:sli_error:ratio_rate")
    for labels in made["sloth_slo_info"]:  # the Detail dashboard shows "Objective {{sloth_objective}}%"
        assert labels["sloth_objective"] == {"chat-availability": "99", "chat-drift": "90"}[labels["sloth_slo"]]
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert sorted(a["labels"]["sloth_severity"] for a in alerts) == ["page", "page", "ticket", "ticket"]


@needs_promtool
def test_sloths_dashboard_queries_return_aisre_series_in_prometheus_rule_engine(
    tmp_path: Path, sloth_rules: dict[str, Any]
):
    """promtool evaluates aisre's rules over 2 hours of counters (chat failing half its requests, the drift SLO
    all good) and every query of both Sloth dashboards returns the series it shows, alerts included."""
    rules_path = tmp_path / "slo.rules.yml"
    rules_path.write_text(yaml.safe_dump(sloth_rules))
    minutes = 120
    series = [
        ('aisre_gateway_requests_total{model="chat",version="v1",status_class="2xx"}', f"0+60x{minutes}"),
        ('aisre_gateway_requests_total{model="chat",version="v1",status_class="5xx"}', f"0+60x{minutes}"),
        ('aisre_slo_events_total{slo="chat-drift",outcome="good"}', f"0+1x{minutes}"),
        ('aisre_slo_events_total{slo="chat-drift",outcome="bad"}', f"0+0x{minutes}"),
    ]
    # (query, expected value of count(query)) at the end: a filtered query returns one SLO's series,
    # an unfiltered one both SLOs', a burn-rate filter only the failing SLO's.
    both, one = 2, 1
    expected: list[tuple[str, int | None]] = []
    for q in SLOTH_DETAIL + SLOTH_HIGH_LEVEL:
        if "ALERTS" in q or q.startswith("count(") or q.startswith("avg("):
            expected.append((q, None))  # a scalar-like result: checked by value below
        elif "sloth_slo=" in q or "> ${min_burning_rate}" in q or q.endswith("> 0"):
            expected.append((q, one))
        else:
            expected.append((q, both))
    tests = []
    for q, count in expected:
        expr = substitute(q, SLOTH_VALUES)
        if count is not None:
            tests.append(
                {
                    "expr": f"count({expr})",
                    "eval_time": f"{minutes}m",
                    "exp_samples": [{"labels": "{}", "value": count}],
                }
            )
    values = {
        "count(sloth_slo_info)": 2,
        "count(max(sloth_slo_info) by (sloth_service))": 1,
        'max(ALERTS{sloth_id!="",sloth_severity="ticket"}) OR on() vector(0)': 1,
        'max(ALERTS{sloth_id!="",sloth_severity="page"}) OR on() vector(0)': 1,
        'max(ALERTS{sloth_service="aisre", sloth_slo="chat-availability", sloth_severity="ticket"}) OR on() vector(0)': 1,
        'max(ALERTS{sloth_service="aisre", sloth_slo="chat-availability", sloth_severity="page"}) or on() vector(0)': 1,
        # 50% errors over a 1% budget burn at 50x; the drift SLO at 0x
        "avg(slo:current_burn_rate:ratio)": 25,
    }
    for q, count in expected:
        if count is None:
            expr = substitute(q, SLOTH_VALUES)
            rounded = f"round({expr})"  # Go's float sums differ in the last bits (24.999999999999982 for 25)
            tests.append(
                {"expr": rounded, "eval_time": f"{minutes}m", "exp_samples": [{"labels": "{}", "value": values[expr]}]}
            )
    tests.append(  # the legend labels are on the series (the ids on every SLO rule)
        {
            "expr": 'count(slo:current_burn_rate:ratio{sloth_id="aisre-chat-drift", sloth_service="aisre", sloth_slo="chat-drift"})',
            "eval_time": f"{minutes}m",
            "exp_samples": [{"labels": "{}", "value": 1}],
        }
    )
    test_file = tmp_path / "sloth_dashboards_test.yml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [rules_path.name],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": [{"series": s, "values": v} for s, v in series],
                        "promql_expr_test": tests,
                    }
                ],
            },
            width=1000,
        )
    )
    result = promtool("test", "rules", test_file.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_prometheus_scrape_config_passes_promtool_check_config(tmp_path: Path, sloth_rules: dict[str, Any]):
    """The example as shipped, with its files where it expects them (rules from `aisre slo rules`, a token)."""
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "aisre"]
    assert job["metrics_path"] == "/metrics" and job["authorization"]["type"] == "Bearer"
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    rules_file = tmp_path / Path(config["rule_files"][0]).name
    rules_file.write_text(yaml.safe_dump(sloth_rules))
    token = tmp_path / "aisre-metrics-token"
    token.write_text("a-token\n")
    text = PROMETHEUS_YML.read_text()
    text = text.replace(config["rule_files"][0], str(rules_file))
    text = text.replace(job["authorization"]["credentials_file"], str(token))
    checked = tmp_path / "prometheus.yml"
    checked.write_text(text)
    result = promtool("check", "config", str(checked))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr and "rules found" in result.stdout + result.stderr


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not found (apt-get install prometheus)")
def test_real_prometheus_scrapes_a_live_aisre_with_the_bearer_token_and_evaluates_the_slo_rules(
    live: LiveAisre, tmp_path: Path
):
    """deploy/prometheus/prometheus.yml with its target, token file and rule file pointed at the live server: the
    target is up (the token is sent), the series arrive, and the SLO rules record from them."""
    import time

    import httpx

    assert httpx.get(f"{live.url}/metrics").status_code == 401  # without the token, /metrics is refused
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "aisre"]
    token = tmp_path / "token"
    token.write_text(METRICS_TOKEN + "\n")
    job["authorization"]["credentials_file"] = str(token)
    job["static_configs"][0]["targets"] = [f"127.0.0.1:{live.port}"]
    rules = tmp_path / "aisre-slo.rules.yml"
    rules.write_text(yaml.safe_dump(slo_rules(live.config)))
    config["rule_files"] = [str(rules)]
    del config["alerting"]  # no Alertmanager here
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    from aisre.testing.server import free_port

    port = free_port()
    cmd = [str(PROMETHEUS), f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}"]
    cmd += [f"--web.listen-address=127.0.0.1:{port}"]
    with (tmp_path / "prometheus.log").open("wb") as log:
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            api = f"http://127.0.0.1:{port}/api/v1"

            def query(expr: str) -> list[Any]:
                try:
                    return httpx.get(f"{api}/query", params={"query": expr}, timeout=5).json()["data"]["result"]
                except (httpx.HTTPError, KeyError, ValueError):
                    return []

            deadline = time.monotonic() + 60
            wanted = ['up{job="aisre"} == 1', "aisre_gateway_requests_total", "slo:sli_error:ratio_rate5m"]
            while not all(query(q) for q in wanted[:2]) or not query(f'{wanted[2]}{{sloth_slo="chat-availability"}}'):
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()[
                    -3000:
                ]
                with httpx.Client() as client:  # keep traffic flowing so rate() has something to see
                    client.post(
                        f"{live.url}/v1/chat/completions",
                        json={"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
                        timeout=30,
                    )
                time.sleep(0.5)
        finally:
            server.terminate()
            server.wait(30)
