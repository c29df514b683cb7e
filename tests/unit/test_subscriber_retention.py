"""Retiring subscriber state (stream_processors/subscriber_retention.py) changes no output.

A subscriber's history over months (several senders, flash-sale and default windows, clicks,
message and subscriber-only conversions sharing order ids, replies and opt-outs) is fed through
the attribution stage's step twice, in an arrival order where every input comes less than the
allowed lateness behind the newest one: once never retiring, once retiring whenever the state is
quiet. What each run last sent for every credit and response key must be the same, while the
retiring run keeps a fraction of the state.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import InboundEvent, InboundKind, SubscriberConversionEvent
from schemas.subscriber_activity import ConversionRecord, SubscriberSnapshot, TouchRecord
from stream_processors.subscriber_retention import (
    CONVERSIONS,
    INBOUND,
    SNAPSHOTS,
    input_kind,
)
from stream_processors.subscriber_stage import StageSettings, is_empty, step
from stream_processors.subscriber_state import SubscriberState

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = datetime(2027, 1, 1, tzinfo=UTC)
LATENESS = timedelta(hours=72)
CONFIG = StageSettings(lateness=LATENESS, marker_retention=timedelta(days=30), view_through=True)
ACCOUNT, RECIPIENT = "acme", "ab" * 32


def history(rng: random.Random, messages: int, spread: timedelta) -> list:  # type: ignore[type-arg]
    """Every input the stage would get for one subscriber, with its arrival time: each event
    arrives less than `spread` after its time; the join folds a message's events in their
    arrival order and sends a snapshot per fold (stale versions included), which arrives
    with the event it folded; subscriber-level events arrive on their own."""
    inputs: list = []  # type: ignore[type-arg]

    def arrival(at: datetime) -> datetime:
        return at + spread * rng.random()

    def order_at(at: datetime) -> str:
        # one order reported by several sources (postback, shop, in-store match) within days
        # of itself, never months apart: order ids of a week share a small pool
        return f"o{(at - T0).days // 7}.{rng.randrange(2)}"

    for m in range(messages):
        sent = T0 + timedelta(days=m * 4, minutes=rng.randrange(600))
        window_hours = rng.choice([None, None, 24])
        window = timedelta(hours=window_hours or 168)
        sender = rng.choice(["S1", "S2"])
        message_id = f"m{m}"
        events: list = []  # type: ignore[type-arg]
        if rng.random() < 0.9:
            events.append(
                TouchRecord(
                    kind="delivery", touch_id=f"d{m}", occurred_at=sent + timedelta(minutes=1)
                )
            )
        for c in range(rng.randrange(3)):
            at = sent + timedelta(minutes=rng.randrange(int(2 * window.total_seconds() // 60)))
            events.append(TouchRecord(kind="click", touch_id=f"c{m}.{c}", occurred_at=at))
        if rng.random() < 0.5:
            at = sent + timedelta(minutes=rng.randrange(int(2 * window.total_seconds() // 60)))
            events.append(
                ConversionRecord(
                    event_id=f"conv{m}",
                    occurred_at=at,
                    order_id=order_at(at),
                    name="purchase",
                    amount=Decimal(rng.randrange(1, 200)),
                    currency="USD",
                    message_id=message_id,
                )
            )
        arrivals = sorted((arrival(e.occurred_at), i) for i, e in enumerate(events))
        events = [events[i] for _, i in arrivals]
        for version in range(1, len(events) + 1):
            folded = events[:version]
            inputs.append(
                (
                    arrivals[version - 1][0],
                    SubscriberSnapshot(
                        account=ACCOUNT,
                        recipient_hash=RECIPIENT,
                        message_id=message_id,
                        version=version,
                        campaign=f"camp{m % 3}",
                        sender=sender,
                        sent_at=sent,
                        attribution_window_hours=window_hours,
                        touches=[e for e in folded if isinstance(e, TouchRecord)],
                        conversions=[e for e in folded if isinstance(e, ConversionRecord)],
                    ),
                )
            )
    end = T0 + timedelta(days=messages * 4)
    for i in range(messages // 2):
        at = T0 + (end - T0) * rng.random()
        inputs.append(
            (
                arrival(at),
                SubscriberConversionEvent(
                    event_id=f"sub{i}",
                    account=ACCOUNT,
                    occurred_at=at,
                    recipient_hash=RECIPIENT,
                    order_id=order_at(at),
                    amount=Decimal(rng.randrange(1, 200)),
                    currency="USD",
                ),
            )
        )
    for i in range(messages):
        at = T0 + (end - T0) * rng.random()
        inputs.append(
            (
                arrival(at),
                InboundEvent(
                    event_id=f"in{i}",
                    account=ACCOUNT,
                    occurred_at=at,
                    recipient_hash=RECIPIENT,
                    sender=rng.choice(["S1", "S2"]),
                    kind=rng.choice(list(InboundKind)),
                ),
            )
        )
    return inputs


def arrival_order(inputs: list, rng: random.Random) -> list:  # type: ignore[type-arg]
    """The inputs by arrival time, some repeated (a replayed record)."""
    out = []
    for _, item in sorted(inputs, key=lambda x: x[0]):
        out.append(item)
        if rng.random() < 0.05:
            out.append(item)
    return out


def run(arrivals: list, retiring: bool, lag: int = 1) -> tuple[dict, SubscriberState]:  # type: ignore[type-arg]
    """What the sink holds after what was sent: the last row per key (content without the
    version), a response row with no answer read as no row; and the final state.
    `lag`: how many offsets behind the group's commits trail the input being processed."""
    state: SubscriberState | None = None
    sent: dict = {}  # type: ignore[type-arg]
    for offset, item in enumerate(arrivals):
        durable = (
            {k: offset - lag + 1 for k in (SNAPSHOTS, CONVERSIONS, INBOUND)} if retiring else {}
        )
        out = step(state, item, offset, NOW, durable, CONFIG)
        assert out.late is None, (item, out.late)
        state = out.state
        for c in out.credits:
            sent[("credit", c.order_id, c.model)] = c.model_copy(update={"version": 0})
        for r in out.responses:
            sent[("response", r.message_id, r.sender)] = r.model_copy(update={"version": 0})
    assert state is not None
    return {k: v for k, v in sent.items() if k[0] != "response" or not is_empty(v)}, state


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), lag=st.integers(1, 40))
def test_retiring_changes_nothing_sent_for_arrivals_within_the_lateness(
    seed: int, lag: int
) -> None:
    rng = random.Random(seed)
    arrivals = arrival_order(history(rng, 30, LATENESS * 0.95), rng)
    kept, _ = run(arrivals, retiring=False)
    retired, state = run(arrivals, retiring=True, lag=lag)
    assert retired == kept


