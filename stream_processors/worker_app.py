"""The worker: the per-message join, the receipt resolver and the attribution stage, on Quix
Streams. The stages' logic is pure (message_join.py, resolver_join.py, subscriber_stage.py);
this module is the engine adapter: it reads, hands each record to its stage, and produces what
the stage returns.

One Application (consumer group = settings.worker_id), three stateful dataframes:
  join         sends, delivery receipts, clicks, landings, engagements, conversions (message id)
  resolver     provider receipts, message references                         (provider reference)
  attribution  subscriber activity, subscriber conversions, inbound            (subscriber)
A stage's input topics are co-partitioned. Quix reads the same-numbered partitions of a stage's
topics together (in timestamp order, within its buffer) and keeps one RocksDB store per stage
and partition, with a changelog topic.

Delivery guarantee: at-least-once, and why a stage may forget state in the step that decides it.
  - A Quix checkpoint flushes the producer (the outputs), then produces the state's changelog,
    whose records carry the input offsets they were made from, then commits the input offsets,
    and only then writes the state to the local RocksDB.
  - Recovery applies a changelog record only when its input offsets are committed
    (quixstreams/state/recovery.py, `_should_apply_changelog`). After a crash a stage's state is
    what it was at the last committed offsets, and the replay from there re-sends its outputs.
  - So state and outputs never diverge, and nothing waits for a commit before evicting a
    message or retiring a subscriber's conversions (`durable=None`, COMMITTED_WITH_OUTPUTS):
    the waits that Faust needed, its commit barrier and its progress watch are gone.
  - A crash can repeat outputs. Rows and credit sets are versioned upserts, late records are
    keyed by event id, so a repeat is harmless at the sink.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from quixstreams import Application, message_context
from quixstreams.checkpointing.exceptions import CheckpointConsumerCommitError
from quixstreams.exceptions import PartitionAssignmentError
from quixstreams.kafka.exceptions import KafkaConsumerException
from quixstreams.models import Topic
from quixstreams.models.topics.exceptions import CreateTopicFailure, TopicNotFoundError
from quixstreams.sinks import BaseSink

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
    RESOLVER_INPUTS,
    SUBSCRIBER_ACTIVITY,
    TopicSpec,
)
from smsfunnel.kafka_config import RECONNECT, export_lag
from smsfunnel.settings import Settings
from stream_processors import metrics
from stream_processors.checkpoint_outputs import CheckpointOutputs
from stream_processors.partition_table import PartitionTable
from stream_processors.stage_steps import AttributeStep, JoinStep, Output, ResolveStep
from stream_processors.subscriber_stage import StageSettings

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 120.0  # seconds a starting worker keeps trying to create its changelogs

STAGE_OUTPUTS = (
    MESSAGE_REFERENCES,
    FUNNEL_ROWS,
    SUBSCRIBER_ACTIVITY,
    DELIVERY_RECEIPTS,
    LATE_EVENTS,
    DEAD_LETTERS,
    ATTRIBUTION_CREDITS,
    MESSAGE_RESPONSES,
)


class CheckpointSink(BaseSink):
    """A stage's outputs, produced once per checkpoint: Quix flushes its sinks first when it
    commits a checkpoint, then flushes the producer, produces the changelogs and commits the
    input offsets (quixstreams/checkpointing/checkpoint.py, `commit`, step 1). So what is
    produced here is on Kafka before the state made with it and the offsets it came from are
    committed, as with `to_topic`; and a version superseded within the checkpoint is never
    built or sent (checkpoint_outputs.py). The records go through the application's own
    producer, so under exactly-once they are part of the checkpoint's transaction."""

    def __init__(self, producer: Any, after_flush: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.producer = producer
        self.outputs = CheckpointOutputs()
        self.after_flush = after_flush

    def add(self, value: list[Output], *_: Any, **__: Any) -> None:
        for topic, key, record, identity in value:
            self.outputs.add(topic, key, record, identity)

    def flush(self) -> None:
        for topic, key, value in self.outputs.drain():
            self.producer.produce(topic=topic, key=key, value=value)
        for topic, n in self.outputs.superseded.items():
            metrics.OUTPUTS_SUPERSEDED.labels(topic).inc(n)
        self.outputs.superseded.clear()
        if self.after_flush is not None:
            self.after_flush()

    def on_paused(self) -> None:
        self.outputs.clear()  # the checkpoint is replayed from its first offsets


class CommittedWithOutputs(Mapping[str, int]):
    """The attribution stage's `durable` offsets under Quix: every change counts as committed,
    since a checkpoint commits state with the outputs made from it (module docstring)."""

    def __getitem__(self, kind: str) -> int:
        return sys.maxsize

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


COMMITTED_WITH_OUTPUTS = CommittedWithOutputs()


@dataclass
class InputProgress:
    """Which inputs of a partition still have records not processed (they hold the join's and
    the resolver's watermark back: eviction.PartitionClock.observe)."""

    consumer: Any  # Quix's consumer: log ends as last fetched, committed offsets
    processed: dict[tuple[str, int], int] = field(default_factory=dict)
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    # Log ends as the consumer last fetched them, read again at most every `ends_every`
    # seconds: six reads per event were 6 % of the worker's time. They are the last fetch's
    # answer anyway (the fetcher asks every fetch.wait.max.ms = 25 ms when idle), so this
    # makes them at most that much older; an end read late only holds eviction back longer
    # or lets the watermark move as if that fetch had come later.
    ends_every: float = 0.05
    _ends_read: dict[tuple[int, tuple[str, ...]], tuple[float, list[int | None]]] = field(
        default_factory=dict
    )
    exported: set[tuple[str, str]] = field(default_factory=set)  # partitions in the lag gauge

    def _ends(self, partition: int, names: list[str]) -> list[int | None]:
        now = time.monotonic()
        slot = (partition, tuple(names))
        read = self._ends_read.get(slot)
        if read is not None and now - read[0] < self.ends_every:
            return read[1]
        ends = [
            self.consumer.get_watermark_offsets(TopicPartition(name, partition), cached=True)[1]
            for name in names
        ]
        self._ends_read[slot] = (now, ends)
        return ends

    def assigned(self, partition: int, names: list[str]) -> None:
        """A partition (re)assigned: what was processed before is unknown again; the group's
        committed offsets say where this assignment starts."""
        tps = [TopicPartition(n, partition) for n in names]
        for tp in tps:
            self.processed.pop((tp.topic, partition), None)
        try:
            for tp in self.consumer.committed(tps, timeout=10):
                if tp.error is None and tp.offset >= 0:
                    self.committed[(tp.topic, partition)] = tp.offset
        except Exception as exc:  # noqa: BLE001 - unknown inputs then hold eviction back
            log.warning("could not read committed offsets of partition %d: %r", partition, exc)

    def export_lag(self) -> None:
        """smsfunnel_worker_consumer_lag_records, once per checkpoint."""
        self.exported = export_lag(self.consumer, metrics.CONSUMER_LAG, self.exported)

    def lagging(self, partition: int, names: list[str]) -> list[str]:
        """Inputs of `partition` whose last fetched log end is beyond the last offset processed
        in this assignment (else the committed offset it started from). An end not fetched yet
        counts as caught up."""
        out = []
        ends = self._ends(partition, names)
        for name, end in zip(names, ends, strict=True):
            if end is None or end < 0:
                continue
            done = self.processed.get((name, partition))
            if done is None:
                done = self.committed.get((name, partition), 0) - 1
            if end - 1 > done:
                out.append(name)
        return out


class BoundedStopApplication(Application):
    """Stops on SIGTERM/SIGINT within `shutdown_timeout` seconds. With the broker away, the
    final checkpoint's flush and commit cannot complete; past the timeout the process exits
    (status 1) without them, which to Kafka is a crash: the group replays from the last commit."""

    def __init__(self, *args: Any, shutdown_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shutdown_timeout = shutdown_timeout
        self._stop_timer: threading.Timer | None = None

    def _bounded_stop(self) -> None:
        if self._stop_timer is None:
            self._stop_timer = threading.Timer(self.shutdown_timeout, self._give_up)
            self._stop_timer.daemon = True
            self._stop_timer.start()

    def _on_sigterm(self, *args: Any) -> None:
        self._bounded_stop()
        super()._on_sigterm(*args)

    def _on_sigint(self, *args: Any) -> None:
        self._bounded_stop()
        super()._on_sigint(*args)

    def _give_up(self) -> None:
        log.error(
            "worker did not stop within %.0f s (broker unreachable?): exiting without the "
            "final checkpoint; the next worker replays from the last commit",
            self.shutdown_timeout,
        )
        logging.shutdown()
        os._exit(1)


def create_app(settings: Settings, bootstrap: str | None = None) -> Application:
    bootstrap = bootstrap or settings.bootstrap_servers()
    app = BoundedStopApplication(
        shutdown_timeout=settings.worker_shutdown_timeout,
        broker_address=bootstrap,
        consumer_group=settings.worker_id,
        auto_offset_reset="earliest",
        commit_interval=settings.worker_commit_interval,
        state_dir=str(settings.state_dir / "quix"),
        processing_guarantee=settings.worker_processing_guarantee,
        loglevel=None,  # the worker configures logging
        consumer_extra_config={
            "session.timeout.ms": int(settings.worker_session_timeout * 1000),
            # a third of the session, as Kafka advises, at most Kafka's default of 3 s
            "heartbeat.interval.ms": min(3000, int(settings.worker_session_timeout * 1000 / 3)),
            # At every assignment Quix asks the broker for the log ends of each assigned
            # partition, one request at a time, on the connection its fetches use; the broker
            # answers a connection's requests in order, so each one waited behind a fetch held
            # for fetch.wait.max.ms (500 ms by default) when the partitions had no new data:
            # about 100 s per assignment for the worker's ~200 partitions (measured).
            "fetch.wait.max.ms": 25,
            **RECONNECT,
        },
        producer_extra_config={"linger.ms": 5, "compression.type": "lz4", **RECONNECT},
        on_consumer_error=ride_out_transient,
    )
    topics: dict[str, Topic] = {}

    def topic(spec: TopicSpec) -> Topic:
        if spec.name not in topics:
            topics[spec.name] = app.topic(
                spec.name,
                key_deserializer="bytes",
                value_deserializer="bytes",
                key_serializer="bytes",
                value_serializer="bytes",
            )
        return topics[spec.name]

    def dataframe(specs: tuple[TopicSpec, ...]) -> Any:
        frames = [app.dataframe(topic(spec)) for spec in specs]
        sdf = frames[0]
        for other in frames[1:]:
            sdf = sdf.concat(other)
        return sdf

    for spec in STAGE_OUTPUTS:  # steps name their outputs' topics
        topic(spec)
    progress = InputProgress(app._consumer)  # noqa: SLF001 - Quix exposes no public handle
    lateness = timedelta(hours=settings.allowed_lateness_hours)
    marker_retention = timedelta(days=settings.closed_marker_days)
    stage = StageSettings(
        lateness=lateness,
        marker_retention=marker_retention,
        view_through=settings.view_through,
        half_life_hours=Decimal(settings.half_life_hours),
    )
    join_table, resolver_table, subscriber_table = (PartitionTable() for _ in range(3))
    join = JoinStep(join_table, progress, lateness, marker_retention)
    resolve = ResolveStep(resolver_table, progress, lateness, marker_retention)
    attribute = AttributeStep(subscriber_table, stage, COMMITTED_WITH_OUTPUTS)

    def bound(
        name: str,
        step: Callable[[int, str, int, bytes, bytes], list[Output]],
        table: PartitionTable,
        opened: Callable[[int], None] | None,
    ) -> Callable[..., list[Output]]:
        """The step as a Quix stateful function; `opened` runs at the first record of a
        partition after it was assigned or its store recovered (a new store object)."""
        stores: dict[int, Any] = {}  # partition -> the store partition its schedule is of

        def apply(value: bytes, key: bytes, _ts: int, _h: Any, state: Any) -> list[Output]:
            ctx = message_context()
            store = table.bind(state)
            if stores.get(ctx.partition) is not store:
                stores[ctx.partition] = store
                metrics.PARTITIONS_OPENED.labels(name).inc()
                if opened is not None:
                    opened(ctx.partition)
            return step(ctx.partition, ctx.topic, ctx.offset, key, value)

        return apply

    steps: list[tuple[tuple[TopicSpec, ...], Callable[..., list[Output]]]] = [
        (JOIN_INPUTS, bound("join", join, join_table, join.opened)),
        (RESOLVER_INPUTS, bound("resolver", resolve, resolver_table, resolve.opened)),
        (ATTRIBUTION_INPUTS, bound("attribution", attribute, subscriber_table, None)),
    ]
    producer = app._producer  # noqa: SLF001 - the checkpoint's producer (CheckpointSink)
    for n, (specs, step) in enumerate(steps):
        sink = CheckpointSink(producer, progress.export_lag if n == 0 else None)  # once each
        dataframe(specs).apply(step, stateful=True, metadata=True).sink(sink)
    without_time_alignment(app)
    return app


def without_time_alignment(app: Application) -> None:
    """Read records as they come, not aligned by timestamp across the topics of a partition.

    `concat` makes Quix buffer every input partition and release records in timestamp order
    across all topics with the same partition number, the worker's own outputs among them
    (references, receipts, activity). A buffer that runs dry holds the whole partition number
    until the next fetch tells its end (quixstreams/internal_consumer/buffering.py; the
    "stuttering" quix-streams#857 describes for repartition topics). Measured on the benchmark:
    the worker spent most of its catch-up waiting in consume (26 s of CPU in 135 s). The stages
    do not need the alignment: the join's and the resolver's watermark take the slowest input
    that still has records (eviction.PartitionClock), as they did under Faust. The flag is
    private (quixstreams==3.28.1); the assertion fails loudly should it move."""
    registry = app._dataframe_registry  # noqa: SLF001
    assert hasattr(registry, "_requires_time_alignment"), "quixstreams internals moved"
    registry._requires_time_alignment = False  # noqa: SLF001


def wait_for_changelogs(bootstrap: str, group: str, timeout: float = 60.0) -> None:
    """Wait until every changelog topic of the worker group answers for each of its partitions.

    Quix creates its changelog topics while the app is built and asks for their log ends at the
    first assignment; a topic created moments before is not in the consumer's metadata yet,
    and the worker died there with `_UNKNOWN_PARTITION` (PartitionAssignmentError; seen in the
    suite on a fresh broker)."""
    prefix = f"changelog__{group}--"
    client = Consumer({"bootstrap.servers": bootstrap, "group.id": prefix, "log_level": 3})
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                topics = client.list_topics(timeout=10).topics
                pending = [
                    (name, p)
                    for name, meta in topics.items()
                    if name.startswith(prefix)
                    for p, part in meta.partitions.items()
                    if part.leader < 0
                ]
                if not pending:
                    for name, meta in topics.items():
                        if name.startswith(prefix):
                            for p in meta.partitions:
                                client.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                    return
            except KafkaException as exc:
                pending = [("?", -1)]
                log.info("changelog topics not ready yet: %s", exc)
            if time.monotonic() > deadline:
                raise TimeoutError(f"changelog partitions without a leader: {pending[:5]}")
            time.sleep(0.2)
    finally:
        client.close()


# A checkpoint commit refused with these means the group moved on without this member (its
# session expired while the broker was away, or a rebalance passed it by), or the group's
# coordinator is not there yet (a broker that has just come back: "Waiting for coordinator",
# seen in the chaos test once clients reconnected within a second).
COMMIT_REFUSED = frozenset(
    {
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError._WAIT_COORD,  # noqa: SLF001
    }
)
# An assignment that fails with these is about a partition whose leader is not settled yet (a
# topic created moments before, a broker that has just come back), not about this worker.
LEADER_NOT_SETTLED = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,  # noqa: SLF001
        KafkaError._TIMED_OUT,  # noqa: SLF001
        KafkaError._TRANSPORT,  # noqa: SLF001
        KafkaError._ALL_BROKERS_DOWN,  # noqa: SLF001
    }
)


