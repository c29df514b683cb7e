"""The resolver forgets on event time (stream_processors/resolver_join.py): a reference once its
message's horizon has passed by more than the lateness, receipts whose send never came as
orphans. For arrivals within the lateness every receipt whose send exists is forwarded and
none is written out; every receipt of a send that never came is written out as an orphan,
once; the state left is markers only."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.delivery_status import DeliveryStatus
from schemas.events import MessageReference, ProviderReceiptEvent
from schemas.late_event import LateReason
from schemas.provider_ids import reference_key
from stream_processors.eviction import is_marker
from stream_processors.resolver_join import ResolverJoin

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
LATENESS = timedelta(hours=72)
FAR_FUTURE = datetime(2030, 1, 1, tzinfo=UTC)
REFS, RECEIPTS = "smsfunnel.message-references", "smsfunnel.provider-receipts"


def ref(n: int, sent_at: datetime, window: int | None = None) -> MessageReference:
    return MessageReference(
        account="acme",
        provider="smpp",
        spelling=f"p{n}",
        provider_message_id=f"p{n}",
        message_id=f"m{n}",
        sent_at=sent_at,
        attribution_window_hours=window,
    )


def receipt(n: int, at: datetime, event_id: str | None = None) -> ProviderReceiptEvent:
    return ProviderReceiptEvent(
        event_id=event_id or f"r{n}",
        account="acme",
        occurred_at=at,
        provider="smpp",
        provider_message_id=f"p{n}",
        status=DeliveryStatus.DELIVERED,
    )


def key(n: int) -> bytes:
    return reference_key("acme", "smpp", f"p{n}")


def new(table: dict | None = None, durable: dict | None = None) -> ResolverJoin:  # type: ignore[type-arg]
    return ResolverJoin(
        {} if table is None else table,
        LATENESS,
        timedelta(days=30),
        lambda: FAR_FUTURE,
        durable,
    )


def feed(join: ResolverJoin, item, offset: int = 0):  # type: ignore[no-untyped-def]
    topic = REFS if isinstance(item, MessageReference) else RECEIPTS
    k = key(int(item.spelling[1:])) if topic == REFS else key(int(item.provider_message_id[1:]))
    return join.process(0, k, item, topic, offset)


def test_a_reference_is_forgotten_after_its_horizon_and_a_later_receipt_is_written_out() -> None:
    join = new()
    out = feed(join, receipt(1, T0 + HOUR))  # receipt first: held
    assert out.held and not out.receipts
    out = feed(join, ref(1, T0))
    assert [r.message_id for r in out.receipts] == ["m1"]
    feed(join, ref(2, T0 + 17 * DAY))  # horizon T0 + 14 d, due 3 days later: not yet
    assert not is_marker(join.table[key(1)])
    feed(join, ref(3, T0 + 17 * DAY + HOUR))
    assert is_marker(join.table[key(1)])
    within = feed(join, receipt(1, T0 + 2 * HOUR, "r1-retry"))
    assert within.input_late and not within.receipts
    (late,) = within.late
    assert (late.event_id, late.reason, late.message_id) == (
        "r1-retry",
        LateReason.WINDOW_CLOSED,
        "m1",
    )
    assert ProviderReceiptEvent.model_validate_json(late.payload).event_id == "r1-retry"
    (past,) = feed(join, receipt(1, T0 + 15 * DAY, "r1-past")).late
    assert past.reason is LateReason.AFTER_WINDOW


def test_receipts_whose_send_never_came_are_written_out_as_orphans_once() -> None:
    join = new()
    feed(join, receipt(9, T0, "a"))
    feed(join, receipt(9, T0 + HOUR, "b"))
    out = feed(join, ref(1, T0 + HOUR + LATENESS))  # first receipt + 1 h + lateness: not past
    assert not out.late
    out = feed(join, ref(2, T0 + HOUR + LATENESS + timedelta(seconds=1)))
    assert sorted((x.event_id, x.reason) for x in out.late) == [
        ("a", LateReason.ORPHAN),
        ("b", LateReason.ORPHAN),
    ]
    assert is_marker(join.table[key(9)])
    assert not feed(join, ref(3, T0 + 5 * DAY)).late  # written out once
    (again,) = feed(join, receipt(9, T0 + 2 * HOUR, "c")).late
    assert again.reason is LateReason.ORPHAN


def test_receipts_alone_do_not_move_the_clock() -> None:
    """A backlog of receipts read while the join is still behind on their sends must not
    evict them as orphans: only the sends' times (on the references) move the clock."""
    join = new()
    feed(join, receipt(1, T0))
    for n in range(2, 30):
        assert not feed(join, receipt(n, T0 + n * DAY)).late
    assert not is_marker(join.table[key(1)])


