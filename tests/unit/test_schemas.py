"""The event contracts reject nonsense with a message that names the field."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from pydantic import ValidationError

from schemas.events import ConversionEvent, SendEvent, event_to_json, parse_event

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
HASH = "ab" * 32


def send_payload(**overrides: object) -> dict:
    payload = {
        "event_type": "send",
        "event_id": "e1",
        "account": "acme",
        "message_id": "m1",
        "occurred_at": "2026-11-20T12:00:00Z",
        "campaign": "c",
        "sender": "72345",
        "recipient_hash": HASH,
        "country": "US",
        "cost": "0.0079",
        "currency": "USD",
    }
    payload.update(overrides)
    return payload


def error_locations(payload: dict) -> list[str]:
    with pytest.raises(ValidationError) as info:
        parse_event(orjson.dumps(payload))
    return [".".join(str(p) for p in e["loc"]) for e in info.value.errors()]


def test_valid_send_round_trips_through_json() -> None:
    event = parse_event(orjson.dumps(send_payload()))
    assert isinstance(event, SendEvent)
    assert parse_event(event_to_json(event)) == event
    assert str(event.cost) == "0.0079"


def test_negative_revenue_is_rejected_naming_amount() -> None:
    payload = {
        "event_type": "conversion",
        "event_id": "e2",
        "account": "acme",
        "message_id": "m1",
        "occurred_at": "2026-11-20T12:00:00Z",
        "order_id": "o1",
        "amount": "-5.00",
        "currency": "USD",
    }
    assert error_locations(payload) == ["conversion.amount"]


def test_unknown_delivery_status_is_rejected() -> None:
    payload = {
        "event_type": "delivery_receipt",
        "event_id": "e3",
        "account": "acme",
        "message_id": "m1",
        "occurred_at": "2026-11-20T12:00:00Z",
        "status": "DELIVRD",
    }
    assert error_locations(payload) == ["delivery_receipt.status"]


@pytest.mark.parametrize("field", ["event_id", "account", "message_id"])
def test_missing_or_empty_ids_are_rejected(field: str) -> None:
    assert error_locations(send_payload(**{field: ""})) == [f"send.{field}"]
    payload = send_payload()
    del payload[field]
    assert error_locations(payload) == [f"send.{field}"]


def test_timestamp_without_timezone_is_rejected() -> None:
    assert error_locations(send_payload(occurred_at="2026-11-20T12:00:00")) == ["send.occurred_at"]


def test_timestamps_are_normalised_to_utc() -> None:
    event = parse_event(orjson.dumps(send_payload(occurred_at="2026-11-20T14:00:00+02:00")))
    assert event.occurred_at == NOW
    assert event.occurred_at.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("raw", ["+14155550100", "+1 (415) 555-0100", "4155550100"])
def test_raw_phone_number_where_a_hash_belongs_is_rejected(raw: str) -> None:
    with pytest.raises(ValidationError, match="raw phone numbers are not accepted"):
        parse_event(orjson.dumps(send_payload(recipient_hash=raw)))


def test_unknown_event_type_and_extra_fields_are_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_event(orjson.dumps(send_payload(event_type="teleport")))
    assert error_locations(send_payload(phone="+14155550100")) == ["send.phone"]


def test_money_is_decimal_not_float() -> None:
    event = ConversionEvent(
        event_id="e",
        account="a",
        message_id="m",
        occurred_at=NOW,
        order_id="o",
        amount="0.10",
        currency="EUR",
    )
    assert orjson.loads(event_to_json(event))["amount"] == "0.10"


def test_recipient_timezone_must_be_an_iana_zone() -> None:
    from datetime import UTC, datetime

    import pytest
    from pydantic import ValidationError

    from schemas.events import SendEvent

    base = dict(
        event_id="e",
        account="a",
        occurred_at=datetime(2026, 11, 20, tzinfo=UTC),
        message_id="m",
        campaign="c",
        sender="s",
        recipient_hash="a" * 64,
        country="US",
    )
    assert SendEvent(**base, recipient_timezone="Europe/Paris").recipient_timezone == "Europe/Paris"
    assert SendEvent(**base).recipient_timezone == ""
    with pytest.raises(ValidationError, match="IANA"):
        SendEvent(**base, recipient_timezone="Mars/Olympus")
