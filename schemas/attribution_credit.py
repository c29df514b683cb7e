"""Records the attribution stage emits: per conversion and model, the credits of its touches;
per message, the inbound SMS that answered it. The stage owns them; the sink stores them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import orjson
from pydantic import BaseModel, ConfigDict


class AttributionModel(StrEnum):
    LAST_CLICK = "last_click"
    FIRST_CLICK = "first_click"
    LINEAR = "linear"
    TIME_DECAY = "time_decay"
    POSITION_BASED = "position_based"


class CreditLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    touch_id: str
    kind: str
    message_id: str
    campaign: str
    touched_at: datetime
    weight: Decimal


class ConversionCredits(BaseModel):
    """The credits of one conversion under one model: replaced as a whole (by version).
    `withdrawn`: the order is no longer a conversion of this subscriber (another conversion of
    the same message, click and name came earlier and won); the row hides it in ClickHouse."""

    model_config = ConfigDict(frozen=True)

    account: str
    recipient_hash: str
    order_id: str
    conversion_event_id: str
    source_message_id: str  # the message the conversion came through; "" if subscriber-only
    name: str
    converted_at: datetime
    amount: Decimal
    currency: str
    model: AttributionModel
    version: int
    credits: list[CreditLine]
    withdrawn: bool = False

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, payload: bytes) -> ConversionCredits:
        return cls.model_validate_json(payload)


class MessageResponse(BaseModel):
    """Inbound SMS attributed to the message they answer."""

    model_config = ConfigDict(frozen=True)

    account: str
    recipient_hash: str
    message_id: str  # "" when no delivered message of that sender precedes it
    sender: str
    version: int
    opt_outs: int
    first_opt_out_at: datetime | None
    opt_ins: int
    help_requests: int
    replies: int
    first_response_at: datetime | None  # first inbound of any kind after the message

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, payload: bytes) -> MessageResponse:
        return cls.model_validate_json(payload)
