"""A record some stage could not use, kept with where it came from and why."""

from __future__ import annotations

import base64
from datetime import datetime

import orjson
from pydantic import BaseModel, ConfigDict


class DeadLetter(BaseModel):
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
