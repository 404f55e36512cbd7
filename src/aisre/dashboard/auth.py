"""Who may read the dashboard's API: anyone without `auth.admin_key`; with it, the admin key as a Bearer
token or the `aisre_dashboard` cookie that `POST /dashboard/login` sets.

The cookie holds an HMAC of the admin key (never the key itself), so a leaked cookie does not reveal the
key and changing the key logs every browser out. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

COOKIE = "aisre_dashboard"
_CONTEXT = b"aisre-dashboard-session-v1"


class DashboardAccess:
    def __init__(self, admin_key: str | None) -> None:
        self.admin_key = admin_key or None

    @property
    def required(self) -> bool:
        return self.admin_key is not None

    def session_token(self) -> str:
        assert self.admin_key is not None
        return hmac.new(self.admin_key.encode(), _CONTEXT, hashlib.sha256).hexdigest()

    def key_matches(self, key: str) -> bool:
        return self.admin_key is not None and hmac.compare_digest(key.encode(), self.admin_key.encode())

    def refusal(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
        """None when the caller may read; else why not (for the 401 message)."""
        if self.admin_key is None:
            return None
        header = headers.get("authorization")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return "authorization: expected 'Bearer <admin key>'"
            if self.key_matches(token.strip()):
                return None
            return "authorization: the bearer token is not the admin key"
        cookie = cookies.get(COOKIE)
        if cookie:
            if hmac.compare_digest(cookie.encode(), self.session_token().encode()):
                return None
            return "authorization: the dashboard session is not valid (the admin key changed?); log in again"
        return "authorization: the dashboard needs the admin key: 'Authorization: Bearer <admin key>' or log in"
