"""The `dashboard:` section: the web dashboard served by `aisre serve` at /dashboard/ (docs/dashboard.md)."""

from __future__ import annotations

from pydantic import Field

from aisre.config.base import Section


class DashboardConfig(Section):
    """`enabled`: serve the dashboard and its JSON API at `/dashboard/` in `aisre serve` (and `aisre demo`).

    Its API needs `auth.admin_key` when one is set (Bearer token or the login cookie); without one it is
    open, like the rest of a local gateway (which binds to 127.0.0.1 by default).
    """

    enabled: bool = Field(
        True,
        description=(
            "Serve the web dashboard and its JSON API at /dashboard/ in `aisre serve` (the admin key guards "
            "the API when `auth.admin_key` is set)."
        ),
    )
