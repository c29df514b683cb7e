"""The stages' partition-wide mapping over Quix Streams' own RocksDB store partition (no
broker): reads see this checkpoint's writes and deletes, `items()` merges them with what was
flushed before, and Quix's own keys under other prefixes stay out of it."""

from __future__ import annotations

from pathlib import Path

from quixstreams.state.rocksdb import RocksDBStorePartition

from stream_processors.partition_table import PartitionTable


def test_reads_writes_and_items_across_checkpoints(tmp_path: Path) -> None:
    store = RocksDBStorePartition(path=str(tmp_path / "p0"))
    table = PartitionTable()
    tx = store.begin()
    assert table.bind(tx.as_state(prefix=b"message-1")) is store
    table[b"a"] = b"1"
    table[b"b"] = b"2"
    tx.set_bytes(b"b", b"not ours", prefix=b"other")  # another prefix: Quix's, or a State's
    assert table[b"a"] == b"1" and table.get(b"missing") is None
    assert sorted(table.items()) == [(b"a", b"1"), (b"b", b"2")]
    tx.prepare()
    tx.flush()

    tx = store.begin()
    table.bind(tx.as_state(prefix=b"message-2"))
    assert sorted(table.items()) == [(b"a", b"1"), (b"b", b"2")]  # from RocksDB now
    del table[b"a"]
    table[b"b"] = b"2'"
    table[b"c"] = b"3"
    assert table.get(b"a") is None
    assert sorted(table.items()) == [(b"b", b"2'"), (b"c", b"3")]
    assert sorted(table) == [b"b", b"c"] and len(table) == 2
    store.close()


def test_a_new_store_partition_is_a_new_binding(tmp_path: Path) -> None:
    """The worker rebuilds a stage's schedule when the store partition behind a record is not
    the one it last saw: after a reassignment Quix opens a new object."""
    table = PartitionTable()
    first = RocksDBStorePartition(path=str(tmp_path / "p0"))
    seen = table.bind(first.begin().as_state(prefix=b"k"))
    first.close()
    second = RocksDBStorePartition(path=str(tmp_path / "p0"))
    assert table.bind(second.begin().as_state(prefix=b"k")) is not seen
    second.close()
