"""The Faust app: the per-message join of sends, receipts, clicks and conversions.

One agent reads the four co-partitioned input topics (all keyed by message id, see
schemas/topics.py) and keeps one state per message in a table whose changelog Faust writes to
the same partition number, so state and inputs never need a repartition hop.

Delivery guarantee, and why at-least-once is enough here:
  - Faust (at_least_once) flushes its producer - changelog and output rows - before it commits
    input offsets (faust/transport/consumer.py, `_commit_offsets`). A crash replays events after
    the last commit.
  - A replayed event whose id is already in the restored state changes nothing (the fold is
    idempotent, message_state.py), so state counts every event once.
  - The current row is emitted for *every* input, repeat or not. A crash can leave the changelog
    entry durable but the row not; the replay then re-emits the row. Rows are versioned upserts,
    so extra copies are harmless to the sink.
  - concurrency=1: Faust with concurrency > 1 can commit past an event still in flight
    (faust-streaming#606), which would lose it on a crash.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import faust
from faust.types import TP
from pydantic import ValidationError

from schemas.dead_letter import DeadLetter
from schemas.events import (
    InboundEvent,
    MessageEventBase,
    MessageReference,
    ProviderReceiptEvent,
    SubscriberConversionEvent,
    event_to_json,
    parse_event,
    subscriber_key,
)
from schemas.provider_ids import normalise, reference_key
from schemas.subscriber_activity import SubscriberSnapshot
from schemas.topics import (
    ATTRIBUTION_CREDITS,
    ATTRIBUTION_INPUTS,
    DEAD_LETTERS,
    DELIVERY_RECEIPTS,
    FUNNEL_ROWS,
    JOIN_INPUTS,
    LATE_EVENTS,
    MESSAGE_REFERENCES,
    MESSAGE_RESPONSES,
    MESSAGE_STATE_TABLE,
    REFERENCE_STATE_TABLE,
    RESOLVER_INPUTS,
    SUBSCRIBER_ACTIVITY,
    SUBSCRIBER_CONVERSIONS,
    SUBSCRIBER_STATE_TABLE,
)
from schemas.topics import INBOUND as INBOUND_TOPIC
from smsfunnel.kafka_config import group_positions
from smsfunnel.settings import Settings
from stream_processors import faust_commit_barrier, metrics, subscriber_stage
from stream_processors.message_join import MessageJoin
from stream_processors.resolver_join import ResolverJoin
from stream_processors.subscriber_retention import CONVERSIONS, INBOUND, SNAPSHOTS
from stream_processors.subscriber_stage import StageSettings
from stream_processors.subscriber_state import SubscriberState

log = logging.getLogger(__name__)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False)
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5]]
        return "invalid event: " + "; ".join(parts)
    return f"{type(exc).__name__}: {exc}"


def _reason_kind(exc: Exception) -> str:
    return "validation" if isinstance(exc, ValidationError) else type(exc).__name__


class WrongPartitionKey(ValueError):
    """The record's key is not its message id: it may sit on the wrong partition for the join."""


class WrongTopic(ValueError):
    """A valid event on a topic that does not carry its type."""


def validate_message_record(key: bytes | None, value: bytes | None) -> MessageEventBase:
    """Parse a join input record and check it is keyed as the join requires."""
    if value is None:
        raise ValueError("empty record value")
    event = parse_event(value)
    if not isinstance(event, MessageEventBase):
        raise WrongTopic(f"a {event.event_type} event does not belong on a per-message topic")
    if key != event.message_id.encode():
        raise WrongPartitionKey(
            f"record key {key!r} is not the event's message_id {event.message_id!r}"
        )
    return event


def validate_subscriber_record(
    topic: str, key: bytes | None, value: bytes | None
) -> SubscriberSnapshot | SubscriberConversionEvent | InboundEvent:
    """Parse an attribution input record and check it is keyed by its subscriber."""
    if value is None:
        raise ValueError("empty record value")
    item: SubscriberSnapshot | SubscriberConversionEvent | InboundEvent
    if topic == SUBSCRIBER_ACTIVITY.name:
        item = SubscriberSnapshot.from_json(value)
    else:
        event = parse_event(value)
        if not isinstance(event, SubscriberConversionEvent | InboundEvent):
            raise WrongTopic(f"a {event.event_type} event does not belong on {topic}")
        item = event
    expected = subscriber_key(item.account, item.recipient_hash)
    if key != expected:
        raise WrongPartitionKey(f"record key {key!r} is not the subscriber key {expected!r}")
    return item


