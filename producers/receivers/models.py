"""Request bodies of the receivers' JSON endpoints (the OpenAPI document is built from these)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import (
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from schemas.delivery_status import GENERIC_STATUSES, from_generic
from schemas.events import Currency, Id, Label, Money, RecipientHash, TimeZoneName
from schemas.links import LinkId
from schemas.promo_codes import Code


class SendRequest(BaseModel):
    """One message attempted. Give the recipient as `to` (hashed here, never stored): in
    international form (+14155552671, "+1 415-555-2671"), or in national form ("(415) 555-2671")
    with its `country`; or as an already keyed `recipient_hash` with its `country`."""

    model_config = ConfigDict(extra="forbid")

    message_id: Id
    occurred_at: AwareDatetime
    campaign: Id
    sender: Id
    to: Annotated[str, Field(max_length=40)] | None = Field(
        default=None,
        description="the recipient's number: international form, or national form with `country`",
    )
    recipient_hash: RecipientHash | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = Field(
        default=None,
        description="ISO 3166 country: how a national-form `to` is read; required with "
        "`recipient_hash`",
    )
    variant: Label = ""
    segment: Label = ""
    carrier: Label = ""
    parts: int = Field(default=1, ge=1, le=255)
    cost: Money = Decimal(0)
    currency: Currency = "USD"
    provider: Label = ""
    provider_message_ids: list[Id] = Field(default_factory=list, max_length=255)
    attribution_window_hours: int | None = Field(default=None, ge=1, le=24 * 90)
    recipient_timezone: TimeZoneName = Field(
        default="", description="IANA zone; default: from the number when it pins one down"
    )
    event_id: Id | None = Field(default=None, description="default: derived from message_id")
    promo_code: Code | None = Field(
        default=None,
        description="a promo code issued for this message alone (unique per account): a "
        "conversion redeeming it is this message's",
    )

    @model_validator(mode="after")
    def _one_recipient(self) -> SendRequest:
        if (self.to is None) == (self.recipient_hash is None):
            raise ValueError("give exactly one of 'to' and 'recipient_hash'")
        if self.recipient_hash is not None and self.country is None:
            raise ValueError("'country' is required with 'recipient_hash'")
        return self


class SendBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sends: list[SendRequest] = Field(min_length=1, max_length=1000)


class BatchAccepted(BaseModel):
    accepted: int


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination: AnyHttpUrl
    expires_at: AwareDatetime | None = None


class CodeRequest(BaseModel):
    """A promo code for one message (`message_id`) or a whole campaign (`campaign`)."""

    model_config = ConfigDict(extra="forbid")

    code: Code
    message_id: Id | None = None
    campaign: Id | None = None

    @model_validator(mode="after")
    def _one_target(self) -> CodeRequest:
        if (self.message_id is None) == (self.campaign is None):
            raise ValueError("give exactly one of 'message_id' and 'campaign'")
        return self


class CodeRegistered(BaseModel):
    code: str = Field(description="as redeemed: case and spaces do not matter")
    message_id: str
    campaign: str


class LinkCreated(BaseModel):
    link_id: LinkId
    destination: str
    example_url: str = Field(description="the tracking URL of this link for message 'example'")


class GenericReceipt(BaseModel):
    """A delivery receipt from any other sender: our message id, or the provider's id."""

    model_config = ConfigDict(extra="forbid")

    status: Annotated[
        str,
        Field(
            min_length=1,
            max_length=40,
            description="any case, one of: " + ", ".join(sorted(GENERIC_STATUSES)),
        ),
    ]
    occurred_at: AwareDatetime
    message_id: Id | None = None
    provider: Label = "generic"
    provider_message_id: Id | None = None
    error_code: Label = ""
    event_id: Id | None = Field(default=None, description="default: derived from the receipt")

    @field_validator("status")
    @classmethod
    def _known_status(cls, status: str) -> str:
        from_generic(status)  # its ValueError lists the names: the 422 says them
        return status

    @model_validator(mode="after")
    def _names_a_message(self) -> GenericReceipt:
        if not self.message_id and not self.provider_message_id:
            raise ValueError("give 'message_id' or 'provider_message_id'")
        return self


class GenericInbound(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: Id = Field(description="the provider's id of the inbound SMS")
    from_number: Annotated[str, Field(alias="from", min_length=1, max_length=40)]
    to: Id = Field(description="our sender (short code, long code, alphanumeric id)")
    body: Annotated[str, Field(max_length=2000)]
    occurred_at: AwareDatetime


class VonageReceipt(BaseModel):
    """Vonage's JSON delivery receipt; Vonage adds fields, so unknown ones are allowed."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    messageId: Id
    status: Annotated[str, Field(min_length=1, max_length=40)]
    err_code: str | None = Field(default=None, alias="err-code")
    client_ref: str | None = Field(default=None, alias="client-ref")
    message_timestamp: str | None = Field(default=None, alias="message-timestamp")
    scts: str | None = None
