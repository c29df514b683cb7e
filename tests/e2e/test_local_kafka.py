"""The local broker: a record survives SIGKILL of the broker, and start works after a crash."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from infra.local_kafka import LocalKafka

pytestmark = pytest.mark.e2e


def test_broker_restarts_after_kill_and_keeps_acknowledged_records(
    tmp_path: Path, kafka_lib: Path
) -> None:
    broker = LocalKafka(tmp_path / "k", heap="384m", lib=kafka_lib)
    try:
        address = broker.start().address
        admin = AdminClient({"bootstrap.servers": address})
        admin.create_topics([NewTopic("durable", 1, 1)])["durable"].result()
        producer = Producer({"bootstrap.servers": address, "acks": "all"})
        producer.produce("durable", key=b"k", value=b"survives")
        assert producer.flush(30) == 0
        del producer

        broker.kill()  # SIGKILL: stale broker.json and lock files stay behind
        assert broker.running() is None
        address = broker.start().address  # must cope with the crash leftovers
        assert broker.running() is not None

        consumer = Consumer(
            {"bootstrap.servers": address, "group.id": "g", "auto.offset.reset": "earliest"}
        )
        consumer.subscribe(["durable"])
        deadline = time.monotonic() + 60
        values = []
        while not values and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                values.append(msg.value())
        consumer.close()
        assert values == [b"survives"]
    finally:
        broker.wipe()
    assert broker.running() is None and not (tmp_path / "k" / "data").exists()
