"""The demo's options and its serving socket: light (no data libraries), so the CLI checks a busy port before
the seconds of imports and training."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aisre.errors import InvalidParameterError


@dataclass
class DemoOptions:
    fast: bool = False  # no pacing: the same story in seconds
    exit_after: bool = False  # end when the story ends (else serve until Ctrl-C)
    host: str = "127.0.0.1"
    port: int = 8080
    workdir: Path = Path(".")
    json_out: Path | None = None
    llm_url: str | None = None  # an OpenAI-compatible server for the LLM route (--real-llm), else the mock


@dataclass
class DemoResult:
    run: Any  # the drill's DrillRun
    wall_s: float
    totals: dict[str, Any] = field(default_factory=dict)


def bind(host: str, port: int) -> socket.socket:
    """The serving socket, bound now (before minutes of training and traffic) so a busy port fails at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidParameterError(
            f"--port: cannot listen on {host}:{port} ({exc.strerror or exc}); pick a free one with --port N"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock
