"""What a stage accepts from its input topics: each record parsed and checked to be keyed as its
stage partitions by; a record that fails becomes a dead letter with the reason. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError

from schemas.dead_letter import DeadLetter
from schemas.events import (
    InboundEvent,
    MessageEventBase,
    MessageReference,
    ProviderReceiptEvent,
    SubscriberConversionEvent,
    parse_event,
    subscriber_key,
)
from schemas.provider_ids import normalise, reference_key
from schemas.subscriber_activity import SubscriberSnapshot
from schemas.topics import MESSAGE_REFERENCES, SUBSCRIBER_ACTIVITY


def reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False)
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5]]
        return "invalid event: " + "; ".join(parts)
    return f"{type(exc).__name__}: {exc}"


def reason_kind(exc: Exception) -> str:
    return "validation" if isinstance(exc, ValidationError) else type(exc).__name__


class WrongPartitionKey(ValueError):
    """The record's key is not its message id: it may sit on the wrong partition for the join."""


class WrongTopic(ValueError):
    """A valid event on a topic that does not carry its type."""


def validate_message_record(key: bytes | None, value: bytes | None) -> MessageEventBase:
    """Parse a join input record and check it is keyed as the join requires."""
    if value is None:
        raise ValueError("empty record value")
    event = parse_event(value)
    if not isinstance(event, MessageEventBase):
        raise WrongTopic(f"a {event.event_type} event does not belong on a per-message topic")
    if key != event.message_id.encode():
        raise WrongPartitionKey(
            f"record key {key!r} is not the event's message_id {event.message_id!r}"
        )
    return event


def validate_subscriber_record(
    topic: str, key: bytes | None, value: bytes | None
) -> SubscriberSnapshot | SubscriberConversionEvent | InboundEvent:
    """Parse an attribution input record and check it is keyed by its subscriber."""
    if value is None:
        raise ValueError("empty record value")
    item: SubscriberSnapshot | SubscriberConversionEvent | InboundEvent
    if topic == SUBSCRIBER_ACTIVITY.name:
        item = SubscriberSnapshot.from_json(value)
    else:
        event = parse_event(value)
        if not isinstance(event, SubscriberConversionEvent | InboundEvent):
            raise WrongTopic(f"a {event.event_type} event does not belong on {topic}")
        item = event
    expected = subscriber_key(item.account, item.recipient_hash)
    if key != expected:
        raise WrongPartitionKey(f"record key {key!r} is not the subscriber key {expected!r}")
    return item


def validate_resolver_record(
    topic: str, key: bytes | None, value: bytes | None
) -> MessageReference | ProviderReceiptEvent:
    """Parse a resolver input record and check it is keyed by its provider reference."""
    if value is None:
        raise ValueError("empty record value")
    item: MessageReference | ProviderReceiptEvent
    if topic == MESSAGE_REFERENCES.name:
        item = MessageReference.model_validate_json(value)
        expected = reference_key(item.account, item.provider, item.spelling)
    else:
        event = parse_event(value)
        if not isinstance(event, ProviderReceiptEvent):
            raise WrongTopic(f"a {event.event_type} event does not belong on {topic}")
        item = event
        expected = reference_key(
            event.account, event.provider, normalise(event.provider_message_id)
        )
    if key != expected:
        raise WrongPartitionKey(f"record key {key!r} is not the reference key {expected!r}")
    return item


def dead_letter(
    stage: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    exc: Exception,
) -> DeadLetter:
    return DeadLetter(
        stage=stage,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        key_b64=DeadLetter.encode(key),
        payload_b64=DeadLetter.encode(value),
        reason=reason(exc),
        failed_at=datetime.now(UTC),
    )
