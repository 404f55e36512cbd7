"""The dashboard in a real browser: Debian's Chromium driven by Playwright over a real drill's store.

One drill (canary-full-loop: drift on canary v2, its correctness SLO pages, its breaker opens, the
playbook rolls it back with an incident) runs once for the module; the dashboard serves that store on
the drill's clock (the drill's data is at 2026-01-01), as `aisre dashboard` composes it. Every page must
load without a console error or a failed request, draw its charts with data, and show what the drill did.
The login test runs the real `aisre dashboard` command with an admin key. Screenshots of every page go
to test-artifacts/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .browser_helpers import (
    ROOT,
    DashboardCommand,
    DashboardServer,
    DrillStore,
    PageWatch,
    chart_points,
    chromium_missing,
    launch_chromium,
    open_page,
    run_drill,
    screenshot,
)

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")

SCENARIO = ROOT / "examples" / "drills" / "canary-full-loop.yaml"
ADMIN_KEY = "browser-test-admin-key-0123456789"


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> DrillStore:
    return run_drill(SCENARIO, tmp_path_factory.mktemp("drill"))


@pytest.fixture(scope="module")
def dashboard(drill: DrillStore) -> Iterator[DashboardServer]:
    server = DashboardServer(drill.config, now=drill.end)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(dashboard: DashboardServer) -> Iterator[Any]:
    # (after the drill and the server: the drill runs its own event loop, Playwright's sync API another)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    watch = PageWatch()
    watch.attach(page)
    page.watch = watch
    yield page
    context.close()


def api(dashboard: DashboardServer, path: str) -> Any:
    response = httpx.get(f"{dashboard.url}api/v1/{path}", timeout=30)
    response.raise_for_status()
    return response.json()


def test_overview_shows_versions_breakers_slo_budget_and_open_incidents_and_refreshes(
    page: Any, dashboard: Any
) -> None:
    open_page(page, dashboard.url, "page-overview")
    assert page.locator("[data-testid=model-card-fraud]").is_visible()
    assert page.locator("[data-testid=version-row-fraud-v1]").is_visible()
    v2 = page.locator("[data-testid=version-row-fraud-v2]")
    assert "retired" in v2.inner_text()  # the playbook rolled the canary back
    breaker = page.locator("[data-testid=breaker-fraud-v2]")
    assert breaker.get_attribute("data-state") in ("open", "half_open", "closed")
    assert breaker.get_attribute("class").split()[-1] in ("ok", "warn", "bad")  # a coloured badge
    assert page.locator("[data-testid=breaker-fraud-v1]").inner_text() == "none"  # v1 has no breaker
    budget = float(page.locator("[data-testid=budget-fraud-v2-correctness]").get_attribute("data-value"))
    assert budget < 1.0  # the drift burned v2's correctness budget
    open_incidents = len(api(dashboard, "incidents?status=open")["incidents"])
    assert open_incidents >= 1
    assert page.locator("[data-testid=stat-incidents] .value").inner_text() == str(open_incidents)
    assert page.locator("[data-testid=nav-model-fraud]").is_visible()
    screenshot(page, "overview")
    # redrawn from the API every ~5 s without a reload
    drawn = page.locator("#main").get_attribute("data-ready")
    page.wait_for_function(f"document.querySelector('#main').dataset.ready !== '{drawn}'", timeout=20_000)
    assert page.locator("[data-testid=model-card-fraud]").is_visible()
    assert page.watch.problems() == []


def test_model_page_draws_traffic_latency_and_drift_per_feature_with_breached_windows(
    page: Any, dashboard: Any
) -> None:
    open_page(page, f"{dashboard.url}#/models/fraud", "page-model")
    for chart in ("chart-requests", "chart-errors", "chart-latency", "chart-drift-share-v2", "chart-drift-features-v2"):
        assert chart_points(page, chart) > 0, f"{chart} draws no point"
    features = page.locator("[data-testid=chart-drift-features-v2]")
    assert int(features.get_attribute("data-breached")) > 0  # the drifted windows are marked
    assert "threshold" in features.inner_text()  # the threshold line is in the legend
    windows = page.locator("[data-testid=drift-window-v2]")
    assert windows.count() >= 2
    assert "drift" in windows.first.inner_text()  # newest window first: the drifted one
    assert page.locator("[data-testid=drift-report-link]").count() == windows.count()
    # no performance, fairness or LLM check in this drill: the page says what to configure
    assert "monitors:" in page.locator("[data-testid=performance-empty]").inner_text()
    assert "monitors:" in page.locator("[data-testid=llm-empty]").inner_text()
    assert "tokens" in page.locator("[data-testid=tokens-empty]").inner_text()
    history = page.locator("[data-testid=registry-history]").inner_text()
    assert re.search(r"canary → retired\s+playbook:drift-rollback", history)
    screenshot(page, "model-fraud")
    page.click("[data-testid=range-1h]")
    page.wait_for_selector("[data-testid=range-1h].active")
    span = page.evaluate(
        "() => { const t = document.querySelector('[data-testid=chart-requests]').uplot.data[0]; return t[t.length - 1] - t[0]; }"
    )
    assert 0 < span <= 3600
    screenshot(page, "model-fraud-1h")
    assert page.watch.problems() == []


def test_drift_report_link_opens_that_windows_html_report(page: Any, dashboard: Any) -> None:
    open_page(page, f"{dashboard.url}#/models/fraud", "page-model")
    with page.expect_popup() as popup:
        page.locator("[data-testid=drift-report-link]").first.click()
    report = popup.value
    report.wait_for_load_state()
    assert "mean_radius" in report.content()  # the report covers the features
    screenshot(report, "drift-report-v2")
    assert page.watch.problems() == []


def test_slo_pages_show_the_budget_burn_down_burn_rates_and_the_page_alert(page: Any, dashboard: Any) -> None:
    open_page(page, f"{dashboard.url}#/slos", "page-slos")
    assert page.locator("[data-testid=slo-row-fraud-v2-correctness]").is_visible()
    screenshot(page, "slos")
    page.click("[data-testid=slo-row-fraud-v2-correctness] a")
    page.wait_for_selector("#main [data-testid=page-slo]")
    assert chart_points(page, "chart-burn-down") > 0
    assert chart_points(page, "chart-burn-rate") > 0
    lowest = page.evaluate(
        "() => Math.min(...document.querySelector('[data-testid=chart-burn-down]').uplot.data[1].filter((v) => v !== null))"
    )
    assert lowest < 1.0  # the budget burned down
    events = page.locator("[data-testid=slo-events]").inner_text()
    assert "page" in events and "firing" in events
    screenshot(page, "slo-fraud-v2-correctness")
    assert page.watch.problems() == []


def test_drills_incidents_are_listed_and_the_timeline_shows_the_breaker_and_the_rollback(
    page: Any, dashboard: Any
) -> None:
    incidents = api(dashboard, "incidents")["incidents"]
    assert incidents, "the drill opened no incident"
    open_page(page, f"{dashboard.url}#/incidents", "page-incidents")
    for incident in incidents:
        assert incident["title"] in page.locator(f"[data-testid=incident-row-{incident['id']}]").inner_text()
    screenshot(page, "incidents")
    timelines = {}
    for incident in incidents:
        page.click(f"[data-testid=incident-row-{incident['id']}] a >> nth=0")
        page.wait_for_selector(f"#main [data-testid=page-incident][data-incident='{incident['id']}']")
        timelines[incident["id"]] = page.locator("[data-testid=timeline]").inner_text()
        kinds = page.locator("[data-testid=timeline-event]").evaluate_all("els => els.map(e => e.dataset.kind)")
        assert kinds[0] == "trigger"
        screenshot(page, f"incident-{incident['id']}")
        page.go_back()
        page.wait_for_selector("#main [data-testid=page-incidents]")
    text = "\n".join(timelines.values())
    assert "breaker opened on fraud v2" in text
    assert "rolled back fraud: canary v2 retired, stable v1 serves" in text
    assert page.watch.problems() == []


def test_unknown_model_shows_the_apis_message_naming_what_exists(page: Any, dashboard: Any) -> None:
    open_page(page, f"{dashboard.url}#/models/nosuch", "page-error")
    message = page.locator("[data-testid=error]").inner_text()
    assert "nosuch" in message and "fraud" in message
    assert page.watch.page_errors == []


def test_admin_key_login_and_logout_on_the_real_dashboard_command(page: Any, drill: DrillStore, tmp_path: Path) -> None:
    config = tmp_path / "aisre.yaml"
    config.write_text(yaml.safe_dump({**drill.doc, "auth": {"admin_key": ADMIN_KEY}}))
    server = DashboardCommand(config)
    try:
        open_page(page, server.url, "login-form")
        screenshot(page, "login")
        page.fill("[data-testid=login-key]", "not-the-key")
        page.click("[data-testid=login-submit]")
        assert "not the admin key" in page.locator("[data-testid=login-error]").inner_text()
        page.fill("[data-testid=login-key]", ADMIN_KEY)
        page.click("[data-testid=login-submit]")
        page.wait_for_selector("#main [data-testid=page-overview]")
        assert page.locator("[data-testid=model-card-fraud]").is_visible()
        # the command's clock is today's: the drill's hours are reached with an absolute range in the link
        open_page(
            page, f"{server.url}#/models/fraud?since={drill.start - 3600:.0f}&until={drill.end:.0f}", "page-model"
        )
        assert page.locator("[data-testid=range-custom]").is_visible()
        assert chart_points(page, "chart-requests") > 0
        assert chart_points(page, "chart-drift-features-v2") > 0
        screenshot(page, "model-fraud-logged-in-absolute-range")
        page.click("[data-testid=logout]")  # the session cookie is cleared: the API asks for the key again
        page.wait_for_selector("#main [data-testid=login-form]")
    finally:
        server.stop()
    # the only refusals are the API's 401 before the login and the wrong key's
    unexpected = [p for p in page.watch.bad_responses if not p.startswith("401 ")]
    assert unexpected == [] and page.watch.page_errors == [] and page.watch.failed_requests == []
    assert all("401" in m for m in page.watch.console_errors)


def test_the_dashboard_command_shows_a_drill_store_as_of_the_drills_end_with_at(
    drill: DrillStore, tmp_path: Path
) -> None:
    config = tmp_path / "aisre.yaml"
    config.write_text(yaml.safe_dump(drill.doc))
    at = dt.datetime.fromtimestamp(drill.end, dt.UTC).isoformat()
    server = DashboardCommand(config, "--at", at)
    try:
        overview = httpx.get(f"{server.url}api/v1/overview", timeout=30).json()
    finally:
        server.stop()
    assert overview["now"] == drill.end  # frozen at the drill's end: "the last hour" is the drill's last hour
    v1 = next(v for v in overview["models"][0]["versions"] if v["version"] == "v1")
    assert v1["last_hour"]["requests"] > 0
    bad = subprocess.run(
        [sys.executable, "-m", "aisre", "dashboard", "-c", str(config), "--at", "yesterday-ish"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--at" in bad.stdout + bad.stderr