def test_retiring_keeps_a_fraction_of_the_state() -> None:
    rng = random.Random(7)
    arrivals = arrival_order(history(rng, 90, LATENESS * 0.95), rng)
    _, full = run(arrivals, retiring=False)
    _, small = run(arrivals, retiring=True)
    messages = {x.message_id for x in arrivals if input_kind(x) == SNAPSHOTS}
    assert len(full.snapshots) == len(messages) > 80
    # a year's messages, four days apart: what is left is the last ~3 weeks' worth, stripped
    # ones kept only while an answer may still come, and the inbound SMS that answer nothing
    assert len(small.snapshots) <= 12, len(small.snapshots)
    assert len(small.to_bytes()) * 4 < len(full.to_bytes()), (
        len(small.to_bytes()),
        len(full.to_bytes()),
    )
    assert small.version == full.version  # retiring moves a part's share, never loses it


def test_nothing_is_retired_before_the_changes_are_committed() -> None:
    """A state is retired only when every change to it came from a committed offset: a
    replay after a crash must find the outputs of uncommitted changes still there to re-send."""
    rng = random.Random(3)
    arrivals = arrival_order(history(rng, 40, timedelta(0)), rng)
    state: SubscriberState | None = None
    for offset, item in enumerate(arrivals):
        out = step(state, item, offset, NOW, {}, CONFIG)  # the group never committed
        assert not out.retired
        state = out.state
    assert state is not None and len(state.snapshots) == 40
    # once the commits catch up, the next input retires the old part
    durable = dict.fromkeys((SNAPSHOTS, CONVERSIONS, INBOUND), len(arrivals))
    out = step(state, arrivals[-1], len(arrivals), NOW, durable, CONFIG)
    assert out.retired.stripped > 0 and out.retired.dropped > 0


