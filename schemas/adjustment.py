"""A signed adjustment to a conversion: a refund, a chargeback or a payout correction (DOMAIN.md:
purchases are never negative; these are their own events, linked to the original conversion by
its order id). Kept in ClickHouse's `conversion_adjustments` once per (account, adjustment id),
however often it is sent; every revenue figure of the attributed views is net of them, and one
whose order no conversion has is listed in `unattributable_adjustments`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import orjson
from pydantic import BaseModel, ConfigDict


class AdjustmentKind(StrEnum):
    REFUND = "refund"
    CHARGEBACK = "chargeback"
    CORRECTION = "correction"  # a payout corrected up or down (Voluum's negative payout)


class ConversionAdjustment(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: str
    adjustment_id: str  # the network's or shop's id of the refund or correction: the dedup key
    order_id: str  # the conversion it adjusts
    kind: AdjustmentKind
    amount: Decimal  # signed: a refund of 12.50 is -12.50
    currency: str
    occurred_at: datetime
    source: str  # postback, …
    received_at: datetime

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, payload: bytes) -> ConversionAdjustment:
        return cls.model_validate_json(payload)
