"""The per-message fold: hand-made cases, and the invariant that any order and any repetition
of a message's events gives the same state and row (hypothesis)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from producers.workload import generate_campaign
from schemas.delivery_status import DeliveryStatus
from schemas.events import ClickEvent, ConversionEvent, DeliveryReceiptEvent, SendEvent
from stream_processors.message_state import MessageState, apply_event, funnel_row
from tests.ground_truth import expected_messages

T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
BASE = {"account": "acme", "message_id": "m1"}


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def receipt(event_id: str, status: DeliveryStatus, seconds: float) -> DeliveryReceiptEvent:
    return DeliveryReceiptEvent(event_id=event_id, occurred_at=at(seconds), status=status, **BASE)


def fold(events):  # type: ignore[no-untyped-def]
    state = None
    for e in events:
        state, _ = apply_event(state, e)
    return state


SEND = SendEvent(
    event_id="s", occurred_at=T0, campaign="c", variant="A", sender="1", recipient_hash="0" * 64,
    country="US", cost=Decimal("0.0079"), **BASE,
)  # fmt: skip


def test_a_repeat_changes_nothing() -> None:
    state, changed = apply_event(None, SEND)
    assert changed
    again, changed = apply_event(state, SEND)
    assert not changed and funnel_row(again).version == 1


def test_intermediate_after_final_never_overwrites_it() -> None:
    events = [
        receipt("r1", DeliveryStatus.SUBMITTED, 1),
        receipt("r2", DeliveryStatus.DELIVERED, 5),
        receipt("r3", DeliveryStatus.SUBMITTED, 9),
    ]
    assert funnel_row(fold(events)).delivery_status is DeliveryStatus.DELIVERED


def test_real_final_beats_unknown_whatever_the_times() -> None:
    events = [receipt("r1", DeliveryStatus.DELIVERED, 1), receipt("r2", DeliveryStatus.UNKNOWN, 9)]
    assert funnel_row(fold(events)).delivery_status is DeliveryStatus.DELIVERED


def test_later_final_replaces_earlier_and_ties_break_by_event_id() -> None:
    late = [
        receipt("r1", DeliveryStatus.UNDELIVERED, 1),
        receipt("r2", DeliveryStatus.DELIVERED, 2),
    ]
    assert funnel_row(fold(late)).delivery_status is DeliveryStatus.DELIVERED
    tie = [receipt("rb", DeliveryStatus.EXPIRED, 3), receipt("ra", DeliveryStatus.DELIVERED, 3)]
    assert funnel_row(fold(tie)).delivery_status is DeliveryStatus.EXPIRED
    assert funnel_row(fold(reversed(tie))).delivery_status is DeliveryStatus.EXPIRED


def test_clicks_and_revenue_sum_distinct_events_by_currency() -> None:
    click = ClickEvent(event_id="k1", occurred_at=at(60), click_id="c1", **BASE)
    usd = ConversionEvent(
        event_id="v1", occurred_at=at(90), order_id="o1", amount=Decimal("10.10"),
        currency="USD", **BASE,
    )  # fmt: skip
    eur = ConversionEvent(
        event_id="v2", occurred_at=at(95), order_id="o2", amount=Decimal("5"),
        currency="EUR", **BASE,
    )  # fmt: skip
    row = funnel_row(fold([click, usd, click, eur, usd, SEND]))
    assert (row.clicks, row.conversions, row.version) == (1, 2, 4)
    assert row.revenue == {"EUR": Decimal("5"), "USD": Decimal("10.10")}
    assert row.has_send and row.sent_at == T0 and row.first_click_at == at(60)


def test_row_without_send_is_kept_as_not_sent() -> None:
    row = funnel_row(fold([ClickEvent(event_id="k", occurred_at=at(1), click_id="c", **BASE)]))
    assert not row.has_send and row.campaign == "" and row.clicks == 1


def test_state_survives_its_byte_encoding() -> None:
    state = fold([SEND, receipt("r", DeliveryStatus.DELIVERED, 4)])
    assert MessageState.from_bytes(state.to_bytes()) == state


CAMPAIGN = generate_campaign(60, seed=3, duplicate_rate=0.0)
MESSAGE_EVENTS: dict[str, list] = {}
for _e in CAMPAIGN.events:
    MESSAGE_EVENTS.setdefault(_e.message_id, []).append(_e)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_order_and_duplication_gives_the_same_row(data: st.DataObject) -> None:
    message_id = data.draw(st.sampled_from(sorted(MESSAGE_EVENTS)))
    events = MESSAGE_EVENTS[message_id]
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=len(events) * 2))
    arrival = data.draw(st.permutations(events + repeats))
    reference = funnel_row(fold(sorted(events, key=lambda e: e.event_id)))
    state = fold(arrival)
    assert funnel_row(state) == reference
    # and the state itself, as it would be restored from the changelog
    assert MessageState.from_bytes(state.to_bytes()).to_bytes() == state.to_bytes()


def test_rows_agree_with_offline_ground_truth() -> None:
    truth = expected_messages(CAMPAIGN.events)
    for message_id, events in MESSAGE_EVENTS.items():
        row = funnel_row(fold(events))
        want = truth[("demo", message_id)]
        assert row.version == want.distinct_events
        assert (row.delivery_status.value if row.delivery_status else "") == want.delivery_status
        assert (row.clicks, row.conversions, row.receipts) == (
            want.clicks, want.conversions, want.receipts,
        )  # fmt: skip
        assert row.revenue == want.revenue
        assert (row.campaign, row.variant, row.sent_at) == (
            want.campaign,
            want.variant,
            want.sent_at,
        )
