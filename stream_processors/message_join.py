"""The per-message join of one worker, as pure logic over a key-value table.

The worker (worker_app.py) hands every accepted event to `MessageJoin.process` and produces
what it returns; the table is the event's partition's state store (partition_table.py: writes
go on that partition's changelog), or a dict in the tests. No Kafka here.

Per event: fold it into its message's state (message_state.py), emit the row, the provider-id
references of a send, the subscriber snapshot when it changed, and late records; then advance
the partition's watermark and evict what came due (eviction.py states the invariant).

Given `durable` offsets, a state is evicted only once the input offset of its last change is
committed, so its last row is durable (eviction.EventTimeEviction says why); the Quix worker
needs no such wait and passes none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from schemas.events import (
    ClickEvent,
    ConversionEvent,
    MessageEventBase,
    MessageReference,
    SendEvent,
)
from schemas.funnel_row import FunnelRow
from schemas.late_event import LateEvent, LateReason
from schemas.provider_ids import spellings
from schemas.subscriber_activity import SubscriberSnapshot
from stream_processors import metrics
from stream_processors.eviction import ClosedMarker, EventTimeEviction, due, is_marker
from stream_processors.message_state import (
    MessageState,
    SnapshotContent,
    apply_event,
    beyond_horizon,
    decided_after_window,
    funnel_row,
    hold_until,
    hold_until_from_bytes,
    horizon,
    snapshot_content,
    snapshot_from,
    state_key,
    timed_events,
)

log = logging.getLogger(__name__)


@dataclass
class JoinOutput:
    # the states whose row is due; built on demand (`rows`), so that the worker builds only the
    # last row of a message in each checkpoint (checkpoint_outputs.py)
    row_states: list[MessageState] = field(default_factory=list)
    references: list[MessageReference] = field(default_factory=list)
    # the states whose subscriber snapshot changed, with its content; built on demand too
    snapshot_states: list[tuple[MessageState, SnapshotContent]] = field(default_factory=list)
    late: list[LateEvent] = field(default_factory=list)

    @property
    def rows(self) -> list[FunnelRow]:
        return [funnel_row(state) for state in self.row_states]

    @property
    def snapshots(self) -> list[SubscriberSnapshot]:
        return [snapshot_from(state, content) for state, content in self.snapshot_states]


def _content(record: BaseModel) -> dict[str, object]:
    fields = dict(record.__dict__)
    fields.pop("version", None)
    return fields


def changed_content(before: list, after: list) -> list:  # type: ignore[type-arg]
    """The records of `after` whose content (all but the version) is not in `before`, compared
    as field values (no copy and dump of every record per step)."""
    old = [_content(r) for r in before if r is not None]
    return [r for r in after if _content(r) not in old]


def _late(
    state: MessageState,
    event: tuple[str, str, datetime],
    reason: LateReason,
    watermark: datetime | None,
    payload: str = "",
) -> LateEvent:
    event_id, event_type, occurred_at = event
    return LateEvent(
        account=state.account,
        message_id=state.message_id,
        event_id=event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        reason=reason,
        campaign=state.send.campaign if state.send and reason is LateReason.AFTER_WINDOW else "",
        horizon=horizon(state) if reason is LateReason.AFTER_WINDOW else None,
        watermark=watermark,
        payload=payload,
    )


class MessageJoin:
    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        lateness: timedelta,
        marker_retention: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        durable: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        """durable: (topic, partition) -> the group's committed offset (EventTimeEviction)."""
        self.table = table
        self.lateness = lateness
        self.marker_retention = marker_retention
        self.now = clock
        self.eviction = EventTimeEviction(table, clock, durable)
        self.schedule = self.eviction.schedule
        self.clocks = self.eviction.clocks

    def rebuild(self, partition: int | None = None) -> None:
        """The schedule lives in memory: after every recovery (start, rebalance) it is rebuilt
        from the states the table now holds, and the watermarks from their persisted values
        (a clock already ahead in memory keeps its value). `partition`: the table holds only
        that partition, and only its schedule is replaced."""

        def due_of(raw: bytes) -> tuple[int, datetime, tuple[str, int] | None]:
            partition, hold, closing = hold_until_from_bytes(raw)
            return partition, due(hold, self.lateness), closing

        self.eviction.rebuild(due_of, partition)
        metrics.EVICTION_SCHEDULED.set(self.pending())

    def pending(self) -> int:
        return self.eviction.pending()

    def durable_advanced(self) -> None:
        """The committed offsets moved: states waiting on them are tried again."""
        self.eviction.durable_advanced()

    def watermark(self, partition: int) -> datetime | None:
        return self.eviction.watermark(partition)

    def process(
        self,
        partition: int,
        event: MessageEventBase,
        payload: bytes,
        topic: str = "",
        lagging: Collection[str] = (),
        offset: int = -1,
    ) -> JoinOutput:
        """Join one event read from `topic` at `offset`; `lagging` names the inputs of this
        partition that still have unprocessed records (they hold the watermark back,
        eviction.py)."""
        out = JoinOutput()
        key = state_key(event.account, event.message_id)
        stored = self.table.get(key)
        source = (topic, offset) if topic else None
        if stored is not None and is_marker(stored):
            marker = ClosedMarker.from_bytes(stored)
            out.late.append(self._after_eviction(partition, event, payload, marker))
        else:
            self._fold(partition, key, stored, event, payload, out, source)
        self._advance(partition, topic, event.occurred_at, lagging, out, source)
        for late in out.late:
            metrics.LATE(late.reason.value).inc()
        return out

    def _after_eviction(
        self, partition: int, event: MessageEventBase, payload: bytes, marker: ClosedMarker
    ) -> LateEvent:
        """An event of an evicted message. Classified as it would have been had the state still
        been there: past the horizon -> after_window; of an orphan -> orphan; otherwise it came
        later than the allowed lateness -> window_closed (the only arrival-dependent case)."""
        is_send = isinstance(event, SendEvent)
        if not marker.orphan and not is_send and event.occurred_at > marker.hold_until:
            reason, watermark, kept = LateReason.AFTER_WINDOW, None, ""
        elif marker.orphan and not is_send:
            reason, watermark, kept = LateReason.ORPHAN, self.watermark(partition), ""
        else:
            reason = LateReason.WINDOW_CLOSED
            watermark, kept = self.watermark(partition), payload.decode("utf-8", "replace")
        return LateEvent(
            account=event.account,
            message_id=event.message_id,
            event_id=event.event_id,
            event_type=event.event_type,
            occurred_at=event.occurred_at,
            reason=reason,
            campaign=marker.campaign if reason is LateReason.AFTER_WINDOW else "",
            horizon=None if marker.orphan else marker.hold_until,
            watermark=watermark,
            payload=kept,
        )

    def _fold(
        self,
        partition: int,
        key: bytes,
        stored: bytes | None,
        event: MessageEventBase,
        payload: bytes,
        out: JoinOutput,
        source: tuple[str, int] | None,
    ) -> None:
        state = MessageState.from_bytes(stored) if stored is not None else None
        if state is not None and state.closing is not None:
            # An orphan already written out, waiting only for that to be committed: closed.
            marker = self._marker(state)
            out.late.append(self._after_eviction(partition, event, payload, marker))
            return
        previous = snapshot_content(state) if state is not None else None
        state, changed = apply_event(state, event)
        if changed:
            state.partition = partition
            state.changed_at = source
            self.table[key] = state.to_bytes()
            self.schedule.schedule(partition, due(hold_until(state), self.lateness), key)
            metrics.JOINED(event.event_type).inc()
            lag = (self.now() - event.occurred_at).total_seconds()
            metrics.EVENT_LAG_SECONDS.observe(max(lag, 0.0))
        else:
            metrics.DUPLICATES(event.event_type).inc()
        # Events past the horizon are not counted; say so whenever one arrives or the send
        # that sets the horizon does (repeats too: the late table is keyed by event id).
        beyond = beyond_horizon(state)
        if beyond and (isinstance(event, SendEvent) or event.event_id in {b[0] for b in beyond}):
            out.late += [_late(state, b, LateReason.AFTER_WINDOW, None) for b in beyond]
        # Conversions after their click's window are not counted either; say so when the
        # verdict is final, i.e. when the last of the conversion, the click it carries and the
        # send (which says the window) arrives (repeats too, like the above).
        if isinstance(event, ConversionEvent | ClickEvent | SendEvent):
            decided = [
                d
                for d in decided_after_window(state)
                if isinstance(event, SendEvent)
                or d[0] == event.event_id
                or (
                    isinstance(event, ClickEvent)
                    and state.conversions[d[0]].click_id == event.click_id
                )
            ]
            out.late += [_late(state, d, LateReason.AFTER_WINDOW, None) for d in decided]
        if not changed:
            # A repeat sends nothing: the state says its first arrival was applied, and a
            # checkpoint commits state only with the outputs made from it (worker_app.py), so
            # those are on Kafka; a replay after a crash starts from the state before it and
            # so is no repeat. (On Faust, state and outputs were not committed together and
            # every repeat re-sent its row and snapshot: 0.11 rows and 0.09 snapshots per
            # input event in benchmarks/step_profile.py.)
            return
        if isinstance(event, SendEvent):
            # Re-key stage: every spelling of the send's provider ids, to the resolver, so
            # receipts that name only a provider id find this message (even if they came
            # first: the resolver holds them).
            for provider_id in event.provider_message_ids:
                for spelling in spellings(provider_id):
                    out.references.append(
                        MessageReference(
                            account=event.account,
                            provider=event.provider.lower(),
                            spelling=spelling,
                            provider_message_id=provider_id,
                            message_id=event.message_id,
                            sent_at=event.occurred_at,
                            attribution_window_hours=event.attribution_window_hours,
                        )
                    )
        out.row_states.append(state)  # not changed after: the next event decodes its own
        # Re-key stage: what the subscriber did with this message, to the attribution stage,
        # when its content changed.
        content = snapshot_content(state)
        if content is not None and content != previous:
            out.snapshot_states.append((state, content))

    def _advance(
        self,
        partition: int,
        topic: str,
        event_time: datetime,
        lagging: Collection[str],
        out: JoinOutput,
        source: tuple[str, int] | None,
    ) -> None:
        watermark, keys = self.eviction.advance(partition, topic, event_time, lagging)
        if watermark is None:
            return
        metrics.WATERMARKS(str(partition)).set(watermark.timestamp())
        for key in keys:
            self._evict(partition, key, watermark, out, source)
        metrics.EVICTION_SCHEDULED.set(self.pending())

    def _marker(self, state: MessageState) -> ClosedMarker:
        hold = hold_until(state)
        forget = due(hold, self.lateness) + self.marker_retention
        campaign = state.send.campaign if state.send else ""
        return ClosedMarker(hold, forget, state.send is None, state.partition, campaign)

    def _evict(
        self,
        partition: int,
        key: bytes,
        watermark: datetime,
        out: JoinOutput,
        source: tuple[str, int] | None,
    ) -> None:
        """Runs while an event of `partition` (read at `source`) is processed: the engine
        writes a table change to the current event's partition, which is the state's own (its
        events share the key)."""
        stored = self.table.get(key)
        if stored is None:
            return
        if is_marker(stored):
            if self.eviction.expire_marker(partition, key, stored, watermark):
                metrics.STATES_EVICTED.labels("marker").inc()
            return
        state = MessageState.from_bytes(stored)
        hold = hold_until(state)
        if not watermark > due(hold, self.lateness):  # a send came and moved the horizon
            self.schedule.schedule(partition, due(hold, self.lateness), key)
            return
        if not self.eviction.is_durable(state.changed_at, partition):
            self.eviction.wait(partition, key)
            return
        orphan = state.send is None
        if orphan:  # held a whole horizon and no send came: its events are written out
            first = state.closing is None  # counted then, not again after a crash
            write, close = self.eviction.orphan_step(partition, key, state, source)
            if write:
                out.late += [
                    _late(state, e, LateReason.ORPHAN, watermark) for e in timed_events(state)
                ]
                if first:
                    metrics.STATES_EVICTED.labels("orphan").inc()
            if not close:
                return
        state.partition = partition
        marker = self._marker(state)
        self.table[key] = marker.to_bytes()
        self.schedule.schedule(partition, marker.forget_after, key)
        if not orphan:
            metrics.STATES_EVICTED.labels("message").inc()
