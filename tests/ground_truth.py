"""Offline ground truth: what the numbers must be, computed the plain way from a list of events.

Written independently of stream_processors/ (no shared code beyond the event classes): take the
distinct events per message, sort them, and read the answer off. Tests compare the pipeline's
output to this.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from schemas.events import (
    ClickEvent,
    ConversionEvent,
    DeliveryReceiptEvent,
    EngagementEvent,
    EventBase,
    LandingEvent,
    MessageEventBase,
    SendEvent,
    SubscriberConversionEvent,
)

REAL_FINALS = {"delivered", "undelivered", "expired", "rejected"}
FAILURES = {"undelivered", "expired", "rejected"}
BOT_WORDS = ("facebookexternalhit", "whatsapp", "bot", "curl/")


def _latest(receipts: list[DeliveryReceiptEvent]) -> DeliveryReceiptEvent | None:
    """The receipt a plain reading picks: latest real final, else latest unknown, else latest."""
    ordered = sorted(receipts, key=lambda r: (r.occurred_at, r.event_id))
    real = [r for r in ordered if r.status.value in REAL_FINALS]
    unknown = [r for r in ordered if r.status.value == "unknown"]
    return (real or unknown or ordered or [None])[-1]


def delivery_status(
    receipts: list[DeliveryReceiptEvent], parts: int
) -> tuple[str, str, datetime | None]:
    """(status, failure cause, status time); multipart with per-part receipts: all parts
    delivered -> delivered, any part failed -> failed, otherwise still submitted."""
    if not receipts:
        return "", "", None
    if parts <= 1 or any(r.part_id == "" for r in receipts):
        r = _latest(receipts)
        assert r is not None
        return r.status.value, r.failure_cause.value, r.occurred_at
    per_part = {}
    for part in {r.part_id for r in receipts}:
        per_part[part] = _latest([r for r in receipts if r.part_id == part])
    failed = [r for r in per_part.values() if r.status.value in FAILURES]
    if failed:
        r = max(failed, key=lambda r: (r.occurred_at, r.event_id))
        return r.status.value, r.failure_cause.value, r.occurred_at
    delivered = [r for r in per_part.values() if r.status.value == "delivered"]
    if len(delivered) == parts:
        r = max(delivered, key=lambda r: (r.occurred_at, r.event_id))
        return "delivered", "", r.occurred_at
    unknown = [r for r in per_part.values() if r.status.value == "unknown"]
    finals = [r for r in per_part.values() if r.status.value in REAL_FINALS | {"unknown"}]
    if unknown and len(finals) == parts:  # every part final, none failed, some unknown
        r = max(unknown, key=lambda r: (r.occurred_at, r.event_id))
        return "unknown", r.failure_cause.value, r.occurred_at
    latest = max(per_part.values(), key=lambda r: (r.occurred_at, r.event_id))
    return "submitted", "", latest.occurred_at


def is_human(click: ClickEvent, delivered_at: datetime | None) -> bool:
    if click.method == "HEAD" or not click.user_agent:
        return False
    if any(word in click.user_agent.lower() for word in BOT_WORDS):
        return False
    if delivered_at is not None:
        gap = click.occurred_at - delivered_at
        if timedelta(0) <= gap < timedelta(seconds=2):
            return False
    return True


@dataclass
class ExpectedMessage:
    account: str
    message_id: str
    distinct_events: int
    has_send: bool
    campaign: str
    variant: str
    segment: str
    sender: str
    country: str
    carrier: str
    recipient_timezone: str
    recipient_hash: str
    sent_at: datetime | None
    delivery_status: str  # "" when no receipt
    failure_cause: str
    delivered_at: datetime | None
    receipts: int
    clicks: int
    human_clicks: int
    human_click_times: list[tuple[datetime, str]]
    landings: int
    engagements: int
    conversions: list[ConversionEvent]
    discarded_conversions: int
    revenue: dict[str, Decimal] = field(default_factory=dict)
    cost: Decimal = Decimal(0)
    cost_currency: str = ""
    attribution_window_hours: int | None = None
    after_window_conversions: list[ConversionEvent] = field(default_factory=list)
    after_window_revenue: dict[str, Decimal] = field(default_factory=dict)


def _kept_conversions(conversions: list[ConversionEvent]) -> list[ConversionEvent]:
    kept: list[ConversionEvent] = []
    for c in sorted(conversions, key=lambda c: (c.occurred_at, c.event_id)):
        if any(k.order_id == c.order_id for k in kept):
            continue
        if c.click_id and any((k.click_id, k.name) == (c.click_id, c.name) for k in kept):
            continue
        kept.append(c)
    return kept


def expected_messages(events: list[EventBase]) -> dict[tuple[str, str], ExpectedMessage]:
    by_message: dict[tuple[str, str], dict[str, MessageEventBase]] = defaultdict(dict)
    for e in events:
        if isinstance(e, MessageEventBase):
            by_message[(e.account, e.message_id)][e.event_id] = e  # a repeat overwrites itself
    out = {}
    for key, distinct in by_message.items():
        evs = sorted(distinct.values(), key=lambda e: (e.occurred_at, e.event_id))
        sends = [e for e in evs if isinstance(e, SendEvent)]
        send = sends[0] if sends else None
        distinct_events = len(evs)
        if send is not None:  # past send + two windows nothing counts (DOMAIN/DESIGN: horizon)
            last = send.occurred_at + 2 * timedelta(hours=send.attribution_window_hours or 168)
            evs = [e for e in evs if isinstance(e, SendEvent) or e.occurred_at <= last]
        receipts = [e for e in evs if isinstance(e, DeliveryReceiptEvent)]
        status, cause, status_at = delivery_status(receipts, send.parts if send else 1)
        delivered_at = status_at if status == "delivered" else None
        clicks = [e for e in evs if isinstance(e, ClickEvent)]
        humans = [c for c in clicks if is_human(c, delivered_at)]
        conversions = [e for e in evs if isinstance(e, ConversionEvent)]
        kept = _kept_conversions(conversions)
        # DOMAIN.md: a message's conversions count inside its campaign's window from the click
        # whose click id they carry (from the send when no such click came)
        window = timedelta(hours=(send.attribution_window_hours if send else None) or 168)
        click_at = {c.click_id: c.occurred_at for c in clicks}
        inside, after = [], []
        for c in kept:
            start = click_at.get(c.click_id) or (send.occurred_at if send else None)
            (after if start is not None and c.occurred_at - start > window else inside).append(c)
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        for c in inside:
            revenue[c.currency] += c.amount
        after_revenue: dict[str, Decimal] = defaultdict(Decimal)
        for c in after:
            after_revenue[c.currency] += c.amount
        out[key] = ExpectedMessage(
            account=key[0],
            message_id=key[1],
            distinct_events=distinct_events,
            has_send=send is not None,
            campaign=send.campaign if send else "",
            variant=send.variant if send else "",
            segment=send.segment if send else "",
            sender=send.sender if send else "",
            country=send.country if send else "",
            carrier=send.carrier if send else "",
            recipient_timezone=send.recipient_timezone if send else "",
            recipient_hash=send.recipient_hash if send else "",
            sent_at=send.occurred_at if send else None,
            delivery_status=status,
            failure_cause=cause,
            delivered_at=delivered_at,
            receipts=len(receipts),
            clicks=len(clicks),
            human_clicks=len(humans),
            human_click_times=[(c.occurred_at, c.event_id) for c in humans],
            landings=sum(isinstance(e, LandingEvent) for e in evs),
            engagements=sum(isinstance(e, EngagementEvent) for e in evs),
            conversions=inside,
            discarded_conversions=len(conversions) - len(kept),
            revenue=dict(revenue),
            after_window_conversions=after,
            after_window_revenue=dict(after_revenue),
            cost=send.cost if send else Decimal(0),
            cost_currency=send.currency if send else "",
            attribution_window_hours=send.attribution_window_hours if send else None,
        )
    return out


def conversions_after_their_click_window(events: list[EventBase]) -> set[tuple[str, str]]:
    """(account, event id) of every conversion event, repeats of an order included, that
    happened after its campaign's attribution window from the click it carries (from the send
    when it carries none), the send known
    and both inside the message's horizon (send + two windows): what the join writes out as
    late with reason after_window besides the events past the horizon (DOMAIN.md)."""
    sends = {(e.account, e.message_id): e for e in events if isinstance(e, SendEvent)}

    def window(e: MessageEventBase) -> timedelta:
        return timedelta(hours=sends[(e.account, e.message_id)].attribution_window_hours or 168)

    def in_horizon(e: MessageEventBase) -> bool:
        key = (e.account, e.message_id)
        return key in sends and e.occurred_at <= sends[key].occurred_at + 2 * window(e)

    clicks = {
        (e.account, e.message_id, e.click_id): e.occurred_at
        for e in events
        if isinstance(e, ClickEvent) and in_horizon(e)
    }
    out = set()
    for e in events:
        if isinstance(e, ConversionEvent) and in_horizon(e):
            if e.click_id:
                at = clicks.get((e.account, e.message_id, e.click_id))
            else:  # no click to carry (a promo code): its window runs from the send
                at = sends[(e.account, e.message_id)].occurred_at
            if at is not None and e.occurred_at - at > window(e):
                out.add((e.account, e.event_id))
    return out


@dataclass
class ExpectedVariant:
    sent: int = 0
    delivered: int = 0
    clicks: int = 0
    human_clicks: int = 0
    clicked_messages: int = 0  # unique human clicks
    landings: int = 0
    engagements: int = 0
    converting_messages: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    after_window_conversions: int = 0


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
        v.human_clicks += m.human_clicks
        v.clicked_messages += m.human_clicks > 0
        v.landings += m.landings
        v.engagements += m.engagements
        v.converting_messages += len(m.conversions) > 0
        v.conversions += len(m.conversions)
        v.revenue += m.revenue.get(currency, Decimal(0))
        v.after_window_conversions += len(m.after_window_conversions)
        v.cost += m.cost
    return dict(out)


def expected_attribution(events):  # type: ignore[no-untyped-def]
    """(messages, {order_id: (conversion, [(touch time, touch id, message id, campaign,
    window)] in window)}): one conversion per order id per subscriber, the earliest."""
    messages = expected_messages(events)
    touches = defaultdict(list)
    conversions = defaultdict(list)
    for m in messages.values():
        if not m.has_send:
            continue
        window = timedelta(hours=m.attribution_window_hours or 168)
        for at, touch_id in m.human_click_times:
            touches[m.recipient_hash].append((at, touch_id, m.message_id, m.campaign, window))
        # attribution has its own window (from each touch): a conversion after its own
        # click's window may still be inside another touch's
        for c in m.conversions + m.after_window_conversions:
            conversions[m.recipient_hash].append(c)
    for e in events:
        if isinstance(e, SubscriberConversionEvent):
            conversions[e.recipient_hash].append(e)
    out = {}
    for subscriber, convs in conversions.items():
        winners = {}
        for c in sorted(
            {c.event_id: c for c in convs}.values(), key=lambda c: (c.occurred_at, c.event_id)
        ):
            winners.setdefault(c.order_id, c)
        for order_id, c in winners.items():
            eligible = sorted(
                t for t in touches[subscriber] if timedelta(0) <= c.occurred_at - t[0] <= t[4]
            )
            out[order_id] = (c, eligible)
    return messages, out


def expected_weights(model: str, eligible, converted_at) -> list:  # type: ignore[no-untyped-def]
    """Credit weights of one conversion's in-window touches, the DOMAIN.md way: Fractions for
    the exact models, floats for time decay (half-life 168 h)."""
    n = len(eligible)
    if n == 0:
        return []
    if model == "last_click":
        return [0] * (n - 1) + [1]
    if model == "first_click":
        return [1] + [0] * (n - 1)
    if model == "linear":
        return [Fraction(1, n)] * n
    if model == "position_based":
        if n <= 2:
            return [Fraction(1, n)] * n
        return [Fraction(2, 5)] + [Fraction(1, 5) / (n - 2)] * (n - 2) + [Fraction(2, 5)]
    raw = [0.5 ** ((converted_at - t[0]).total_seconds() / 3600 / 168) for t in eligible]
    return [w / sum(raw) for w in raw]
