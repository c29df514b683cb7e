"""Offsets the sink owes Kafka: batches already in ClickHouse whose commit is not acknowledged.

Invariant: an offset enters only after ClickHouse acknowledged the batch that ends there, so
whatever is committed from here never runs ahead of ClickHouse. An offset leaves when a commit
of it (or of a later offset of its partition) is acknowledged, or when the partition is no
longer ours: its next owner starts from the group's committed offset and re-delivers the rest,
which the sink's idempotent upserts absorb.

Keeping the owed offsets here, instead of retrying one commit until it succeeds, is what lets
the sink commit without waiting: a failed commit is re-sent with the next batch's offsets or on
its own after a pause, and the consumer keeps polling meanwhile, which is what lets librdkafka
finish a rebalance (a sink stuck retrying a commit never polls, so a rebalance needing it to
give up its partitions cannot complete).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Partition = tuple[str, int]


class PendingOffsets:
    def __init__(self) -> None:
        self.owed: dict[Partition, int] = {}

    def __len__(self) -> int:
        return len(self.owed)

    def add(self, next_offsets: Mapping[Partition, int]) -> None:
        """A batch is in ClickHouse: owe its next offsets (never moving a partition back)."""
        for partition, offset in next_offsets.items():
            if offset > self.owed.get(partition, -1):
                self.owed[partition] = offset

    def to_commit(self) -> list[tuple[str, int, int]]:
        return [(topic, part, offset) for (topic, part), offset in sorted(self.owed.items())]

    def acknowledged(self, committed: Iterable[tuple[str, int, int]]) -> None:
        """Kafka acknowledged these offsets: what they cover is paid; a later offset of the
        same partition added since is still owed."""
        for topic, part, offset in committed:
            owed = self.owed.get((topic, part))
            if owed is not None and owed <= offset:
                del self.owed[(topic, part)]

    def forget(self, partitions: Iterable[Partition]) -> None:
        """The partitions went to another owner (or were lost): it re-reads from the group's
        committed offset, so nothing past it is owed by this sink any more."""
        for partition in partitions:
            self.owed.pop(partition, None)