def validate_resolver_record(
    topic: str, key: bytes | None, value: bytes | None
) -> MessageReference | ProviderReceiptEvent:
    """Parse a resolver input record and check it is keyed by its provider reference."""
    if value is None:
        raise ValueError("empty record value")
    item: MessageReference | ProviderReceiptEvent
    if topic == MESSAGE_REFERENCES.name:
        item = MessageReference.model_validate_json(value)
        expected = reference_key(item.account, item.provider, item.spelling)
    else:
        event = parse_event(value)
        if not isinstance(event, ProviderReceiptEvent):
            raise WrongTopic(f"a {event.event_type} event does not belong on {topic}")
        item = event
        expected = reference_key(
            event.account, event.provider, normalise(event.provider_message_id)
        )
    if key != expected:
        raise WrongPartitionKey(f"record key {key!r} is not the reference key {expected!r}")
    return item


T = TypeVar("T")
S = TypeVar("S")


def load(table: Any, key: bytes, decode: Callable[[bytes], S]) -> S | None:
    """A table's state for `key`, decoded; None when there is none yet."""
    stored = table.get(key)
    return decode(stored) if stored is not None else None


def create_app(settings: Settings, bootstrap: str | None = None) -> faust.App:
    bootstrap = bootstrap or settings.bootstrap_servers()
    faust_commit_barrier.install()  # Faust's flush is no barrier: see that module
    app = faust.App(
        settings.worker_id,
        broker=f"kafka://{bootstrap}",
        store=f"{settings.table_store}://",
        datadir=str(settings.state_dir / "faust"),
        processing_guarantee="at_least_once",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_enabled=False,
        table_standby_replicas=0,
        broker_session_timeout=settings.worker_session_timeout,
        broker_heartbeat_interval=3.0,
    )
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
    raw |= {"key_serializer": "raw", "value_serializer": "raw"}
    inputs = app.topic(*(spec.name for spec in JOIN_INPUTS), **raw)
    subscriber_inputs = app.topic(*(spec.name for spec in ATTRIBUTION_INPUTS), **raw)
    resolver_inputs = app.topic(*(spec.name for spec in RESOLVER_INPUTS), **raw)
    receipts_topic = app.topic(DELIVERY_RECEIPTS.name, **raw)
    references_topic = app.topic(MESSAGE_REFERENCES.name, **raw)
    rows_topic = app.topic(FUNNEL_ROWS.name, **raw)
    activity_topic = app.topic(SUBSCRIBER_ACTIVITY.name, **raw)
    credits_topic = app.topic(ATTRIBUTION_CREDITS.name, **raw)
    responses_topic = app.topic(MESSAGE_RESPONSES.name, **raw)
    dead_letter_topic = app.topic(DEAD_LETTERS.name, **raw)
    late_topic = app.topic(LATE_EVENTS.name, **raw)
    states = app.Table(
        MESSAGE_STATE_TABLE,
        partitions=settings.partitions,
        key_type=bytes,  # bytes -> the "raw" codec: we own the state format (MessageState)
        value_type=bytes,
    )
    subscribers = app.Table(
        SUBSCRIBER_STATE_TABLE, partitions=settings.partitions, key_type=bytes, value_type=bytes
    )
    references = app.Table(
        REFERENCE_STATE_TABLE, partitions=settings.partitions, key_type=bytes, value_type=bytes
    )
    half_life = Decimal(settings.half_life_hours)

    processed: dict[tuple[str, int], int] = {}  # (topic, partition) -> last offset handled

    async def dead_letter(message: Any, exc: Exception, stage: str) -> None:
        record = DeadLetter(
            stage=stage,
            source_topic=message.topic,
            source_partition=message.partition,
            source_offset=message.offset,
            key_b64=DeadLetter.encode(message.key),
            payload_b64=DeadLetter.encode(message.value),
            reason=_reason(exc),
            failed_at=datetime.now(UTC),
        )
        metrics.DEAD_LETTERS.labels(message.topic, _reason_kind(exc)).inc()
        log.warning(
            "dead letter %s[%d]@%d: %s",
            message.topic,
            message.partition,
            message.offset,
            record.reason,
        )
        await dead_letter_topic.send(key=message.topic.encode(), value=record.to_json())

    async def accepted(
        stream: faust.StreamT, stage: str, validate: Callable[[Any], T]
    ) -> AsyncIterator[tuple[Any, T]]:
        """The stream's records that `validate` accepts; the others go to the dead letters.
        Iterating this iterates the stream, so Faust acks each record as before."""
        async for event in stream.events():
            # Before validation: a dead letter is processed too, as far as lag is concerned.
            processed[(event.message.topic, event.message.partition)] = event.message.offset
            try:
                item = validate(event.message)
            except (ValidationError, ValueError) as exc:
                await dead_letter(event.message, exc, stage)
                continue
            yield event.message, item

    # (topic, partition) -> the group's committed offset, as last read from Kafka (at recovery
    # and by the progress watch): what the stages may count as durable before they evict or
    # retire state, whose outputs a replay could then no longer re-send
    durable_offsets: dict[tuple[str, int], int] = {}
    core = MessageJoin(
        states,
        lateness=timedelta(hours=settings.allowed_lateness_hours),
        marker_retention=timedelta(days=settings.closed_marker_days),
        durable=durable_offsets,
    )

    input_names = [spec.name for spec in JOIN_INPUTS]
    watched_topics = sorted(
        spec.name for spec in (*JOIN_INPUTS, *ATTRIBUTION_INPUTS, *RESOLVER_INPUTS)
    )
    committed_at_recovery: dict[tuple[str, int], int] = {}

    def read_committed() -> dict[tuple[str, int], int]:
        positions = group_positions(bootstrap, settings.worker_id, watched_topics)
        return {tp: committed for tp, (committed, _) in positions.items()}

    @states.on_recover
    async def rebuild_schedule() -> None:
        core.rebuild()
        log.info("eviction schedule rebuilt: %d entries", core.schedule.pending())
        # Faust runs the streams before its own seek to the committed offsets has filled in
        # its bookkeeping (faust-streaming#216), so the group's commits are read here.
        try:
            loop = asyncio.get_running_loop()
            committed_at_recovery.update(await loop.run_in_executor(None, read_committed))
            durable_offsets.update(committed_at_recovery)
            core.durable_advanced()
            resolver.durable_advanced()
        except Exception as exc:  # noqa: BLE001 - unknown inputs then hold eviction back
            log.warning("could not read committed offsets; eviction waits: %r", exc)

    def inputs_lagging(partition: int, names: list[str] = input_names) -> list[str]:
        """The inputs of `partition` with records not processed yet (they hold the
        watermark back): end offset beyond the last offset processed since start, or else
        beyond the group's committed offset at recovery. An end offset not known yet (never
        fetched) counts as caught up; an input whose position is unknown counts as lagging."""
        out = []
        for name in names:
            end = app.consumer.highwater(TP(name, partition))
            if end is None:
                continue
            done = processed.get((name, partition))
            if done is None:
                committed = committed_at_recovery.get((name, partition))
                done = committed - 1 if committed is not None else -1
            if end - 1 > done:
                out.append(name)
        return out

    @app.agent(inputs, concurrency=1)
    async def join(stream: faust.StreamT) -> None:
        validate = lambda m: validate_message_record(m.key, m.value)  # noqa: E731
        async for message, parsed in accepted(stream, "join", validate):
            lagging = inputs_lagging(message.partition)
            out = core.process(
                message.partition, parsed, message.value, message.topic, lagging, message.offset
            )
            for ref in out.references:
                await references_topic.send(
                    key=reference_key(ref.account, ref.provider, ref.spelling),
                    value=ref.to_json(),
                )
            for row in out.rows:
                await rows_topic.send(key=row.message_id.encode(), value=row.to_json())
                metrics.FUNNEL_ROWS_EMITTED.inc()
            for late in out.late:
                await late_topic.send(key=late.message_id.encode(), value=late.to_json())
            for snapshot in out.snapshots:
                await activity_topic.send(
                    key=subscriber_key(snapshot.account, snapshot.recipient_hash),
                    value=snapshot.to_json(),
                )

    stage = StageSettings(
        lateness=timedelta(hours=settings.allowed_lateness_hours),
        marker_retention=timedelta(days=settings.closed_marker_days),
        view_through=settings.view_through,
        half_life_hours=half_life,
    )
    kind_topics = {
        SNAPSHOTS: SUBSCRIBER_ACTIVITY.name,
        CONVERSIONS: SUBSCRIBER_CONVERSIONS.name,
        INBOUND: INBOUND_TOPIC.name,
    }

    @app.agent(subscriber_inputs, concurrency=1)
    async def attribute(stream: faust.StreamT) -> None:
        validate = lambda m: validate_subscriber_record(m.topic, m.key, m.value)  # noqa: E731
        async for message, item in accepted(stream, "attribution", validate):
            key = message.key
            durable = {
                kind: durable_offsets[(topic, message.partition)]
                for kind, topic in kind_topics.items()
                if (topic, message.partition) in durable_offsets
            }
            out = subscriber_stage.step(
                load(subscribers, key, SubscriberState.from_bytes),
                item,
                message.offset,
                datetime.now(UTC),
                durable,
                stage,
            )
            if out.store and out.state is not None:
                subscribers[key] = out.state.to_bytes()
            metrics.ATTRIBUTION_INPUTS.labels(
                "late" if out.late else "applied" if out.applied else "repeat"
            ).inc()
            for part, count in vars(out.retired).items():
                if count:
                    metrics.SUBSCRIBER_RETIRED.labels(part).inc(count)
            if out.late is not None:
                await late_topic.send(key=key, value=out.late.to_json())
            for credit_set in out.credits:
                await credits_topic.send(key=key, value=credit_set.to_json())
            for response in out.responses:
                await responses_topic.send(key=key, value=response.to_json())

    resolver = ResolverJoin(
        references,
        lateness=timedelta(hours=settings.allowed_lateness_hours),
        marker_retention=timedelta(days=settings.closed_marker_days),
        durable=durable_offsets,
    )

    @references.on_recover
    async def rebuild_resolver_schedule() -> None:
        resolver.rebuild()
        log.info("resolver schedule rebuilt: %d entries", resolver.eviction.pending())

    @app.agent(resolver_inputs, concurrency=1)
    async def resolve(stream: faust.StreamT) -> None:
        validate = lambda m: validate_resolver_record(m.topic, m.key, m.value)  # noqa: E731
        async for message, item in accepted(stream, "resolver", validate):
            out = resolver.process(
                message.partition,
                message.key,
                item,
                message.topic,
                message.offset,
                inputs_lagging(message.partition, [MESSAGE_REFERENCES.name]),
            )
            outcome = "late" if out.input_late else "held" if out.held else "resolved"
            metrics.UNRESOLVED_RECEIPTS.labels(outcome).inc()
            for receipt in out.receipts:
                await receipts_topic.send(
                    key=receipt.message_id.encode(), value=event_to_json(receipt)
                )
            for late in out.late:
                await late_topic.send(key=message.key, value=late.to_json())

    watch = faust_commit_barrier.ProgressWatch(watched_topics)

    @app.timer(interval=settings.worker_stall_check_seconds)
    async def watch_progress() -> None:
        """Input partitions with records waiting and no progress since the last check are
        sought back to their committed offset (see faust_commit_barrier.ProgressWatch). Safe
        because every stage is idempotent: it only replays, never skips."""
        stalled = faust_commit_barrier.stalled_partitions(app.consumer)
        metrics.STALLED_COMMITS.set(len(stalled))
        for s in stalled:
            log.info("commit waiting on a gap: %s", s)
        loop = asyncio.get_running_loop()
        try:
            positions = await loop.run_in_executor(
                None, group_positions, bootstrap, settings.worker_id, sorted(watch.topics)
            )
        except Exception as exc:  # noqa: BLE001 - the broker may be away; look again later
            log.warning("progress watch could not read offsets: %r", exc)
            return
        durable_offsets.update({tp: offset for tp, (offset, _) in positions.items()})
        core.durable_advanced()
        resolver.durable_advanced()
        for tp, committed, detail in watch.stuck(positions, processed, app.consumer.assignment()):
            c = app.consumer
            detail["faust"] = {
                "committed": getattr(c, "_committed_offset", {}).get(tp),
                "read": getattr(c, "_read_offset", {}).get(tp),
                "highwater": c.highwater(tp),
                "active": tp in (getattr(c, "_active_partitions", None) or ()),
                "paused": tp in getattr(c, "_paused_partitions", ()),
                "acked": (getattr(c, "_acked", {}).get(tp) or [])[:5],
            }
            log.warning("partition not progressing, replaying from committed offset: %s", detail)
            if await faust_commit_barrier.seek_on_consumer_thread(app.consumer, tp, committed):
                metrics.STALL_REPLAYS.inc()

    return app


