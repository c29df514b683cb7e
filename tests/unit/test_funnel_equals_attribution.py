"""The funnel figures and the attributed figures answer different questions (README), but where
they cannot differ they must not: when each converting subscriber has exactly one touch, the
human click that carries their conversions, every model gives that click all of each
conversion it may have, so the message's window-bound conversions and revenue (the join's
funnel row) equal the attributed conversions and revenue (the attribution stage's credits) in
every model and window. Conversions on both sides of the window's edge, exactly on it, past the
message's horizon, and arrivals in any order are generated."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import event, given, settings
from hypothesis import strategies as st

from schemas.delivery_status import DeliveryStatus
from schemas.events import ClickEvent, ConversionEvent, DeliveryReceiptEvent, SendEvent
from stream_processors.attribution import Model
from stream_processors.message_state import apply_event, funnel_row, subscriber_snapshot
from stream_processors.subscriber_state import apply_snapshot, credit_sets

SENT_AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ACCOUNT = "acme"
RECIPIENT = "ab" * 32


@st.composite
def one_touch_message(draw: st.DrawFn) -> tuple[list, int | None]:  # type: ignore[type-arg]
    window = draw(st.sampled_from([None, 1, 24, 48]))
    window_h = window or 168
    message = "m-1"
    base = {"account": ACCOUNT, "message_id": message}
    delivered_at = SENT_AT + timedelta(seconds=draw(st.integers(2, 120)))
    clicked_at = delivered_at + timedelta(minutes=draw(st.integers(1, 600)))  # human: not at once
    events: list = [  # type: ignore[type-arg]
        SendEvent(
            event_id="send-1",
            occurred_at=SENT_AT,
            campaign="flash",
            sender="72345",
            recipient_hash=RECIPIENT,
            country="US",
            cost=Decimal("0.0079"),
            attribution_window_hours=window,
            **base,
        ),
        DeliveryReceiptEvent(
            event_id="dlr-1", occurred_at=delivered_at, status=DeliveryStatus.DELIVERED, **base
        ),
        ClickEvent(
            event_id="click-1",
            occurred_at=clicked_at,
            click_id="c-1",
            user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)",
            **base,
        ),
    ]
    edge = timedelta(hours=window_h)
    offsets = st.one_of(
        st.sampled_from([timedelta(0), edge, edge + timedelta(microseconds=1), 3 * edge]),
        st.timedeltas(min_value=timedelta(0), max_value=3 * edge),
    )
    for i in range(draw(st.integers(1, 4))):
        events.append(
            ConversionEvent(
                event_id=f"conv-{i}",
                occurred_at=clicked_at + draw(offsets),
                order_id=f"o-{i}",
                click_id="c-1",
                name=draw(st.sampled_from(["purchase", "signup", "renewal"])),
                amount=Decimal(draw(st.integers(1, 100_000))) / 100,
                currency=draw(st.sampled_from(["USD", "EUR"])),
                **base,
            )
        )
    order = draw(st.permutations(events))
    return order, window


@settings(max_examples=300, deadline=None)
@given(one_touch_message())
def test_one_touch_funnel_figures_equal_attributed_figures(case) -> None:  # type: ignore[no-untyped-def]
    events, _ = case
    state = None
    subscriber = None
    for e in events:  # the join folds each arrival and sends the attribution stage its snapshot
        state, _ = apply_event(state, e)
        snap = subscriber_snapshot(state)
        if snap is not None:
            subscriber, _ = apply_snapshot(subscriber, snap)
    assert state is not None and subscriber is not None
    row = funnel_row(state)
    event(f"inside: {bool(row.conversions)}, after: {bool(row.after_window_conversions)}")
    for model in Model:
        sets = [c for c in credit_sets(subscriber) if c.model is model and c.credits]
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        for c in sets:
            assert [line.touch_id for line in c.credits] == ["click-1"]  # the one touch
            revenue[c.currency] += c.amount * sum(line.weight for line in c.credits)
        assert len(sets) == row.conversions, model
        assert dict(revenue) == {k: v for k, v in row.revenue.items() if v}, model
