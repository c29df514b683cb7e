"""Kafka → ClickHouse sink for funnel rows and dead letters.

Pipeline (snuba's shape): poll → parse → batch (closes on size or age) → insert → recompute the
hourly aggregates the batch touched → commit offsets. Offsets are committed only after
ClickHouse acknowledged, so a crash replays at most the uncommitted batches. Commits are sent
without waiting (sinks/pending_offsets.py says why); a failed one is sent again.

Why a replay never counts twice: every write is an idempotent upsert by key.
  - funnel_rows: ReplacingMergeTree(version) keyed by (account, message_id); a replayed row
    repeats a (key, version) already there, and queries read FINAL.
  - dead_letters: keyed by (stage, topic, partition, offset).
  - inbound_events: keyed by (account, event id): a repeated inbound SMS replaces itself.
  - late_events: keyed by (account, event id) likewise.
  - funnel_hourly: recomputed from `funnel_rows FINAL` for each touched (account, campaign,
    send hour) cohort, so it is a function of the current rows, not of how often a row came.
Each insert also carries an insert_deduplication_token naming the batch's offset ranges, which
drops an identical replayed block outright; correctness does not depend on it.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import ValidationError

from schemas.adjustment import ConversionAdjustment
from schemas.attribution_credit import ConversionCredits, MessageResponse
from schemas.dead_letter import DeadLetter
from schemas.events import InboundEvent, parse_event
from schemas.funnel_row import FunnelRow
from schemas.late_event import LateEvent
from schemas.topics import (
    ATTRIBUTION_CREDITS,
    CONVERSION_ADJUSTMENTS,
    DEAD_LETTERS,
    INBOUND,
    LATE_EVENTS,
    MESSAGE_RESPONSES,
    SINK_INPUTS,
    UNATTRIBUTABLE_CONVERSIONS,
)
from schemas.unattributable import UnattributableConversion
from sinks import metrics
from sinks.failpoints import failpoint
from sinks.hourly_aggregate import ADJUSTED_COHORTS, RECOMPUTE_COHORTS
from sinks.pending_offsets import PendingOffsets
from smsfunnel.kafka_config import consumer_config, export_lag
from smsfunnel.settings import Settings

log = logging.getLogger(__name__)

COMMIT_PAUSE_MIN = 0.5  # seconds before a failed commit is sent again; doubles per failure
COMMIT_PAUSE_MAX = 5.0

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

FUNNEL_COLUMNS = [
    "account",
    "message_id",
    "version",
    "has_send",
    "campaign",
    "variant",
    "segment",
    "sender",
    "recipient_hash",
    "country",
    "carrier",
    "sent_at",
    "send_hour",
    "recipient_timezone",
    "send_local_hour",
    "send_local_weekday",
    "parts",
    "cost",
    "cost_currency",
    "delivery_status",
    "delivery_status_at",
    "failure_cause",
    "receipts",
    "clicks",
    "human_clicks",
    "first_click_at",
    "first_human_click_at",
    "landings",
    "engagements",
    "conversions",
    "discarded_conversions",
    "revenue",
    "after_window_conversions",
    "after_window_revenue",
    "attribution_window_hours",
    "order_ids",
    "first_event_at",
    "last_event_at",
]
CREDIT_COLUMNS = [
    "account",
    "recipient_hash",
    "order_id",
    "model",
    "version",
    "conversion_event_id",
    "source_message_id",
    "name",
    "converted_at",
    "amount",
    "currency",
    "touch_ids",
    "touch_kinds",
    "message_ids",
    "campaigns",
    "touched_at",
    "weights",
    "withdrawn",
]
RESPONSE_COLUMNS = [
    "account",
    "recipient_hash",
    "message_id",
    "sender",
    "version",
    "opt_outs",
    "first_opt_out_at",
    "opt_ins",
    "help_requests",
    "replies",
    "first_response_at",
]
DEAD_LETTER_COLUMNS = [
    "stage",
    "source_topic",
    "source_partition",
    "source_offset",
    "key_b64",
    "payload_b64",
    "reason",
    "failed_at",
]


def send_hour(row: FunnelRow) -> datetime:
    if row.sent_at is None:
        return EPOCH
    return row.sent_at.replace(minute=0, second=0, microsecond=0)


def funnel_columns(row: FunnelRow) -> list[object]:
    return [
        row.account,
        row.message_id,
        row.version,
        row.has_send,
        row.campaign,
        row.variant,
        row.segment,
        row.sender,
        row.recipient_hash,
        row.country,
        row.carrier,
        row.sent_at,
        send_hour(row),
        row.recipient_timezone,
        row.send_local_hour,
        row.send_local_weekday,
        row.parts,
        row.cost,
        row.cost_currency,
        row.delivery_status.value if row.delivery_status else "",
        row.delivery_status_at,
        row.failure_cause.value,
        row.receipts,
        row.clicks,
        row.human_clicks,
        row.first_click_at,
        row.first_human_click_at,
        row.landings,
        row.engagements,
        row.conversions,
        row.discarded_conversions,
        row.revenue,
        row.after_window_conversions,
        row.after_window_revenue,
        row.attribution_window_hours,
        row.order_ids,
        row.first_event_at,
        row.last_event_at,
    ]


INBOUND_COLUMNS = [
    "account",
    "event_id",
    "recipient_hash",
    "sender",
    "kind",
    "keyword",
    "needs_review",
    "occurred_at",
]


def inbound_columns(e: InboundEvent) -> list[object]:
    return [
        e.account,
        e.event_id,
        e.recipient_hash,
        e.sender,
        e.kind.value,
        e.keyword,
        e.needs_review,
        e.occurred_at,
    ]


LATE_COLUMNS = [
    "account",
    "message_id",
    "event_id",
    "event_type",
    "occurred_at",
    "reason",
    "campaign",
    "horizon",
    "watermark",
    "payload",
]


UNATTRIBUTABLE_COLUMNS = list(UnattributableConversion.model_fields)


ADJUSTMENT_COLUMNS = list(ConversionAdjustment.model_fields)


def adjustment_columns(a: ConversionAdjustment) -> list[object]:
    return [getattr(a, name) for name in ADJUSTMENT_COLUMNS]


def unattributable_columns(u: UnattributableConversion) -> list[object]:
    return [getattr(u, name) for name in UNATTRIBUTABLE_COLUMNS]


def late_columns(e: LateEvent) -> list[object]:
    return [
        e.account,
        e.message_id,
        e.event_id,
        e.event_type,
        e.occurred_at,
        e.reason.value,
        e.campaign,
        e.horizon,
        e.watermark,
        e.payload,
    ]


def credit_columns(c: ConversionCredits) -> list[object]:
    return [
        c.account,
        c.recipient_hash,
        c.order_id,
        c.model.value,
        c.version,
        c.conversion_event_id,
        c.source_message_id,
        c.name,
        c.converted_at,
        c.amount,
        c.currency,
        [x.touch_id for x in c.credits],
        [x.kind for x in c.credits],
        [x.message_id for x in c.credits],
        [x.campaign for x in c.credits],
        [x.touched_at for x in c.credits],
        [x.weight for x in c.credits],
        int(c.withdrawn),
    ]


def response_columns(r: MessageResponse) -> list[object]:
    return [
        r.account,
        r.recipient_hash,
        r.message_id,
        r.sender,
        r.version,
        r.opt_outs,
        r.first_opt_out_at,
        r.opt_ins,
        r.help_requests,
        r.replies,
        r.first_response_at,
    ]


def dead_letter_columns(d: DeadLetter) -> list[object]:
    return [
        d.stage,
        d.source_topic,
        d.source_partition,
        d.source_offset,
        d.key_b64,
        d.payload_b64,
        d.reason,
        d.failed_at,
    ]


@dataclass
class Batch:
    rows: dict[tuple[str, str], FunnelRow] = field(default_factory=dict)
    credits: dict[tuple[str, str, str, str], ConversionCredits] = field(default_factory=dict)
    responses: dict[tuple[str, str, str, str], MessageResponse] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    inbound: dict[tuple[str, str], InboundEvent] = field(default_factory=dict)
    late: dict[tuple[str, str], LateEvent] = field(default_factory=dict)
    unattributable: dict[tuple[str, str], UnattributableConversion] = field(default_factory=dict)
    adjustments: dict[tuple[str, str], ConversionAdjustment] = field(default_factory=dict)
    offsets: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    records: int = 0
    bytes: int = 0  # of the records' values
    opened_at: float = field(default_factory=time.monotonic)

    def track(self, msg: Message) -> None:
        key = (msg.topic(), msg.partition())
        first, _ = self.offsets.get(key, (msg.offset(), msg.offset()))
        self.offsets[key] = (first, msg.offset())
        self.records += 1
        self.bytes += len(msg.value() or b"")

    def add_row(self, row: FunnelRow) -> None:
        key = (row.account, row.message_id)
        current = self.rows.get(key)
        if current is None or row.version >= current.version:
            self.rows[key] = row

    def add_credits(self, c: ConversionCredits) -> None:
        key = (c.account, c.recipient_hash, c.order_id, c.model.value)
        current = self.credits.get(key)
        if current is None or c.version >= current.version:
            self.credits[key] = c

    def add_response(self, r: MessageResponse) -> None:
        key = (r.account, r.recipient_hash, r.message_id, r.sender)
        current = self.responses.get(key)
        if current is None or r.version >= current.version:
            self.responses[key] = r

    def token(self, table: str) -> str:
        ranges = ",".join(f"{t}:{p}:{a}-{b}" for (t, p), (a, b) in sorted(self.offsets.items()))
        return f"{table}:" + hashlib.sha256(ranges.encode()).hexdigest()

    def next_offsets(self) -> dict[tuple[str, int], int]:
        return {(t, p): last + 1 for (t, p), (_, last) in self.offsets.items()}


class FunnelSink:
    def __init__(self, settings: Settings, client: Client, bootstrap: str) -> None:
        self.settings = settings
        self.client = client
        self.lock = threading.Lock()  # the embedded engine is shared with the query server
        self.lag_at = 0.0
        self.lag_exported: set[tuple[str, str]] = set()
        overrides: dict[str, object] = {"session.timeout.ms": 10_000, "on_commit": self._on_commit}
        if settings.sink_instance_id:
            overrides["group.instance.id"] = settings.sink_instance_id
        self.consumer = Consumer(consumer_config(bootstrap, settings.sink_group, **overrides))
        self.stopping = threading.Event()
        self.pending = PendingOffsets()
        self.commit_sent_at = 0.0
        self.commit_pause = COMMIT_PAUSE_MIN

    def stop(self, *_: object) -> None:
        self.stopping.set()

    def run(self) -> None:
        self.consumer.subscribe(
            [spec.name for spec in SINK_INPUTS],
            on_assign=lambda _, parts: log.info("assigned %d partitions", len(parts)),
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        batch = Batch()
        try:
            while not self.stopping.is_set():
                room = min(5000, self.settings.sink_batch_rows - batch.records)
                for msg in self.consumer.consume(num_messages=room, timeout=0.2):
                    self._take(batch, msg)
                age = time.monotonic() - batch.opened_at
                if batch.records >= self.settings.sink_batch_rows or (
                    batch.records and age >= self.settings.sink_batch_seconds
                ):
                    self.flush(batch)
                    batch = Batch()
                elif not batch.records:
                    batch.opened_at = time.monotonic()
                if self.pending and time.monotonic() - self.commit_sent_at >= self.commit_pause:
                    self._commit()  # a failed commit, sent again on its own
                if time.monotonic() - self.lag_at >= 1.0:
                    self.lag_at = time.monotonic()
                    self.lag_exported = export_lag(
                        self.consumer, metrics.CONSUMER_LAG, self.lag_exported
                    )
            if batch.records:
                self.flush(batch)
            self._commit_owed_now()
        finally:
            self.consumer.close()

    def _take(self, batch: Batch, msg: Message) -> None:
        error = msg.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", error)
            return
        batch.track(msg)
        payload = msg.value() or b""
        try:
            topic = msg.topic()
            if topic == DEAD_LETTERS.name:
                batch.dead_letters.append(DeadLetter.from_json(payload))
            elif topic == ATTRIBUTION_CREDITS.name:
                batch.add_credits(ConversionCredits.from_json(payload))
            elif topic == MESSAGE_RESPONSES.name:
                batch.add_response(MessageResponse.from_json(payload))
            elif topic == LATE_EVENTS.name:
                late = LateEvent.from_json(payload)
                batch.late[(late.account, late.event_id)] = late
            elif topic == UNATTRIBUTABLE_CONVERSIONS.name:
                kept = UnattributableConversion.from_json(payload)
                batch.unattributable[(kept.account, kept.event_id)] = kept
            elif topic == CONVERSION_ADJUSTMENTS.name:
                adjustment = ConversionAdjustment.from_json(payload)
                batch.adjustments[(adjustment.account, adjustment.adjustment_id)] = adjustment
            elif topic == INBOUND.name:
                try:
                    event = parse_event(payload)
                except ValidationError:
                    metrics.SKIPPED_INBOUND.inc()
                    return
                if isinstance(event, InboundEvent):  # a repeat replaces itself (same key)
                    batch.inbound[(event.account, event.event_id)] = event
                else:
                    metrics.SKIPPED_INBOUND.inc()
            else:
                batch.add_row(FunnelRow.from_json(payload))
        except (ValidationError, ValueError) as exc:
            # A record the sink cannot read is itself a dead letter; it never stops the sink.
            metrics.SINK_DEAD_LETTERS.labels(msg.topic()).inc()
            batch.dead_letters.append(
                DeadLetter(
                    stage="sink",
                    source_topic=msg.topic(),
                    source_partition=msg.partition(),
                    source_offset=msg.offset(),
                    key_b64=DeadLetter.encode(msg.key()),
                    payload_b64=DeadLetter.encode(payload),
                    reason=f"unreadable record: {exc}"[:2000],
                    failed_at=datetime.now(UTC),
                )
            )

    def flush(self, batch: Batch) -> None:
        started = time.monotonic()
        with self.lock:
            # Adjustments and rows before the aggregate: its net revenue reads both.
            if batch.adjustments:
                rows = [adjustment_columns(a) for a in batch.adjustments.values()]
                self._insert("conversion_adjustments", rows, ADJUSTMENT_COLUMNS, batch)
            if batch.rows:
                rows = [funnel_columns(r) for r in batch.rows.values()]
                self._insert("funnel_rows", rows, FUNNEL_COLUMNS, batch)
                queryable = datetime.now(UTC)
                for r in batch.rows.values():
                    seconds = (queryable - r.last_event_at).total_seconds()
                    metrics.EVENT_TO_QUERYABLE.observe(max(seconds, 0.0))
            self._recompute_aggregates(batch.rows.values(), batch.adjustments.values())
            if batch.credits:
                rows = [credit_columns(c) for c in batch.credits.values()]
                self._insert("attribution_credits", rows, CREDIT_COLUMNS, batch)
            if batch.responses:
                rows = [response_columns(r) for r in batch.responses.values()]
                self._insert("message_responses", rows, RESPONSE_COLUMNS, batch)
            if batch.dead_letters:
                rows = [dead_letter_columns(d) for d in batch.dead_letters]
                self._insert("dead_letters", rows, DEAD_LETTER_COLUMNS, batch)
            if batch.inbound:
                rows = [inbound_columns(e) for e in batch.inbound.values()]
                self._insert("inbound_events", rows, INBOUND_COLUMNS, batch)
            if batch.late:
                rows = [late_columns(e) for e in batch.late.values()]
                self._insert("late_events", rows, LATE_COLUMNS, batch)
            if batch.unattributable:
                rows = [unattributable_columns(u) for u in batch.unattributable.values()]
                self._insert("unattributable_conversions", rows, UNATTRIBUTABLE_COLUMNS, batch)
        failpoint("sink.after_insert")
        # Only now, with ClickHouse's acknowledgement in hand, are the offsets owed to Kafka.
        self.pending.add(batch.next_offsets())
        self._commit()
        elapsed = time.monotonic() - started
        metrics.BATCHES.inc()
        metrics.RECORDS.inc(batch.records)
        metrics.BATCH_BYTES.observe(batch.bytes)
        metrics.FLUSH_SECONDS.observe(elapsed)
        log.info(
            "batch written, commit sent: %d records, %d rows, %d credit sets, %d responses, "
            "%d dead letters, %d late events in %.3fs",
            batch.records,
            len(batch.rows),
            len(batch.credits),
            len(batch.responses),
            len(batch.dead_letters),
            len(batch.late),
            elapsed,
        )

    def _commit(self) -> None:
        """Send every owed offset, without waiting for the answer (`_on_commit` gets it, from
        inside `consume`).

        Never waiting is on purpose: a commit retried in place until it succeeds stops the
        consumer polling, and librdkafka serves rebalances (the one a broker restart starts
        included) only through polls. A commit that fails is simply sent again, merged with
        later batches' offsets, after a pause that doubles up to COMMIT_PAUSE_MAX.
        """
        if not self.pending:
            metrics.UNCOMMITTED_PARTITIONS.set(0)
            return
        self.commit_sent_at = time.monotonic()
        offsets = self._owed()
        metrics.UNCOMMITTED_PARTITIONS.set(len(offsets))
        try:
            self.consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:  # refused locally (e.g. no group yet): try again later
            self._commit_failed(exc.args[0] if exc.args else None, offsets)

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is None:
            done = [(tp.topic, tp.partition, tp.offset) for tp in partitions if tp.error is None]
            self.pending.acknowledged(done)
            failed = [tp for tp in partitions if tp.error is not None]
            if not failed:
                self.commit_pause = COMMIT_PAUSE_MIN
                metrics.UNCOMMITTED_PARTITIONS.set(len(self.pending))
                return
            error, partitions = failed[0].error, failed
        self._commit_failed(error, partitions)

    def _commit_failed(self, error: object, partitions: list[TopicPartition]) -> None:
        if isinstance(error, KafkaError) and not commit_retriable(error):
            # The group took these partitions from us; their next owner re-delivers.
            metrics.COMMIT_FAILURES.labels("dropped").inc()
            log.warning("commit refused, batches will be re-delivered: %s", error)
            self.pending.forget((tp.topic, tp.partition) for tp in partitions)
        else:
            metrics.COMMIT_FAILURES.labels("retried").inc()
            log.warning("commit failed, sending again in %.1fs: %s", self.commit_pause, error)
            self.commit_pause = min(self.commit_pause * 2, COMMIT_PAUSE_MAX)
        metrics.UNCOMMITTED_PARTITIONS.set(len(self.pending))

    def _on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """Still ours for the length of this call: pay what we owe on them, then forget it."""
        log.info("revoked %d partitions", len(partitions))
        mine = {(tp.topic, tp.partition) for tp in partitions}
        self._commit_owed_now(mine)
        self.pending.forget(mine)

    def _on_lost(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """No longer ours (the session expired): a commit would be refused; forget."""
        log.warning("lost %d partitions; their next owner re-delivers", len(partitions))
        self.pending.forget((tp.topic, tp.partition) for tp in partitions)

    def _owed(self, only: set[tuple[str, int]] | None = None) -> list[TopicPartition]:
        """What is owed, on `only` these partitions if given."""
        return [
            TopicPartition(t, p, o)
            for t, p, o in self.pending.to_commit()
            if only is None or (t, p) in only
        ]

    def _commit_owed_now(self, only: set[tuple[str, int]] | None = None) -> None:
        """One synchronous commit of what is owed (on revoke, on leaving); a failure is only
        logged: whoever reads those partitions next re-delivers the batches."""
        offsets = self._owed(only)
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("commit failed, batches will be re-delivered: %s", exc)

    def _insert(self, table: str, rows: list[list[object]], columns: list[str], b: Batch) -> None:
        self.client.insert(
            table,
            rows,
            column_names=columns,
            settings={"insert_deduplication_token": b.token(table)},
        )
        metrics.ROWS_WRITTEN.labels(table).inc(len(rows))

    def _recompute_aggregates(
        self, rows: Iterable[FunnelRow], adjustments: Iterable[ConversionAdjustment]
    ) -> None:
        """Once per batch, the cohorts it touched: those of its rows, and those of the messages
        counting the orders its adjustments adjust (a message written later is recomputed with
        its own batch)."""
        cohorts = {(r.account, r.campaign, send_hour(r)) for r in rows if r.has_send}
        orders = sorted({(a.account, a.order_id) for a in adjustments})
        if orders:
            found = self.client.query(ADJUSTED_COHORTS, parameters={"orders": orders})
            cohorts |= {
                (account, campaign, hour if hour.tzinfo else hour.replace(tzinfo=UTC))
                for account, campaign, hour in found.result_rows
            }
        if cohorts:
            self.client.command(RECOMPUTE_COHORTS, parameters={"cohorts": sorted(cohorts)})


_RETRIABLE_COMMIT_ERRORS = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._WAIT_COORD,
        KafkaError._TIMED_OUT,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
    }
)


def commit_retriable(error: KafkaError) -> bool:
    """Whether a failed offset commit may succeed if simply sent again (the member still owns
    the partitions); fencing and rebalance errors are final for this batch."""
    return error.retriable() or error.code() in _RETRIABLE_COMMIT_ERRORS


def run_sink(settings: Settings) -> None:
    from sinks.clickhouse import connect
    from sinks.health_watch import watch_in_background
    from sinks.migrations.runner import migrate
    from sinks.query_client import ClientQuery
    from sinks.query_server import serve_in_background

    client = connect(settings.effective_clickhouse_dsn)
    migrate(client)
    sink = FunnelSink(settings, client, settings.bootstrap_servers())
    server = serve_in_background(settings, client, sink.lock)
    stop_health = threading.Event()
    watch_in_background(ClientQuery(client, sink.lock), settings.sink_health_seconds, stop_health)
    signal.signal(signal.SIGTERM, sink.stop)
    signal.signal(signal.SIGINT, sink.stop)
    log.info("sink started; /metrics and /query on 127.0.0.1:%d", settings.sink_http_port)
    try:
        sink.run()
    finally:
        stop_health.set()
        server.shutdown()
        client.close()
