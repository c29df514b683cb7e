"""Event time: the message horizon, watermarks, eviction and late events (pure, no broker).

Invariant under test (stream_processors/eviction.py): an event that arrives less than the
allowed lateness behind its partition's newest event is joined exactly as if nothing were ever
evicted; one that arrives later than that after its message was evicted is written out as
`window_closed`; events past a message's horizon are `after_window` whatever the order; a
message whose send never comes is written out as `orphan` events once evicted.
Expected values are computed here from the raw events, not by the code under test.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.workload import generate_campaign
from schemas.events import ClickEvent, ConversionEvent, MessageEventBase, SendEvent
from schemas.late_event import LateReason
from stream_processors.eviction import (
    ClosedMarker,
    EvictionSchedule,
    PartitionClock,
    is_marker,
)
from stream_processors.message_join import MessageJoin
from stream_processors.message_state import (
    MessageState,
    apply_event,
    funnel_row,
    hold_until,
    hold_until_from_bytes,
)
from tests.ground_truth import conversions_after_their_click_window, expected_messages

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
LATENESS = dt.timedelta(hours=72)
FAR_FUTURE = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
BASE = {"account": "acme", "message_id": "m1"}


def send(window_hours: int | None = None, at: dt.datetime = T0) -> SendEvent:
    return SendEvent(
        event_id="s",
        occurred_at=at,
        campaign="flash" if window_hours else "c",
        variant="A",
        sender="1",
        recipient_hash="0" * 64,
        country="US",
        cost=Decimal("0.01"),
        attribution_window_hours=window_hours,
        **BASE,
    )


def click(
    event_id: str, at: dt.datetime, message_id: str = "m1", account: str = "acme"
) -> ClickEvent:
    return ClickEvent(
        event_id=event_id,
        occurred_at=at,
        click_id=f"k{event_id}",
        account=account,
        message_id=message_id,
    )


def conversion(event_id: str, at: dt.datetime, amount: str) -> ConversionEvent:
    return ConversionEvent(
        event_id=event_id,
        occurred_at=at,
        order_id=f"o{event_id}",
        click_id="kc1",
        amount=Decimal(amount),
        currency="USD",
        **BASE,
    )


def fold(events):  # type: ignore[no-untyped-def]
    state = None
    for e in events:
        state, _ = apply_event(state, e)
    return state


# ---- the horizon: send + two windows ---------------------------------------------------------


def test_default_horizon_is_fourteen_days_after_the_send_inclusive() -> None:
    edge = click("c1", T0 + 14 * DAY)
    past = click("c2", T0 + 14 * DAY + dt.timedelta(seconds=1))
    row = funnel_row(fold([send(), edge, past]))
    assert row.clicks == 1 and row.last_event_at == T0 + 14 * DAY


def test_flash_sale_window_of_24_hours_gives_a_48_hour_horizon() -> None:
    # a click at the end of the window, a conversion inside the window after it: counted;
    # one past the horizon is not even an after-window conversion of the row
    events = [
        send(24),
        click("c1", T0 + 24 * HOUR),
        conversion("v1", T0 + 47 * HOUR, "10.00"),
        conversion("v2", T0 + 49 * HOUR, "99.00"),
    ]
    row = funnel_row(fold(events))
    assert (row.conversions, row.revenue) == (1, {"USD": Decimal("10.00")})
    assert row.after_window_conversions == 0


@pytest.mark.parametrize("click_first", [True, False])
def test_a_conversion_after_its_clicks_window_is_counted_apart(click_first: bool) -> None:
    """DOMAIN.md: 30 h after the click it carries, with a 24 h window, a conversion is not the
    message's (conversions, revenue) but its own figure; 23 h after its click, another one is.
    Whichever order the events come in."""
    clicked = [click("c1", T0 + HOUR), click("c2", T0 + 2 * HOUR)]
    on_c2 = conversion("v2", T0 + 25 * HOUR, "5").model_copy(update={"click_id": "kc2"})
    converted = [conversion("v1", T0 + 31 * HOUR, "30.00"), on_c2]
    events = [send(24), *(clicked + converted if click_first else converted + clicked)]
    row = funnel_row(fold(events))
    assert (row.conversions, row.revenue) == (1, {"USD": Decimal("5")})
    assert (row.after_window_conversions, row.after_window_revenue) == (
        1,
        {"USD": Decimal("30.00")},
    )
    assert row.discarded_conversions == 0


def test_events_past_the_horizon_do_not_count_whichever_comes_first() -> None:
    events = [send(), click("c1", T0 + DAY), click("c2", T0 + 20 * DAY)]
    rows = {funnel_row(fold(order)).model_dump_json() for order in (events, events[::-1])}
    assert len(rows) == 1
    assert funnel_row(fold(events)).clicks == 1


def test_hold_until_of_an_orphan_is_its_first_event_plus_an_hour() -> None:
    state = fold([click("c1", T0 + DAY), click("c2", T0)])
    assert hold_until(state) == T0 + HOUR


def test_hold_until_read_from_stored_bytes_matches_the_state() -> None:
    for events in ([send(24), click("c1", T0)], [click("c1", T0 + HOUR)], [send()]):
        state = fold(events)
        state.partition = 7
        state.closing = None if state.send else ("clicks", 12)
        assert hold_until_from_bytes(state.to_bytes()) == (7, hold_until(state), state.closing)
        assert not is_marker(state.to_bytes())


# ---- watermark and schedule -----------------------------------------------------------------


def test_watermark_only_moves_forward_and_never_far_past_the_wall_clock() -> None:
    clock = PartitionClock()
    now = T0
    assert clock.observe("sends", T0 - HOUR, now) and clock.watermark == T0 - HOUR
    assert not clock.observe("sends", T0 - 2 * HOUR, now) and clock.watermark == T0 - HOUR
    assert clock.observe("sends", dt.datetime(2099, 1, 1, tzinfo=dt.UTC), now)
    assert clock.watermark == T0 + dt.timedelta(minutes=5)


def test_an_input_with_unprocessed_records_holds_the_watermark_at_its_newest_event() -> None:
    clock = PartitionClock()
    clock.observe("sends", T0, FAR_FUTURE)
    # clicks two days later are processed while the sends topic still has a backlog
    assert not clock.observe("clicks", T0 + 2 * DAY, FAR_FUTURE, lagging={"sends"})
    assert clock.watermark == T0
    assert clock.observe("sends", T0 + HOUR, FAR_FUTURE, lagging={"sends"})
    assert clock.watermark == T0 + HOUR
    # sends caught up: it no longer holds time back
    assert clock.observe("sends", T0 + 2 * HOUR, FAR_FUTURE, lagging=())
    assert clock.watermark == T0 + 2 * DAY


def test_a_lagging_input_that_has_delivered_nothing_yet_holds_the_watermark_still() -> None:
    clock = PartitionClock()
    clock.observe("clicks", T0, FAR_FUTURE)
    assert not clock.observe("clicks", T0 + DAY, FAR_FUTURE, lagging={"receipts"})
    assert clock.watermark == T0


def test_watermark_is_persisted_once_a_minute_not_on_every_step() -> None:
    clock = PartitionClock()
    clock.observe("sends", T0, FAR_FUTURE)
    assert clock.should_persist()
    clock.persisted = clock.watermark
    clock.observe("sends", T0 + dt.timedelta(seconds=59), FAR_FUTURE)
    assert not clock.should_persist()
    clock.observe("sends", T0 + dt.timedelta(seconds=60), FAR_FUTURE)
    assert clock.should_persist()


def test_schedule_pops_only_entries_strictly_before_the_watermark_in_order() -> None:
    s = EvictionSchedule()
    s.schedule(1, T0 + 2 * HOUR, b"b")
    s.schedule(1, T0 + HOUR, b"a")
    s.schedule(1, T0 + 3 * HOUR, b"c")
    s.schedule(2, T0, b"other partition")
    assert s.pop_due(1, T0 + 2 * HOUR) == [b"a"]
    assert s.pop_due(1, T0 + 4 * HOUR) == [b"b", b"c"]
    assert s.pending() == 1


def test_closed_marker_round_trips() -> None:
    m = ClosedMarker(T0, T0 + 30 * DAY, True, 3)
    assert is_marker(m.to_bytes()) and ClosedMarker.from_bytes(m.to_bytes()) == m


# ---- the join with eviction ------------------------------------------------------------------


def run(join: MessageJoin, arrivals: list[MessageEventBase]):  # type: ignore[no-untyped-def]
    rows, late = {}, {}
    for e in arrivals:
        out = join.process(0, e, e.model_dump_json().encode(), e.event_type)
        for r in out.rows:
            rows[(r.account, r.message_id)] = r
        for item in out.late:
            late[(item.account, item.event_id)] = item
    return rows, late


def new_join(table: dict | None = None) -> MessageJoin:  # type: ignore[type-arg]
    return MessageJoin(
        {} if table is None else table, LATENESS, dt.timedelta(days=30), lambda: FAR_FUTURE
    )


def wave_workload(seed: int) -> list[MessageEventBase]:
    """Four campaign waves ten days apart (so later waves evict earlier ones), orphan clicks,
    and clicks past some messages' horizon."""
    rng = random.Random(seed)
    events: list[MessageEventBase] = []
    for wave in range(4):
        w = generate_campaign(12, seed=seed * 10 + wave, start=T0 + wave * 10 * DAY)
        events += [e for e in w.events if isinstance(e, MessageEventBase)]
    sends = [e for e in events if isinstance(e, SendEvent)]
    for n, s in enumerate(rng.sample(sends, 5)):
        events.append(click(f"past{n}", s.occurred_at + 15 * DAY, s.message_id, s.account))
    for n, s in enumerate(rng.sample(sends, 5)):  # last-minute clicks, still inside
        edge = s.occurred_at + 14 * DAY - rng.uniform(0, 3600) * dt.timedelta(seconds=1)
        events.append(click(f"edge{n}", edge, s.message_id, s.account))
    for h in range(0, 50 * 24, 4):  # steady traffic, so the watermark moves in small steps
        tick = send(at=T0 + h * HOUR).model_copy(
            update={"event_id": f"t{h}", "message_id": f"t{h}"}
        )
        events.append(tick)
    for n in range(4):
        events.append(click(f"orphan{n}", T0 + rng.uniform(0, 30) * DAY, f"ghost{n}"))
    return events


