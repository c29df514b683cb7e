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


class FailureCause(StrEnum):
    NONE = ""
    INVALID_NUMBER = "invalid_number"
    LANDLINE_OR_UNREACHABLE = "landline_or_unreachable"
    CARRIER_FILTERED = "carrier_filtered"
    BLOCKED_OR_OPTED_OUT = "blocked_or_opted_out"
    NETWORK_FAILURE = "network_failure"
    EXPIRED = "expired"
    REJECTED_BY_COMPLIANCE = "rejected_by_compliance"
    UNKNOWN = "unknown"


S = DeliveryStatus
# SMPP 3.4 Appendix B `stat` values; ACCEPTD is intermediate in practice (DOMAIN.md).
SMPP_STATES: dict[str, DeliveryStatus] = {
    "ENROUTE": S.SUBMITTED,
    "ACCEPTD": S.SUBMITTED,
    "DELIVRD": S.DELIVERED,
    "UNDELIV": S.UNDELIVERED,
    "DELETED": S.UNDELIVERED,
    "EXPIRED": S.EXPIRED,
    "REJECTD": S.REJECTED,
    "UNKNOWN": S.UNKNOWN,
}
# The message_state TLV (0x0427) carries 1-8 in this order and wins over the text.
SMPP_MESSAGE_STATE_TLV = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
TWILIO_STATUSES: dict[str, DeliveryStatus] = {
    "queued": S.SUBMITTED,
    "accepted": S.SUBMITTED,
    "scheduled": S.SUBMITTED,
    "sending": S.SUBMITTED,
    "sent": S.SUBMITTED,
    "delivered": S.DELIVERED,
    "read": S.DELIVERED,
    "undelivered": S.UNDELIVERED,
    "partially_delivered": S.UNDELIVERED,
    "failed": S.REJECTED,  # never left Twilio
    "canceled": S.REJECTED,
}
VONAGE_STATUSES: dict[str, DeliveryStatus] = {
    "accepted": S.SUBMITTED,
    "buffered": S.SUBMITTED,
    "delivered": S.DELIVERED,
    "failed": S.UNDELIVERED,
    "expired": S.EXPIRED,
    "rejected": S.REJECTED,
    "unknown": S.UNKNOWN,
}
# The generic receipt endpoint's names: ours, DOMAIN.md's intermediate and final names, and the
# words the common providers and SMPP gateways use (lower-cased). "failed" is DOMAIN.md's: the
# network tried and could not deliver (Twilio's own endpoint reads it as never sent).
GENERIC_STATUSES: dict[str, DeliveryStatus] = {
    **{s.value: s for s in DeliveryStatus},
    **{stat.lower(): status for stat, status in SMPP_STATES.items()},
    **{
        name: S.SUBMITTED
        for name in ("accepted", "queued", "scheduled", "pending", "sending", "sent", "buffered")
    },
    "read": S.DELIVERED,
    **{name: S.UNDELIVERED for name in ("failed", "partially_delivered")},
    **{name: S.REJECTED for name in ("canceled", "cancelled")},
}

C = FailureCause
TWILIO_ERROR_CAUSES: dict[str, FailureCause] = {
    "30003": C.LANDLINE_OR_UNREACHABLE,
    "30004": C.BLOCKED_OR_OPTED_OUT,
    "30005": C.INVALID_NUMBER,
    "30006": C.LANDLINE_OR_UNREACHABLE,
    "30007": C.CARRIER_FILTERED,
    "30008": C.UNKNOWN,
    "21610": C.BLOCKED_OR_OPTED_OUT,
    "21211": C.INVALID_NUMBER,
    "21614": C.INVALID_NUMBER,
    "30034": C.REJECTED_BY_COMPLIANCE,
}
# Vonage SMS API DLR err-code (as published by Vonage; verify against their current table).
VONAGE_ERROR_CAUSES: dict[str, FailureCause] = {
    "1": C.UNKNOWN,
    "2": C.NETWORK_FAILURE,
    "3": C.INVALID_NUMBER,
    "4": C.BLOCKED_OR_OPTED_OUT,
    "5": C.NETWORK_FAILURE,
    "6": C.CARRIER_FILTERED,
    "7": C.NETWORK_FAILURE,
    "8": C.NETWORK_FAILURE,
    "9": C.INVALID_NUMBER,
    "10": C.REJECTED_BY_COMPLIANCE,
    "11": C.NETWORK_FAILURE,
    "12": C.LANDLINE_OR_UNREACHABLE,
    "13": C.REJECTED_BY_COMPLIANCE,
    "14": C.BLOCKED_OR_OPTED_OUT,
    "15": C.NETWORK_FAILURE,
    "16": C.NETWORK_FAILURE,
    "50": C.REJECTED_BY_COMPLIANCE,
    "51": C.REJECTED_BY_COMPLIANCE,
    "52": C.CARRIER_FILTERED,
    "53": C.BLOCKED_OR_OPTED_OUT,
    "54": C.REJECTED_BY_COMPLIANCE,
    "99": C.UNKNOWN,
}
SMPP_STAT_CAUSES: dict[str, FailureCause] = {
    "UNDELIV": C.NETWORK_FAILURE,
    "DELETED": C.NETWORK_FAILURE,
    "EXPIRED": C.EXPIRED,
    "REJECTD": C.REJECTED_BY_COMPLIANCE,
    "UNKNOWN": C.UNKNOWN,
}
FAILED = frozenset({S.UNDELIVERED, S.EXPIRED, S.REJECTED})


def _cause(status: DeliveryStatus, by_code: FailureCause | None) -> FailureCause:
    if status not in FAILED:
        return C.NONE
    if status is S.EXPIRED:
        return C.EXPIRED
    return by_code or C.UNKNOWN


def from_smpp(
    stat: str | None, tlv_state: int | None = None
) -> tuple[DeliveryStatus, FailureCause]:
    """Canonical status of an SMPP receipt. Non-standard stats (BUFFRED, FAILED, …) → unknown."""
    name = SMPP_MESSAGE_STATE_TLV.get(tlv_state or 0) or (stat or "").strip().upper()
    status = SMPP_STATES.get(name, S.UNKNOWN)
    return status, _cause(status, SMPP_STAT_CAUSES.get(name))


def from_twilio(status: str, error_code: str | None = None) -> tuple[DeliveryStatus, FailureCause]:
    canonical = TWILIO_STATUSES.get(status.strip().lower(), S.UNKNOWN)
    return canonical, _cause(canonical, TWILIO_ERROR_CAUSES.get((error_code or "").strip()))


def from_vonage(status: str, err_code: str | None = None) -> tuple[DeliveryStatus, FailureCause]:
    canonical = VONAGE_STATUSES.get(status.strip().lower(), S.UNKNOWN)
    code = (err_code or "").strip().lstrip("0")
    return canonical, _cause(canonical, VONAGE_ERROR_CAUSES.get(code))


def from_generic(status: str) -> tuple[DeliveryStatus, FailureCause]:
    """A status named in GENERIC_STATUSES (any case); any other name is a ValueError that lists
    them, so that a sender learns the vocabulary instead of seeing its receipts as `unknown`."""
    canonical = GENERIC_STATUSES.get(status.strip().lower())
    if canonical is None:
        raise ValueError(
            f"unknown status {status!r}; one of: {', '.join(sorted(GENERIC_STATUSES))}"
        )
    return canonical, _cause(canonical, None)