# What an assignment may meet on a broker that has just come back, besides a partition without
# leader: the group's coordinator not elected or still loading the offsets it keeps.
COORDINATOR_NOT_SETTLED = COMMIT_REFUSED | {
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.REQUEST_TIMED_OUT,
}
NOT_SETTLED = LEADER_NOT_SETTLED | COORDINATOR_NOT_SETTLED
_NOT_SETTLED_NAMES = {KafkaError(c).name() for c in NOT_SETTLED}


def transient_assignment_failure(exc: PartitionAssignmentError) -> bool:
    """Whether Quix gave up an assignment for a reason of the broker's that passes: asking a
    partition's log ends or the group's committed offsets failed because a leader or the
    coordinator is not settled. Quix raises a partition's committed-offset error as a
    RuntimeError whose text alone holds the KafkaError, hence the look at its `code=`."""
    cause = exc.__cause__
    if isinstance(cause, KafkaException):
        return cause.args[0].code() in NOT_SETTLED
    if isinstance(cause, RuntimeError):
        named = re.search(r"code=(\w+)", str(cause))
        return named is not None and named.group(1) in _NOT_SETTLED_NAMES
    return False


def ride_out_transient(exc: Exception, message: Any, logger: logging.Logger) -> bool:
    """Quix's consumer-error callback: True suppresses. Quix stops the app on any error a poll
    returns; librdkafka reports a partition without a leader, or a broker connection lost, that
    way while a broker restarts, and then fetches on by itself. Nothing was consumed, so
    suppressing skips nothing. Any other error stops the worker as before."""
    if isinstance(exc, KafkaConsumerException) and exc.code in LEADER_NOT_SETTLED:
        metrics.WORKER_CONSUMER_ERRORS.labels(exc.error.name()).inc()
        logger.warning("transient consumer error, fetching on: %s", exc.description)
        return True
    logger.error("consumer error: %r", exc, exc_info=exc)
    return False


