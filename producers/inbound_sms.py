"""Inbound SMS callbacks → InboundEvent (pure). The body is classified here and dropped: only
its kind and matched keyword travel on (personal data stays at the edge), and the sender's
number is replaced by its keyed hash."""

from __future__ import annotations

from datetime import datetime

from producers.event_ids import derived_event_id
from schemas.events import InboundEvent, InboundKind
from schemas.inbound_keywords import classify_inbound
from schemas.privacy import hash_phone

# Twilio's advanced opt-out names what it did; it wins over our own reading of the body.
_TWILIO_OPT_OUT_TYPES = {
    "STOP": InboundKind.OPT_OUT,
    "START": InboundKind.OPT_IN,
    "HELP": InboundKind.HELP,
}


def inbound_event(
    *,
    account: str,
    source: str,
    provider_id: str,
    from_number: str,
    to_sender: str,
    body: str,
    occurred_at: datetime,
    phone_key: bytes,
    provider_kind: str = "",
) -> InboundEvent:
    """Raises schemas.privacy.InvalidPhoneNumber for a sender that is not a phone number."""
    recipient_hash, _ = hash_phone(from_number, phone_key)
    kind, keyword, review = classify_inbound(body)
    forced = _TWILIO_OPT_OUT_TYPES.get(provider_kind.strip().upper())
    if forced is not None and forced is not kind:
        kind, keyword, review = forced, provider_kind.strip().upper(), False
    return InboundEvent(
        event_id=derived_event_id(account, source, provider_id),
        account=account,
        occurred_at=occurred_at,
        recipient_hash=recipient_hash,
        sender=to_sender.strip(),
        kind=kind,
        keyword=keyword,
        needs_review=review,
    )