def in_lateness_order(events: list[MessageEventBase], seed: int) -> list[MessageEventBase]:
    """Each event delayed by less than the allowed lateness: it is never more than that behind
    the newest event already seen."""
    rng = random.Random(seed)
    delays = [rng.uniform(0, LATENESS.total_seconds() * 0.999) for _ in events]
    keyed = sorted(
        zip(events, delays, strict=True),
        key=lambda ed: ed[0].occurred_at + dt.timedelta(seconds=ed[1]),
    )
    return [e for e, _ in keyed]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_arrivals_within_lateness_give_ground_truth_and_the_right_late_events(seed: int) -> None:
    events = wave_workload(seed)
    join = new_join()
    rows, late = run(join, in_lateness_order(events, seed))
    assert join.schedule.pending() > 0

    truth = expected_messages(events)
    assert set(rows) == set(truth)
    for key, want in truth.items():
        got = rows[key]
        assert (got.has_send, got.clicks, got.conversions, got.receipts) == (
            want.has_send,
            want.clicks,
            len(want.conversions),
            want.receipts,
        ), key
    reasons = {item.reason for item in late.values()}
    assert LateReason.WINDOW_CLOSED not in reasons

    # after_window: every event later than its message's send + 2 windows, from the raw events
    sends = {(s.account, s.message_id): s for s in events if isinstance(s, SendEvent)}
    past = {
        (e.account, e.event_id)
        for e in events
        if not isinstance(e, SendEvent)
        and (e.account, e.message_id) in sends
        and e.occurred_at
        > sends[(e.account, e.message_id)].occurred_at
        + 2 * dt.timedelta(hours=sends[(e.account, e.message_id)].attribution_window_hours or 168)
    }
    # and every conversion event past the window from the click it carries
    past |= conversions_after_their_click_window(events)
    assert {k for k, v in late.items() if v.reason is LateReason.AFTER_WINDOW} == past
    assert len(past) >= 5

    # Move the watermark past everything: every orphan's events are written out as orphans.
    _, at_the_end = run(join, [click("tick", FAR_FUTURE, "clock")])
    orphans = {(e.account, e.event_id) for e in events if (e.account, e.message_id) not in sends}
    assert len(orphans) >= 4
    written = {**late, **at_the_end}
    assert {k for k, v in written.items() if v.reason is LateReason.ORPHAN} == orphans


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_eviction_changes_no_row_when_arrivals_are_within_lateness(seed: int) -> None:
    arrivals = in_lateness_order(wave_workload(seed), seed)
    evicting, _ = run(new_join(), arrivals)
    never = MessageJoin({}, dt.timedelta(days=10_000), dt.timedelta(days=30), lambda: FAR_FUTURE)
    keeping, _ = run(never, arrivals)
    # Same content; only the version (a count of distinct events folded) may be lower, since an
    # event past the horizon that meets a closed marker is not folded.
    assert set(evicting) == set(keeping)
    for key, row in evicting.items():
        assert row.version <= keeping[key].version
        assert row.model_copy(update={"version": 0}) == keeping[key].model_copy(
            update={"version": 0}
        )


