"""Faust's commit path as patched and watched by stream_processors/faust_commit_barrier.py: the
offset it commits, stalled partitions, partitions that stop progressing. Pure: Faust's
bookkeeping is faked; the e2e restart in tests/e2e/test_event_time.py exercises the real one."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

from faust.transport.consumer import Consumer
from faust.types import TP

from stream_processors import faust_commit_barrier
from stream_processors.faust_commit_barrier import ProgressWatch, stalled_partitions


def test_a_gap_after_the_committed_offset_is_reported() -> None:
    sends, receipts, clicks = TP("sends", 9), TP("receipts", 7), TP("clicks", 0)
    consumer = SimpleNamespace(
        _committed_offset={sends: 365, receipts: 100, clicks: 40},
        _acked={sends: [367, 368, 369], receipts: [100, 101], clicks: []},
        _read_offset={sends: 369, receipts: 101, clicks: 40},
    )
    assert stalled_partitions(consumer) == [
        {
            "topic": "sends",
            "partition": 9,
            "committed": 365,
            "lowest_acked": 367,
            "acked": 3,
            "read_offset": 369,
        }
    ]


def test_a_consumer_without_that_bookkeeping_reports_nothing() -> None:
    assert stalled_partitions(SimpleNamespace()) == []


# ---- the offset Faust commits (faust_commit_barrier.install patches Consumer._new_offset) ----


TPX = TP("smsfunnel.subscriber-activity", 0)


def bookkeeping(acked: list[int], committed: int | None, gap=None) -> SimpleNamespace:  # type: ignore[no-untyped-def]
    gaps = defaultdict(list)
    if gap:
        gaps[TPX] = gap
    return SimpleNamespace(
        _acked={TPX: list(acked)},
        _committed_offset={TPX: committed},
        _gap=gaps,
        _acked_index=defaultdict(set, {TPX: set(acked)}),
    )


def new_offset(consumer: SimpleNamespace) -> int | None:
    faust_commit_barrier.install()
    return Consumer._new_offset(consumer, TPX)  # type: ignore[arg-type]


def test_repeated_acked_offsets_commit_the_whole_run_at_once() -> None:
    # Faust alone commits 12 here (its run of consecutive offsets stops at the first repeat).
    assert new_offset(bookkeeping([10, 11, 11, 12, 12, 13, 13, 14], 11)) == 15


def test_the_record_at_the_committed_offset_unacked_holds_the_commit() -> None:
    # committed = next offset to read: 11 never acked, so nothing may be committed past it.
    assert new_offset(bookkeeping([12, 13], 11)) is None
    assert new_offset(bookkeeping([1, 2, 3], 0)) is None
    assert new_offset(bookkeeping([11, 12, 13], 11)) == 14


def test_a_jump_in_read_offsets_is_not_taken_as_acked() -> None:
    # Faust would fill the "gap" 11-12 from _add_gap and commit 14 over two unprocessed records.
    consumer = bookkeeping([13], 11, gap=[(11, 13)])
    assert new_offset(consumer) is None
    assert TPX not in consumer._gap


# ---- partitions that stop progressing ----------------------------------------------------------


KEY = (TPX.topic, TPX.partition)


def test_a_partition_with_records_waiting_and_no_progress_is_reported_on_the_second_look() -> None:
    other = TP("smsfunnel.sends", 3)
    positions = {KEY: (10, 28), (other.topic, other.partition): (5, 5)}
    handled = {KEY: 9}
    watch = ProgressWatch([TPX.topic, other.topic])
    assert watch.stuck(positions, handled, [TPX, other]) == []  # first look: nothing to compare
    stuck = watch.stuck(positions, handled, [TPX, other])
    assert [(tp, committed) for tp, committed, _ in stuck] == [(TPX, 10)]


def test_progress_or_a_caught_up_partition_is_not_stuck() -> None:
    watch = ProgressWatch([TPX.topic])
    watch.stuck({KEY: (10, 20)}, {KEY: 11}, [TPX])
    assert watch.stuck({KEY: (10, 20)}, {KEY: 12}, [TPX]) == []  # an agent handled more
    assert watch.stuck({KEY: (13, 20)}, {KEY: 12}, [TPX]) == []  # the commit moved
    assert watch.stuck({KEY: (20, 20)}, {KEY: 19}, [TPX]) == []  # caught up
    assert watch.stuck({KEY: (20, 20)}, {KEY: 19}, [TPX]) == []


def test_a_partition_not_assigned_here_is_left_alone() -> None:
    watch = ProgressWatch([TPX.topic])
    for _ in range(2):
        assert watch.stuck({KEY: (10, 20)}, {}, []) == []


def test_a_partition_never_committed_and_never_read_is_stuck_at_its_log_start() -> None:
    # seen after a restart: records produced into a partition the group never committed on
    # were never handed to the agent
    watch = ProgressWatch([TPX.topic])
    watch.stuck({KEY: (0, 20)}, {}, [TPX])
    assert [(tp, at) for tp, at, _ in watch.stuck({KEY: (0, 20)}, {}, [TPX])] == [(TPX, 0)]
