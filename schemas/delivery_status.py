"""Canonical delivery statuses and which receipt wins when several arrive (DOMAIN.md).

Provider vocabularies (SMPP, Twilio, Vonage) are mapped to these at the edge; the join only
ever sees canonical values.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class DeliveryStatus(StrEnum):
    SUBMITTED = "submitted"  # intermediate: accepted, queued, sent, enroute, buffered
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    REJECTED = "rejected"  # "dropped": refused before reaching the handset network
    UNKNOWN = "unknown"  # final until a real final status arrives


FINAL_STATUSES = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.EXPIRED,
        DeliveryStatus.REJECTED,
        DeliveryStatus.UNKNOWN,
    }
)


def is_final(status: DeliveryStatus) -> bool:
    return status in FINAL_STATUSES


def receipt_precedence(status: DeliveryStatus, occurred_at: datetime, event_id: str) -> tuple:
    """Sort key: the receipt with the greatest key is the message's current status.

    A real final beats `unknown`, which beats an intermediate, whatever the times (an
    intermediate receipt arriving after the final one never overwrites it). Within a rank the
    later event time wins and ties break by event id, so the result is the same for any
    arrival order.
    """
    if status is DeliveryStatus.SUBMITTED:
        rank = 0
    elif status is DeliveryStatus.UNKNOWN:
        rank = 1
    else:
        rank = 2
    return (rank, occurred_at, event_id)
