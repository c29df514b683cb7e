"""The stalled-commit detector reads Faust's per-partition bookkeeping: a partition is stalled
when it has processed records but none right after its committed offset."""

from __future__ import annotations

from types import SimpleNamespace

from faust.types import TP

from stream_processors.faust_commit_barrier import stalled_partitions


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