def test_nothing_is_evicted_before_its_last_change_is_committed() -> None:
    committed: dict[tuple[str, int], int] = {}
    join = new(durable=committed)
    feed(join, ref(1, T0), offset=0)
    feed(join, ref(2, T0 + 18 * DAY), offset=1)
    assert not is_marker(join.table[key(1)])
    committed[(REFS, 0)] = 1
    join.durable_advanced()
    feed(join, ref(3, T0 + 18 * DAY + HOUR), offset=2)
    assert is_marker(join.table[key(1)])


def test_a_restarted_resolver_rebuilds_its_schedule_and_clock_from_the_table() -> None:
    table: dict[bytes, bytes] = {}
    join = new(table)
    feed(join, ref(1, T0))
    feed(join, ref(2, T0 + 10 * DAY))
    restarted = new(table)
    restarted.rebuild()
    feed(restarted, ref(3, T0 + 17 * DAY + HOUR))
    assert is_marker(table[key(1)])


def test_a_marker_is_forgotten_after_its_retention() -> None:
    join = new()
    feed(join, ref(1, T0))
    feed(join, ref(2, T0 + 18 * DAY))
    assert is_marker(join.table[key(1)])
    feed(join, ref(3, T0 + 47 * DAY + HOUR))  # due (T0 + 17 d) + 30 d
    assert key(1) not in join.table


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_within_the_lateness_every_receipt_is_forwarded_or_an_orphan(seed: int) -> None:
    rng = random.Random(seed)
    sends = {n: T0 + timedelta(hours=rng.randrange(24 * 60)) for n in range(30)}
    missing = set(rng.sample(sorted(sends), 5))
    arrivals: list[tuple[datetime, object]] = []
    receipts: dict[str, int] = {}
    past_horizon: set[str] = set()
    for n, sent in sends.items():
        window = rng.choice([None, 24])
        if n not in missing:
            arrivals.append((sent + LATENESS * 0.9 * rng.random(), ref(n, sent, window)))
        for i in range(rng.randrange(1, 3)):
            at = sent + timedelta(minutes=rng.randrange(1, 60 * 24 * 3))
            event_id = f"r{n}.{i}"
            receipts[event_id] = n
            if at > sent + 2 * timedelta(hours=window or 168):
                past_horizon.add(event_id)
            arrivals.append((at + LATENESS * 0.9 * rng.random(), receipt(n, at, event_id)))
    # the sends of the weeks after move the clock past every due time
    arrivals += [(FAR_FUTURE, ref(1000 + i, T0 + 200 * DAY + i * HOUR)) for i in range(3)]
    join = new()
    forwarded: set[str] = set()
    orphans: list[str] = []
    after_window: set[str] = set()
    for offset, (_, item) in enumerate(sorted(arrivals, key=lambda a: a[0])):
        out = feed(join, item, offset)
        forwarded |= {r.event_id for r in out.receipts}
        for late in out.late:
            if late.reason is LateReason.AFTER_WINDOW:
                after_window.add(late.event_id)
            else:
                assert late.reason is LateReason.ORPHAN, late
                orphans.append(late.event_id)
    # a receipt past its message's horizon counts in no row (the join says `after_window`
    # too): forwarded while the reference is kept, written out as such after
    assert after_window <= past_horizon and not after_window & forwarded
    assert forwarded | after_window == {e for e, n in receipts.items() if n not in missing}
    assert sorted(orphans) == sorted(e for e, n in receipts.items() if n in missing)
    ticks = {key(1000 + i) for i in range(3)}
    left = {k: v for k, v in join.table.items() if not k.startswith(b"\x00") and k not in ticks}
    assert all(is_marker(v) for v in left.values())  # nothing held: markers, or forgotten


