"""Resolver state: one provider-id spelling, the message it belongs to, and the receipts that
named it. Pure: no Kafka here.

Receipts are kept (not dropped once forwarded): on every input, all of them are forwarded again
once the message is known. The join drops repeats by event id, so forwarding twice is harmless,
and a replay after a crash re-sends whatever a crash may have lost. The state is forgotten on
event time (resolver_join.py), when `hold_until` is past by more than the allowed lateness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import orjson

from schemas.events import DeliveryReceiptEvent, MessageReference, ProviderReceiptEvent
from stream_processors.message_state import ORPHAN_GRACE, send_horizon


@dataclass
class ReferenceState:
    reference: MessageReference | None = None
    receipts: dict[str, ProviderReceiptEvent] = field(default_factory=dict)
    # bookkeeping: the partition whose changelog holds it, the input (topic, offset) of its
    # last change (eviction waits until that is committed)
    partition: int = -1
    changed_at: tuple[str, int] | None = None
    closing: tuple[str, int] | None = None  # as MessageState.closing

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "ref": self.reference.model_dump(mode="json") if self.reference else None,
                "rcpt": {k: r.model_dump(mode="json") for k, r in self.receipts.items()},
                "p": self.partition,
                "o": list(self.changed_at) if self.changed_at else None,
                "x": list(self.closing) if self.closing else None,
            }
        )

    @classmethod
    def from_bytes(cls, payload: bytes) -> ReferenceState:
        d = orjson.loads(payload)
        return cls(
            reference=MessageReference.model_validate(d["ref"]) if d["ref"] else None,
            receipts={k: ProviderReceiptEvent.model_validate(r) for k, r in d["rcpt"].items()},
            partition=d.get("p", -1),
            changed_at=tuple(d["o"]) if d.get("o") else None,  # type: ignore[arg-type]
            closing=tuple(d["x"]) if d.get("x") else None,  # type: ignore[arg-type]
        )


def hold_until(state: ReferenceState) -> datetime | None:
    """Known message: its horizon (receipts after it do not count in the join either).
    Receipts with no send yet: the first one's time plus the grace a send may lag its own
    receipts (an orphan so far). None: a reference written before they carried the send time,
    kept as before."""
    ref = state.reference
    if ref is not None:
        if ref.sent_at is None:
            return None
        return send_horizon(ref.sent_at, ref.attribution_window_hours)
    if not state.receipts:
        return None
    return min(r.occurred_at for r in state.receipts.values()) + ORPHAN_GRACE


def apply_reference(
    state: ReferenceState | None, ref: MessageReference
) -> tuple[ReferenceState, bool]:
    state = state or ReferenceState()
    # Two messages claiming one provider id is a provider bug; the least message id wins so
    # the answer does not depend on arrival order.
    if state.reference is None or ref.message_id < state.reference.message_id:
        state.reference = ref
        return state, True
    return state, False


def apply_receipt(
    state: ReferenceState | None, receipt: ProviderReceiptEvent
) -> tuple[ReferenceState, bool]:
    state = state or ReferenceState()
    if receipt.event_id in state.receipts:
        return state, False
    state.receipts[receipt.event_id] = receipt
    return state, True


def resolved_receipts(state: ReferenceState, only: str | None = None) -> list[DeliveryReceiptEvent]:
    """The held receipts (or the one with event id `only`) as the join's delivery receipts;
    empty until the message is known. The part is the provider id as the send spelled it, so
    every spelling of one part lands on the same part."""
    ref = state.reference
    if ref is None:
        return []
    held = state.receipts.values() if only is None else [state.receipts[only]]
    return [
        DeliveryReceiptEvent(
            event_id=r.event_id,
            account=r.account,
            occurred_at=r.occurred_at,
            message_id=ref.message_id,
            status=r.status,
            failure_cause=r.failure_cause,
            provider=r.provider,
            error_code=r.error_code,
            part_id=ref.provider_message_id,
        )
        for r in sorted(held, key=lambda r: (r.occurred_at, r.event_id))
    ]
