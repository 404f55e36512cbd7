"""`aisre dashboard` (being built in this session by its owner; see docs/dashboard.md)."""

from __future__ import annotations

from aisre.cli.common import fail


def dashboard_command() -> None:
    """Not built yet."""
    raise fail("aisre dashboard is not built yet")
