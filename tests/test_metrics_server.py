"""The /metrics endpoint a Monitor serves: its `url` must be one a scraper can use."""

from __future__ import annotations

import socket
import urllib.request
from urllib.parse import urlsplit

import pytest

from aisre.telemetry import Metrics


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        pytest.param("::1", marks=pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")),
    ],
)
def test_metrics_url_names_host_and_port_so_a_scraper_reaches_it(host: str):
    server = Metrics().serve(host, 0)
    try:
        parts = urlsplit(server.url)
        assert parts.hostname == host  # an IPv6 literal in brackets, or its colons would read as the port
        assert parts.port == server.port
        assert urllib.request.urlopen(server.url, timeout=5).status == 200
    finally:
        server.close()