def test_orphans_are_written_out_when_evicted_and_not_before() -> None:
    join = new_join()
    out = join.process(0, click("c1", T0, "ghost"), b"{}")
    assert out.late == []
    # the partition's clock passes the orphan's hold (T0 + 1 h) plus lateness (72 h)
    out = join.process(0, click("c2", T0 + 73 * HOUR, "other"), b"{}")
    assert [i.event_id for i in out.late] == []  # exactly at the due time: not yet
    out = join.process(0, click("c3", T0 + 73 * HOUR + dt.timedelta(seconds=1), "other"), b"{}")
    assert [(i.event_id, i.reason) for i in out.late] == [("c1", LateReason.ORPHAN)]
    assert is_marker(join.table[b"acme\x1fghost"])


def test_an_event_later_than_the_lateness_after_eviction_is_window_closed() -> None:
    join = new_join()
    join.process(0, send(), b"{}")
    join.process(0, click("c1", T0 + HOUR), b"{}")
    # other traffic moves the watermark past T0 + 14 d + 72 h: m1 is evicted
    join.process(0, click("x", T0 + 18 * DAY, "other"), b"{}")
    assert is_marker(join.table[b"acme\x1fm1"])
    payload = click("c2", T0 + 2 * HOUR).model_dump_json().encode()
    out = join.process(0, click("c2", T0 + 2 * HOUR), payload)
    assert out.rows == []
    (late,) = out.late
    assert (late.event_id, late.reason, late.payload) == (
        "c2",
        LateReason.WINDOW_CLOSED,
        payload.decode(),
    )
    assert late.horizon == T0 + 14 * DAY and late.watermark == T0 + 18 * DAY


