"""The join's output: one versioned row per message (a Kafka record keyed by message id).

`version` counts the distinct events folded into the row. The set of events of a message only
grows, so a higher version is always a more complete row, and the row with every event in it
is the same whatever order the events came in; the sink keeps the highest version per message
(ReplacingMergeTree(version)).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import orjson
from pydantic import BaseModel, ConfigDict

from schemas.delivery_status import DeliveryStatus, FailureCause


class FunnelRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: str
    message_id: str
    version: int
    has_send: bool
    campaign: str = ""
    variant: str = ""
    segment: str = ""
    sender: str = ""
    recipient_hash: str = ""  # keyed hash, never the number
    country: str = ""
    carrier: str = ""
    sent_at: datetime | None = None
    recipient_timezone: str = ""  # '' = unknown: the local fields below are then UTC
    send_local_hour: int = 0  # 0-23, in the recipient's zone
    send_local_weekday: int = 0  # 1 Monday - 7 Sunday (ClickHouse toDayOfWeek); 0 = no send
    parts: int = 0
    cost: Decimal = Decimal(0)
    cost_currency: str = ""
    delivery_status: DeliveryStatus | None = None
    delivery_status_at: datetime | None = None
    failure_cause: FailureCause = FailureCause.NONE
    receipts: int = 0
    clicks: int = 0  # every distinct click, previews and scanners included
    human_clicks: int = 0
    first_click_at: datetime | None = None
    first_human_click_at: datetime | None = None
    landings: int = 0
    engagements: int = 0
    # after dedup (one per order id, one per (click id, name)) and inside the campaign's
    # attribution window from the click that carries them
    conversions: int = 0
    discarded_conversions: int = 0
    revenue: dict[str, Decimal] = {}
    after_window_conversions: int = 0  # kept after dedup, but after their window
    after_window_revenue: dict[str, Decimal] = {}
    # the send's attribution window in hours (its campaign's, else the 7-day default; 0 while
    # the send is unknown): the window the conversions above are bound by
    attribution_window_hours: int = 0
    order_ids: list[str] = []  # of the conversions counted above: refunds find them by these
    first_event_at: datetime
    last_event_at: datetime

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, payload: bytes) -> FunnelRow:
        return cls.model_validate_json(payload)
