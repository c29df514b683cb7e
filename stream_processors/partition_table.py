"""A stage's state for one input partition, as the mapping the pure stages expect.

The pure stages (message_join.py, resolver_join.py, the attribution step) keep their state in a
`MutableMapping[bytes, bytes]` scoped to the partition of the event being processed: eviction
and the persisted watermark touch keys other than the event's own. Quix Streams hands a stateful
function a `State` scoped to the record's key; the partition-wide store transaction behind it
(`State._transaction`, the only private attribute used here, pinned by quixstreams==3.28.1) is
what this wraps. Every write goes into the checkpoint's transaction, so it reaches RocksDB and
the changelog together with the input offsets and the outputs of the same checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

# Quix joins a prefix and a key with b"|"; every key of ours sits under one prefix, so a range
# scan over it sees ours only (not Quix's own bookkeeping keys).
PREFIX = b"sf"
_LOW = PREFIX + b"|"
_HIGH = PREFIX + b"}"  # b"|" + 1: the end of the prefix's range


class PartitionTable(MutableMapping[bytes, bytes]):
    """The current partition's store transaction; `bind` it to each record's before use."""

    def __init__(self) -> None:
        self.tx: Any = None

    def bind(self, state: Any) -> Any:
        """Point at the transaction behind a Quix `State`; returns its store partition (a new
        object after every assignment and recovery of that partition)."""
        self.tx = state._transaction
        return self.tx._partition

    def __getitem__(self, key: bytes) -> bytes:
        value = self.tx.get_bytes(key, prefix=PREFIX)
        if value is None:
            raise KeyError(key)
        return value  # type: ignore[no-any-return]

    def get(self, key: bytes, default: Any = None) -> Any:
        return self.tx.get_bytes(key, prefix=PREFIX, default=default)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.tx.set_bytes(key, value, prefix=PREFIX)

    def __delitem__(self, key: bytes) -> None:
        self.tx.delete(key, prefix=PREFIX)

    def __iter__(self) -> Iterator[bytes]:
        for key, _ in self.items():
            yield key

    def __len__(self) -> int:
        return sum(1 for _ in self.items())

    def items(self) -> Iterator[tuple[bytes, bytes]]:  # type: ignore[override]
        """What the store partition holds, as of its last flushed checkpoint, merged with this
        transaction's own writes and deletes (the stages rebuild from it at the first record
        after an assignment, before they write)."""
        cache = self.tx._update_cache
        updates = cache.get_updates().get(PREFIX, {})
        deletes = cache.get_deletes()
        for key, value in self.tx._partition.iter_items(lower_bound=_LOW, upper_bound=_HIGH):
            if key in deletes or key in updates:
                continue
            yield key[len(_LOW) :], value
        for key, value in updates.items():
            if key not in deletes:
                yield key[len(_LOW) :], value