def test_orphan_receipts_are_written_again_after_a_crash_that_may_have_lost_them() -> None:
    """The step that writes an orphan's receipts out does not replace its state by a marker:
    that waits until the step is committed (its records then on Kafka). A crash before that
    (the state on the changelog, the records maybe not) writes them again after recovery."""
    committed: dict[tuple[str, int], int] = {(RECEIPTS, 0): 1}  # the receipt is committed
    table: dict[bytes, bytes] = {}
    join = new(table, committed)
    feed(join, receipt(9, T0, "a"), offset=0)
    out = feed(join, ref(1, T0 + HOUR + LATENESS + HOUR), offset=5)  # past due: written out
    assert [(x.event_id, x.reason) for x in out.late] == [("a", LateReason.ORPHAN)]
    assert not is_marker(table[key(9)])  # not before the writing step (refs@5) is committed
    (closed,) = feed(join, receipt(9, T0 + HOUR, "b"), offset=1).late
    assert closed.reason is LateReason.ORPHAN  # written out, not held again

    crashed = new(table, committed)  # refs@5 never committed: the records may be lost
    crashed.rebuild()
    again = feed(crashed, ref(2, T0 + HOUR + LATENESS + 2 * HOUR), offset=5)
    assert [(x.event_id, x.reason) for x in again.late] == [("a", LateReason.ORPHAN)]
    committed[(REFS, 0)] = 6
    crashed.durable_advanced()
    assert not feed(crashed, ref(3, T0 + 4 * DAY), offset=6).late  # not a third time
    assert is_marker(table[key(9)])


def test_no_orphan_receipts_are_written_again_when_their_step_was_committed() -> None:
    committed: dict[tuple[str, int], int] = {(RECEIPTS, 0): 1}
    table: dict[bytes, bytes] = {}
    join = new(table, committed)
    feed(join, receipt(9, T0, "a"), offset=0)
    assert feed(join, ref(1, T0 + HOUR + LATENESS + HOUR), offset=5).late
    committed[(REFS, 0)] = 6  # committed, then the worker restarts
    restarted = new(table, committed)
    restarted.rebuild()
    assert not feed(restarted, ref(2, T0 + 4 * DAY), offset=6).late
    assert is_marker(table[key(9)])


def test_commits_read_after_the_rebuild_settle_an_orphan_s_records() -> None:
    """The worker rebuilds before it has read the group's commits: once they show the step
    that wrote the orphan's receipts out is committed, they are not written again."""
    committed: dict[tuple[str, int], int] = {(RECEIPTS, 0): 1}
    table: dict[bytes, bytes] = {}
    join = new(table, committed)
    feed(join, receipt(9, T0, "a"), offset=0)
    assert feed(join, ref(1, T0 + HOUR + LATENESS + HOUR), offset=5).late
    at_recovery: dict[tuple[str, int], int] = {}  # nothing read yet
    restarted = new(table, at_recovery)
    restarted.rebuild()
    at_recovery.update({(RECEIPTS, 0): 1, (REFS, 0): 6})  # then the commits are read
    restarted.durable_advanced()
    assert not feed(restarted, ref(2, T0 + 4 * DAY), offset=6).late
    assert is_marker(table[key(9)])


def test_a_receipt_of_a_known_message_is_forwarded_alone() -> None:
    """Receipts held before the reference go out with it; each later one goes out by itself,
    a repeat of it again by itself, never with the receipts forwarded before it."""
    join = new()
    forwarded = [feed(join, receipt(1, T0 + HOUR, "early"), 0).receipts]
    forwarded.append(feed(join, ref(1, T0), 1).receipts)
    for i, event_id in enumerate(["a", "b", "c", "b"]):
        forwarded.append(feed(join, receipt(1, T0 + (2 + i) * HOUR, event_id), 2 + i).receipts)
    assert [[r.event_id for r in out] for out in forwarded] == [
        [],
        ["early"],
        ["a"],
        ["b"],
        ["c"],
        ["b"],
    ]
    assert {r.message_id for out in forwarded for r in out} == {"m1"}
