"""Provider delivery-receipt callbacks → receipt events (pure: parameters in, event out).

A callback that carries our own message id (the sender put it in the callback URL, or Vonage's
`client-ref` echoes it) becomes a DeliveryReceiptEvent keyed by that message. One that names only
the provider's id becomes a ProviderReceiptEvent, which the resolver stage matches to its message
through the ids the send recorded, even when the receipt arrives first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo

from producers.event_ids import derived_event_id
from producers.receipts.smpp_text import compact_time, parse_receipt_text
from schemas.delivery_status import (
    DeliveryStatus,
    FailureCause,
    from_generic,
    from_smpp,
    from_twilio,
    from_vonage,
)
from schemas.events import DeliveryReceiptEvent, ProviderReceiptEvent

ReceiptEvent = DeliveryReceiptEvent | ProviderReceiptEvent


class BadCallback(ValueError):
    """The callback lacks what a receipt needs; the message names the field."""


def _required(params: Mapping[str, str], name: str) -> str:
    value = (params.get(name) or "").strip()
    if not value:
        raise BadCallback(f"missing parameter {name!r}")
    return value


def receipt_event(
    *,
    account: str,
    source: str,
    provider: str,
    provider_message_id: str,
    message_id: str | None,
    status: DeliveryStatus,
    cause: FailureCause,
    error_code: str,
    occurred_at: datetime,
    natural_key: tuple[str, ...],
) -> ReceiptEvent:
    event_id = derived_event_id(account, source, *natural_key)
    if message_id:
        return DeliveryReceiptEvent(
            event_id=event_id,
            account=account,
            occurred_at=occurred_at,
            message_id=message_id,
            status=status,
            failure_cause=cause,
            provider=provider,
            error_code=error_code,
            # a multipart receipt names its part by the provider id
            part_id=provider_message_id if provider_message_id != message_id else "",
        )
    return ProviderReceiptEvent(
        event_id=event_id,
        account=account,
        occurred_at=occurred_at,
        provider=provider,
        provider_message_id=provider_message_id,
        status=status,
        failure_cause=cause,
        error_code=error_code,
    )


def from_twilio_status_callback(
    account: str, params: Mapping[str, str], message_id: str | None, received_at: datetime
) -> ReceiptEvent:
    """Twilio status callback. Twilio adds parameters without notice: unknown ones are ignored.
    RawDlrDoneDate (carrier's done time, no zone; taken as UTC) is used when present."""
    sid = _required(params, "MessageSid")
    raw_status = _required(params, "MessageStatus")
    error_code = (params.get("ErrorCode") or "").strip()
    status, cause = from_twilio(raw_status, error_code)
    occurred = compact_time(params.get("RawDlrDoneDate"), UTC) or received_at
    return receipt_event(
        account=account,
        source="twilio-status",
        provider="twilio",
        provider_message_id=sid,
        message_id=message_id,
        status=status,
        cause=cause,
        error_code=error_code,
        occurred_at=occurred,
        natural_key=(sid, raw_status.lower()),
    )


def _vonage_time(params: Mapping[str, str], received_at: datetime) -> datetime:
    stamp = (params.get("message-timestamp") or "").strip()
    if stamp:
        try:
            return datetime.fromisoformat(stamp.replace(" ", "T")).replace(tzinfo=UTC)
        except ValueError:
            pass
    return compact_time(params.get("scts"), UTC) or received_at


def from_vonage_receipt(
    account: str, params: Mapping[str, str], received_at: datetime
) -> ReceiptEvent:
    """Vonage SMS API delivery receipt (GET query or JSON). `client-ref` carries our message id
    when the send set it."""
    vonage_id = _required(params, "messageId")
    raw_status = _required(params, "status")
    err = str(params.get("err-code") or "").strip()
    status, cause = from_vonage(raw_status, err)
    return receipt_event(
        account=account,
        source="vonage-dlr",
        provider="vonage",
        provider_message_id=vonage_id,
        message_id=(params.get("client-ref") or "").strip() or None,
        status=status,
        cause=cause,
        error_code="" if err in ("", "0") else err,
        occurred_at=_vonage_time(params, received_at),
        natural_key=(vonage_id, raw_status.lower()),
    )


def from_jasmin_dlr(
    account: str,
    params: Mapping[str, str],
    message_id: str | None,
    zone: tzinfo,
    received_at: datetime,
) -> ReceiptEvent:
    """Jasmin's dlr-url call: `id` (Jasmin's message id), `message_status` (ESME_* at level 1,
    DELIVRD/UNDELIV/… at levels 2-3), `donedate`, `err`. Level 1 (SMSC ack) is intermediate."""
    jasmin_id = _required(params, "id")
    raw_status = _required(params, "message_status")
    level = (params.get("level") or "").strip()
    if raw_status.upper().startswith("ESME_"):
        ok = raw_status.upper() == "ESME_ROK"
        status = DeliveryStatus.SUBMITTED if ok else DeliveryStatus.REJECTED
        cause = FailureCause.NONE if ok else FailureCause.REJECTED_BY_COMPLIANCE
    else:
        status, cause = from_smpp(raw_status)
    occurred = compact_time(params.get("donedate"), zone) or received_at
    return receipt_event(
        account=account,
        source="jasmin-dlr",
        provider="jasmin",
        provider_message_id=jasmin_id,
        message_id=message_id,
        status=status,
        cause=cause,
        error_code=(params.get("err") or "").strip(),
        occurred_at=occurred,
        natural_key=(jasmin_id, raw_status.upper(), level),
    )


# Kannel's %d: a bitmask, highest meaning first.
_KANNEL_TYPES = (
    (1, DeliveryStatus.DELIVERED),
    (2, DeliveryStatus.UNDELIVERED),
    (16, DeliveryStatus.REJECTED),
    (4, DeliveryStatus.SUBMITTED),
    (8, DeliveryStatus.SUBMITTED),
)


def from_kannel_dlr(
    account: str,
    params: Mapping[str, str],
    zone: tzinfo,
    received_at: datetime,
) -> ReceiptEvent:
    """Kannel's dlr-url, with the sender's message id in it and Kannel's codes substituted:
    `type` (%d bitmask), `smsc_id` (%F), `receipt` (%A, the SMPP receipt text), `ts` (%T)."""
    message_id = _required(params, "message_id")
    raw_type = _required(params, "type")
    if not raw_type.isdigit():
        raise BadCallback("parameter 'type' must be Kannel's %d number")
    text = parse_receipt_text(params.get("receipt") or "", zone)
    if text.stat:  # the receipt text, when forwarded, says more than the bitmask
        status, cause = from_smpp(text.stat)
    else:
        mask = int(raw_type)
        status = next((s for bit, s in _KANNEL_TYPES if mask & bit), DeliveryStatus.UNKNOWN)
        cause = from_generic(status.value)[1]
    ts = (params.get("ts") or "").strip()
    occurred = (
        text.done or (datetime.fromtimestamp(int(ts), UTC) if ts.isdigit() else None) or received_at
    )
    smsc_id = (params.get("smsc_id") or text.smsc_id or "").strip()
    return receipt_event(
        account=account,
        source="kannel-dlr",
        provider="kannel",
        provider_message_id=smsc_id or message_id,
        message_id=message_id,
        status=status,
        cause=cause,
        error_code=text.err,
        occurred_at=occurred,
        natural_key=(message_id, smsc_id, raw_type, text.stat),
    )
