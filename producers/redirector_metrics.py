"""Prometheus metrics of the Python redirector (the compiled one registers the same names)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CLICKS = Counter(
    "smsfunnel_redirector_clicks_total",
    "Requests to the redirector, by outcome: redirected, not_found (unknown, tampered or "
    "expired token: 404, never a redirect).",
    ["outcome"],
)
CLICKS_LOST = Counter(
    "smsfunnel_redirector_clicks_lost_total",
    "Redirected clicks Kafka never acknowledged (queue full, or refused after retries).",
)
CLICKS_BUFFERED = Gauge(
    "smsfunnel_redirector_clicks_buffered",
    "Clicks handed to the producer and not yet acknowledged: what a crash now would lose.",
)
LINKS_KNOWN = Gauge("smsfunnel_redirector_links", "Tracked links in the redirector's registry.")
