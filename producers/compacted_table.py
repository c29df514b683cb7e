"""A table rebuilt from a compacted topic on start and followed while it runs (a consumer with no
group: every process reads it all): the redirector's tracked links, the ingest service's promo
codes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from pydantic import ValidationError

from schemas.links import LinkRegistration
from schemas.promo_codes import PromoCode
from schemas.topics import LINKS, PROMO_CODES, TopicSpec

log = logging.getLogger(__name__)
T = TypeVar("T")


class CompactedTable(Generic[T]):
    """Key -> the latest record of that key on `topic` (a tombstone removes it)."""

    def __init__(self, bootstrap: str, topic: TopicSpec, parse: Callable[[bytes], T]) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "smsfunnel-table-unused",  # required; never joined or committed
                "enable.auto.commit": False,
                "log_level": 3,
            }
        )
        self._topic = topic.name
        self._parse = parse
        self._rows: dict[str, T] = {}
        self._loaded = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=self._topic, daemon=True)

    def get(self, key: str) -> T | None:
        return self._rows.get(key)

    def put(self, key: str, row: T) -> None:
        """What this process itself just wrote (acknowledged): known before the topic says so."""
        self._rows[key] = row

    def __len__(self) -> int:
        return len(self._rows)

    def start(self, timeout: float = 60.0) -> None:
        """Assign every partition from the beginning, and return once the registry has caught
        up with what was on the topic when it started."""
        metadata = self._consumer.list_topics(self._topic, timeout=timeout)
        partitions = metadata.topics[self._topic].partitions
        if not partitions:
            raise RuntimeError(
                f"topic {self._topic} does not exist: run `smsfunnel topics provision`"
            )
        deadline = time.monotonic() + timeout
        self._ends = {p: self._end_offset(p, deadline) for p in partitions}
        self._consumer.assign(
            [TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in partitions]
        )
        self._thread.start()
        if not self._loaded.wait(timeout):
            raise TimeoutError(f"{self._topic} not loaded within {timeout}s")

    def _end_offset(self, partition: int, deadline: float) -> int:
        # Just after the topic is created its partitions may have no leader yet.
        while True:
            try:
                tp = TopicPartition(self._topic, partition)
                return int(self._consumer.get_watermark_offsets(tp, 5.0)[1])
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _caught_up(self, positions: dict[int, int]) -> bool:
        return all(positions.get(p, 0) >= end for p, end in self._ends.items())

    def _follow(self) -> None:
        positions: dict[int, int] = {}
        if self._caught_up(positions):
            self._loaded.set()
        while not self._closing.is_set():
            msg = self._consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                log.warning("%s: %s", self._topic, msg.error())
                time.sleep(0.5)
                continue
            key = (msg.key() or b"").decode(errors="replace")
            if msg.value() is None:
                self._rows.pop(key, None)  # tombstone: withdrawn
            else:
                try:
                    self._rows[key] = self._parse(msg.value())
                except ValidationError as exc:
                    log.warning("%s: bad record at offset %s: %s", self._topic, msg.offset(), exc)
            positions[msg.partition()] = msg.offset() + 1
            if not self._loaded.is_set() and self._caught_up(positions):
                self._loaded.set()

    def close(self) -> None:
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._consumer.close()


class LocalTable(Generic[T]):
    """The same interface over this process's own writes alone: for an app under test with no
    broker behind it."""

    def __init__(self) -> None:
        self._rows: dict[str, T] = {}

    def get(self, key: str) -> T | None:
        return self._rows.get(key)

    def put(self, key: str, row: T) -> None:
        self._rows[key] = row

    def close(self) -> None:
        pass


def link_registry(bootstrap: str) -> CompactedTable[LinkRegistration]:
    """The redirector's tracked links, by link id."""
    return CompactedTable(bootstrap, LINKS, LinkRegistration.model_validate_json)


def promo_code_registry(bootstrap: str) -> CompactedTable[PromoCode]:
    """The ingest service's promo codes, by `PromoCode.key`."""
    return CompactedTable(bootstrap, PROMO_CODES, PromoCode.model_validate_json)
