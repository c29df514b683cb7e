"""The join's re-key stage to the attribution stage: per message, a snapshot of what the
subscriber did with it (touches) and what it led to (conversions), keyed by subscriber.

A snapshot replaces the previous one of the same message when its version is higher (the
version is the number of distinct events behind it, which only grows).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict


class TouchRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["click", "delivery"]
    touch_id: str
    occurred_at: datetime
    click_id: str = ""


class ConversionRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    occurred_at: datetime
    order_id: str
    name: str
    amount: Decimal
    currency: str
    message_id: str = ""  # "" for a conversion known only by subscriber


class SubscriberSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: str
    recipient_hash: str
    message_id: str
    version: int
    campaign: str
    sender: str
    sent_at: datetime
    attribution_window_hours: int | None
    touches: list[TouchRecord]
    conversions: list[ConversionRecord]

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, payload: bytes) -> SubscriberSnapshot:
        return cls.model_validate_json(payload)
