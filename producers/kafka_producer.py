"""The Python producer API for platform teams: validated events onto their catalogue topics."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from confluent_kafka import Producer

from schemas.events import EventBase, event_to_json
from schemas.topics import TOPIC_FOR_EVENT_TYPE, record_key
from smsfunnel.kafka_config import durable_producer_config


class DeliveryFailed(RuntimeError):
    pass


class EventProducer:
    """Routes each event to its topic, keyed by message id (the join's co-partitioning key).

    `flush()` returns only once the broker acknowledged every event (acks=all, idempotent), and
    raises if any was refused: after it returns, the events are durable.
    """

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        self._producer = Producer(durable_producer_config(bootstrap, **overrides))
        self._errors: list[str] = []
        self.delivered = 0

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")
        else:
            self.delivered += 1

    def send_raw(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        while True:
            try:
                self._producer.produce(topic, key=key, value=value, on_delivery=self._on_delivery)
                break
            except BufferError:
                # The local queue is full: serve delivery reports until there is room.
                self._producer.poll(0.1)
        self._producer.poll(0)

    def send(self, event: EventBase) -> None:
        topic = TOPIC_FOR_EVENT_TYPE[event.event_type].name  # type: ignore[attr-defined]
        self.send_raw(topic, record_key(event), event_to_json(event))

    def send_many(self, events: Iterable[EventBase]) -> None:
        for event in events:
            self.send(event)

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            raise DeliveryFailed(f"{remaining} events not acknowledged within {timeout}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryFailed(f"{len(errors)} events refused, first: {errors[0]}")

    def close(self, timeout: float = 60.0) -> None:
        """Flush everything. The librdkafka client itself is left to garbage collection. (An
        explicit destroy was once blamed for the demo's occasional segfaults; the crash later
        pinned down was the lag probe's list_consumer_group_offsets, see smsfunnel/drain.py.)"""
        self.flush(timeout)
