"""What the worker produces at each checkpoint: the stages' outputs since the last one, with
superseded versions left out. Pure.

A Quix checkpoint flushes the stages' outputs before it produces their state's changelog and
commits the input offsets (worker_app.py). So an output made from an input only has to be on
Kafka by the end of that input's checkpoint, and an output that a later one of the same
checkpoint supersedes need not be sent at all. During a catch-up most of a message's events
share a checkpoint: sending its row (and its subscriber snapshot) once per checkpoint instead
of once per event saves building, producing and sinking the versions nobody would read.

Invariant: `drain` returns a subsequence of what was added since the last drain, in the order
added, that keeps every record without an identity and, of the records of each identity,
exactly the last one. A reader that takes an identity's records as versioned upserts (funnel
rows per message, subscriber snapshots per subscriber and message; both carry the version
that orders them) ends in the state it would reach from every record.

A value is bytes, or a function that makes them: the last record of an identity is built
once, at the drain, and the superseded ones never.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from itertools import count

Value = bytes | Callable[[], bytes]
# (topic name, key, value, identity): records with the same identity supersede each other
# (None: every record is kept)
Output = tuple[str, bytes, Value, Hashable | None]


class CheckpointOutputs:
    def __init__(self) -> None:
        self._records: dict[Hashable, tuple[str, bytes, Value]] = {}
        self._anonymous = count()
        self.superseded: Counter[str] = Counter()  # records left out, per topic, until taken

    def __len__(self) -> int:
        return len(self._records)

    def add(self, topic: str, key: bytes, value: Value, identity: Hashable | None = None) -> None:
        if identity is None:
            slot: Hashable = (None, next(self._anonymous))
        else:
            slot = (topic, identity)
            # re-inserted, not updated in place: the record keeps the position of its last
            # version, so the drained records stay a subsequence of the added ones
            if self._records.pop(slot, None) is not None:
                self.superseded[topic] += 1
        self._records[slot] = (topic, key, value)

    def drain(self) -> list[tuple[str, bytes, bytes]]:
        records, self._records = self._records, {}
        return [(t, k, v if isinstance(v, bytes) else v()) for t, k, v in records.values()]

    def clear(self) -> None:
        """Drop what was added: a checkpoint that is given up is replayed from its start."""
        self._records = {}
