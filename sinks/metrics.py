"""Prometheus metrics of the ClickHouse sink."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter(
    "smsfunnel_sink_records_total", "Kafka records consumed and written to ClickHouse."
)
ROWS_WRITTEN = Counter(
    "smsfunnel_sink_rows_written_total", "Rows inserted into ClickHouse, by table.", ["table"]
)
BATCHES = Counter(
    "smsfunnel_sink_batches_total", "Batches written to ClickHouse (their commit then sent)."
)
FLUSH_SECONDS = Histogram(
    "smsfunnel_sink_flush_seconds",
    "Time to insert a batch, recompute its aggregates and commit its offsets.",
)
SINK_DEAD_LETTERS = Counter(
    "smsfunnel_sink_dead_letters_total",
    "Records the sink could not read, kept in dead_letters, by source topic.",
    ["topic"],
)
QUERIES = Counter(
    "smsfunnel_sink_queries_total", "Read-only queries served on /query, by outcome.", ["outcome"]
)
SKIPPED_INBOUND = Counter(
    "smsfunnel_sink_unreadable_inbound_total",
    "Unreadable inbound-SMS records skipped by the sink: the worker's attribution stage already "
    "wrote them to dead_letters, so the sink does not write a second letter.",
)
COMMIT_FAILURES = Counter(
    "smsfunnel_sink_commit_failures_total",
    "Offset commits that failed after their batches were written, by what the sink did: retried "
    "(broker or coordinator away; the offsets are sent again, with later batches' or on their "
    "own) or dropped (the partitions went to another owner, which re-delivers those batches).",
    ["action"],
)
UNCOMMITTED_PARTITIONS = Gauge(
    "smsfunnel_sink_uncommitted_partitions",
    "Partitions whose written batches' offsets Kafka has not yet acknowledged. Stays above zero "
    "only while commits fail (broker or coordinator away).",
)
EVENT_TO_QUERYABLE = Histogram(
    "smsfunnel_sink_event_to_queryable_seconds",
    "Per funnel row written: from the newest event it folds (event time) to ClickHouse "
    "acknowledging the insert, when the row is queryable. Backfilled history lands in the last "
    "buckets; the latency objective is read from the first ones.",
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600, 7 * 86400),
)
CAMPAIGN_HEALTH_FINDINGS = Gauge(
    "smsfunnel_campaign_health_findings",
    "Campaigns with a campaign-health finding at the sink's last diagnostics run (default "
    "thresholds; `smsfunnel diagnose` prints them), by check.",
    ["check"],
)
CAMPAIGN_HEALTH_RUNS = Counter(
    "smsfunnel_campaign_health_runs_total",
    "Runs of the campaign-health diagnostics in the sink, by outcome (ok, failed).",
    ["outcome"],
)
CONSUMER_LAG = Gauge(
    "smsfunnel_sink_consumer_lag_records",
    "Records on an input partition the sink is assigned that it has not fetched yet (log end "
    "as of its last fetch, less its position), every second.",
    ["topic", "partition"],
)
BATCH_BYTES = Histogram(
    "smsfunnel_sink_batch_bytes",
    "Bytes of the Kafka record values in each batch written.",
    buckets=(1e3, 1e4, 1e5, 1e6, 4e6, 16e6, 64e6),
)
