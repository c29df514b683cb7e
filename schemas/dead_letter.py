"""A record some stage could not use, kept with where it came from and why."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

import orjson
from pydantic import BaseModel, ConfigDict


class DeadLetter(BaseModel):
    """Keyed in ClickHouse by (stage, source topic, partition, offset): one row per source record,
    so a replayed record replaces its own row instead of adding one."""

    model_config = ConfigDict(frozen=True)

    stage: str
    source_topic: str
    source_partition: int
    source_offset: int
    key_b64: str
    payload_b64: str
    reason: str
    failed_at: datetime

    @staticmethod
    def encode(raw: bytes | None) -> str:
        return base64.b64encode(raw or b"").decode()

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, payload: bytes) -> DeadLetter:
        return cls.model_validate_json(payload)

    @classmethod
    def from_edge(
        cls, source: str, natural_key: str, payload: bytes, reason: str, failed_at: datetime
    ) -> DeadLetter:
        """A request the ingest edge accepted but could not turn into an event (e.g. a shop order
        with nothing that ties it to an SMS). It has no Kafka position: partition 0 and, as its
        offset, a stable 63-bit hash of its natural key, so a retried request keeps one row."""
        digest = hashlib.sha256(natural_key.encode()).digest()
        return cls(
            stage="ingest",
            source_topic=source,
            source_partition=0,
            source_offset=int.from_bytes(digest[:8], "big") >> 1,
            key_b64=cls.encode(natural_key.encode()),
            payload_b64=cls.encode(payload),
            reason=reason,
            failed_at=failed_at,
        )
