"""Run a mock (or any ASGI) server for a test: in a background thread, or as a subprocess that can be killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import fields
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import uvicorn
from starlette.types import ASGIApp

from aisre.testing.settings import MockSettings

HEALTH_PATHS = {"openai": "/health", "oip": "/v2/health/live"}


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind to 0, read it, release it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class _Lifecycle(ABC):
    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @abstractmethod
    def stop(self) -> None:
        """Stop the server and release its port."""


class RunningServer(_Lifecycle):
    """A uvicorn server on its own event loop in a daemon thread."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, sock: socket.socket, host: str) -> None:
        self._server, self._thread, self._sock = server, thread, sock
        self.host = host
        self.port: int = sock.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask uvicorn to exit (in-flight requests get `timeout_graceful_shutdown`), then join the thread."""
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout_s)
        self._sock.close()


def serve_in_thread(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout_s: float = 10.0,
    graceful_shutdown_s: float = 1.0,
) -> RunningServer:
    """Start `app` and return once it is listening; `port=0` picks a free port (read it from `.port`)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        app,
        host=host,
        port=sock.getsockname()[1],
        log_level="warning",
        access_log=False,
        # uvicorn annotates int but only passes it to asyncio.wait_for(timeout=), which takes seconds as a float
        timeout_graceful_shutdown=graceful_shutdown_s,  # type: ignore[arg-type]
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"aisre-testing-server-{sock.getsockname()[1]}"
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"server on {host}:{sock.getsockname()[1]} did not start within {startup_timeout_s} s")
        time.sleep(0.005)
    return RunningServer(server, thread, sock, host)


def settings_argv(settings: dict[str, Any]) -> list[str]:
    """Command-line flags of `python -m aisre.testing` for MockSettings keyword arguments."""
    known = {f.name for f in fields(MockSettings)}
    argv: list[str] = []
    for key, value in settings.items():
        if key not in known:
            raise TypeError(f"{key}: not a MockSettings field (known: {', '.join(sorted(known))})")
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        elif value is not None:
            argv += [flag, str(value)]
    return argv


class RunningProcess(_Lifecycle):
    """`python -m aisre.testing KIND` in a child process; `kill()` (SIGKILL) and `restart()` on the same port."""

    def __init__(
        self, kind: Literal["openai", "oip"], host: str, port: int, argv: list[str], startup_timeout_s: float
    ) -> None:
        self.kind, self.host, self.port = kind, host, port
        self.argv = argv
        self.startup_timeout_s = startup_timeout_s
        self.log_path = Path(tempfile.mkstemp(prefix=f"aisre-mock-{kind}-{port}-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Self:
        """Start the child and wait until its health endpoint answers 200."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        url = self.url + HEALTH_PATHS[self.kind]
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url, timeout=1.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        self.kill()
        raise RuntimeError(f"mock {self.kind} server on port {self.port} did not become healthy; log:\n{tail}")

    def kill(self) -> None:
        """SIGKILL: the process dies without closing its connections gracefully."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited after `timeout_s`."""
        if self.alive:
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log_path.unlink(missing_ok=True)

    def restart(self) -> Self:
        """Kill the process if it is still running, then start it again on the same port."""
        self.kill()
        return self.start()


def serve_in_subprocess(
    kind: Literal["openai", "oip"] = "openai",
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    sklearn: str | os.PathLike[str] | None = None,
    startup_timeout_s: float = 30.0,
    **settings: Any,
) -> RunningProcess:
    """Start a mock server in a child process (MockSettings fields as keywords) and wait until it is healthy."""
    if kind not in HEALTH_PATHS:
        raise ValueError(f"kind: expected 'openai' or 'oip', got {kind!r}")
    port = port or free_port(host)
    argv = [sys.executable, "-m", "aisre.testing", kind, "--host", host, "--port", str(port), *settings_argv(settings)]
    if sklearn is not None:
        if kind != "oip":
            raise ValueError("sklearn: only the oip server serves a scikit-learn model")
        argv += ["--sklearn", os.fspath(sklearn)]
    return RunningProcess(kind, host, port, argv, startup_timeout_s).start()
