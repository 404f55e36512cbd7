"""The gateway's own Prometheus metrics, beside the per-inference ones of the Recorder."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# The `reason` label of aisre_gateway_rejected_requests_total, by HTTP status.
REJECTED_REASONS = {
    401: "unauthenticated",
    403: "forbidden",
    404: "unknown_model",
    413: "too_large",
    429: "rate_limited",
}
# The status_class of a request whose client disconnected first (nginx's 499 "client closed
# request"): not a 2xx, and still matched by status_class=~"4..".
CANCELLED_STATUS_CLASS = "499"
OVERHEAD_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.in_flight = Gauge(
            "aisre_gateway_in_flight_requests", "Requests being served.", ["model"], registry=registry
        )
        self.requests = Counter(
            "aisre_gateway_requests",
            "Requests answered, by HTTP status class.",
            ["model", "version", "status_class"],
            registry=registry,
        )
        self.upstream_errors = Counter(
            "aisre_upstream_errors",
            "Failed attempts to reach an upstream.",
            ["model", "version", "kind"],
            registry=registry,
        )
        self.retries = Counter(
            "aisre_upstream_retries", "Retries to another replica.", ["model", "version"], registry=registry
        )
        self.ejections = Gauge(
            "aisre_replicas_ejected",
            "Replicas currently ejected (outlier detection).",
            ["model", "version"],
            registry=registry,
        )
        self.shadow = Counter(
            "aisre_shadow_requests",
            "Requests mirrored to a shadow version, by outcome.",
            ["model", "version", "outcome"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "aisre_fallbacks", "Requests served by a fallback version.", ["model", "version"], registry=registry
        )
        self.overhead = Histogram(
            "aisre_gateway_overhead_seconds",
            "Time spent in the gateway itself (total minus upstream), in seconds.",
            ["model"],
            registry=registry,
            buckets=OVERHEAD_BUCKETS_S,
        )
        self.rejected = Counter(
            "aisre_gateway_rejected_requests",
            "Requests refused before any upstream call.",
            ["reason"],
            registry=registry,
        )
