"""The redirector's table of tracked links, rebuilt from the compacted links topic on start and
followed while it runs (a consumer with no group: every redirector process reads it all)."""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from pydantic import ValidationError

from schemas.links import LinkRegistration
from schemas.topics import LINKS

log = logging.getLogger(__name__)


class LinkRegistry:
    def __init__(self, bootstrap: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "smsfunnel-redirector-unused",  # required; never joined or committed
                "enable.auto.commit": False,
                "log_level": 3,
            }
        )
        self._links: dict[str, LinkRegistration] = {}
        self._loaded = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="link-registry", daemon=True)

    def get(self, link_id: str) -> LinkRegistration | None:
        return self._links.get(link_id)

    def __len__(self) -> int:
        return len(self._links)

    def start(self, timeout: float = 60.0) -> None:
        """Assign every partition from the beginning, and return once the registry has caught
        up with what was on the topic when it started."""
        metadata = self._consumer.list_topics(LINKS.name, timeout=timeout)
        partitions = metadata.topics[LINKS.name].partitions
        if not partitions:
            raise RuntimeError(
                f"topic {LINKS.name} does not exist: run `smsfunnel topics provision`"
            )
        deadline = time.monotonic() + timeout
        self._ends = {p: self._end_offset(p, deadline) for p in partitions}
        self._consumer.assign([TopicPartition(LINKS.name, p, OFFSET_BEGINNING) for p in partitions])
        self._thread.start()
        if not self._loaded.wait(timeout):
            raise TimeoutError(f"link registry not loaded within {timeout}s")

    def _end_offset(self, partition: int, deadline: float) -> int:
        # Just after the topic is created its partitions may have no leader yet.
        while True:
            try:
                tp = TopicPartition(LINKS.name, partition)
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
                log.warning("link registry: %s", msg.error())
                time.sleep(0.5)
                continue
            link_id = (msg.key() or b"").decode(errors="replace")
            if msg.value() is None:
                self._links.pop(link_id, None)  # tombstone: link withdrawn
            else:
                try:
                    self._links[link_id] = LinkRegistration.model_validate_json(msg.value())
                except ValidationError as exc:
                    log.warning("link registry: bad record at offset %s: %s", msg.offset(), exc)
            positions[msg.partition()] = msg.offset() + 1
            if not self._loaded.is_set() and self._caught_up(positions):
                self._loaded.set()

    def close(self) -> None:
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._consumer.close()