class BoundedStopWorker(faust.Worker):
    """A Faust worker whose stop on a signal takes at most `shutdown_timeout` seconds.

    With the broker away, Faust's stop waits for ever on a producer flush and an offset commit
    that cannot complete, and the worker hangs until SIGKILL. Past the timeout the process
    exits (status 1) without them: to Kafka that is a crash, which at-least-once processing
    already absorbs (the group's next worker replays from the last commit)."""

    def __init__(self, *args: Any, shutdown_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shutdown_timeout = shutdown_timeout

    def _schedule_shutdown(self, signal: Any) -> None:
        if not self._signal_stop_time:
            timer = threading.Timer(self.shutdown_timeout, self._give_up)
            timer.daemon = True
            timer.start()
        super()._schedule_shutdown(signal)

    def _give_up(self) -> None:
        log.error(
            "worker did not stop within %.0f s (broker unreachable?): exiting without the "
            "final flush and commit; the next worker replays from the last commit",
            self.shutdown_timeout,
        )
        logging.shutdown()
        os._exit(1)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    from prometheus_client import start_http_server

    start_http_server(settings.worker_metrics_port, addr="127.0.0.1")
    # Faust creates its data directory without parents; a fresh state dir would kill it.
    (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    worker = BoundedStopWorker(
        app, loglevel=loglevel, shutdown_timeout=settings.worker_shutdown_timeout
    )
    worker.execute_from_commandline()
