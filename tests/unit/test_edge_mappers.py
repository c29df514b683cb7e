"""Provider callbacks, inbound SMS and conversion postbacks → events (no broker). Expected
values are written out by hand from DOMAIN.md, not derived from the mappers."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
import pytest

from producers.conversions import (
    Unattributable,
    adjustment_from_postback,
    adjustment_from_shopify_refund,
    from_everflow_postback,
    from_generic_postback,
    from_shopify_order,
    from_tune_postback,
    parse_amount,
)
from producers.event_ids import EVENT_ID_NAMESPACE
from producers.inbound_sms import inbound_event
from producers.receipts.callbacks import (
    BadCallback,
    from_jasmin_dlr,
    from_kannel_dlr,
    from_twilio_status_callback,
    from_vonage_receipt,
)
from producers.tracking_links import new_click_id, sign_token
from schemas.events import (
    ConversionEvent,
    DeliveryReceiptEvent,
    InboundKind,
    ProviderReceiptEvent,
    SubscriberConversionEvent,
)
from schemas.privacy import hash_phone
from schemas.promo_codes import PromoCode

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LINK_KEY = b"link-key"
PHONE_KEY = b"phone-key"


def uuid5(*parts: str) -> str:
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(parts)))


def test_twilio_callback_with_our_message_id() -> None:
    params = {
        "MessageSid": "SM123",
        "MessageStatus": "undelivered",
        "ErrorCode": "30007",
        "RawDlrDoneDate": "2611201159",
        "SomethingTwilioAddedLater": "x",
    }
    event = from_twilio_status_callback("acme", params, "m-1", NOW)
    assert isinstance(event, DeliveryReceiptEvent)
    assert event.message_id == "m-1"
    assert (event.status.value, event.failure_cause.value) == ("undelivered", "carrier_filtered")
    assert event.occurred_at == datetime(2026, 11, 20, 11, 59, tzinfo=UTC)
    assert event.event_id == uuid5("acme", "twilio-status", "SM123", "undelivered")


def test_twilio_callback_without_our_id_goes_to_the_resolver() -> None:
    event = from_twilio_status_callback(
        "acme", {"MessageSid": "SM9", "MessageStatus": "delivered"}, None, NOW
    )
    assert isinstance(event, ProviderReceiptEvent)
    assert (event.provider, event.provider_message_id, event.status.value) == (
        "twilio",
        "SM9",
        "delivered",
    )
    assert event.occurred_at == NOW


def test_a_retried_callback_has_the_same_id_and_another_status_another() -> None:
    p = {"MessageSid": "SM1", "MessageStatus": "sent"}
    first = from_twilio_status_callback("acme", p, None, NOW)
    retry = from_twilio_status_callback("acme", p, None, datetime(2026, 11, 21, tzinfo=UTC))
    later = from_twilio_status_callback("acme", {**p, "MessageStatus": "delivered"}, None, NOW)
    assert first.event_id == retry.event_id != later.event_id


def test_twilio_callback_missing_sid_is_named() -> None:
    with pytest.raises(BadCallback, match="MessageSid"):
        from_twilio_status_callback("acme", {"MessageStatus": "sent"}, None, NOW)


def test_vonage_receipt_uses_client_ref_and_its_timestamp() -> None:
    params = {
        "messageId": "0A0000001234",
        "status": "failed",
        "err-code": "6",
        "client-ref": "m-7",
        "message-timestamp": "2026-11-20 10:30:00",
    }
    event = from_vonage_receipt("acme", params, NOW)
    assert isinstance(event, DeliveryReceiptEvent)
    assert event.message_id == "m-7" and event.part_id == "0A0000001234"
    assert (event.status.value, event.failure_cause.value) == ("undelivered", "carrier_filtered")
    assert event.occurred_at == datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


def test_jasmin_level_1_and_level_2() -> None:
    zone = ZoneInfo("Europe/Paris")
    ack = from_jasmin_dlr(
        "acme", {"id": "j-1", "message_status": "ESME_ROK", "level": "1"}, None, zone, NOW
    )
    assert isinstance(ack, ProviderReceiptEvent) and ack.status.value == "submitted"
    final = from_jasmin_dlr(
        "acme",
        {"id": "j-1", "message_status": "DELIVRD", "level": "2", "donedate": "2611201305"},
        "m-3",
        zone,
        NOW,
    )
    assert isinstance(final, DeliveryReceiptEvent) and final.status.value == "delivered"
    # 13:05 in Paris (UTC+1 in November) is 12:05 UTC
    assert final.occurred_at == datetime(2026, 11, 20, 12, 5, tzinfo=UTC)
    assert ack.event_id != final.event_id


def test_kannel_prefers_the_receipt_text_over_the_bitmask() -> None:
    receipt = (
        "id:0123ABC sub:001 dlvrd:000 submit date:2611201200 done date:2611201201 "
        "stat:UNDELIV err:034 text:hello"
    )
    event = from_kannel_dlr(
        "acme",
        {"message_id": "m-5", "type": "1", "smsc_id": "0123ABC", "receipt": receipt},
        UTC,
        NOW,
    )
    assert isinstance(event, DeliveryReceiptEvent)
    assert (event.status.value, event.error_code) == ("undelivered", "034")
    assert event.occurred_at == datetime(2026, 11, 20, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("mask", "status"),
    [
        ("1", "delivered"),
        ("2", "undelivered"),
        ("4", "submitted"),
        ("8", "submitted"),
        ("16", "rejected"),
        ("9", "delivered"),
    ],
)
def test_kannel_bitmask(mask: str, status: str) -> None:
    event = from_kannel_dlr("acme", {"message_id": "m", "type": mask, "ts": "1795176000"}, UTC, NOW)
    assert event.status.value == status
    assert event.occurred_at == datetime.fromtimestamp(1795176000, UTC)


def test_inbound_stop_is_an_opt_out_and_the_number_is_hashed() -> None:
    event = inbound_event(
        account="acme",
        source="twilio-inbound",
        provider_id="SM5",
        from_number="+1 415 555 0100",
        to_sender="12345",
        body="  stop ",
        occurred_at=NOW,
        phone_key=PHONE_KEY,
    )
    assert (event.kind, event.keyword) == (InboundKind.OPT_OUT, "STOP")
    assert event.recipient_hash == hash_phone("+14155550100", PHONE_KEY)[0]
    assert "4155550100" not in event.model_dump_json()


def test_twilio_opt_out_type_wins_over_the_body() -> None:
    event = inbound_event(
        account="acme",
        source="twilio-inbound",
        provider_id="SM6",
        from_number="+14155550100",
        to_sender="12345",
        body="arrêt",
        occurred_at=NOW,
        phone_key=PHONE_KEY,
        provider_kind="STOP",
    )
    assert event.kind is InboundKind.OPT_OUT


@pytest.mark.parametrize(
    ("text", "amount"),
    [("12,34", "12.34"), ("12.34", "12.34"), ("1,234.50", "1234.50"), ("0", "0"), ("7", "7")],
)
def test_amounts(text: str, amount: str) -> None:
    assert parse_amount(text) == Decimal(amount)


@pytest.mark.parametrize("text", ["-1", "abc", "", "NaN", "inf", "1e30", "0.00000000001"])
def test_bad_amounts_are_named(text: str) -> None:
    with pytest.raises(BadCallback, match="amount"):
        parse_amount(text)


@pytest.mark.parametrize(
    ("kind", "sent", "kept"),
    [
        ("refund", "12.50", "-12.50"),  # a refund takes money back whatever sign it is sent with
        ("refund", "-12.50", "-12.50"),
        ("chargeback", "7", "-7"),
        ("correction", "3,10", "3.10"),  # a payout corrected up
        ("correction", "-3.10", "-3.10"),
        ("", "1", "-1"),  # the default kind is a refund
    ],
)
def test_adjustments_are_signed_by_kind(kind: str, sent: str, kept: str) -> None:
    params = {"order_id": "o-1", "adjustment_id": "rf-1", "amount": sent, "currency": "usd"}
    a = adjustment_from_postback("acme", params | ({"kind": kind} if kind else {}), NOW)
    assert (a.amount, a.currency, a.order_id, a.adjustment_id) == (
        Decimal(kept),
        "USD",
        "o-1",
        "rf-1",
    )
    assert a.occurred_at == NOW


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"order_id": ""}, "order_id"),
        ({"adjustment_id": ""}, "adjustment_id"),
        ({"adjustment_id": "has space"}, "adjustment_id"),
        ({"amount": "0"}, "zero"),
        ({"amount": "x"}, "amount"),
        ({"kind": "bonus"}, "refund, chargeback, correction"),
        ({"currency": "dollars"}, "currency"),
        ({"occurred_at": "2026-12-01T10:00:00"}, "timezone"),
    ],
)
def test_bad_adjustments_are_named(change: dict[str, str], named: str) -> None:
    params = {"order_id": "o-1", "adjustment_id": "rf-1", "amount": "5", "currency": "USD"}
    with pytest.raises(BadCallback, match=named):
        adjustment_from_postback("acme", params | change, NOW)


def click_for(account: str, message_id: str) -> str:
    return new_click_id(sign_token(LINK_KEY, account, "lnk001", message_id))


def test_generic_postback_resolves_the_message_from_the_click_id() -> None:
    click = click_for("acme", "m-9")
    params = {"click_id": click, "order_id": "o-1", "amount": "19.90", "currency": "eur"}
    event = from_generic_postback("acme", params, LINK_KEY, NOW)
    assert isinstance(event, ConversionEvent)
    assert (event.message_id, event.order_id, event.amount, event.currency) == (
        "m-9",
        "o-1",
        Decimal("19.90"),
        "EUR",
    )
    assert event.event_id == uuid5("acme", "postback", click, "o-1", "purchase")
    # globex never issued this click id: kept as unattributable, with the id a retry repeats
    with pytest.raises(Unattributable, match="click id not recognised") as kept:
        from_generic_postback("globex", params, LINK_KEY, NOW)
    assert kept.value.fields["event_id"] == uuid5("globex", "postback", click, "o-1", "purchase")
    assert (kept.value.fields["order_id"], kept.value.fields["amount"]) == ("o-1", Decimal("19.90"))


def test_everflow_and_tune_conventions() -> None:
    click = click_for("acme", "m-2")
    everflow = from_everflow_postback(
        "acme", {"transaction_id": click, "amount": "12,34"}, LINK_KEY, NOW
    )
    assert (everflow.order_id, everflow.amount) == (click, Decimal("12.34"))
    tune = from_tune_postback(
        "acme", {"transaction_id": click, "amount": "5", "adv_sub": "ord-7"}, LINK_KEY, NOW
    )
    assert (tune.message_id, tune.order_id, tune.amount) == ("m-2", "ord-7", Decimal("5"))


def shopify(order: dict) -> bytes:  # type: ignore[type-arg]
    return orjson.dumps(order)


def test_shopify_order_with_our_click_id_in_landing_site() -> None:
    click = click_for("acme", "m-4")
    body = shopify(
        {
            "id": 820982911946154508,
            "total_price": "199.65",
            "currency": "USD",
            "landing_site": f"/products/x?utm_source=sms&smsclid={click}",
            "processed_at": "2026-11-20T07:00:00-05:00",
            "phone": "+14155550100",
        }
    )
    event = from_shopify_order("acme", body, "evt-1", LINK_KEY, PHONE_KEY, NOW)
    assert isinstance(event, ConversionEvent)
    assert (event.message_id, event.order_id, event.amount) == (
        "m-4",
        "820982911946154508",
        Decimal("199.65"),
    )
    assert event.occurred_at == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert event.event_id == uuid5("acme", "shopify", "evt-1")


def test_shopify_order_with_only_a_phone_is_a_subscriber_conversion() -> None:
    body = shopify(
        {
            "id": 5,
            "total_price": "10.00",
            "currency": "USD",
            "customer": {"phone": "+14155550100"},
            "landing_site": "/?smsclid=forged.AAAAAAAA",
        }
    )
    event = from_shopify_order("acme", body, "evt-2", LINK_KEY, PHONE_KEY, NOW)
    assert isinstance(event, SubscriberConversionEvent)
    assert event.recipient_hash == hash_phone("+14155550100", PHONE_KEY)[0]


def test_shopify_order_with_neither_is_unattributable() -> None:
    body = shopify({"id": 6, "total_price": "1.00", "currency": "USD"})
    with pytest.raises(Unattributable, match="no smsclid") as kept:
        from_shopify_order("acme", body, "evt-3", LINK_KEY, PHONE_KEY, NOW)
    assert kept.value.fields | {"reason": ""} == {
        "reason": "",
        "account": "acme",
        "event_id": uuid5("acme", "shopify", "evt-3"),
        "source": "shopify",
        "order_id": "6",
        "click_id": "",
        "name": "purchase",
        "amount": Decimal("1.00"),
        "currency": "USD",
        "occurred_at": NOW,
    }
    with pytest.raises(BadCallback, match="JSON"):
        from_shopify_order("acme", base64.b64encode(b"x"), "e", LINK_KEY, PHONE_KEY, NOW)


def test_edge_dead_letters_fit_the_table_key_and_repeat_identically() -> None:
    from schemas.dead_letter import DeadLetter

    first = DeadLetter.from_edge("shopify/orders-paid", "acme|evt-9", b"{}", "unattributable", NOW)
    retry = DeadLetter.from_edge("shopify/orders-paid", "acme|evt-9", b"{}", "unattributable", NOW)
    other = DeadLetter.from_edge("shopify/orders-paid", "acme|evt-10", b"{}", "unattributable", NOW)
    # dead_letters columns: source_partition UInt32, source_offset UInt64
    assert first.source_partition == 0 and 0 <= first.source_offset < 2**63
    assert first.source_offset == retry.source_offset != other.source_offset


def _codes(*issued: PromoCode):  # type: ignore[no-untyped-def]
    return {c.key: c for c in issued}.get


PER_MESSAGE = PromoCode(account="acme", code="SPRING-A1", message_id="m-1", registered_at=NOW)
CAMPAIGN = PromoCode(account="acme", code="SPRING", campaign="spring", registered_at=NOW)


def test_a_per_message_code_is_that_messages_conversion_whatever_its_case() -> None:
    params = {"promo_code": " spring-a1 ", "order_id": "o-1", "amount": "20", "currency": "USD"}
    event = from_generic_postback("acme", params, LINK_KEY, NOW, _codes(PER_MESSAGE), PHONE_KEY)
    assert isinstance(event, ConversionEvent)
    assert (event.message_id, event.click_id, event.order_id, event.amount) == (
        "m-1",
        "",
        "o-1",
        Decimal("20"),
    )
    again = from_generic_postback("acme", params, LINK_KEY, NOW, _codes(PER_MESSAGE), PHONE_KEY)
    assert again.event_id == event.event_id  # a retried postback repeats its event


def test_a_campaign_code_with_the_buyers_phone_is_the_subscribers_conversion() -> None:
    params = {"promo_code": "SPRING", "order_id": "o-2", "amount": "30", "currency": "USD"}
    event = from_generic_postback(
        "acme", params | {"phone": "+1 (415) 555-0142"}, LINK_KEY, NOW, _codes(CAMPAIGN), PHONE_KEY
    )
    assert isinstance(event, SubscriberConversionEvent)
    assert event.recipient_hash == hash_phone("+14155550142", PHONE_KEY)[0]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"promo_code": "SPRING"}, "campaign-wide (spring) and no phone"),
        ({"promo_code": "NOPE"}, "NOPE was not issued for this account"),
    ],
)
def test_codes_that_tie_to_no_one_are_kept_as_unattributable(params: dict, reason: str) -> None:  # type: ignore[type-arg]
    base = {"order_id": "o-3", "amount": "5", "currency": "USD"}
    with pytest.raises(Unattributable, match=re.escape(reason)) as kept:
        from_generic_postback("acme", base | params, LINK_KEY, NOW, _codes(CAMPAIGN), PHONE_KEY)
    assert kept.value.fields["order_id"] == "o-3" and kept.value.fields["click_id"] == ""


def test_a_postback_needs_a_click_id_or_a_code() -> None:
    with pytest.raises(BadCallback, match="click_id.*promo_code"):
        from_generic_postback("acme", {"order_id": "o", "amount": "1"}, LINK_KEY, NOW)


def test_a_shopify_refund_is_one_negative_adjustment_of_its_order() -> None:
    body = orjson.dumps(
        {
            "id": 909,
            "order_id": 450789469,
            "created_at": "2026-11-20T13:00:00-05:00",
            "transactions": [
                {"kind": "refund", "status": "success", "amount": "10.00", "currency": "USD"},
                {"kind": "refund", "status": "success", "amount": "2.50", "currency": "USD"},
                {"kind": "refund", "status": "failure", "amount": "99.00", "currency": "USD"},
                {"kind": "sale", "status": "success", "amount": "50.00", "currency": "USD"},
            ],
        }
    )
    a = adjustment_from_shopify_refund("acme", body, NOW)
    assert (a.adjustment_id, a.order_id, a.kind.value, a.amount, a.currency, a.source) == (
        "shopify-refund-909",
        "450789469",
        "refund",
        Decimal("-12.50"),
        "USD",
        "shopify",
    )
    assert a.occurred_at == datetime(2026, 11, 20, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"not json", "JSON"),
        (orjson.dumps({"id": 1}), "order_id"),
        (orjson.dumps({"id": 1, "order_id": 2, "transactions": []}), "no successful refund"),
    ],
)
def test_bad_shopify_refunds_are_named(body: bytes, named: str) -> None:
    with pytest.raises(BadCallback, match=named):
        adjustment_from_shopify_refund("acme", body, NOW)
