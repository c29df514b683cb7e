"""Per-message join state and the fold that builds a funnel row from it. Pure: no Kafka here.

Invariant (what the property tests check): the state after folding a multiset of events is a
function of the *set* of distinct event ids in it, whatever their order and however often each
repeats. Every field is therefore merged with a commutative, idempotent operation:
  - seen event ids: set union (a repeat is recognised and changes nothing),
  - the send: the one with the least (occurred_at, event_id), should a message get two,
  - the delivery status: the receipt with the greatest `receipt_precedence`,
  - counts and revenue: sums over distinct events only,
  - first/last times: min/max.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import orjson

from schemas.delivery_status import DeliveryStatus, receipt_precedence
from schemas.events import ClickEvent, ConversionEvent, DeliveryReceiptEvent, Event, SendEvent
from schemas.funnel_row import FunnelRow


@dataclass
class Receipt:
    status: DeliveryStatus
    occurred_at: datetime
    event_id: str

    def precedence(self) -> tuple:
        return receipt_precedence(self.status, self.occurred_at, self.event_id)


@dataclass
class MessageState:
    account: str
    message_id: str
    seen: set[str] = field(default_factory=set)
    send: SendEvent | None = None
    receipt: Receipt | None = None
    receipts: int = 0
    clicks: int = 0
    first_click_at: datetime | None = None
    conversions: int = 0
    revenue: dict[str, Decimal] = field(default_factory=dict)
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None

    # ---- serialisation for the Faust table (raw bytes: we own the format) ----------------
    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "account": self.account,
                "message_id": self.message_id,
                "seen": sorted(self.seen),
                "send": self.send.model_dump(mode="json") if self.send else None,
                "receipt": [
                    self.receipt.status.value,
                    self.receipt.occurred_at.isoformat(),
                    self.receipt.event_id,
                ]
                if self.receipt
                else None,
                "receipts": self.receipts,
                "clicks": self.clicks,
                "first_click_at": _iso(self.first_click_at),
                "conversions": self.conversions,
                "revenue": {k: str(v) for k, v in sorted(self.revenue.items())},
                "first_event_at": _iso(self.first_event_at),
                "last_event_at": _iso(self.last_event_at),
            }
        )

    @classmethod
    def from_bytes(cls, payload: bytes) -> MessageState:
        d = orjson.loads(payload)
        receipt = d["receipt"]
        return cls(
            account=d["account"],
            message_id=d["message_id"],
            seen=set(d["seen"]),
            send=SendEvent.model_validate(d["send"]) if d["send"] else None,
            receipt=Receipt(DeliveryStatus(receipt[0]), _dt(receipt[1]), receipt[2])
            if receipt
            else None,
            receipts=d["receipts"],
            clicks=d["clicks"],
            first_click_at=_dt(d["first_click_at"]),
            conversions=d["conversions"],
            revenue={k: Decimal(v) for k, v in d["revenue"].items()},
            first_event_at=_dt(d["first_event_at"]),
            last_event_at=_dt(d["last_event_at"]),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _min(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def _max(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def state_key(account: str, message_id: str) -> bytes:
    """Table key: the tenant is part of it, so two accounts' message ids never share state."""
    return f"{account}\x1f{message_id}".encode()


def apply_event(state: MessageState | None, event: Event) -> tuple[MessageState, bool]:
    """Fold one event into the message's state. Returns (state, changed); a repeat of an
    event id already folded returns the state unchanged and changed=False."""
    if state is None:
        state = MessageState(account=event.account, message_id=event.message_id)
    if event.event_id in state.seen:
        return state, False
    state.seen.add(event.event_id)
    state.first_event_at = _min(state.first_event_at, event.occurred_at)
    state.last_event_at = _max(state.last_event_at, event.occurred_at)

    if isinstance(event, SendEvent):
        if state.send is None or (event.occurred_at, event.event_id) < (
            state.send.occurred_at,
            state.send.event_id,
        ):
            state.send = event
    elif isinstance(event, DeliveryReceiptEvent):
        state.receipts += 1
        candidate = Receipt(event.status, event.occurred_at, event.event_id)
        if state.receipt is None or candidate.precedence() > state.receipt.precedence():
            state.receipt = candidate
    elif isinstance(event, ClickEvent):
        state.clicks += 1
        state.first_click_at = _min(state.first_click_at, event.occurred_at)
    elif isinstance(event, ConversionEvent):
        state.conversions += 1
        state.revenue[event.currency] = state.revenue.get(event.currency, Decimal(0)) + event.amount
    return state, True


def funnel_row(state: MessageState) -> FunnelRow:
    send = state.send
    assert state.first_event_at is not None and state.last_event_at is not None
    return FunnelRow(
        account=state.account,
        message_id=state.message_id,
        version=len(state.seen),
        has_send=send is not None,
        campaign=send.campaign if send else "",
        variant=send.variant if send else "",
        segment=send.segment if send else "",
        sender=send.sender if send else "",
        country=send.country if send else "",
        carrier=send.carrier if send else "",
        sent_at=send.occurred_at if send else None,
        parts=send.parts if send else 0,
        cost=send.cost if send else Decimal(0),
        cost_currency=send.currency if send else "",
        delivery_status=state.receipt.status if state.receipt else None,
        delivery_status_at=state.receipt.occurred_at if state.receipt else None,
        receipts=state.receipts,
        clicks=state.clicks,
        first_click_at=state.first_click_at,
        conversions=state.conversions,
        revenue=dict(sorted(state.revenue.items())),
        first_event_at=state.first_event_at,
        last_event_at=state.last_event_at,
    )
