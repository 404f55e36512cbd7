"""Who may read the operator's surfaces: the bearer tokens of the admin API and of /metrics.

Client keys (hashed, revocable) live in `store/keys.py`; these are the operator's own static
tokens from the config, compared in constant time against every accepted token.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from aisre.config.gateway import AuthConfig
from aisre.gateway.errors import GatewayError

# RFC 6750: a 401 says which scheme it wants.
CHALLENGE = {"www-authenticate": "Bearer"}


def bearer_token(headers: Mapping[str, str]) -> bytes:
    """The token of `Authorization: Bearer <token>`, or b"" when there is none."""
    given = headers.get("authorization", "")
    return given[7:].strip().encode() if given.lower().startswith("bearer ") else b""


def token_matches(given: bytes, accepted: list[bytes]) -> bool:
    """Whether `given` is one of `accepted`; every token is compared, so timing tells nothing."""
    matched = False
    for token in accepted:
        matched |= hmac.compare_digest(given, token)
    return matched and bool(given)


class MetricsAccess:
    """/metrics is public, or wants the metrics token (or the admin key): see `AuthConfig`."""

    def __init__(self, auth: AuthConfig) -> None:
        tokens = [t.strip().encode() for t in (auth.metrics_token, auth.admin_key) if t and t.strip()]
        self.tokens: list[bytes] | None = tokens if auth.metrics_protected else None

    def refusal(self, headers: Mapping[str, str]) -> GatewayError | None:
        """None when the caller may read /metrics; else the 401 to answer."""
        if self.tokens is None or token_matches(bearer_token(headers), self.tokens):
            return None
        return GatewayError(
            401,
            "/metrics is protected: send 'Authorization: Bearer <auth.metrics_token>' "
            "(in Prometheus: authorization: {credentials_file: ...} in the scrape config)",
            headers=dict(CHALLENGE),
        )