def start_app(settings: Settings) -> Application:
    started_at = time.monotonic()
    while True:
        # Building the app creates the changelog topics; a broker that has only just started
        # (or restarted) can refuse that for a moment ("All brokers are currently fenced",
        # seen in the suite), and Quix does not retry it. A broker stopping right after it
        # created one makes Quix's read-back miss it: TopicNotFoundError, which was the worker's
        # exit 1 in CI's postback outage test (its log, kept since stop 18, said so).
        try:
            app = create_app(settings)
            wait_for_changelogs(settings.bootstrap_servers(), settings.worker_id)
            return app
        except (CreateTopicFailure, TopicNotFoundError, KafkaException, TimeoutError) as exc:
            if time.monotonic() - started_at > STARTUP_TIMEOUT:
                raise
            log.warning("worker cannot start yet, trying again: %r", exc)
            time.sleep(1.0)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    from prometheus_client import start_http_server

    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    start_http_server(settings.worker_metrics_port, addr="127.0.0.1")
    while True:
        app = start_app(settings)
        try:
            app.run()
            return
        except CheckpointConsumerCommitError as exc:
            # Quix gives up on a refused commit. Like Kafka Streams on a task migrated away,
            # the worker drops this checkpoint (its state changes are not applied at recovery:
            # their offsets were never committed), closes, and joins the group again; the
            # group replays from its last commit. Seen when the broker was away longer than
            # the session timeout (the chaos test).
            if exc.code not in COMMIT_REFUSED:
                raise
            metrics.WORKER_REJOINS.labels("commit_refused").inc()
            log.warning("checkpoint commit refused, %s: rejoining the group", exc.description)
        except PartitionAssignmentError as exc:
            # Quix stops the app when asking an assigned partition's offsets fails. Seen in the
            # suite on a fresh broker: NOT_LEADER_FOR_PARTITION for an input topic right after
            # it was provisioned, and the worker exited 1 (CI run of 2026-12-03). In a later CI
            # run a worker exited 1 when the broker stopped moments after it started (the
            # postback outage test); its log was not kept, so the coordinator's answers while
            # it settles are covered too (transient_assignment_failure). Nothing of the
            # assignment was processed, so starting over is what a restart would do, minus the
            # restart.
            if not transient_assignment_failure(exc):
                raise
            metrics.WORKER_REJOINS.labels("assignment_failed").inc()
            log.warning("partition assignment failed, %r: rejoining the group", exc.__cause__)
            time.sleep(1.0)
        except KafkaConsumerException as exc:
            # The same errors while the app restores its state from the changelogs: Quix's
            # recovery loop raises them without asking ride_out_transient. Nothing restored
            # is lost: recovery starts again from the offsets the store has.
            if exc.code not in LEADER_NOT_SETTLED:
                raise
            metrics.WORKER_REJOINS.labels("consumer_error").inc()
            log.warning("consumer error during recovery, %s: rejoining the group", exc)
            time.sleep(1.0)
