"""The HTML drift report of one stored window (placeholder while being built)."""

from __future__ import annotations

from typing import Any


def drift_report_html(
    config: Any, store: Any, model: str, version: str, since: float, until: float, monitor: str | None
) -> str:
    raise NotImplementedError
