"""Which inputs of a partition still hold its watermark back, as the worker tells the join and
the resolver (stream_processors/worker_app.InputProgress), against a stand-in for the consumer's
cached log ends and committed offsets."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from stream_processors.worker_app import InputProgress


class Consumer:
    def __init__(self, ends: dict[tuple[str, int], int], committed: dict[tuple[str, int], int]):
        self.ends = ends
        self.commits = committed
        self.reads = 0

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool = False) -> tuple[int, int]:
        assert cached, "per-record calls must not ask the broker"
        self.reads += 1
        return 0, self.ends.get((tp.topic, tp.partition), -1001)

    def committed(self, tps: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        get = self.commits.get
        return [TopicPartition(t.topic, t.partition, get((t.topic, t.partition), -1)) for t in tps]


def test_lagging_follows_processed_then_committed_offsets() -> None:
    names = ["sends", "clicks", "receipts"]
    consumer = Consumer(
        ends={("sends", 0): 10, ("clicks", 0): 5, ("receipts", 0): 7},
        committed={("sends", 0): 4, ("clicks", 0): 5},  # receipts: never committed
    )
    progress = InputProgress(consumer, ends_every=0)
    progress.assigned(0, names)
    # sends: committed 4 of 10; clicks: all committed; receipts: nothing committed
    assert progress.lagging(0, names) == ["sends", "receipts"]
    progress.processed[("sends", 0)] = 9  # the last record
    progress.processed[("receipts", 0)] = 5  # one left
    assert progress.lagging(0, names) == ["receipts"]
    progress.processed[("receipts", 0)] = 6
    assert progress.lagging(0, names) == []
    consumer.ends[("clicks", 0)] = 6  # a new click arrived
    assert progress.lagging(0, names) == ["clicks"]


def test_reassignment_forgets_what_was_processed_before() -> None:
    consumer = Consumer(ends={("sends", 3): 20}, committed={("sends", 3): 15})
    progress = InputProgress(consumer, ends_every=0)
    progress.processed[("sends", 3)] = 19  # from an earlier assignment of the partition
    progress.assigned(3, ["sends"])  # another worker had it; the group committed 15
    assert progress.lagging(3, ["sends"]) == ["sends"]


def test_an_end_not_fetched_yet_counts_as_caught_up() -> None:
    progress = InputProgress(Consumer(ends={}, committed={}), ends_every=0)
    progress.assigned(1, ["sends"])
    assert progress.lagging(1, ["sends"]) == []


def test_log_ends_are_read_once_per_interval_and_stage() -> None:
    join, resolver = ["sends", "clicks"], ["references"]
    consumer = Consumer(ends={("sends", 0): 3, ("clicks", 0): 2}, committed={})
    progress = InputProgress(consumer, ends_every=3600)
    progress.assigned(0, join)
    assert progress.lagging(0, join) == ["sends", "clicks"]
    assert consumer.reads == 2
    consumer.ends[("sends", 0)] = 9
    progress.processed[("sends", 0)] = 2
    progress.processed[("clicks", 0)] = 1
    assert progress.lagging(0, join) == []  # the ends as read an interval ago
    assert progress.lagging(0, resolver) == []  # another stage's inputs: read for it
    assert consumer.reads == 3
