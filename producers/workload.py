"""Synthetic campaign workload: realistic funnel rates, shuffled and partly duplicated events.

The generator decides each message's fate first (delivered or not, clicked, converted, how much)
and then writes the events that fate implies. Its ground truth comes from those decisions, not
from folding the events, so it is an independent check of the pipeline.

Pathologies included on purpose: receipts, clicks and conversions arrive in random order
(often before their send), an intermediate receipt sometimes comes after the final one, and
about `duplicate_rate` of events are repeated (as retried webhooks are).
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.delivery_status import DeliveryStatus, FailureCause
from schemas.events import (
    ClickEvent,
    ConversionEvent,
    DeliveryReceiptEvent,
    EngagementEvent,
    EventBase,
    InboundEvent,
    InboundKind,
    LandingEvent,
    SendEvent,
    SubscriberConversionEvent,
)
from schemas.privacy import hash_phone, timezone_of


def default_start(now: datetime) -> datetime:
    """Where a generated campaign starts: 54 hours before the hour `now` falls in.

    The events of a campaign span up to 54 hours from its start (sends and receipts in the
    first 6, replies up to 48 hours after a delivery). A pipeline that also sees events stamped
    now has its watermark near now; an event more than the allowed lateness (72 h) plus the
    orphan grace behind it, read before its send (the events are shuffled), is evicted as an
    orphan on arrival, as it should be for real late data. So the campaign must start less
    than ~72 h before now at every hour of the day (the former "three days ago, 09:00 UTC" was
    73-96 h old from 10:00 UTC on, and the shared test pipeline then lost messages), and end
    by about now. Same seed, same hour: same events."""
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=54)


DEFAULT_START = default_start(datetime.now(UTC))
PRICE_PER_PART = Decimal("0.0079")

# (campaign, variant) -> click-through of delivered messages, conversion of clickers
VARIANT_RATES: dict[tuple[str, str], tuple[float, float]] = {
    ("black-friday", "A"): (0.09, 0.12),
    ("black-friday", "B"): (0.12, 0.10),
    ("winback", "A"): (0.04, 0.20),
    ("winback", "B"): (0.05, 0.22),
}
SEGMENTS = ("vip", "lapsed", "new")
HUMAN_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15"
BOT_REQUESTS = (
    ("GET", "facebookexternalhit/1.1 Facebot Twitterbot/1.0"),  # iMessage link preview
    ("HEAD", "Mozilla/5.0"),  # carrier URL scanner
    ("GET", "WhatsApp/2.23.20"),
    ("GET-soon", HUMAN_UA),  # fetched on arrival, within 2 s of delivery
)
FAILURE_CAUSES = (
    FailureCause.INVALID_NUMBER,
    FailureCause.CARRIER_FILTERED,
    FailureCause.LANDLINE_OR_UNREACHABLE,
    FailureCause.NETWORK_FAILURE,
)
FAILED_STATUSES = (DeliveryStatus.UNDELIVERED, DeliveryStatus.REJECTED)
FINAL_OUTCOMES: tuple[tuple[DeliveryStatus, float], ...] = (
    (DeliveryStatus.DELIVERED, 0.965),
    (DeliveryStatus.UNDELIVERED, 0.015),
    (DeliveryStatus.EXPIRED, 0.005),
    (DeliveryStatus.REJECTED, 0.01),
    (DeliveryStatus.UNKNOWN, 0.005),
)


@dataclass
class CohortTruth:
    """What the generator decided for one (account, campaign, variant)."""

    sent: int = 0
    delivered: int = 0
    clicked_messages: int = 0  # messages with a human click (unique human clicks)
    clicks: int = 0  # every click event, previews and scanners included
    human_clicks: int = 0
    landings: int = 0
    engagements: int = 0
    discarded_conversions: int = 0
    opt_outs: int = 0
    subscriber_conversions: int = 0
    converting_messages: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal(0)
    after_window_conversions: int = 0
    cost: Decimal = Decimal(0)


@dataclass
class Workload:
    events: list[EventBase]
    distinct_events: int
    truth: dict[tuple[str, str, str], CohortTruth] = field(default_factory=dict)
    currency: str = "USD"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _pick_status(rng: random.Random) -> DeliveryStatus:
    roll = rng.random()
    for status, share in FINAL_OUTCOMES:
        if roll < share:
            return status
        roll -= share
    return FINAL_OUTCOMES[0][0]


def _inbound(  # type: ignore[no-untyped-def]
    rng: random.Random, account: str, recipient_hash: str, delivered_at: datetime, kind, keyword
) -> InboundEvent:
    return InboundEvent(
        event_id=_uuid(rng),
        account=account,
        recipient_hash=recipient_hash,
        sender="72345",
        occurred_at=delivered_at + timedelta(minutes=rng.uniform(1, 240)),
        kind=kind,
        keyword=keyword,
    )


def generate_campaign(
    messages: int,
    *,
    seed: int = 7,
    account: str = "demo",
    start: datetime = DEFAULT_START,
    hours: int = 6,
    duplicate_rate: float = 0.1,
    hash_key: bytes = b"smsfunnel-demo-key-change-me",
) -> Workload:
    rng = random.Random(seed)
    variants = list(VARIANT_RATES)
    truth: dict[tuple[str, str, str], CohortTruth] = defaultdict(CohortTruth)
    events: list[EventBase] = []

    subscribers = max(1, messages // 2)  # each subscriber gets about two messages
    for n in range(messages):
        campaign, variant = variants[n % len(variants)]
        ctr, cvr = VARIANT_RATES[(campaign, variant)]
        message_id = _uuid(rng)
        sent_at = start + timedelta(seconds=rng.uniform(0, hours * 3600))
        number = f"+1415555{rng.randrange(subscribers):04d}"
        recipient_hash, country = hash_phone(number, hash_key)
        parts = 1 if rng.random() < 0.85 else 2
        part_ids = tuple(f"{message_id}-p{i}" for i in range(1, parts + 1)) if parts > 1 else ()
        per_part_receipts = parts > 1 and rng.random() < 0.5
        cost = PRICE_PER_PART * parts
        t = truth[(account, campaign, variant)]
        t.sent += 1
        t.cost += cost
        base = {"account": account, "message_id": message_id}
        window_hours = 24 if campaign == "black-friday" else None
        events.append(
            SendEvent(
                event_id=_uuid(rng),
                occurred_at=sent_at,
                campaign=campaign,
                variant=variant,
                segment=rng.choice(SEGMENTS),
                sender="72345",
                recipient_hash=recipient_hash,
                country=country,
                carrier=rng.choice(("att", "tmobile", "verizon")),
                parts=parts,
                cost=cost,
                currency="USD",
                provider_message_ids=part_ids,
                attribution_window_hours=window_hours,
                recipient_timezone=timezone_of(number),
                **base,
            )
        )
        final = _pick_status(rng)
        cause = rng.choice(FAILURE_CAUSES) if final in FAILED_STATUSES else FailureCause.NONE
        final_at = sent_at + timedelta(seconds=rng.uniform(3, 90))

        def receipt(status, at, part="", why=FailureCause.NONE, base=base):  # type: ignore[no-untyped-def]
            return DeliveryReceiptEvent(
                event_id=_uuid(rng),
                occurred_at=at,
                status=status,
                failure_cause=why,
                provider="demo",
                part_id=part,
                **base,
            )

        for part in part_ids if per_part_receipts else ("",):  # noqa: B020
            if rng.random() < 0.8:
                events.append(
                    receipt(DeliveryStatus.SUBMITTED, sent_at + timedelta(seconds=1), part)
                )
            if rng.random() < 0.05:  # a stray intermediate receipt after the final one
                events.append(
                    receipt(DeliveryStatus.SUBMITTED, final_at + timedelta(seconds=5), part)
                )
        if per_part_receipts:
            # delivered: every part delivered; otherwise one part fails, the other arrives
            failing = rng.randrange(parts)
            for i, part in enumerate(part_ids):
                if final is DeliveryStatus.DELIVERED or i != failing:
                    at = final_at - timedelta(seconds=i)
                    events.append(receipt(DeliveryStatus.DELIVERED, at, part))
                else:
                    events.append(receipt(final, final_at, part, cause))
        else:
            events.append(receipt(final, final_at, why=cause))
        if final is not DeliveryStatus.DELIVERED:
            continue
        t.delivered += 1
        # Link previews and scanners: recorded, never human.
        if rng.random() < 0.15:
            t.clicks += 1
            bot = rng.choice(BOT_REQUESTS)
            at = final_at + timedelta(
                seconds=rng.uniform(0.1, 1.5) if bot[0] == "GET-soon" else rng.uniform(2, 600)
            )
            events.append(
                ClickEvent(
                    event_id=_uuid(rng),
                    occurred_at=at,
                    click_id=_uuid(rng),
                    link_id="offer",
                    method="HEAD" if bot[0] == "HEAD" else "GET",
                    user_agent=bot[1],
                    **base,
                )
            )
        if rng.random() < 0.01:  # an opt-out reply
            t.opt_outs += 1
            events.append(
                _inbound(rng, account, recipient_hash, final_at, InboundKind.OPT_OUT, "STOP")
            )
        elif rng.random() < 0.02:
            events.append(_inbound(rng, account, recipient_hash, final_at, InboundKind.REPLY, ""))
        if rng.random() < 0.01:  # bought in store, matched on the phone number
            t.subscriber_conversions += 1
            events.append(
                SubscriberConversionEvent(
                    event_id=_uuid(rng),
                    account=account,
                    recipient_hash=recipient_hash,
                    occurred_at=final_at + timedelta(hours=rng.uniform(1, 48)),
                    order_id=f"store-{_uuid(rng)}",
                    amount=Decimal(rng.randrange(500, 9000)) / 100,
                    currency="USD",
                )
            )
        if rng.random() >= ctr:
            continue
        t.clicked_messages += 1
        click_ids = []
        first_click = final_at + timedelta(seconds=rng.uniform(60, 7200))
        for k in range(rng.choice((1, 1, 1, 2, 3))):
            click_id = _uuid(rng)
            click_ids.append(click_id)
            t.clicks += 1
            t.human_clicks += 1
            events.append(
                ClickEvent(
                    event_id=_uuid(rng),
                    occurred_at=first_click + timedelta(minutes=17 * k),
                    click_id=click_id,
                    link_id="offer",
                    user_agent=HUMAN_UA,
                    **base,
                )
            )
        if rng.random() < 0.85:
            t.landings += 1
            events.append(
                LandingEvent(
                    event_id=_uuid(rng),
                    occurred_at=first_click + timedelta(seconds=2),
                    click_id=click_ids[0],
                    **base,
                )
            )
            if rng.random() < 0.4:
                t.engagements += 1
                events.append(
                    EngagementEvent(
                        event_id=_uuid(rng),
                        occurred_at=first_click + timedelta(seconds=40),
                        click_id=click_ids[0],
                        name="add_to_cart",
                        **base,
                    )
                )
        if rng.random() >= cvr:
            continue
        amount = Decimal(rng.randrange(1000, 20000)) / 100
        converted_at = first_click + timedelta(hours=rng.uniform(0.1, 30))
        # past the campaign's window from the click it carries, it is not the message's
        # conversion (a black-friday send says 24 h): counted apart
        if converted_at - first_click <= timedelta(hours=window_hours or 168):
            t.converting_messages += 1
            t.conversions += 1
            t.revenue += amount
        else:
            t.after_window_conversions += 1
        order_id = f"order-{_uuid(rng)}"

        def conversion(at, order, value, base=base, click=click_ids[0]):  # type: ignore[no-untyped-def]
            return ConversionEvent(
                event_id=_uuid(rng),
                occurred_at=at,
                order_id=order,
                click_id=click,
                amount=value,
                currency="USD",
                **base,
            )

        events.append(conversion(converted_at, order_id, amount))
        if rng.random() < 0.1:  # the same order reported again by a second source: counts once
            t.discarded_conversions += 1
            events.append(conversion(converted_at + timedelta(minutes=3), order_id, amount))
        if rng.random() < 0.05:  # a second purchase through the same click: one per click+name
            t.discarded_conversions += 1
            events.append(
                conversion(converted_at + timedelta(hours=1), f"order-{_uuid(rng)}", amount)
            )

    distinct = len(events)
    duplicates = [e for e in events if rng.random() < duplicate_rate]
    duplicates += [e for e in duplicates if rng.random() < 0.3]  # some are retried twice more
    events.extend(duplicates)
    rng.shuffle(events)
    return Workload(events=events, distinct_events=distinct, truth=dict(truth))


def iter_ndjson(workload: Workload) -> Iterator[bytes]:
    from schemas.events import event_to_json

    for event in workload.events:
        yield event_to_json(event) + b"\n"
