"""Waiting until the pipeline has caught up: consumer groups' committed offsets vs log ends.

Why this is a sound "everything is in ClickHouse" condition:
  1. the producer flushed, so the input topics' log-end offsets are final;
  2. the worker (Quix Streams, at-least-once) flushes its output before committing input offsets, so
     once it has committed up to the inputs' ends, every funnel row it will emit is on the
     funnel-rows topic;
  3. the same holds for the attribution stage, whose input (subscriber activity) the join
     writes: once the join is done, that topic's end is final;
  4. the sink commits only after ClickHouse acknowledged, so once it has committed up to its
     inputs' ends, every row is in ClickHouse.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)


def pipeline_stages(worker_group: str, sink_group: str) -> list[tuple[str, list[str]]]:
    """The consumer groups and topics to wait on, in pipeline order."""
    from schemas.topics import ATTRIBUTION_INPUTS, JOIN_INPUTS, RESOLVER_INPUTS, SINK_INPUTS

    # The worker's stages feed each other (join -> resolver -> join, join -> attribution), so
    # they are checked together, in one consistent snapshot (see LagProbe.by_partition).
    worker_topics = [s.name for s in (*JOIN_INPUTS, *RESOLVER_INPUTS, *ATTRIBUTION_INPUTS)]
    return [(worker_group, worker_topics), (sink_group, [s.name for s in SINK_INPUTS])]


TRANSIENT_COORDINATOR_ERRORS = frozenset(
    {
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)


class LagProbe:
    """Measures consumer-group lag with one metadata consumer and, per group, one consumer that
    only reads that group's committed offsets (creating a librdkafka client per probe, many
    times a second, is wasteful and has crashed here).

    Committed offsets come from `Consumer.committed()` on a consumer configured with the
    group's id but never subscribed (it never joins the group), not from
    `AdminClient.list_consumer_group_offsets`: that one segfaults the process when the group is
    not known to its coordinator yet, exactly when a pipeline stage has just started
    (confluent-kafka-python#1982, librdkafka's OffsetFetch reply path without a consumer group,
    confluent-kafka-javascript#374; measured here: 5 of 5 sink benchmark runs crashed in it).
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "smsfunnel-lag-probe", "log_level": 3}
        )
        self.readers: dict[str, Consumer] = {}

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()
        self.consumer.close()

    def __enter__(self) -> LagProbe:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _reader(self, group: str) -> Consumer:
        if group not in self.readers:
            self.readers[group] = Consumer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "group.id": group,
                    "enable.auto.commit": False,
                    "log_level": 3,
                }
            )
        return self.readers[group]

    def by_partition(self, group: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
        """Records on `topics` not yet committed by `group`, per partition (zeros left out).

        Committed offsets are read *before* the log ends: every output of an input committed
        by then was flushed before that commit, so it is inside the ends read afterwards. A
        zero is then a consistent "nothing in flight", even for stages that feed each other.
        """
        metadata = self.consumer.list_topics(timeout=10)
        partitions = [(t, p) for t in topics for p in metadata.topics[t].partitions]
        try:
            answer = self._reader(group).committed(
                [TopicPartition(t, p) for t, p in partitions], timeout=10
            )
        except KafkaException as exc:
            # A fresh broker answers COORDINATOR_LOAD_IN_PROGRESS (and the like) for a while:
            # that is "not known yet", so report everything as still in flight.
            error = exc.args[0]
            if not (error.retriable() or error.code() in TRANSIENT_COORDINATOR_ERRORS):
                raise
            return {(t, p): 1 for t, p in partitions}
        committed = {(tp.topic, tp.partition): tp.offset for tp in answer if tp.error is None}
        lag: dict[tuple[str, int], int] = {}
        for topic, partition in partitions:
            _, end = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10
            )
            behind = end - max(committed.get((topic, partition), -1), 0) if end > 0 else 0
            if behind:
                lag[(topic, partition)] = behind
        return lag

    def lag(self, group: str, topics: Sequence[str]) -> int:
        return sum(self.by_partition(group, topics).values())


def wait_until_drained(
    bootstrap: str,
    stages: Sequence[tuple[str, Sequence[str]]],
    timeout: float,
    on_progress: Callable[[str, int], None] | None = None,
    poll_seconds: float = 0.5,
) -> None:
    """Wait, stage by stage in pipeline order, until each (group, topics) has no lag."""
    deadline = time.monotonic() + timeout
    with LagProbe(bootstrap) as probe:
        for group, topics in stages:
            while True:
                stuck = probe.by_partition(group, topics)
                lag = sum(stuck.values())
                if on_progress:
                    on_progress(group, lag)
                if lag == 0:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"group {group} still {lag} records behind: {stuck}")
                time.sleep(poll_seconds)
