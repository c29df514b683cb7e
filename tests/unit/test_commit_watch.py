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


class FakeConsumer(SimpleNamespace):
    def assignment(self) -> set[TP]:
        return set(self._committed_offset)

    def highwater(self, tp: TP) -> int | None:
        return self.ends[tp]


def test_a_partition_with_records_waiting_and_no_progress_is_reported_on_the_second_look() -> None:
    other = TP("smsfunnel.sends", 3)
    consumer = FakeConsumer(
        _committed_offset={TPX: 10, other: 5},
        _read_offset={TPX: 27, other: 5},
        _acked={},
        ends={TPX: 28, other: 5},
    )
    watch = ProgressWatch([TPX.topic, other.topic])
    assert watch.stuck(consumer) == []  # first look: nothing to compare with
    stuck = watch.stuck(consumer)
    assert [(tp, committed) for tp, committed, _ in stuck] == [(TPX, 10)]


def test_progress_or_a_caught_up_partition_is_not_stuck() -> None:
    consumer = FakeConsumer(
        _committed_offset={TPX: 10}, _read_offset={TPX: 12}, _acked={}, ends={TPX: 20}
    )
    watch = ProgressWatch([TPX.topic])
    watch.stuck(consumer)
    consumer._committed_offset[TPX] = 13  # committed moved
    assert watch.stuck(consumer) == []
    consumer.ends[TPX] = 13  # caught up, nothing waiting
    assert watch.stuck(consumer) == []


def test_a_gap_holds_a_partition_even_while_later_records_are_read() -> None:
    consumer = FakeConsumer(
        _committed_offset={TPX: 1}, _read_offset={TPX: 20}, _acked={TPX: [3, 4]}, ends={TPX: 30}
    )
    watch = ProgressWatch([TPX.topic])
    watch.stuck(consumer)
    consumer._read_offset[TPX] = 25  # reading goes on, the commit cannot
    assert [tp for tp, _, _ in watch.stuck(consumer)] == [TPX]