def test_a_closed_marker_is_forgotten_after_its_retention() -> None:
    join = new_join()
    join.process(0, send(), b"{}")
    join.process(0, click("x", T0 + 18 * DAY, "other"), b"{}")
    assert is_marker(join.table[b"acme\x1fm1"])
    # forget after = T0 + 14 d + 3 d + 30 d
    join.process(0, click("y", T0 + 47 * DAY + dt.timedelta(seconds=1), "other2"), b"{}")
    assert b"acme\x1fm1" not in join.table


def test_a_restarted_join_rebuilds_its_schedule_and_watermark_from_the_table() -> None:
    arrivals = in_lateness_order(wave_workload(5), 5)
    half = len(arrivals) // 2
    straight_rows, straight_late = run(new_join(), arrivals)

    table: dict[bytes, bytes] = {}
    first_rows, first_late = run(new_join(table), arrivals[:half])
    restarted = new_join(table)  # a new worker: empty memory, the table restored
    restarted.rebuild()
    assert restarted.watermark(0) is not None
    assert restarted.schedule.pending() > 0
    rows, late = run(restarted, arrivals[half:])
    assert {**first_rows, **rows} == straight_rows
    assert {**first_late, **late} == straight_late


def test_state_survives_serialisation_with_its_partition() -> None:
    state = fold([send(), click("c1", T0)])
    state.partition = 4
    again = MessageState.from_bytes(state.to_bytes())
    assert again.partition == 4 and funnel_row(again) == funnel_row(state)


def test_an_entry_scheduled_after_the_watermark_passed_it_goes_at_the_next_event() -> None:
    join = new_join()
    join.process(0, send(), b"{}")
    join.schedule.clear()  # as if the schedule were rebuilt without it...
    join.process(0, click("x", T0 + 18 * DAY, "other"), b"{}")  # ...while the clock moved on
    join.schedule.schedule(0, T0 + 17 * DAY, b"acme\x1fm1")  # ...and then scheduled again
    join.process(0, click("y", T0 + 18 * DAY, "other"), b"{}")  # same time: no advance
    assert is_marker(join.table[b"acme\x1fm1"])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_a_backlog_read_topic_by_topic_in_any_interleaving_evicts_nothing_early(seed: int) -> None:
    """Each topic is read in order, the topics in an arbitrary interleaving (how the engine reads a
    backlog): with the lagging inputs holding the watermark back, no event finds its state
    evicted and the rows equal those of a join that never evicts."""
    rng = random.Random(seed)
    by_topic: dict[str, list[MessageEventBase]] = {}
    for e in sorted(wave_workload(seed), key=lambda e: (e.occurred_at, e.event_id)):
        by_topic.setdefault(e.event_type, []).append(e)
    arrivals: list[tuple[MessageEventBase, set[str]]] = []
    while by_topic:
        topic = rng.choice(sorted(by_topic))
        event = by_topic[topic].pop(0)
        if not by_topic[topic]:
            del by_topic[topic]
        arrivals.append((event, set(by_topic)))  # inputs with records still unread

    def replay(join: MessageJoin):  # type: ignore[no-untyped-def]
        rows, late = {}, {}
        for e, lagging in arrivals:
            out = join.process(0, e, b"{}", e.event_type, lagging)
            rows.update({(r.account, r.message_id): r for r in out.rows})
            late.update({(i.account, i.event_id): i for i in out.late})
        return rows, late

    rows, late = replay(new_join())
    never = MessageJoin({}, dt.timedelta(days=10_000), dt.timedelta(days=30), lambda: FAR_FUTURE)
    keeping, _ = replay(never)
    assert LateReason.WINDOW_CLOSED not in {i.reason for i in late.values()}
    for key, row in rows.items():
        assert row.model_copy(update={"version": 0}) == keeping[key].model_copy(
            update={"version": 0}
        )


