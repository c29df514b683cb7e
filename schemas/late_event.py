"""An event the join did not fold into a funnel row, and why. Written out, never dropped.

Reasons:
  - `window_closed`: the event arrived after its message's state was evicted (its time was
    inside the message's horizon, but it came later than the allowed lateness);
  - `after_window`: the event happened after its message's horizon (send time + two
    attribution windows: a click inside the window, then a conversion inside the window
    after that click), so no funnel row or credit may count it, whenever it arrives; or it is
    a conversion after the attribution window from the click it carries, which the row counts
    apart (after_window_conversions), written once that click is known;
  - `orphan`: the message's events were held for a whole horizon and no send ever came
    (a click for a message never seen); written when that state is evicted.

Keyed in ClickHouse by (account, event id): a replay replaces its own row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import orjson
from pydantic import BaseModel, ConfigDict


class LateReason(StrEnum):
    WINDOW_CLOSED = "window_closed"
    AFTER_WINDOW = "after_window"
    ORPHAN = "orphan"


class LateEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: str
    message_id: str
    event_id: str
    event_type: str
    occurred_at: datetime
    reason: LateReason
    campaign: str  # '' when the send is unknown (orphans) or gone (window_closed)
    horizon: datetime | None  # the message's horizon when known
    watermark: datetime | None  # the partition's watermark when the decision was taken
    payload: str  # the event's JSON when the join still had it, else ''

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, payload: bytes) -> LateEvent:
        return cls.model_validate_json(payload)
