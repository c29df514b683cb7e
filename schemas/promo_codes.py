"""Promo codes: conversions without a click (in-store, over the phone) tie back to SMS by the code
the buyer redeems. A code is issued either for one message (given with its send) or for a whole
campaign, unique per account. The registry travels on a compacted topic keyed by
"<account>|<CODE>", which the ingest service rebuilds on start and follows while it runs.

A redeemed per-message code is that message's conversion (its window runs from the send, there
being no click); a campaign-wide code is the subscriber's conversion when the postback names the
buyer's phone, attributed to their SMS touches; without one, or for a code that matches nothing,
the conversion is kept as unattributable.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.events import Id, UtcDatetime

Code = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def normalise_code(code: str) -> str:
    """Codes are typed by people at a till: case and surrounding spaces do not matter."""
    return code.strip().upper()


def code_key(account: str, code: str) -> str:
    return f"{account}|{normalise_code(code)}"


class PromoCode(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account: Id
    code: Code  # normalised
    message_id: str = ""  # issued for this message; '' for a campaign-wide code
    campaign: str = ""  # the campaign of a campaign-wide code
    registered_at: UtcDatetime

    @model_validator(mode="after")
    def _one_target(self) -> PromoCode:
        if bool(self.message_id) == bool(self.campaign):
            raise ValueError("a code is for exactly one of a message and a campaign")
        return self

    @property
    def key(self) -> str:
        return code_key(self.account, self.code)

    def same_target(self, other: PromoCode) -> bool:
        return (self.message_id, self.campaign) == (other.message_id, other.campaign)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))
