"""Offline ground truth: what the numbers must be, computed the plain way from a list of events.

Written independently of stream_processors/ (no shared code beyond the event classes): take the
distinct events per message, sort them, and read the answer off. Tests compare the pipeline's
output to this.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from schemas.events import ClickEvent, ConversionEvent, DeliveryReceiptEvent, EventBase, SendEvent

REAL_FINALS = {"delivered", "undelivered", "expired", "rejected"}


@dataclass
class ExpectedMessage:
    account: str
    message_id: str
    distinct_events: int
    has_send: bool
    campaign: str
    variant: str
    segment: str
    sent_at: datetime | None
    delivery_status: str  # "" when no receipt
    receipts: int
    clicks: int
    conversions: int
    revenue: dict[str, Decimal] = field(default_factory=dict)
    cost: Decimal = Decimal(0)


def expected_messages(events: list[EventBase]) -> dict[tuple[str, str], ExpectedMessage]:
    by_message: dict[tuple[str, str], dict[str, EventBase]] = defaultdict(dict)
    for e in events:
        by_message[(e.account, e.message_id)][e.event_id] = e  # a repeat overwrites itself
    out = {}
    for key, distinct in by_message.items():
        evs = sorted(distinct.values(), key=lambda e: (e.occurred_at, e.event_id))
        sends = [e for e in evs if isinstance(e, SendEvent)]
        receipts = [e for e in evs if isinstance(e, DeliveryReceiptEvent)]
        real = [r for r in receipts if r.status.value in REAL_FINALS]
        unknown = [r for r in receipts if r.status.value == "unknown"]
        # the latest real final; else the latest unknown; else the latest intermediate
        chosen = (real or unknown or receipts or [None])[-1]
        send = sends[0] if sends else None
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        conversions = [e for e in evs if isinstance(e, ConversionEvent)]
        for c in conversions:
            revenue[c.currency] += c.amount
        out[key] = ExpectedMessage(
            account=key[0],
            message_id=key[1],
            distinct_events=len(evs),
            has_send=send is not None,
            campaign=send.campaign if send else "",
            variant=send.variant if send else "",
            segment=send.segment if send else "",
            sent_at=send.occurred_at if send else None,
            delivery_status=chosen.status.value if chosen else "",
            receipts=len(receipts),
            clicks=sum(isinstance(e, ClickEvent) for e in evs),
            conversions=len(conversions),
            revenue=dict(revenue),
            cost=send.cost if send else Decimal(0),
        )
    return out


@dataclass
class ExpectedVariant:
    sent: int = 0
    delivered: int = 0
    clicks: int = 0
    clicked_messages: int = 0
    converting_messages: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)


def expected_variants(
    messages: dict[tuple[str, str], ExpectedMessage], currency: str = "USD"
) -> dict[tuple[str, str, str], ExpectedVariant]:
    out: dict[tuple[str, str, str], ExpectedVariant] = defaultdict(ExpectedVariant)
    for m in messages.values():
        if not m.has_send:
            continue
        v = out[(m.account, m.campaign, m.variant)]
        v.sent += 1
        v.delivered += m.delivery_status == "delivered"
        v.clicks += m.clicks
        v.clicked_messages += m.clicks > 0
        v.converting_messages += m.conversions > 0
        v.conversions += m.conversions
        v.revenue += m.revenue.get(currency, Decimal(0))
        v.cost += m.cost
    return dict(out)
