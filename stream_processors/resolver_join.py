"""The resolver of one worker, as pure logic over a key-value table (keyed by provider-id
spelling, schemas/provider_ids.py): receipts that name only the provider's id wait for the
send's reference and are forwarded to the join by message id. No Kafka here.

Forgetting, on event time as the join does (eviction.py): the partition's watermark moves with
the send times the references carry (not the receipts': see `process`). A reference is evicted
once the watermark passes its message's horizon by more than the allowed lateness (a later
receipt could not count in the join either); receipts whose send never came are evicted once it
passes the first one's time + an hour by more than the lateness, and written out as `orphan`.
Each leaves a closed marker, so a receipt that comes later still is written out late
(`after_window` past the horizon, `window_closed` before it, `orphan` for an orphan), not held
for ever. Markers go after `marker_retention`. A state is evicted only once its last change is
committed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from schemas.events import DeliveryReceiptEvent, MessageReference, ProviderReceiptEvent
from schemas.late_event import LateEvent, LateReason
from stream_processors import metrics
from stream_processors.eviction import ClosedMarker, EventTimeEviction, due, is_marker
from stream_processors.reference_state import (
    ReferenceState,
    apply_receipt,
    apply_reference,
    hold_until,
    resolved_receipts,
)


@dataclass
class ResolverOutput:
    receipts: list[DeliveryReceiptEvent] = field(default_factory=list)
    late: list[LateEvent] = field(default_factory=list)
    held: bool = False  # receipts wait for their send
    input_late: bool = False  # the input named a provider id already forgotten


class ResolverJoin:
    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        lateness: timedelta,
        marker_retention: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        durable: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        self.table = table
        self.lateness = lateness
        self.marker_retention = marker_retention
        self.eviction = EventTimeEviction(table, clock, durable)

    def rebuild(self, partition: int | None = None) -> None:
        """After every recovery: the schedule from the table, the watermarks from their
        persisted values (`partition`: as MessageJoin.rebuild)."""

        def due_of(raw: bytes) -> tuple[int, datetime, tuple[str, int] | None] | None:
            state = ReferenceState.from_bytes(raw)
            hold = hold_until(state)
            if hold is None:
                return None
            return state.partition, due(hold, self.lateness), state.closing

        self.eviction.rebuild(due_of, partition)

    def durable_advanced(self) -> None:
        self.eviction.durable_advanced()

    def process(
        self,
        partition: int,
        key: bytes,
        item: MessageReference | ProviderReceiptEvent,
        topic: str = "",
        offset: int = -1,
        lagging: Collection[str] = (),
    ) -> ResolverOutput:
        out = ResolverOutput()
        source = (topic, offset) if topic else None
        stored = self.table.get(key)
        state = None
        marker = None
        if stored is not None and is_marker(stored):
            marker = ClosedMarker.from_bytes(stored)
        elif stored is not None:
            state = ReferenceState.from_bytes(stored)
            if state.closing is not None:  # orphan receipts written out, the commit awaited
                marker = self._marker(state)
        if marker is not None:
            out.input_late = True
            if isinstance(item, ProviderReceiptEvent):
                out.late.append(self._after_eviction(partition, item, marker))
        else:
            if isinstance(item, MessageReference):
                state, changed = apply_reference(state, item)
            else:
                state, changed = apply_receipt(state, item)
            if changed:
                state.partition = partition
                state.changed_at = source
                self.table[key] = state.to_bytes()
                hold = hold_until(state)
                if hold is not None:
                    self.eviction.schedule.schedule(partition, due(hold, self.lateness), key)
            # A receipt: only it is new downstream; the others went out when they came, or
            # with the reference that resolved them (a replay after a crash starts from the
            # state of the last checkpoint, so it sends them again). Re-sending every receipt
            # on each new one cost the join a repeated step per earlier receipt.
            only = item.event_id if isinstance(item, ProviderReceiptEvent) else None
            out.receipts = resolved_receipts(state, only)
            out.held = state.reference is None and bool(state.receipts)
        # Only the sends' times move the clock: references come from the join, so they follow
        # its progress through the sends. A receipt's time would not - a backlog of receipts
        # read while the join is still behind on their sends would evict them as orphans.
        if isinstance(item, MessageReference) and item.sent_at is not None:
            watermark, keys = self.eviction.advance(partition, topic, item.sent_at, lagging)
        else:
            watermark, keys = self.eviction.due(partition)
        if watermark is not None:
            for k in keys:
                self._evict(partition, k, watermark, out, source)
        metrics.RESOLVER_SCHEDULED.set(self.eviction.pending())
        return out

    def _after_eviction(
        self, partition: int, receipt: ProviderReceiptEvent, marker: ClosedMarker
    ) -> LateEvent:
        if marker.orphan:
            reason = LateReason.ORPHAN
        elif receipt.occurred_at > marker.hold_until:
            reason = LateReason.AFTER_WINDOW
        else:
            reason = LateReason.WINDOW_CLOSED
        return _late(receipt, marker.message_id, reason, marker, self.eviction.watermark(partition))

    def _marker(self, state: ReferenceState) -> ClosedMarker:
        hold = hold_until(state)
        assert hold is not None  # only states that come due are closed
        forget = due(hold, self.lateness) + self.marker_retention
        message_id = state.reference.message_id if state.reference else ""
        orphan = state.reference is None
        return ClosedMarker(hold, forget, orphan, state.partition, message_id=message_id)

    def _evict(
        self,
        partition: int,
        key: bytes,
        watermark: datetime,
        out: ResolverOutput,
        source: tuple[str, int] | None,
    ) -> None:
        stored = self.table.get(key)
        if stored is None:
            return
        if is_marker(stored):
            if self.eviction.expire_marker(partition, key, stored, watermark):
                metrics.RESOLVER_EVICTED.labels("marker").inc()
            return
        state = ReferenceState.from_bytes(stored)
        hold = hold_until(state)
        if hold is None:
            return
        if not watermark > due(hold, self.lateness):  # the reference came and moved it
            self.eviction.schedule.schedule(partition, due(hold, self.lateness), key)
            return
        if not self.eviction.is_durable(state.changed_at, partition):
            self.eviction.wait(partition, key)
            return
        state.partition = partition
        marker = self._marker(state)
        orphan = marker.orphan
        if orphan:  # no send came: its receipts are written out (two steps: orphan_step)
            first = state.closing is None  # counted then, not again after a crash
            write, close = self.eviction.orphan_step(partition, key, state, source)
            if write:
                out.late += [
                    _late(r, "", LateReason.ORPHAN, marker, watermark)
                    for r in sorted(
                        state.receipts.values(), key=lambda r: (r.occurred_at, r.event_id)
                    )
                ]
                if first:
                    metrics.RESOLVER_EVICTED.labels("orphan").inc()
            if not close:
                return
        self.table[key] = marker.to_bytes()
        self.eviction.schedule.schedule(partition, marker.forget_after, key)
        if not orphan:
            metrics.RESOLVER_EVICTED.labels("reference").inc()


def _late(
    receipt: ProviderReceiptEvent,
    message_id: str,
    reason: LateReason,
    marker: ClosedMarker,
    watermark: datetime | None,
) -> LateEvent:
    return LateEvent(
        account=receipt.account,
        message_id=message_id,
        event_id=receipt.event_id,
        event_type=receipt.event_type,
        occurred_at=receipt.occurred_at,
        reason=reason,
        campaign="",
        horizon=None if marker.orphan else marker.hold_until,
        watermark=watermark,
        payload=receipt.model_dump_json(),
    )
