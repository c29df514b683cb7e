"""Event contracts: what the ingest edge writes to Kafka and the join reads (JSON on the wire).

Every event carries a stable event id (so a retried webhook is recognised as a repeat), the
account (tenant), the time it happened (timezone-aware UTC) and the message it belongs to.
Money is Decimal, serialised as a string, never a float.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from schemas.delivery_status import DeliveryStatus, FailureCause
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


class MessageEventBase(EventBase):
    """An event that names its message (the join's key)."""

    message_id: Id


def _known_zone(value: str) -> str:
    if value:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone") from None
    return value


TimeZoneName = Annotated[str, Field(max_length=64), AfterValidator(_known_zone)]


def _hashed_not_raw(value: str) -> str:
    if RECIPIENT_HASH_PATTERN.match(value):
        return value
    if looks_like_phone_number(value):
        raise ValueError("raw phone numbers are not accepted: send the keyed hash")
    raise ValueError("must be 64 lowercase hex characters (HMAC-SHA256)")


RecipientHash = Annotated[
    str,
    AfterValidator(_hashed_not_raw),
    Field(description="keyed HMAC-SHA256 of the E.164 number, 64 hex"),
]


class SendEvent(MessageEventBase):
    event_type: Literal["send"] = "send"
    campaign: Id
    variant: Label = ""
    segment: Label = ""
    sender: Id
    recipient_hash: RecipientHash
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    carrier: Label = ""
    parts: int = Field(default=1, ge=1, le=255)
    cost: Money = Decimal(0)
    currency: Currency = "USD"
    provider: Label = Field(default="", description="who sent it (twilio, vonage, smpp:<gw>)")
    provider_message_ids: tuple[Id, ...] = Field(
        default=(), description="the provider's id of each SMS part, when known at send time"
    )
    attribution_window_hours: int | None = Field(
        default=None, ge=1, le=24 * 90, description="this campaign's window; None: the default"
    )
    recipient_timezone: TimeZoneName = Field(
        default="", description="IANA zone of the recipient when known (send-time heatmaps)"
    )


class DeliveryReceiptEvent(MessageEventBase):
    event_type: Literal["delivery_receipt"] = "delivery_receipt"
    status: DeliveryStatus
    failure_cause: FailureCause = FailureCause.NONE
    provider: Label = ""
    error_code: Label = ""
    part_id: Label = Field(default="", description="provider id of the SMS part, multipart only")


class ProviderReceiptEvent(EventBase):
    """A delivery receipt that names only the provider's message id (an SMPP receipt, a Twilio
    callback without our message id). The resolver stage matches it to its message."""

    event_type: Literal["provider_receipt"] = "provider_receipt"
    provider: Id
    provider_message_id: Id
    status: DeliveryStatus
    failure_cause: FailureCause = FailureCause.NONE
    error_code: Label = ""


class MessageReference(BaseModel):
    """Emitted by the join for each spelling of each provider id of a send (resolver input)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account: Id
    provider: Label
    spelling: Id
    provider_message_id: Id  # as the send gave it: names the part of a multipart message
    message_id: Id
    # the send's time and window: when the resolver may forget this reference (absent in
    # references written before they were carried)
    sent_at: UtcDatetime | None = None
    attribution_window_hours: int | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


class ClickEvent(MessageEventBase):
    event_type: Literal["click"] = "click"
    click_id: Id
    link_id: Label = ""
    method: Literal["GET", "HEAD"] = "GET"
    user_agent: Annotated[str, Field(max_length=1000)] = ""
    ip_hash: Label = Field(
        default="", description="keyed hash of the client's /24 (IPv4) or /48 (IPv6) network"
    )


class LandingEvent(MessageEventBase):
    """The landing page loaded (a beacon from the page, carrying the click id)."""

    event_type: Literal["landing"] = "landing"
    click_id: Label = ""


class EngagementEvent(MessageEventBase):
    """Add-to-cart, form fill and the like, after landing."""

    event_type: Literal["engagement"] = "engagement"
    click_id: Label = ""
    name: Id


class ConversionEvent(MessageEventBase):
    event_type: Literal["conversion"] = "conversion"
    order_id: Id
    click_id: Label = ""
    name: Label = "purchase"
    amount: Money
    currency: Currency


class SubscriberConversionEvent(EventBase):
    """A conversion known only by its subscriber (no click id, e.g. an in-store purchase
    matched on phone number): attributed to that subscriber's SMS touches."""

    event_type: Literal["subscriber_conversion"] = "subscriber_conversion"
    recipient_hash: RecipientHash
    order_id: Id
    name: Label = "purchase"
    amount: Money
    currency: Currency


class InboundKind(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    REPLY = "reply"


class InboundEvent(EventBase):
    """An SMS from the subscriber to one of our senders. The body is not kept (personal data):
    the edge classifies it and keeps only the kind and a matched keyword."""

    event_type: Literal["inbound"] = "inbound"
    recipient_hash: RecipientHash
    sender: Id
    kind: InboundKind
    keyword: Label = ""
    needs_review: bool = False


MessageEvent = Annotated[
    SendEvent
    | DeliveryReceiptEvent
    | ClickEvent
    | LandingEvent
    | EngagementEvent
    | ConversionEvent,
    Field(discriminator="event_type"),
]
SubscriberEvent = Annotated[
    SubscriberConversionEvent | InboundEvent, Field(discriminator="event_type")
]
Event = Annotated[
    SendEvent
    | DeliveryReceiptEvent
    | ClickEvent
    | LandingEvent
    | EngagementEvent
    | ConversionEvent
    | SubscriberConversionEvent
    | InboundEvent
    | ProviderReceiptEvent,
    Field(discriminator="event_type"),
]
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def validation_problem(exc: ValidationError) -> str:
    """The first thing wrong with a record, naming its field: "sends.0.cost: ..."."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "event"
    return f"{where}: {first.get('msg')}"


def parse_event(payload: bytes | str) -> Event:
    """Parse one wire record. Raises pydantic.ValidationError naming the offending field."""
    return _EVENT_ADAPTER.validate_json(payload)


def subscriber_key(account: str, recipient_hash: str) -> bytes:
    """Kafka key of the subscriber-keyed topics (the attribution stage's partitioning)."""
    return f"{account}|{recipient_hash}".encode()


def event_to_json(event: EventBase) -> bytes:
    return orjson.dumps(event.model_dump(mode="json"))
