"""The per-message fold: hand-made cases, and the invariant that any order and any repetition
of a message's events gives the same state and row (hypothesis)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from producers.workload import generate_campaign
from schemas.delivery_status import DeliveryStatus
from schemas.events import (
    ClickEvent,
    ConversionEvent,
    DeliveryReceiptEvent,
    MessageEventBase,
    SendEvent,
)
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
    event_id="s",
    occurred_at=T0,
    campaign="c",
    variant="A",
    sender="1",
    recipient_hash="0" * 64,
    country="US",
    cost=Decimal("0.0079"),
    **BASE,
)


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
        event_id="v1",
        occurred_at=at(90),
        order_id="o1",
        amount=Decimal("10.10"),
        currency="USD",
        **BASE,
    )
    eur = ConversionEvent(
        event_id="v2",
        occurred_at=at(95),
        order_id="o2",
        amount=Decimal("5"),
        currency="EUR",
        **BASE,
    )
    row = funnel_row(fold([click, usd, click, eur, usd, SEND]))
    assert (row.clicks, row.conversions, row.version) == (1, 2, 4)
    assert row.human_clicks == 0  # no user agent: not a person
    assert row.revenue == {"EUR": Decimal("5"), "USD": Decimal("10.10")}
    assert row.has_send and row.sent_at == T0 and row.first_click_at == at(60)


def test_row_without_send_is_kept_as_not_sent() -> None:
    row = funnel_row(fold([ClickEvent(event_id="k", occurred_at=at(1), click_id="c", **BASE)]))
    assert not row.has_send and row.campaign == "" and row.clicks == 1


def test_state_survives_its_byte_encoding() -> None:
    state = fold([SEND, receipt("r", DeliveryStatus.DELIVERED, 4)])
    assert MessageState.from_bytes(state.to_bytes()) == state


CAMPAIGN = generate_campaign(400, seed=3, duplicate_rate=0.0)
MESSAGE_EVENTS: dict[str, list] = {}
for _e in CAMPAIGN.events:
    if isinstance(_e, MessageEventBase):
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
        assert row.failure_cause.value == want.failure_cause
        assert (row.clicks, row.human_clicks, row.receipts) == (
            want.clicks,
            want.human_clicks,
            want.receipts,
        )
        assert (row.landings, row.engagements) == (want.landings, want.engagements)
        assert (row.conversions, row.discarded_conversions) == (
            len(want.conversions),
            want.discarded_conversions,
        )
        assert row.revenue == want.revenue
        assert (row.campaign, row.variant, row.sent_at) == (
            want.campaign,
            want.variant,
            want.sent_at,
        )


def click(event_id: str, seconds: float, method: str = "GET", ua: str = "Mozilla/5.0 (iPhone)"):  # type: ignore[no-untyped-def]
    return ClickEvent(
        event_id=event_id,
        occurred_at=at(seconds),
        click_id=f"c-{event_id}",
        method=method,
        user_agent=ua,
        **BASE,
    )


def test_previews_scanners_and_clicks_on_delivery_are_not_human() -> None:
    events = [
        SEND,
        receipt("r", DeliveryStatus.DELIVERED, 10),
        click("preview", 100, ua="facebookexternalhit/1.1 Facebot Twitterbot/1.0"),
        click("scanner", 100, method="HEAD"),
        click("on-arrival", 11),  # 1 s after delivery: fetched on arrival
        click("person", 400),
    ]
    for order in (events, list(reversed(events))):  # the receipt may come after the click
        row = funnel_row(fold(order))
        assert (row.clicks, row.human_clicks) == (4, 1)
        assert row.first_human_click_at == at(400) and row.first_click_at == at(11)


def conversion(
    event_id: str, seconds: float, order: str, click_id: str = "", name: str = "purchase"
):  # type: ignore[no-untyped-def]
    return ConversionEvent(
        event_id=event_id,
        occurred_at=at(seconds),
        order_id=order,
        click_id=click_id,
        name=name,
        amount=Decimal("10"),
        currency="USD",
        **BASE,
    )


def test_conversions_one_per_order_then_one_per_click_and_name() -> None:
    events = [
        conversion("v1", 100, "o1", "k"),
        conversion("v2", 50, "o1", "k"),  # same order from another source, earlier: this one
        conversion("v3", 200, "o2", "k"),  # same click, same name: discarded
        conversion("v4", 300, "o3", "k", name="lead"),  # same click, other name: kept
        conversion("v5", 400, "o4"),  # no click id
    ]
    for order in (events, list(reversed(events))):
        row = funnel_row(fold(order))
        assert (row.conversions, row.discarded_conversions) == (3, 2)
        assert row.revenue == {"USD": Decimal("30")}


def part_receipt(event_id: str, status: DeliveryStatus, seconds: float, part: str):  # type: ignore[no-untyped-def]
    return DeliveryReceiptEvent(
        event_id=event_id, occurred_at=at(seconds), status=status, part_id=part, **BASE
    )


def test_multipart_delivered_only_when_every_part_is() -> None:
    two_parts = SEND.model_copy(update={"parts": 2})
    one = part_receipt("p1", DeliveryStatus.DELIVERED, 5, "a")
    assert funnel_row(fold([two_parts, one])).delivery_status is DeliveryStatus.SUBMITTED
    both = fold([two_parts, one, part_receipt("p2", DeliveryStatus.DELIVERED, 7, "b")])
    assert funnel_row(both).delivery_status is DeliveryStatus.DELIVERED
    assert funnel_row(both).delivery_status_at == at(7)
    failed = fold([two_parts, one, part_receipt("p3", DeliveryStatus.UNDELIVERED, 6, "b")])
    assert funnel_row(failed).delivery_status is DeliveryStatus.UNDELIVERED
    unknown = fold([two_parts, one, part_receipt("p4", DeliveryStatus.UNKNOWN, 6, "b")])
    assert funnel_row(unknown).delivery_status is DeliveryStatus.UNKNOWN


def test_local_send_time_in_the_recipients_zone() -> None:
    from datetime import UTC, datetime

    from stream_processors.message_state import local_send_time

    # Friday 2026-11-20 02:30 UTC is Thursday 18:30 in Los Angeles (UTC-8 in November)
    sent = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
    assert local_send_time(sent, "America/Los_Angeles") == (18, 4)
    assert local_send_time(sent, "Asia/Kolkata") == (8, 5)  # UTC+5:30
    assert local_send_time(sent, "") == (2, 5)  # unknown zone: UTC


def test_a_conversion_without_a_click_has_its_window_from_the_send() -> None:
    """A redeemed promo code carries no click: inside the 24 h window from the send it counts,
    after it it is an after-window conversion and a late record, in the row and in the verdict
    alike (and so in the offline ground truth)."""
    from stream_processors.message_state import decided_after_window

    send = SEND.model_copy(update={"attribution_window_hours": 24})

    def code_sale(event_id: str, hours: float) -> ConversionEvent:
        return ConversionEvent(
            event_id=event_id,
            occurred_at=at(hours * 3600),
            order_id=f"o-{event_id}",
            amount=Decimal("10"),
            currency="USD",
            **BASE,
        )

    inside, after = code_sale("in", 23), code_sale("late", 25)
    state = fold([send, inside, after])
    row = funnel_row(state)
    assert (row.conversions, row.after_window_conversions) == (1, 1)
    assert [k for k, _, _ in decided_after_window(state)] == ["late"]
    truth = expected_messages([send, inside, after])[("acme", "m1")]
    assert [c.event_id for c in truth.after_window_conversions] == ["late"]
