"""librdkafka (confluent-kafka) client configuration shared by every stage, and the one
export of a consumer's lag."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from prometheus_client import Gauge

from schemas.topics import KAFKA_PARTITIONER

# librdkafka backs off reconnects exponentially up to 10 s by default, so the worker learnt
# that a restarted broker was back 14-15 s after the broker's 4-6 s restart (measured in the
# chaos test: 6.6-7.3 s with this). Used by the worker's clients only: in the one fresh-clone
# run after it was given to every client, the sink died of SIGSEGV during a broker kill, which
# it had not done before; until that is understood the sink and producers keep the default.
RECONNECT: dict[str, Any] = {"reconnect.backoff.max.ms": 1000}


def durable_producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """A producer whose delivery report means "durable on the broker": acks from all in-sync
    replicas, idempotence (no duplicates from internal retries, order kept per partition),
    and the Java-compatible partitioner so keys land where the join expects them."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "partitioner": KAFKA_PARTITIONER,
        "compression.type": "lz4",
        "linger.ms": 5,
        "log_level": 3,
    }
    config.update(overrides)
    return config


def consumer_config(bootstrap: str, group: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,  # offsets are committed on purpose, after the work is durable
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "log_level": 3,
    }
    config.update(overrides)
    return config


@contextmanager
def admin_futures_without_gc() -> Iterator[None]:
    """Wait on AdminClient futures with Python's cyclic GC off.

    confluent-kafka resolves admin futures on librdkafka's own thread; a GC pass that starts in
    that callback and collects another librdkafka client makes librdkafka destroy a client from
    its own thread and abort (SIGSEGV/SIGABRT, intermittently: confluent-kafka-python#1761,
    #2129, whose own tests work around it the same way). A precaution where we wait on admin
    futures (topic provisioning); the crashes actually seen here came from
    list_consumer_group_offsets, which smsfunnel/drain.py no longer uses.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def group_positions(
    bootstrap: str, group: str, topics: Sequence[str]
) -> dict[tuple[str, int], tuple[int, int]]:
    """(committed offset, end offset) of `group` on every partition of `topics`; committed is
    the next offset the group reads, the log start when it never committed. Read with
    `Consumer.committed()` on a consumer that carries the group id but never joins, not
    `AdminClient.list_consumer_group_offsets`, which segfaults while the group is unknown to
    its coordinator (confluent-kafka-python#1982; see smsfunnel/drain.py)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [TopicPartition(t, p) for t in topics for p in metadata.topics[t].partitions]
        answer = consumer.committed(partitions, timeout=10)
        out = {}
        for tp in answer:
            low, end = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            # never committed: the group starts at the log start (auto.offset.reset=earliest)
            out[(tp.topic, tp.partition)] = (tp.offset if tp.offset >= 0 else low, end)
        return out
    finally:
        consumer.close()


def export_lag(consumer: Any, gauge: Gauge, exported: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Records not fetched yet per assigned partition (log end as of the last fetch, less the
    position) into `gauge` {topic, partition}; the partitions of `exported` no longer assigned
    leave it. Local calls only (no broker round trip). Returns what is exported now. Quix's
    changelog partitions, assigned while a store recovers, are left out."""
    tps = [tp for tp in consumer.assignment() if not tp.topic.startswith("changelog__")]
    seen = set()
    for tp in consumer.position(tps) if tps else []:
        _, end = consumer.get_watermark_offsets(tp, cached=True)
        if end is None or end < 0 or tp.offset < 0:
            continue
        labels = (tp.topic, str(tp.partition))
        gauge.labels(*labels).set(max(end - tp.offset, 0))
        seen.add(labels)
    for labels in exported - seen:
        gauge.remove(*labels)
    return seen
