"""librdkafka (confluent-kafka) client configuration shared by every stage."""

from __future__ import annotations

from typing import Any

from schemas.topics import KAFKA_PARTITIONER


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
