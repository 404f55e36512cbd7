"""The dashboard's browser tests' parts: a real drill's store, the dashboard served over it by uvicorn on
127.0.0.1 (on the drill's clock), and Debian's Chromium driven by Playwright with console and network watch."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from aisre.clock import ManualClock
from aisre.config import AisreConfig
from aisre.config.loader import config_from_dict
from aisre.drills import Drill, DrillRun, load_scenario
from aisre.drills.engine import DrillHooks

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here (None when they can): `make test` installs Debian's chromium."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return (
            f"{CHROMIUM} is missing: install Debian's chromium (make system-deps) to run the dashboard's browser tests"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[dev]'"
    return None


class _CaptureModels(DrillHooks):
    """Keeps the `models:` section the drill serves, to describe the same models to the dashboard."""

    captured: dict[str, Any] = {}

    def models(self, models: dict[str, Any]) -> dict[str, Any]:
        self.captured = models
        return models


@dataclass
class DrillStore:
    """A finished drill: its run (timeline), the config of its store and parts, and the time its clock ended at."""

    run: DrillRun
    config: AisreConfig
    doc: dict[str, Any]  # the same config as an aisre.yaml document
    end: float
    start: float


def run_drill(scenario_path: Path, workdir: Path) -> DrillStore:
    """Runs the drill for real (gateway, store, monitors, SLO judge, playbooks) into `workdir`."""
    scenario = load_scenario(str(scenario_path))
    hooks = _CaptureModels()
    run = Drill(scenario, workdir, hooks).run()
    s = scenario
    sections = dict(s.aisre)
    warmup = {"since": s.clock.start, "until": s.clock.start + s.clock.warmup_s}
    sections["monitors"] = [
        {**m, "reference": warmup} if isinstance(m, dict) and m.get("reference") == "warmup" else m
        for m in sections.get("monitors", [])
    ]
    doc = {"store": {"url": f"sqlite:///{workdir / 'aisre.db'}"}, "models": hooks.captured, **sections}
    config = config_from_dict(doc, "drill")
    return DrillStore(run, config, doc, s.clock.start + s.clock.duration_s, s.clock.start)


class DashboardServer:
    """`aisre dashboard` in a thread: the dashboard app (under /dashboard) over a store, uvicorn on a free port."""

    def __init__(self, config: AisreConfig, now: float) -> None:
        from aisre.dashboard.app import Prefixed, dashboard_app
        from aisre.store import open_store

        self.store = open_store(config.store.url)
        self.app = Prefixed(dashboard_app(config, self.store, clock=ManualClock(now)))
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dashboard/"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self._sock.close()
        self.store.close()


class DashboardCommand:
    """`aisre dashboard -c CONFIG --port P` as a real process (the server's own clock: today, not the drill's)."""

    def __init__(self, config_path: Path, *args: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command = [sys.executable, "-m", "aisre", "dashboard", "-c", str(config_path), "--port", str(self.port), *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"aisre dashboard exited: {self.process.stdout.read() if self.process.stdout else ''}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("aisre dashboard did not listen within 30 s") from None
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dashboard/"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@dataclass
class PageWatch:
    """What went wrong on a page: console errors, uncaught exceptions, failed or refused requests."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed_requests.append(f"{r.method} {r.url}: {r.failure}"))
        page.on("response", lambda r: self.bad_responses.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    def problems(self) -> list[str]:
        return [*self.console_errors, *self.page_errors, *self.failed_requests, *self.bad_responses]


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_page(page: Any, url: str, testid: str) -> None:
    """Go to a dashboard page and wait until it is drawn (its root element is in the main area)."""
    page.goto(url)
    page.wait_for_selector(f"#main [data-testid={testid}]", timeout=20_000)


def chart_points(page: Any, testid: str) -> int:
    """How many values the uPlot chart under `testid` draws (0 when it is an empty state or has no canvas)."""
    return page.evaluate(
        """(testid) => {
            const el = document.querySelector(`[data-testid="${testid}"]`);
            if (!el || !el.uplot || !el.querySelector("canvas")) return 0;
            const data = el.uplot.data.slice(1).filter((_, i) => el.uplot.kinds[i] !== "threshold");
            return data.flat().filter((v) => v !== null && v !== undefined).length;
        }""",
        testid,
    )