def _retired_state() -> tuple[SubscriberState, list]:  # type: ignore[type-arg]
    rng = random.Random(13)  # a history whose end leaves messages both stripped and dropped
    arrivals = arrival_order(history(rng, 40, timedelta(0)), rng)
    _, state = run(arrivals, retiring=True)
    return state, arrivals


def test_an_input_beyond_the_lateness_is_written_out_late_not_applied() -> None:
    state, arrivals = _retired_state()
    assert state.clock is not None
    before = state.to_bytes()
    old_reply = InboundEvent(
        event_id="late-reply",
        account=ACCOUNT,
        occurred_at=state.clock - LATENESS - timedelta(minutes=1),
        recipient_hash=RECIPIENT,
        sender="S1",
        kind=InboundKind.OPT_OUT,
    )
    durable = dict.fromkeys((SNAPSHOTS, CONVERSIONS, INBOUND), 10**9)
    out = step(state, old_reply, 10**6, NOW, durable, CONFIG)
    assert out.late is not None and out.late.reason == "window_closed"
    assert out.late.event_id == "late-reply" and out.late.payload
    assert not out.applied and not out.credits and not out.responses
    assert "late-reply" not in out.state.inbound  # type: ignore[union-attr]
    # a reply just inside the lateness is applied
    fresh = old_reply.model_copy(
        update={"event_id": "fresh", "occurred_at": state.clock - LATENESS + timedelta(minutes=1)}
    )
    out = step(SubscriberState.from_bytes(before), fresh, 10**6, NOW, durable, CONFIG)
    assert out.late is None and out.applied


def test_a_snapshot_of_a_retired_message_is_late() -> None:
    state, arrivals = _retired_state()
    gone = [m for m in state.retired_messages if m not in state.snapshots]
    assert gone and state.stripped
    for message_id in (gone[0], sorted(state.stripped)[0]):
        last = max(
            (x for x in arrivals if input_kind(x) == SNAPSHOTS and x.message_id == message_id),
            key=lambda x: x.version,
        )
        newer = last.model_copy(update={"version": last.version + 1})
        out = step(state, newer, 10**6, NOW, {}, CONFIG)
        assert out.late is not None and out.late.message_id == message_id
        assert out.late.event_type == "subscriber_snapshot" and not out.applied


def test_a_repeat_of_a_retired_order_does_not_count_again() -> None:
    """An order retired with its conversion still wins against a later report of the same
    order from another source (e.g. the shop's webhook a day after the postback)."""
    state, _ = _retired_state()
    order_id, (at, _, _) = next(iter(state.retired_orders.items()))
    assert state.clock is not None
    repeat = SubscriberConversionEvent(
        event_id="again",
        account=ACCOUNT,
        occurred_at=state.clock,
        recipient_hash=RECIPIENT,
        order_id=order_id,
        amount=Decimal("5"),
        currency="USD",
    )
    out = step(state, repeat, 10**6, NOW, {}, CONFIG)
    assert out.applied and not [c for c in out.credits if c.order_id == order_id]


def test_state_round_trips_with_its_retired_parts() -> None:
    state, _ = _retired_state()
    assert state.stripped or state.retired_messages
    assert SubscriberState.from_bytes(state.to_bytes()).to_bytes() == state.to_bytes()
