"""aisre.dashboard: the web dashboard's data and JSON API (docs/dashboard.md).

- `DashboardData`: every API answer as plain dicts over a store - usable from a notebook.
- `dashboard_app`: the ASGI app (API, login, page, static files) mounted at `/dashboard`.
"""

from aisre.dashboard.app import dashboard_app
from aisre.dashboard.data import DashboardData
from aisre.dashboard.params import BadParameter, UnknownItem

__all__ = ["BadParameter", "DashboardData", "UnknownItem", "dashboard_app"]
