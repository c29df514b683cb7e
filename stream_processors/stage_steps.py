"""The worker's three stages as record-in, records-out steps, with no engine in them.

Each step takes one input record (its partition, topic, offset, key and value bytes), validates
it (a record that fails becomes a dead letter), runs the stage's pure logic over the partition's
table and returns the records to produce as (topic name, key, value). worker_app.py binds them
to Quix Streams; benchmarks/step_profile.py drives them over dicts, to measure what our code
costs per event without a broker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import ValidationError

from schemas.events import event_to_json, subscriber_key
from schemas.provider_ids import reference_key
from schemas.topics import (
    ATTRIBUTION_CREDITS,
    DEAD_LETTERS,
    DELIVERY_RECEIPTS,
    FUNNEL_ROWS,
    JOIN_INPUTS,
    LATE_EVENTS,
    MESSAGE_REFERENCES,
    MESSAGE_RESPONSES,
    RESOLVER_INPUTS,
    SUBSCRIBER_ACTIVITY,
)
from stream_processors import metrics, subscriber_stage
from stream_processors.checkpoint_outputs import Output as CheckpointOutput
from stream_processors.message_join import MessageJoin
from stream_processors.message_state import (
    MessageState,
    SnapshotContent,
    funnel_row,
    snapshot_from,
)
from stream_processors.record_validation import (
    dead_letter,
    reason_kind,
    validate_message_record,
    validate_resolver_record,
    validate_subscriber_record,
)
from stream_processors.resolver_join import ResolverJoin
from stream_processors.subscriber_stage import StageSettings
from stream_processors.subscriber_state import SubscriberState

log = logging.getLogger(__name__)

# (topic name, key, value, identity) of one record a step produces; records of one identity
# supersede each other within a checkpoint (checkpoint_outputs.py)
Output = CheckpointOutput

JOIN_NAMES = [s.name for s in JOIN_INPUTS]
RESOLVER_NAMES = [s.name for s in RESOLVER_INPUTS]
# The resolver's watermark moves with the sends its references carry (resolver_join.py).
RESOLVER_CLOCK_INPUTS = [MESSAGE_REFERENCES.name]


class Progress(Protocol):
    """Which inputs of a partition still have records not processed (worker_app.InputProgress)."""

    processed: dict[tuple[str, int], int]

    def assigned(self, partition: int, names: list[str]) -> None: ...

    def lagging(self, partition: int, names: list[str]) -> list[str]: ...


def failed(
    stage: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    exc: Exception,
) -> Output:
    record = dead_letter(stage, topic, partition, offset, key, value, exc)
    metrics.DEAD_LETTERS.labels(topic, reason_kind(exc)).inc()
    log.warning("dead letter %s[%d]@%d: %s", topic, partition, offset, record.reason)
    return (DEAD_LETTERS.name, topic.encode(), record.to_json(), None)


class JoinStep:
    """Sends, delivery receipts, clicks, landings, engagements, conversions, by message id."""

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        progress: Progress,
        lateness: timedelta,
        marker_retention: timedelta,
    ) -> None:
        self.progress = progress
        self.core = MessageJoin(table, lateness=lateness, marker_retention=marker_retention)

    def opened(self, partition: int) -> None:
        """The partition's table was (re)opened: assigned, or recovered since last seen."""
        self.progress.assigned(partition, JOIN_NAMES)
        self.core.rebuild(partition)
        # One line per partition and recovery: what a missed eviction is traced back to.
        log.info(
            "join partition %d opened: %d scheduled, watermark %s",
            partition,
            self.core.eviction.scheduled(partition),
            self.core.watermark(partition),
        )

    def __call__(
        self, partition: int, topic: str, offset: int, key: bytes, value: bytes
    ) -> list[Output]:
        self.progress.processed[(topic, partition)] = offset
        try:
            event = validate_message_record(key, value)
        except (ValidationError, ValueError) as exc:
            return [failed("join", topic, partition, offset, key, value, exc)]
        lagging = self.progress.lagging(partition, JOIN_NAMES)
        out = self.core.process(partition, event, value, topic, lagging, offset)
        results: list[Output] = [
            (
                MESSAGE_REFERENCES.name,
                reference_key(r.account, r.provider, r.spelling),
                r.to_json(),
                None,
            )
            for r in out.references
        ]
        # A message's rows and its snapshots are versioned upserts downstream (the sink keeps
        # the highest version, the attribution stage too): within a checkpoint the last one of
        # each says everything, and only that one is built.
        for state in out.row_states:
            identity = (state.account, state.message_id)
            results.append((FUNNEL_ROWS.name, state.message_id.encode(), _row(state), identity))
        for late in out.late:
            results.append((LATE_EVENTS.name, late.message_id.encode(), late.to_json(), None))
        for state, content in out.snapshot_states:
            subscriber = subscriber_key(state.account, content[0])
            identity = (subscriber, state.message_id)
            results.append(
                (SUBSCRIBER_ACTIVITY.name, subscriber, _snapshot(state, content), identity)
            )
        return results


