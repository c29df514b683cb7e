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

from schemas.delivery_status import DeliveryStatus
from schemas.events import ClickEvent, ConversionEvent, DeliveryReceiptEvent, EventBase, SendEvent
from schemas.privacy import hash_phone

DEFAULT_START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PRICE_PER_PART = Decimal("0.0079")

# (campaign, variant) -> click-through of delivered messages, conversion of clickers
VARIANT_RATES: dict[tuple[str, str], tuple[float, float]] = {
    ("black-friday", "A"): (0.09, 0.12),
    ("black-friday", "B"): (0.12, 0.10),
    ("winback", "A"): (0.04, 0.20),
    ("winback", "B"): (0.05, 0.22),
}
SEGMENTS = ("vip", "lapsed", "new")
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
    clicked_messages: int = 0
    clicks: int = 0
    converting_messages: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal(0)
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

    for n in range(messages):
        campaign, variant = variants[n % len(variants)]
        ctr, cvr = VARIANT_RATES[(campaign, variant)]
        message_id = _uuid(rng)
        sent_at = start + timedelta(seconds=rng.uniform(0, hours * 3600))
        recipient_hash, country = hash_phone(f"+1415555{n % 10000:04d}", hash_key)
        parts = 1 if rng.random() < 0.85 else 2
        cost = PRICE_PER_PART * parts
        t = truth[(account, campaign, variant)]
        t.sent += 1
        t.cost += cost
        base = {"account": account, "message_id": message_id}
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
                **base,
            )  # fmt: skip
        )
        final = _pick_status(rng)
        submitted_at = sent_at + timedelta(seconds=rng.uniform(0.2, 2))
        final_at = sent_at + timedelta(seconds=rng.uniform(3, 90))
        if rng.random() < 0.8:
            events.append(
                DeliveryReceiptEvent(
                    event_id=_uuid(rng),
                    occurred_at=submitted_at,
                    status=DeliveryStatus.SUBMITTED,
                    provider="demo",
                    **base,
                )  # fmt: skip
            )
        events.append(
            DeliveryReceiptEvent(
                event_id=_uuid(rng), occurred_at=final_at, status=final, provider="demo", **base
            )
        )
        if rng.random() < 0.05:  # a stray intermediate receipt after the final one
            events.append(
                DeliveryReceiptEvent(
                    event_id=_uuid(rng),
                    occurred_at=final_at + timedelta(seconds=5),
                    status=DeliveryStatus.SUBMITTED,
                    provider="demo",
                    **base,
                )  # fmt: skip
            )
        if final is not DeliveryStatus.DELIVERED:
            continue
        t.delivered += 1
        if rng.random() >= ctr:
            continue
        t.clicked_messages += 1
        click_ids = []
        first_click = final_at + timedelta(seconds=rng.uniform(60, 7200))
        for k in range(rng.choice((1, 1, 1, 2, 3))):
            click_id = _uuid(rng)
            click_ids.append(click_id)
            t.clicks += 1
            events.append(
                ClickEvent(
                    event_id=_uuid(rng),
                    occurred_at=first_click + timedelta(minutes=17 * k),
                    click_id=click_id,
                    link_id="offer",
                    user_agent="Mozilla/5.0",
                    **base,
                )  # fmt: skip
            )
        if rng.random() >= cvr:
            continue
        amount = Decimal(rng.randrange(1000, 20000)) / 100
        t.converting_messages += 1
        t.conversions += 1
        t.revenue += amount
        events.append(
            ConversionEvent(
                event_id=_uuid(rng),
                occurred_at=first_click + timedelta(hours=rng.uniform(0.1, 30)),
                order_id=f"order-{_uuid(rng)}",
                click_id=click_ids[0],
                amount=amount,
                currency="USD",
                **base,
            )  # fmt: skip
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
