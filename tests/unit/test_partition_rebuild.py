"""A partition's eviction schedule rebuilt alone (EventTimeEviction.rebuild with `partition`):
the worker rebuilds from one partition's store at a time, as partitions are assigned, and the
schedules of the other partitions it holds must survive that."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stream_processors.eviction import EventTimeEviction

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def due_of(raw: bytes) -> tuple[int, datetime, None]:
    partition, hours = raw.decode().split(":")
    return int(partition), T0 + timedelta(hours=int(hours)), None


def test_rebuilding_one_partition_keeps_the_others() -> None:
    table: dict[bytes, bytes] = {}
    eviction = EventTimeEviction(table, now=lambda: T0)
    eviction.schedule.schedule(0, T0 + timedelta(hours=1), b"zero")
    eviction.schedule.schedule(1, T0 + timedelta(hours=2), b"one-old")
    eviction.wait(1, b"one-waiting")
    assert eviction.waiting[1] == {b"one-waiting"}  # so the rebuild has something to drop
    table[b"one-new"] = b"1:3"  # what partition 1's store now holds
    eviction.rebuild(due_of, partition=1)
    assert eviction.schedule.pop_due(0, T0 + timedelta(days=1)) == [b"zero"]
    assert eviction.schedule.pop_due(1, T0 + timedelta(days=1)) == [b"one-new"]
    assert 1 not in eviction.waiting


def test_rebuilding_everything_clears_every_partition() -> None:
    table = {b"a": b"2:1"}
    eviction = EventTimeEviction(table, now=lambda: T0)
    eviction.schedule.schedule(0, T0, b"stale")
    eviction.rebuild(due_of)
    assert eviction.schedule.pop_due(0, T0 + timedelta(days=1)) == []
    assert eviction.schedule.pop_due(2, T0 + timedelta(days=1)) == [b"a"]