def _row(state: MessageState) -> Callable[[], bytes]:
    def build() -> bytes:
        metrics.FUNNEL_ROWS_EMITTED.inc()
        return funnel_row(state).to_json()

    return build


def _snapshot(state: MessageState, content: SnapshotContent) -> Callable[[], bytes]:
    return lambda: snapshot_from(state, content).to_json()


class ResolveStep:
    """Provider receipts and message references, by provider reference."""

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        progress: Progress,
        lateness: timedelta,
        marker_retention: timedelta,
    ) -> None:
        self.progress = progress
        self.core = ResolverJoin(table, lateness=lateness, marker_retention=marker_retention)

    def opened(self, partition: int) -> None:
        self.progress.assigned(partition, RESOLVER_NAMES)
        self.core.rebuild(partition)

    def __call__(
        self, partition: int, topic: str, offset: int, key: bytes, value: bytes
    ) -> list[Output]:
        self.progress.processed[(topic, partition)] = offset
        try:
            item = validate_resolver_record(topic, key, value)
        except (ValidationError, ValueError) as exc:
            return [failed("resolver", topic, partition, offset, key, value, exc)]
        lagging = self.progress.lagging(partition, RESOLVER_CLOCK_INPUTS)
        out = self.core.process(partition, key, item, topic, offset, lagging)
        outcome = "late" if out.input_late else "held" if out.held else "resolved"
        metrics.UNRESOLVED(outcome).inc()
        results: list[Output] = [
            (DELIVERY_RECEIPTS.name, r.message_id.encode(), event_to_json(r), None)
            for r in out.receipts
        ]
        results += [(LATE_EVENTS.name, key, late.to_json(), None) for late in out.late]
        return results


class AttributeStep:
    """Subscriber activity, subscriber conversions and inbound replies, by subscriber."""

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        settings: StageSettings,
        durable: Mapping[str, int],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.table = table
        self.settings = settings
        self.durable = durable
        self.now = clock

    def __call__(
        self, partition: int, topic: str, offset: int, key: bytes, value: bytes
    ) -> list[Output]:
        try:
            item = validate_subscriber_record(topic, key, value)
        except (ValidationError, ValueError) as exc:
            return [failed("attribution", topic, partition, offset, key, value, exc)]
        stored = self.table.get(key)
        out = subscriber_stage.step(
            SubscriberState.from_bytes(stored) if stored is not None else None,
            item,
            offset,
            self.now(),
            self.durable,
            self.settings,
        )
        if out.store and out.state is not None:
            self.table[key] = out.state.to_bytes()
        metrics.ATTRIBUTION_INPUT(
            "late" if out.late else "applied" if out.applied else "repeat"
        ).inc()
        for part, count in vars(out.retired).items():
            if count:
                metrics.SUBSCRIBER_RETIRED.labels(part).inc(count)
        results: list[Output] = []
        if out.late is not None:
            results.append((LATE_EVENTS.name, key, out.late.to_json(), None))
        results += [(ATTRIBUTION_CREDITS.name, key, c.to_json(), None) for c in out.credits]
        results += [(MESSAGE_RESPONSES.name, key, r.to_json(), None) for r in out.responses]
        return results
