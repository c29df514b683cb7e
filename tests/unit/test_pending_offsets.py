"""What the sink owes Kafka between writing a batch and Kafka acknowledging its commit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sinks.pending_offsets import PendingOffsets

A0, A1, B0 = ("a", 0), ("a", 1), ("b", 0)


def test_an_acknowledged_commit_pays_what_it_sent() -> None:
    pending = PendingOffsets()
    pending.add({A0: 10, B0: 4})
    pending.acknowledged(pending.to_commit())
    assert len(pending) == 0
    assert pending.to_commit() == []


def test_a_batch_written_while_its_partition_s_commit_is_in_flight_stays_owed() -> None:
    pending = PendingOffsets()
    pending.add({A0: 10, A1: 3})
    in_flight = pending.to_commit()
    pending.add({A0: 25})  # the next batch, written before the first commit came back
    pending.acknowledged(in_flight)
    assert pending.to_commit() == [("a", 0, 25)]


def test_a_failed_commit_is_resent_merged_with_later_batches() -> None:
    pending = PendingOffsets()
    pending.add({A0: 10, A1: 3})
    pending.to_commit()  # sent, failed: nothing acknowledged
    pending.add({A0: 12, B0: 7})
    assert pending.to_commit() == [("a", 0, 12), ("a", 1, 3), ("b", 0, 7)]


def test_an_older_offset_never_moves_a_partition_back() -> None:
    pending = PendingOffsets()
    pending.add({A0: 10})
    pending.add({A0: 8})
    assert pending.to_commit() == [("a", 0, 10)]


def test_partitions_given_away_are_no_longer_owed() -> None:
    pending = PendingOffsets()
    pending.add({A0: 10, A1: 3, B0: 1})
    pending.forget([A1, ("c", 9)])
    assert pending.to_commit() == [("a", 0, 10), ("b", 0, 1)]


def test_an_acknowledgement_of_an_older_commit_keeps_the_newer_offset() -> None:
    pending = PendingOffsets()
    pending.add({A0: 10})
    old = pending.to_commit()
    pending.add({A0: 20})
    pending.acknowledged(pending.to_commit())
    pending.acknowledged(old)  # arrives late: must not resurrect or drop anything
    assert len(pending) == 0


partitions = st.sampled_from([A0, A1, B0])
operation = st.one_of(
    st.tuples(st.just("write"), st.dictionaries(partitions, st.integers(0, 1000), min_size=1)),
    st.tuples(st.just("send"), st.none()),
    st.tuples(st.just("ack"), st.integers(0, 5)),
    st.tuples(st.just("forget"), st.lists(partitions, max_size=2)),
)


@given(st.lists(operation, max_size=40))
def test_owed_offsets_never_run_ahead_of_clickhouse_and_are_paid_by_the_newest_ack(
    ops: list[tuple[str, object]],
) -> None:
    """Offsets sent may only be ones whose batches were written; once a commit of everything
    owed is acknowledged with nothing written since, nothing is owed."""
    pending = PendingOffsets()
    written: dict[tuple[str, int], int] = {}
    sent: list[list[tuple[str, int, int]]] = []
    for kind, arg in ops:
        if kind == "write":
            assert isinstance(arg, dict)
            pending.add(arg)
            for p, o in arg.items():
                written[p] = max(written.get(p, -1), o)
        elif kind == "send":
            sent.append(pending.to_commit())
        elif kind == "ack" and sent:
            assert isinstance(arg, int)
            pending.acknowledged(sent[arg % len(sent)])
        elif kind == "forget":
            assert isinstance(arg, list)
            pending.forget(arg)
        for topic, part, offset in pending.to_commit():
            assert offset <= written[(topic, part)]
    pending.acknowledged(pending.to_commit())
    assert len(pending) == 0