def test_a_state_is_evicted_only_once_its_last_change_is_committed() -> None:
    """A replay after a crash re-sends a message's row from its state: evicting a state whose
    last change is not committed could lose that row for good. Such a state waits, and goes at
    its partition's next event after the committed offsets moved past its change."""
    committed: dict[tuple[str, int], int] = {}
    join = MessageJoin({}, LATENESS, dt.timedelta(days=30), lambda: FAR_FUTURE, committed)
    key = b"acme\x1fm1"
    join.process(0, send(), b"{}", "sends", offset=0)
    join.process(0, click("c1", T0 + HOUR), b"{}", "clicks", offset=0)
    # other traffic moves the watermark far past the due time; nothing is committed yet
    join.process(0, click("x", T0 + 18 * DAY, "other"), b"{}", "clicks", offset=1)
    assert not is_marker(join.table[key]) and join.pending() >= 1
    committed[("clicks", 0)] = 1  # the click that last changed m1 (offset 0) is committed
    join.durable_advanced()
    join.process(0, click("y", T0 + 18 * DAY + HOUR, "other2"), b"{}", "clicks", offset=2)
    assert is_marker(join.table[key])


def test_an_orphan_becomes_a_marker_only_once_the_step_writing_it_out_is_committed() -> None:
    """Replacing an orphan by its marker in the step that writes its events out could leave
    the marker on the changelog and the records lost in a crash, never to be written again."""
    committed: dict[tuple[str, int], int] = {("clicks", 0): 1}  # the orphan's click: committed
    table: dict[bytes, bytes] = {}
    join = MessageJoin(table, LATENESS, dt.timedelta(days=30), lambda: FAR_FUTURE, committed)
    ghost = b"acme\x1fghost"
    join.process(0, click("c1", T0, "ghost"), b"{}", "clicks", offset=0)
    due_past = T0 + 73 * HOUR + dt.timedelta(seconds=1)
    out = join.process(0, click("c2", due_past, "other"), b"{}", "clicks", offset=1)
    assert [(i.event_id, i.reason) for i in out.late] == [("c1", LateReason.ORPHAN)]
    assert not is_marker(table[ghost])
    # an event of the orphan meanwhile is written out as one, not folded into a row
    out = join.process(0, click("c3", T0 + HOUR, "ghost"), b"{}", "clicks", offset=2)
    assert out.rows == [] and [(i.event_id, i.reason) for i in out.late] == [
        ("c3", LateReason.ORPHAN)
    ]

    crashed = MessageJoin(table, LATENESS, dt.timedelta(days=30), lambda: FAR_FUTURE, committed)
    crashed.rebuild()  # clicks@1 is not committed: what it wrote may be lost
    out = crashed.process(0, click("c2", due_past, "other"), b"{}", "clicks", offset=1)
    assert [(i.event_id, i.reason) for i in out.late] == [("c1", LateReason.ORPHAN)]
    out = crashed.process(0, click("c4", due_past, "other"), b"{}", "clicks", offset=2)
    assert [i.event_id for i in out.late] == [] and not is_marker(table[ghost])
    committed[("clicks", 0)] = 3  # the rewriting step (clicks@1) is committed
    crashed.durable_advanced()
    out = crashed.process(0, click("c5", due_past, "other"), b"{}", "clicks", offset=3)
    assert [i.event_id for i in out.late] == [] and is_marker(table[ghost])
