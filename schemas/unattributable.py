"""A conversion the project cannot tie to any SMS touch, kept instead of dropped (DOMAIN.md,
"Unattributable conversions are kept"): a well-formed, authenticated postback whose click id the
project did not issue or that no longer verifies, or a Shopify order with neither click id nor
phone number. Counted (smsfunnel_ingest_unattributable_conversions_total) and queryable per
account in ClickHouse's `unattributable_conversions`, so whoever reconciles an affiliate
network's report can find every postback it sent.

Keyed in ClickHouse by (account, event id), the id derived from the same natural key as an
attributable conversion's: a retried postback or webhook replaces its own row.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import orjson
from pydantic import BaseModel, ConfigDict


class UnattributableConversion(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: str
    event_id: str
    source: str  # postback, everflow, tune, shopify
    reason: str  # why nothing ties it to an SMS
    order_id: str
    click_id: str  # '' when it came without one
    name: str
    amount: Decimal
    currency: str
    occurred_at: datetime
    received_at: datetime
    payload: str  # the request as received, credentials removed

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, payload: bytes) -> UnattributableConversion:
        return cls.model_validate_json(payload)
