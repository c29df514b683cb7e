"""The attribution stage's state: any arrival order of snapshots (stale versions included) and
subscriber events gives the same credits and responses; order ids count once per subscriber;
opt-outs go to the last message that sender delivered."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from producers.workload import generate_campaign
from schemas.events import InboundEvent, InboundKind, MessageEventBase, SubscriberConversionEvent
from schemas.subscriber_activity import ConversionRecord, SubscriberSnapshot, TouchRecord
from stream_processors.attribution import Model
from stream_processors.message_state import apply_event, subscriber_snapshot
from stream_processors.subscriber_state import (
    apply_snapshot,
    apply_subscriber_event,
    credit_sets,
    responses,
)

CAMPAIGN = generate_campaign(600, seed=8, duplicate_rate=0.0)


def _inputs_by_subscriber() -> dict[str, list]:
    """Every snapshot the join would emit (one per event, in a random event order) and the
    subscriber-level events, grouped by subscriber."""
    rng = random.Random(4)
    by_message: dict[str, list] = defaultdict(list)
    out: dict[str, list] = defaultdict(list)
    for e in CAMPAIGN.events:
        if isinstance(e, MessageEventBase):
            by_message[e.message_id].append(e)
        else:
            out[e.recipient_hash].append(e)
    for events in by_message.values():
        rng.shuffle(events)
        state = None
        for e in events:
            state, _ = apply_event(state, e)
            snap = subscriber_snapshot(state)
            if snap is not None:
                out[snap.recipient_hash].append(snap)
    return out


INPUTS = _inputs_by_subscriber()
RICH = sorted(
    (
        k
        for k, v in INPUTS.items()
        if any(isinstance(x, SubscriberSnapshot) and x.conversions for x in v)
    ),
)


def feed(items: list):  # type: ignore[no-untyped-def]
    state = None
    for item in items:
        if isinstance(item, SubscriberSnapshot):
            state, _ = apply_snapshot(state, item)
        else:
            state, _ = apply_subscriber_event(state, item)
    return state


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_order_and_repetition_gives_the_same_credits_and_responses(data: st.DataObject) -> None:
    subscriber = data.draw(st.sampled_from(RICH or sorted(INPUTS)))
    items = INPUTS[subscriber]
    reference = feed(items)
    shuffled = data.draw(
        st.permutations(items + data.draw(st.lists(st.sampled_from(items), max_size=8)))
    )
    state = feed(shuffled)
    assert credit_sets(state) == credit_sets(reference)
    assert credit_sets(state, view_through=True) == credit_sets(reference, view_through=True)
    assert responses(state) == responses(reference)
    for credits in credit_sets(state):
        if credits.credits:
            assert sum(c.weight for c in credits.credits) == 1


T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
SUB = "ab" * 32


def snap(
    message_id: str, sender: str, delivered_min: float | None, clicks=(), conversions=(), version=5
):  # type: ignore[no-untyped-def]
    touches = [
        TouchRecord(
            kind="click", touch_id=f"{message_id}-k{i}", occurred_at=T0 + timedelta(minutes=m)
        )
        for i, m in enumerate(clicks)
    ]
    if delivered_min is not None:
        touches.append(
            TouchRecord(
                kind="delivery",
                touch_id=f"{message_id}-d",
                occurred_at=T0 + timedelta(minutes=delivered_min),
            )
        )
    return SubscriberSnapshot(
        account="a",
        recipient_hash=SUB,
        message_id=message_id,
        version=version,
        campaign="c",
        sender=sender,
        sent_at=T0,
        attribution_window_hours=None,
        touches=touches,
        conversions=list(conversions),
    )


def conv(event_id: str, minutes: float, order: str, message_id: str) -> ConversionRecord:
    return ConversionRecord(
        event_id=event_id,
        occurred_at=T0 + timedelta(minutes=minutes),
        order_id=order,
        name="purchase",
        amount=Decimal("50"),
        currency="USD",
        message_id=message_id,
    )


def test_one_conversion_per_order_across_messages_credited_over_both() -> None:
    m1 = snap("m1", "s", 0, clicks=[10], conversions=[conv("v1", 100, "o1", "m1")])
    m2 = snap("m2", "s", 20, clicks=[30], conversions=[conv("v2", 90, "o1", "m2")])
    state = feed([m1, m2])
    sets = {c.model: c for c in credit_sets(state)}
    assert len(credit_sets(state)) == len(Model)  # one conversion, five models
    assert sets[Model.LAST_CLICK].conversion_event_id == "v2"  # the earlier report wins
    assert [(c.message_id, c.weight) for c in sets[Model.LAST_CLICK].credits] == [("m2", 1)]
    assert [(c.message_id, c.weight) for c in sets[Model.LINEAR].credits] == [
        ("m1", Decimal("0.5")),
        ("m2", Decimal("0.5")),
    ]


def test_opt_out_goes_to_the_last_message_that_sender_delivered() -> None:
    inbound = InboundEvent(
        event_id="in1",
        account="a",
        recipient_hash=SUB,
        sender="s1",
        occurred_at=T0 + timedelta(minutes=60),
        kind=InboundKind.OPT_OUT,
        keyword="STOP",
    )
    items = [
        snap("early", "s1", 0),
        snap("latest-s1", "s1", 30),
        snap("other-sender", "s2", 50),
        snap("after", "s1", 90),
        inbound,
    ]
    for order in (items, list(reversed(items))):
        got = {(r.message_id, r.sender): r for r in responses(feed(order))}
        assert got[("latest-s1", "s1")].opt_outs == 1
        assert got[("latest-s1", "s1")].first_response_at == T0 + timedelta(minutes=60)
        assert sum(r.opt_outs for r in got.values()) == 1


def test_subscriber_only_conversion_is_attributed_and_stale_snapshots_ignored() -> None:
    purchase = SubscriberConversionEvent(
        event_id="p",
        account="a",
        recipient_hash=SUB,
        order_id="store-1",
        occurred_at=T0 + timedelta(hours=5),
        amount=Decimal("20"),
        currency="USD",
    )
    newer = snap("m1", "s", 0, clicks=[10], version=6)
    older = snap("m1", "s", 0, clicks=[], version=3)
    state = feed([newer, purchase, older])
    last = next(c for c in credit_sets(state) if c.model is Model.LAST_CLICK)
    assert last.source_message_id == "" and [c.touch_id for c in last.credits] == ["m1-k0"]


ANSWERING = sorted(k for k, v in INPUTS.items() if any(isinstance(x, InboundEvent) for x in v))


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_response_rows_sent_leave_the_current_answers_with_no_stale_row(
    data: st.DataObject,
) -> None:
    """The sink keeps the last row sent per (message, sender), a missing row reading as no
    answer: after any arrival order with repeats, that view equals the answers computed from
    all inputs at once, though keys that never had an answer are not sent as zero rows."""
    from stream_processors.subscriber_stage import StageSettings, is_empty, step

    config = StageSettings(lateness=timedelta(days=3650), marker_retention=timedelta(days=30))
    items = list(INPUTS[data.draw(st.sampled_from(ANSWERING))])
    items = data.draw(st.permutations(items))
    items += data.draw(st.lists(st.sampled_from(items), max_size=5))
    state = None
    sent: dict = {}  # type: ignore[type-arg]
    for offset, item in enumerate(items):
        out = step(state, item, offset, datetime(2030, 1, 1, tzinfo=UTC), {}, config)
        state = out.state
        for r in out.responses:
            sent[(r.message_id, r.sender)] = r.model_copy(update={"version": 0})
    want = {
        (r.message_id, r.sender): r.model_copy(update={"version": 0})
        for r in responses(feed(items))
        if not is_empty(r)
    }
    assert {k: r for k, r in sent.items() if not is_empty(r)} == want
