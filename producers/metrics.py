"""Prometheus metrics of the ingest service (one catalogue; each says what it measures). The
redirector's are in redirector_metrics.py: a module registers its metrics where it is imported,
and each service exports only its own."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "smsfunnel_ingest_requests_total",
    "HTTP requests answered by the receivers, by route template and status code.",
    ["route", "status"],
)
EVENTS_PUBLISHED = Counter(
    "smsfunnel_ingest_events_total",
    "Events acknowledged by Kafka after a receiver or replay accepted them, by event type.",
    ["event_type"],
)
REJECTED = Counter(
    "smsfunnel_ingest_rejected_total",
    "Requests refused with a 4xx, by route template and reason (auth, invalid).",
    ["route", "reason"],
)
KAFKA_UNAVAILABLE = Counter(
    "smsfunnel_ingest_kafka_unavailable_total",
    "Requests answered 503 because Kafka did not acknowledge in time (the sender retries).",
    ["route"],
)
UNATTRIBUTABLE = Counter(
    "smsfunnel_ingest_unattributable_conversions_total",
    "Authenticated conversions nothing ties to an SMS (a postback whose click id does not "
    "verify for the account, an order with neither click id nor phone number), by source: "
    "kept in unattributable_conversions with their reason, not attributed. Counts requests, "
    "retries included; the table holds each once.",
    ["source"],
)
ADJUSTMENTS = Counter(
    "smsfunnel_ingest_adjustments_total",
    "Refunds, chargebacks and payout corrections acknowledged by Kafka, by kind. Counts "
    "requests, retries included; conversion_adjustments holds each adjustment id once.",
    ["kind"],
)
ACK_SECONDS = Histogram(
    "smsfunnel_ingest_ack_seconds",
    "Time from a receiver handing events to Kafka to the broker's acknowledgement.",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
