"""Shared fixtures: real files in a temp dir, free ports on 127.0.0.1."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

import aisre

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "aisre.db"


@pytest.fixture
def store(db_path: Path):
    s = aisre.open_store(f"sqlite:///{db_path}")
    yield s
    s.close()
