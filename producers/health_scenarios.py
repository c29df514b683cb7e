"""Generated campaigns that show one campaign-health symptom each (DOMAIN.md, "Diagnostics"),
a healthy one and one too small to judge: the workloads the diagnostics are tested on.

Every scenario is one account with one campaign from one sender, sent evenly over a baseline
period and then a recent one (`Shape`); the symptom changes the recent period only. The
figures are drawn per message from fixed rates (seeded), so a scenario's healthy parts stay
close to the rates and its symptom far from them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from schemas.delivery_status import DeliveryStatus, FailureCause
from schemas.events import (
    ClickEvent,
    ConversionEvent,
    DeliveryReceiptEvent,
    EventBase,
    InboundEvent,
    InboundKind,
    LandingEvent,
    SendEvent,
)
from schemas.privacy import hash_phone

BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)"
SENDER = "12345"
CAMPAIGN = "weekly"


@dataclass(frozen=True)
class Rates:
    """Per message (delivered: of the sent; click: of the delivered; landing and conversion:
    of the clicked; opt-out: of the delivered)."""

    delivered: float = 0.97
    rejected: float = 0.01  # dropped before the handset network; the rest fails on the network
    click: float = 0.2
    landing: float = 0.8
    conversion: float = 0.2
    opt_out: float = 0.004


@dataclass(frozen=True)
class Cohort:
    """Messages of one kind in a period."""

    messages: int
    rates: Rates = Rates()
    variant: str = "a"
    segment: str = "members"
    carrier: str = "verizon"


@dataclass(frozen=True)
class Shape:
    baseline_hours: int
    recent_hours: int
    baseline: tuple[Cohort, ...]
    recent: tuple[Cohort, ...]


def healthy(scale: int) -> Shape:
    """`scale` messages over the recent 12 hours, twice as many over the 24 hours before, two
    thirds on one carrier and a third on another."""
    third = scale // 3
    cohorts = (Cohort(scale - third), Cohort(third, carrier="att"))
    return Shape(24, 12, tuple(replace(c, messages=2 * c.messages) for c in cohorts), cohorts)


def _recent(shape: Shape, change: Callable[[Cohort], Cohort]) -> Shape:
    return replace(shape, recent=tuple(change(c) for c in shape.recent))


def _rates(c: Cohort, **changes: float) -> Cohort:
    return replace(c, rates=replace(c.rates, **changes))


def scenario(name: str, scale: int = 400) -> Shape:
    """The named scenario at `scale` recent messages (see SCENARIOS)."""
    base = healthy(scale)
    if name == "healthy":
        return base
    if name == "too_small":  # every symptom at once, on a campaign too small to judge
        small = healthy(max(3, scale // 10))
        return _recent(
            small,
            lambda c: _rates(c, delivered=0.6, click=0.01, conversion=0.0, opt_out=0.2),
        )
    if name == "delivery_drop":
        return _recent(base, lambda c: _rates(c, delivered=0.8))
    if name == "dropped_spike":  # a new list, full of numbers the network refuses
        imported = Cohort(scale // 2, _rates(Cohort(0), delivered=0.75, rejected=0.9).rates)
        return replace(base, recent=(*base.recent, replace(imported, segment="import-1203")))
    if name == "sent_collapse":
        return _recent(base, lambda c: replace(c, messages=max(1, c.messages // 5)))
    if name == "ctr_collapse":  # new copy, no personalisation
        return _recent(base, lambda c: replace(_rates(c, click=0.05), variant="b"))
    if name == "carrier_clicks":  # one carrier rewrites the tracking links
        return _recent(base, lambda c: _rates(c, click=0.005) if c.carrier == "att" else c)
    if name == "conversion_gap":  # the landing page lost its checkout
        return _recent(base, lambda c: _rates(c, conversion=0.002))
    if name == "optout_spike":
        return _recent(base, lambda c: _rates(c, opt_out=0.05))
    raise ValueError(f"unknown scenario {name!r}; one of {', '.join(SCENARIOS)}")


SCENARIOS = (
    "healthy",
    "too_small",
    "delivery_drop",
    "dropped_spike",
    "sent_collapse",
    "ctr_collapse",
    "carrier_clicks",
    "conversion_gap",
    "optout_spike",
)


def scenario_events(
    account: str, shape: Shape, end: datetime, seed: int = 1, hash_key: bytes = b"scenarios"
) -> list[EventBase]:
    """The events of `shape` for `account`, its recent period ending at `end` (a whole hour)."""
    rng = random.Random(f"{seed}:{account}")
    events: list[EventBase] = []
    recent_start = end - timedelta(hours=shape.recent_hours)
    baseline_start = recent_start - timedelta(hours=shape.baseline_hours)
    periods = ((baseline_start, shape.baseline_hours, shape.baseline),) + (
        (recent_start, shape.recent_hours, shape.recent),
    )
    n = 0
    for start, hours, cohorts in periods:
        for cohort in cohorts:
            for _ in range(cohort.messages):
                # leave the period's last 20 minutes for receipts and clicks of its last sends
                at = start + timedelta(seconds=rng.uniform(0, hours * 3600 - 1200))
                events += _message(rng, account, n, cohort, at, hash_key)
                n += 1
    return events


def _message(
    rng: random.Random, account: str, n: int, cohort: Cohort, at: datetime, hash_key: bytes
) -> list[EventBase]:
    recipient_hash, country = hash_phone(f"+1415555{n % 10_000:04d}", hash_key)
    message_id = f"{account}-m{n}"
    r = cohort.rates
    out: list[EventBase] = [
        SendEvent(
            account=account,
            message_id=message_id,
            event_id=f"{message_id}-s",
            occurred_at=at,
            campaign=CAMPAIGN,
            variant=cohort.variant,
            segment=cohort.segment,
            sender=SENDER,
            recipient_hash=recipient_hash,
            country=country,
            carrier=cohort.carrier,
            cost=Decimal("0.0079"),
        )
    ]
    delivered = rng.random() < r.delivered
    if delivered:
        status, cause = DeliveryStatus.DELIVERED, FailureCause.NONE
    elif rng.random() < r.rejected:
        status, cause = DeliveryStatus.REJECTED, FailureCause.INVALID_NUMBER
    else:
        status, cause = DeliveryStatus.UNDELIVERED, FailureCause.CARRIER_FILTERED
    delivered_at = at + timedelta(seconds=rng.uniform(2, 60))
    out.append(
        DeliveryReceiptEvent(
            account=account,
            message_id=message_id,
            event_id=f"{message_id}-d",
            occurred_at=delivered_at,
            status=status,
            failure_cause=cause,
        )
    )
    if not delivered:
        return out
    if rng.random() < r.opt_out:
        out.append(
            InboundEvent(
                account=account,
                event_id=f"{message_id}-stop",
                occurred_at=delivered_at + timedelta(minutes=rng.uniform(1, 15)),
                recipient_hash=recipient_hash,
                sender=SENDER,
                kind=InboundKind.OPT_OUT,
                keyword="STOP",
            )
        )
    if rng.random() >= r.click:
        return out
    clicked_at = delivered_at + timedelta(minutes=rng.uniform(2, 15))
    click_id = f"{message_id}-k"
    out.append(
        ClickEvent(
            account=account,
            message_id=message_id,
            event_id=f"{message_id}-c",
            occurred_at=clicked_at,
            click_id=click_id,
            user_agent=BROWSER,
        )
    )
    if rng.random() < r.landing:
        out.append(
            LandingEvent(
                account=account,
                message_id=message_id,
                event_id=f"{message_id}-l",
                occurred_at=clicked_at + timedelta(seconds=3),
                click_id=click_id,
            )
        )
    if rng.random() < r.conversion:
        out.append(
            ConversionEvent(
                account=account,
                message_id=message_id,
                event_id=f"{message_id}-v",
                occurred_at=clicked_at + timedelta(minutes=3),
                order_id=f"{message_id}-o",
                click_id=click_id,
                amount=Decimal("40.00"),
                currency="USD",
            )
        )
    return out
