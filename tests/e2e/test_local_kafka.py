"""The local broker: a record survives SIGKILL of the broker, and start works after a crash on
the same ports, so clients that know the broker by its address find it again."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from infra.local_kafka import LocalKafka

pytestmark = pytest.mark.e2e


def hold_port_for(port: int, seconds: float) -> None:
    """Listen on 127.0.0.1:port as soon as the killed broker has let go of it, and let go of
    it `seconds` later."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    deadline = time.monotonic() + 10
    while True:
        try:
            sock.bind(("127.0.0.1", port))
            break
        except OSError:
            assert time.monotonic() < deadline, f"port {port} never released"
            time.sleep(0.005)
    sock.listen()
    threading.Timer(seconds, sock.close).start()


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

        broker.kill()  # SIGKILL: stale broker.json and lock files stay behind
        assert broker.running() is None
        # A killed JVM lets go of its ports only when its last thread is gone, some time after
        # its main thread is a zombie (20 ms idle here, longer on a busy machine): held for a
        # second, the restart must wait for them rather than move.
        hold_port_for(int(address.rsplit(":", 1)[1]), seconds=1.0)
        restarted = broker.start().address  # must cope with the crash leftovers
        assert broker.running() is not None
        assert restarted == address  # its own ports, not new ones

        # The client started before the crash carries on once the broker is back.
        producer.produce("durable", key=b"k", value=b"after")
        assert producer.flush(30) == 0
        del producer
        broker.kill()
        assert broker.start().address == address  # and again, with the client gone

        consumer = Consumer(
            {"bootstrap.servers": address, "group.id": "g", "auto.offset.reset": "earliest"}
        )
        consumer.subscribe(["durable"])
        deadline = time.monotonic() + 60
        values = []
        while len(values) < 2 and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                values.append(msg.value())
        consumer.close()
        assert values == [b"survives", b"after"]
    finally:
        broker.wipe()
    assert broker.running() is None and not (tmp_path / "k" / "data").exists()
