"""The SLO judge end to end, with real parts only: a real `aisre serve` (subprocess, free port) in front of a
mock model server that starts failing, a real HTTP receiver for the alerts, and (issue #9's Done-when) a real
Prometheus server scraping that `aisre serve` and evaluating the rules of `aisre slo rules`.

Alert windows are short (page: 5m over 2m, period 1h) so a burn shows within minutes; both evaluators
count whole minutes at best, so each scenario runs a minute or two of wall-clock time and polls with wide
deadlines (no tight time bounds: CI machines are busy). Those minutes are mostly waiting for a minute to close,
so the receiver scenario runs on a background thread while the Prometheus test runs (`paging_scenario`): the
two share their minutes instead of queueing them, and its test asserts what the scenario asserted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import aisre
from aisre.clock import ManualClock
from aisre.config import load_config
from aisre.slo import evaluate
from aisre.store.sqlite import SQLiteStore
from aisre.testing.openai_server import openai_app
from aisre.testing.server import free_port, serve_in_thread
from aisre.testing.settings import MockSettings

from .alert_receiver import AlertReceiver

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
PAGE_FAST = {"page": [{"long": "5m", "short": "2m", "budget_percent": 2, "burn_rate": 2}], "ticket": []}
#: The receiver test only needs a page to fire and resolve: one closed minute each way.
PAGE_QUICK = {"page": [{"long": "2m", "short": "1m", "budget_percent": 2, "burn_rate": 2}], "ticket": []}


def write_config(tmp_path: Path, mock_url: str, slos: list[dict[str, Any]], receiver_url: str | None = None) -> Path:
    doc: dict[str, Any] = {
        "store": {"url": f"sqlite:///{tmp_path / 'aisre.db'}", "durability": "fast"},
        "models": {
            "chat": {"protocol": "openai", "versions": {"v1": {"replicas": [f"{mock_url}/v1"]}}},
            "scorer": {"protocol": "openai", "versions": {"v1": {"replicas": [f"{mock_url}/v1"]}}},
        },
        "slos": slos,
        "slo_evaluation": {"interval": "1s"},
    }
    if receiver_url:
        doc["notifications"] = {"receivers": [{"name": "pager", "webhook": receiver_url}]}
    path = tmp_path / "aisre.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def chat_availability(**alerting: Any) -> dict[str, Any]:
    return {
        "name": "chat-availability",
        "model": "chat",
        "objective": 0.9,
        "period": "1h",
        "sli": {"kind": "availability"},
        "alerting": {**PAGE_FAST, **alerting},
    }


class Serve:
    """`python -m aisre serve -c CONFIG --port FREE` as a subprocess; its output goes to serve.log."""

    def __init__(self, tmp_path: Path, config: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "serve.log"
        self._log = self.log_path.open("wb")
        cmd = [sys.executable, "-m", "aisre", "serve", "-c", str(config), "--port", str(self.port)]
        cmd += ["--workers", str(workers)]
        self.process = subprocess.Popen(cmd, env=dict(os.environ), stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None and time.monotonic() < deadline, self.log()
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text()[-4000:]

    def chat(self, client: httpx.Client) -> int:
        return client.post(f"{self.url}/v1/chat/completions", json=CHAT, timeout=30).status_code

    def metric(self, name: str, **labels: str) -> float | None:
        """A sample of /metrics; with several workers only the judging one has the SLO metrics, so a few
        fresh connections (each may land on any worker) are tried."""
        from prometheus_client.parser import text_string_to_metric_families

        for _ in range(30):
            with httpx.Client() as fresh:
                text = fresh.get(f"{self.url}/metrics").text
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                        return s.value
        return None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self._log.close()


def set_mock(mock_url: str, **settings: Any) -> None:
    httpx.post(f"{mock_url}/_mock/settings", json=settings).raise_for_status()


def page_and_resolve(tmp_path: Path) -> None:
    """With two workers, exactly one judges: the receiver gets one firing and one resolved, not two of each.
    (One worker is the same path with the lock never contended; tests/test_slo_service.py covers the judge.)"""
    workers = 2
    mock = serve_in_thread(openai_app(MockSettings(completion_tokens=2, fail_rate=1.0, fail_status=500)))
    receiver = AlertReceiver()
    config = write_config(tmp_path, mock.url, [chat_availability(**PAGE_QUICK, notify=["pager"])], receiver.url)
    serve = Serve(tmp_path, config, workers)
    try:
        with httpx.Client() as client:
            statuses: set[int] = set()
            deadline = time.monotonic() + 240  # a closed minute of failures is needed: up to ~1 min + a tick
            while not any(s == "firing" for s, _, _ in receiver.statuses()):
                assert time.monotonic() < deadline, (receiver.statuses(), serve.log())
                statuses.add(serve.chat(client))
                time.sleep(0.05)
            assert statuses == {500} or all(s >= 500 for s in statuses), statuses
            firing = receiver.wait_for("firing")
            assert firing["labels"]["alertname"] == "ChatAvailabilitySLO"
            assert firing["labels"]["sloth_severity"] == "page"
            assert "burning its error budget" in firing["annotations"]["summary"]
            assert serve.metric("aisre_slo_alert_state", slo="chat-availability", severity="page", state="firing") == 1
            assert (serve.metric("aisre_slo_burn_rate", slo="chat-availability", window="1m") or 0) > 2
            set_mock(mock.url, fail_rate=0.0)  # recovery: the 1m window fills with a good minute
            deadline = time.monotonic() + 300
            while not any(s == "resolved" for s, _, _ in receiver.statuses()):
                assert time.monotonic() < deadline, (receiver.statuses(), serve.log())
                assert serve.chat(client) == 200
                time.sleep(0.05)
        resolved = receiver.wait_for("resolved")
        assert resolved["fingerprint"] == firing["fingerprint"]
        assert [s for s, _, sev in receiver.statuses() if sev == "page"] == ["firing", "resolved"]
        assert serve.metric("aisre_slo_alert_state", slo="chat-availability", severity="page", state="resolved") == 1
    finally:
        serve.stop()
        receiver.stop()
        mock.stop()
    assert "Traceback" not in serve.log_path.read_text()


class Background:
    """A scenario on a daemon thread; `result` waits for it and re-raises what it raised (with its message)."""

    def __init__(self, scenario: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(scenario,), daemon=True, name="e2e-scenario")
        self.thread.start()

    def _run(self, scenario: Callable[[], None]) -> None:
        try:
            scenario()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread by `result`
            self.error = exc

    def result(self, timeout_s: float) -> None:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), f"the scenario is still running after {timeout_s} s"
        if self.error is not None:
            raise self.error


@pytest.fixture(scope="module")
def paging_scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background]:
    """`page_and_resolve`, started by the first test of this module that asks for it (the Prometheus test asks
    only so the scenario's minutes pass while it waits for its own); joined at the module's end either way, so
    its serve, mock and receiver are stopped."""
    tmp_path = tmp_path_factory.mktemp("paging")  # here: the factory is not thread-safe (the test's tmp_path)
    background = Background(lambda: page_and_resolve(tmp_path))
    yield background
    background.thread.join(700)


# -- Done when: a real Prometheus scrapes a real aisre serve and evaluates the rules ---------------------------------


class Prometheus:
    """The Debian `prometheus` binary with a config scraping `target` every second and evaluating `rules`."""

    def __init__(self, tmp_path: Path, target: str, rules: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": "aisre", "static_configs": [{"targets": [target]}]}],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log_path = tmp_path / "prometheus.log"
        self._log = self.log_path.open("wb")
        cmd = [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/-/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None and time.monotonic() < deadline, self.log_path.read_text()[-3000:]
            time.sleep(0.2)

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr} | ({"time": at} if at is not None else {})
        body = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=30).json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def log(self) -> str:
        return self.log_path.read_text()[-3000:]

    def value(self, expr: str, at: float | None = None) -> float | None:
        result = self.query(expr, at)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self._log.close()


def poll(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not reached within {timeout_s} s: {what}"
        time.sleep(0.5)


@pytest.fixture
def prometheus_binary() -> Iterator[str]:
    path = shutil.which("prometheus")
    if path is None:  # `make test` apt-installs it (Makefile DEBIAN_PACKAGES)
        pytest.skip("the prometheus binary is not installed (make test installs Debian's prometheus)")
    yield path


@pytest.mark.usefixtures("paging_scenario")  # only to run the receiver scenario meanwhile (module docstring)
def test_prometheus_scraping_aisre_serve_evaluates_the_rules_like_the_embedded_judge(
    tmp_path: Path, prometheus_binary: str
) -> None:
    """Availability from the gateway's request counter, correctness and a quality timeslice SLI from
    `aisre_slo_events_total`: Prometheus's recorded ratios and page alert agree with the embedded judge.

    "Within rounding": both evaluators count the same requests over (t - 5m, t], but Prometheus sees them
    through 1 s scrapes and extrapolates `rate()` to the window's edges, so up to about a scrape interval of
    requests at each edge (and the first scrape of a series that is born inside the window) are counted
    differently: about 1% of a 5-minute window (measured: 0.2455 vs 0.2429). The availability ratio is
    compared within 0.02 (absolute), its 2m burn rate within 0.2 (0.02 / the 0.1 budget).
    The counter-fed SLIs move a whole closed minute at a time, good and bad together, so there the ratios are
    equal to 1e-9.
    """
    mock = serve_in_thread(openai_app(MockSettings(completion_tokens=2, fail_rate=0.0, fail_status=500, seed=7)))
    slos = [
        chat_availability(),
        {
            "name": "scorer-correctness",
            "model": "scorer",
            "objective": 0.5,
            "period": "1h",
            "sli": {"kind": "correctness"},
            "alerting": PAGE_FAST,
        },
        {
            "name": "scorer-accuracy",
            "model": "scorer",
            "objective": 0.9,
            "period": "1h",
            "timeslice": "1m",
            "sli": {"kind": "quality", "metric": "accuracy", "min": 0.9},
            "alerting": PAGE_FAST,
        },
    ]
    config = write_config(tmp_path, mock.url, slos)
    rules = tmp_path / "rules.yml"
    out = subprocess.run(
        [sys.executable, "-m", "aisre", "slo", "rules", "-c", str(config), "-o", str(rules)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    serve = Serve(tmp_path, config)
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{serve.port}", rules)
    db = tmp_path / "aisre.db"
    client = httpx.Client()
    try:
        poll(lambda: prometheus.value('up{job="aisre"}') == 1, 60, "Prometheus scrapes aisre serve")

        def traffic(seconds: float) -> None:  # chat requests through the gateway + scorer predictions by the SDK
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                serve.chat(client)
                now = time.time()
                rids = [monitor.record({"x": i}, 1, ts=now) for i in range(4)]
                monitor.flush()
                monitor.label_many([(rid, 1 if i < 3 else 0) for i, rid in enumerate(rids)], ts=now)  # 3 right, 1 wrong
                time.sleep(0.05)

        with aisre.Monitor("scorer", "v1", store=f"sqlite:///{db}") as monitor:
            correctness = 'slo:sli_error:ratio_rate5m{sloth_slo="scorer-correctness"}'
            traffic(5)
            ratio = 'slo:sli_error:ratio_rate5m{sloth_slo="chat-availability"}'
            # Nothing fails yet: no page. (As with Sloth's rules, the ratio has no data until a first 5xx
            # series exists: `sum(rate(...))` of no series is empty, and so never alerts.)
            page = 'ALERTS{alertname="ChatAvailabilitySLO", sloth_severity="page", alertstate="firing"}'
            assert prometheus.query(page) == []
            assert prometheus.value(ratio) in (None, 0.0)
            # The counter-fed correctness ratio appears once a minute has closed and been exported.
            poll(lambda: prometheus.query(correctness) or traffic(1), 180, "the correctness ratio is recorded")

            set_mock(mock.url, fail_rate=0.25)  # a quarter of the requests fail: burn rate 2.5 > 2 on both windows
            fired = []
            deadline = time.monotonic() + 300
            while not fired:
                assert time.monotonic() < deadline, ("no page in ALERTS", serve.log(), prometheus.log())
                traffic(2)
                fired = prometheus.query(page)

            # The embedded judge pages too, once a closed minute holds enough failures. The traffic goes on
            # meanwhile: a pause would leave later minutes empty and the 5m ratio might never reach the page.
            def judge_pages() -> bool:
                state = serve.metric("aisre_slo_alert_state", slo="chat-availability", severity="page", state="firing")
                return state == 1

            poll(lambda: judge_pages() or traffic(1), 180, "the embedded judge pages")
            # The minute boundary it paged on (or a later one): traffic ran through it; keep it going 3 s past,
            # so Prometheus has scraped and evaluated across the boundary too ...
            boundary = time.time() // 60 * 60
            while time.time() < boundary + 3:
                traffic(1)
        # ... then compare both evaluators over the same window, ending at that minute boundary.
        at = boundary
        cfg = load_config(config)
        embedded = {r.name: r for r in evaluate(cfg.slos, SQLiteStore(db), ManualClock(at))}
        prom_ratio = poll(lambda: prometheus.value(ratio, at), 30, "a recorded ratio at the boundary")
        embedded_ratio = embedded["chat-availability"].burn_rates["5m"] * 0.1
        print(f"availability error ratio over 5m at {at}: Prometheus {prom_ratio}, embedded {embedded_ratio}")
        assert 0.1 < embedded_ratio < 0.45  # the mock fails a quarter of the requests (seeded draw)
        assert prom_ratio == pytest.approx(embedded_ratio, abs=0.02)
        burn = prometheus.value('slo:current_burn_rate:ratio{sloth_slo="chat-availability"}', at)
        assert burn == pytest.approx(embedded["chat-availability"].burn_rates["2m"], abs=0.2)  # 0.02 / 0.1 budget

        assert prometheus.value(correctness) == pytest.approx(0.25, abs=1e-9)
        assert embedded["scorer-correctness"].burn_rates["5m"] * 0.5 == pytest.approx(0.25, abs=1e-9)
        accuracy = 'slo:sli_error:ratio_rate5m{sloth_slo="scorer-accuracy"}'
        assert poll(lambda: prometheus.value(accuracy), 60, "the accuracy slices from aisre_slo_events_total")
        assert prometheus.value(accuracy) == pytest.approx(1.0, abs=1e-9)  # accuracy 0.75 < 0.9: every slice bad
        assert embedded["scorer-accuracy"].burn_rates["5m"] * 0.1 == pytest.approx(1.0, abs=1e-9)
        events = serve.metric("aisre_slo_events_total", slo="scorer-correctness", outcome="bad")
        assert events is not None and events > 0
    finally:
        client.close()
        prometheus.stop()
        serve.stop()
        mock.stop()
    assert "Traceback" not in serve.log_path.read_text()


# After the Prometheus test, which started the scenario: pytest runs a module's tests in file order.
@pytest.mark.timeout(900)
def test_serve_pages_the_receiver_when_every_request_fails_and_resolves_after_recovery(
    paging_scenario: Background,
) -> None:
    paging_scenario.result(700)  # longer than the scenario's own deadlines, so those report what was missing
