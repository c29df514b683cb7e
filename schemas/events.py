"""Event contracts: what the ingest edge writes to Kafka and the join reads (JSON on the wire).

Every event carries a stable event id (so a retried webhook is recognised as a repeat), the
account (tenant), the time it happened (timezone-aware UTC) and the message it belongs to.
Money is Decimal, serialised as a string, never a float.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
)

from schemas.delivery_status import DeliveryStatus
from schemas.privacy import RECIPIENT_HASH_PATTERN, looks_like_phone_number


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S+$")]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Money = Annotated[Decimal, Field(ge=0, max_digits=28, decimal_places=10, allow_inf_nan=False)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Label = Annotated[str, Field(max_length=200)]


class EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Id
    account: Id
    occurred_at: UtcDatetime
    message_id: Id


class SendEvent(EventBase):
    event_type: Literal["send"] = "send"
    campaign: Id
    variant: Label = ""
    segment: Label = ""
    sender: Id
    recipient_hash: str = Field(description="keyed HMAC-SHA256 of the E.164 number, 64 hex")
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    carrier: Label = ""
    parts: int = Field(default=1, ge=1, le=255)
    cost: Money = Decimal(0)
    currency: Currency = "USD"
    provider_message_ids: tuple[Id, ...] = ()

    @field_validator("recipient_hash")
    @classmethod
    def _hashed_not_raw(cls, value: str) -> str:
        if RECIPIENT_HASH_PATTERN.match(value):
            return value
        if looks_like_phone_number(value):
            raise ValueError("raw phone numbers are not accepted: send the keyed hash")
        raise ValueError("must be 64 lowercase hex characters (HMAC-SHA256)")


class DeliveryReceiptEvent(EventBase):
    event_type: Literal["delivery_receipt"] = "delivery_receipt"
    status: DeliveryStatus
    provider: Label = ""
    error_code: Label = ""


class ClickEvent(EventBase):
    event_type: Literal["click"] = "click"
    click_id: Id
    link_id: Label = ""
    user_agent: Annotated[str, Field(max_length=1000)] = ""


class ConversionEvent(EventBase):
    event_type: Literal["conversion"] = "conversion"
    order_id: Id
    click_id: Label = ""
    name: Label = "purchase"
    amount: Money
    currency: Currency


Event = Annotated[
    SendEvent | DeliveryReceiptEvent | ClickEvent | ConversionEvent,
    Field(discriminator="event_type"),
]
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(payload: bytes | str) -> Event:
    """Parse one wire record. Raises pydantic.ValidationError naming the offending field."""
    return _EVENT_ADAPTER.validate_json(payload)


def event_to_json(event: EventBase) -> bytes:
    return orjson.dumps(event.model_dump(mode="json"))
