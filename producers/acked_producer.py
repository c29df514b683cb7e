"""Kafka for asyncio request handlers: `await send(...)` returns once the broker acknowledged
(acks=all, idempotent), or raises KafkaUnavailable so the receiver answers 503 and the sender
retries (DESIGN.md: acknowledgement means durable).

A thin bridge over confluent-kafka rather than its AIOProducer, which is experimental and moved
module between releases: one poll thread serves librdkafka's delivery reports and resolves the
waiting futures on the event loop. `message.timeout.ms` equals the acknowledgement timeout, so
librdkafka itself gives up on a record at the moment the receiver stops waiting: no record is
left queued behind a 503 to be written later unseen. (One that the broker wrote but whose ack
was lost is still possible; the retry then carries the same derived event id and the join drops
it as a repeat.)
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from smsfunnel.kafka_config import durable_producer_config


class KafkaUnavailable(RuntimeError):
    pass


class BackgroundProducer:
    """A librdkafka producer whose reports are served by one background thread."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-acks", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(0.05)

    def produce_nowait(
        self, topic: str, key: bytes | None, value: bytes, on_delivery: Any = None
    ) -> bool:
        """Hand a record to librdkafka without waiting. False when the local queue is full
        (the broker has been away for a while)."""
        try:
            self._producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        except BufferError:
            return False
        return True

    def queued(self) -> int:
        """Records handed over and not yet acknowledged (what a crash can lose)."""
        return len(self._producer)

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)
        self._closing.set()
        self._poller.join(timeout)


class AckedProducer(BackgroundProducer):
    def __init__(self, bootstrap: str, ack_timeout: float, **overrides: Any) -> None:
        self._timeout = ack_timeout
        super().__init__(
            durable_producer_config(
                bootstrap,
                **{"message.timeout.ms": int(ack_timeout * 1000), "linger.ms": 2, **overrides},
            )
        )

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()

        def settle(err: KafkaError | None, _msg: Message) -> None:
            loop.call_soon_threadsafe(_settle, acked, err)

        if not self.produce_nowait(topic, key, value, settle):
            raise KafkaUnavailable("the producer's queue is full: Kafka has been unreachable")
        try:
            # librdkafka reports the timeout itself; the margin only guards against a lost report
            await asyncio.wait_for(acked, self._timeout + 2.0)
        except TimeoutError:
            raise KafkaUnavailable(f"no acknowledgement within {self._timeout:g}s") from None

    async def send_all(self, records: list[tuple[str, bytes | None, bytes]]) -> None:
        """Every record acknowledged, or KafkaUnavailable (some may then be on the broker: the
        retry repeats their event ids, which the join drops)."""
        results = await asyncio.gather(
            *(self.send(t, k, v) for t, k, v in records), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result


def _settle(acked: asyncio.Future[None], err: KafkaError | None) -> None:
    if acked.done():
        return
    if err is None:
        acked.set_result(None)
    else:
        acked.set_exception(KafkaUnavailable(f"Kafka refused the record: {err.str()}"))
