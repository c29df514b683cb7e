"""Deterministic event ids for events whose sender gives none (DOMAIN.md).

A retried webhook carries the same natural key, so it gets the same id and the join drops it as
a repeat: e.g. Twilio MessageSid + MessageStatus, the SMSC id + stat of an SMPP receipt,
X-Shopify-Event-Id, click id + transaction id of a postback.
"""

from __future__ import annotations

import uuid

# Fixed forever: changing it would give every retried event a new id.
EVENT_ID_NAMESPACE = uuid.UUID("5a3e1f0c-6d1b-4c55-9a53-9b8f0a7e2c11")


def derived_event_id(account: str, source: str, *key: str) -> str:
    """UUIDv5 of (account, source, key parts); parts joined with a separator no id contains."""
    name = "\x1f".join((account, source, *key))
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))
