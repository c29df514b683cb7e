"""Prometheus metrics of the join worker (one catalogue; each says what it measures)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

EVENTS_JOINED = Counter(
    "smsfunnel_join_events_total",
    "Distinct events folded into per-message state, by event type.",
    ["event_type"],
)
DUPLICATE_EVENTS = Counter(
    "smsfunnel_join_duplicate_events_total",
    "Events dropped as repeats of an event id already folded (retried webhooks, replays).",
    ["event_type"],
)
DEAD_LETTERS = Counter(
    "smsfunnel_join_dead_letters_total",
    "Records sent to the dead-letter topic instead of being joined, by source topic and reason.",
    ["topic", "reason"],
)
FUNNEL_ROWS_EMITTED = Counter(
    "smsfunnel_join_funnel_rows_emitted_total",
    "Funnel row versions produced (the last of each message in each checkpoint).",
)
OUTPUTS_SUPERSEDED = Counter(
    "smsfunnel_worker_outputs_superseded_total",
    "Output records not produced because a later version of the same message's row or "
    "snapshot was made in the same checkpoint, by topic.",
    ["topic"],
)
EVENT_LAG_SECONDS = Histogram(
    "smsfunnel_join_event_lag_seconds",
    "Processing time minus event time of joined events.",
    buckets=(0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400),
)
ATTRIBUTION_INPUTS = Counter(
    "smsfunnel_attribution_inputs_total",
    "Inputs of the attribution stage: applied to subscriber state, repeats/stale versions, or "
    "late (more than the allowed lateness behind the subscriber's newest event, or a snapshot "
    "of a retired message; written to the late-events topic).",
    ["outcome"],
)
SUBSCRIBER_RETIRED = Counter(
    "smsfunnel_attribution_retired_total",
    "Parts of subscriber state retired once no input within the allowed lateness can change "
    "them (stream_processors/subscriber_retention.py): stripped (a message's snapshot cut to "
    "its deliveries), dropped (a message gone), conversions, inbound, markers (forgotten).",
    ["part"],
)
UNRESOLVED_RECEIPTS = Counter(
    "smsfunnel_resolver_inputs_total",
    "Resolver inputs: 'held' when receipts wait for their send's provider id, 'late' for a "
    "receipt of a provider id already forgotten (written to the late-events topic), else "
    "'resolved'.",
    ["outcome"],
)
RESOLVER_EVICTED = Counter(
    "smsfunnel_resolver_states_evicted_total",
    "Resolver states forgotten on event time: reference (its message's horizon passed), "
    "orphan (receipts whose send never came, counted when written out; the state becomes a "
    "marker once that is committed), marker (closed markers forgotten).",
    ["kind"],
)
WORKER_REJOINS = Counter(
    "smsfunnel_worker_rejoins_total",
    "Times the worker dropped its open checkpoint, rebuilt its app and joined the group again, "
    "by reason: commit_refused (the group had moved on without it, e.g. its session expired "
    "while the broker was away), assignment_failed (a partition had no leader yet when the "
    "worker was assigned it), consumer_error (the same while restoring state from a changelog). "
    "The group replays from its last commit.",
    ["reason"],
)
WORKER_CONSUMER_ERRORS = Counter(
    "smsfunnel_worker_consumer_errors_total",
    "Transient errors the worker's consumer reported for a partition (no leader yet, broker "
    "transport) and rode out: nothing was consumed, the fetch goes on; by Kafka error name.",
    ["code"],
)
LATE_EVENTS = Counter(
    "smsfunnel_join_late_events_total",
    "Events written to the late-events topic instead of a funnel row, by reason: after_window "
    "(past the message's horizon), window_closed (arrived after its state was evicted), "
    "orphan (no send came within a horizon).",
    ["reason"],
)
STATES_EVICTED = Counter(
    "smsfunnel_join_states_evicted_total",
    "Per-message states evicted once the watermark passed their hold time plus the allowed "
    "lateness (message; orphan: counted when its events are written out, the state becomes a "
    "marker once that is committed), and closed markers forgotten later (marker).",
    ["kind"],
)
WATERMARK = Gauge(
    "smsfunnel_join_watermark_timestamp_seconds",
    "Event-time watermark of each join input partition (newest event time seen).",
    ["partition"],
)
EVICTION_SCHEDULED = Gauge(
    "smsfunnel_join_eviction_schedule_entries",
    "Entries in the in-memory eviction schedule (about one per open message or marker).",
)
RESOLVER_SCHEDULED = Gauge(
    "smsfunnel_resolver_eviction_schedule_entries",
    "Entries in the resolver's eviction schedule (about one per held reference, receipt or "
    "marker).",
)
CONSUMER_LAG = Gauge(
    "smsfunnel_worker_consumer_lag_records",
    "Records on an input partition this worker is assigned that it has not fetched yet (log "
    "end as of its last fetch, less its position), at its last checkpoint.",
    ["topic", "partition"],
)
PARTITIONS_OPENED = Counter(
    "smsfunnel_worker_partitions_opened_total",
    "A stage's partition store opened after an assignment or a recovery (rebalances), by stage.",
    ["stage"],
)


class Children:
    """A labelled metric's children by label values, each looked up once: `labels()` builds
    its key and takes a lock on every call, several times per event on the hot path."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self.cache.get(values)
        if child is None:
            child = self.cache[values] = self.metric.labels(*values)
        return child


JOINED = Children(EVENTS_JOINED)
DUPLICATES = Children(DUPLICATE_EVENTS)
LATE = Children(LATE_EVENTS)
WATERMARKS = Children(WATERMARK)
ATTRIBUTION_INPUT = Children(ATTRIBUTION_INPUTS)
UNRESOLVED = Children(UNRESOLVED_RECEIPTS)
