"""Waiting until the pipeline has caught up: consumer groups' committed offsets vs log ends.

Why this is a sound "everything is in ClickHouse" condition:
  1. the producer flushed, so the input topics' log-end offsets are final;
  2. the join (Faust, at-least-once) flushes its output before committing input offsets, so
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

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient


def pipeline_stages(worker_group: str, sink_group: str) -> list[tuple[str, list[str]]]:
    """The consumer groups and topics to wait on, in pipeline order."""
    from schemas.topics import ATTRIBUTION_INPUTS, JOIN_INPUTS, SINK_INPUTS

    return [
        (worker_group, [s.name for s in JOIN_INPUTS]),
        (worker_group, [s.name for s in ATTRIBUTION_INPUTS]),
        (sink_group, [s.name for s in SINK_INPUTS]),
    ]


def log_end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "smsfunnel-drain-probe", "log_level": 3}
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
                ends[(topic, partition)] = high
        return ends
    finally:
        consumer.close()


def committed_offsets(
    admin: AdminClient, group: str, partitions: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in partitions])
    futures = admin.list_consumer_group_offsets([request])
    result = futures[group].result()
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}


def group_lag(admin: AdminClient, bootstrap: str, group: str, topics: Sequence[str]) -> int:
    ends = log_end_offsets(bootstrap, topics)
    committed = committed_offsets(admin, group, list(ends))
    lag = 0
    for key, end in ends.items():
        done = committed.get(key, -1)
        lag += end - max(done, 0) if end > 0 else 0
    return lag


def wait_until_drained(
    bootstrap: str,
    stages: Sequence[tuple[str, Sequence[str]]],
    timeout: float,
    on_progress: Callable[[str, int], None] | None = None,
    poll_seconds: float = 0.5,
) -> None:
    """Wait, stage by stage in pipeline order, until each (group, topics) has no lag."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    deadline = time.monotonic() + timeout
    for group, topics in stages:
        while True:
            lag = group_lag(admin, bootstrap, group, topics)
            if on_progress:
                on_progress(group, lag)
            if lag == 0:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"consumer group {group} still {lag} records behind")
            time.sleep(poll_seconds)
