"""Conversion postbacks and shop webhooks → conversion events (pure).

A conversion that carries our click id (the redirector appended it to the landing URL; the
affiliate network or shop hands it back) is tied to its message by decoding the click id, no
lookup needed. One that carries only the buyer's phone becomes a subscriber conversion and is
attributed to that subscriber's SMS touches. The join keeps one conversion per order id across
all sources; the event id (derived from the natural key) makes a retried postback a repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from producers.event_ids import derived_event_id
from producers.receipts.callbacks import BadCallback
from producers.tracking_links import InvalidToken, click_id_from_url, verify_click_id
from schemas.adjustment import AdjustmentKind, ConversionAdjustment
from schemas.events import ConversionEvent, SubscriberConversionEvent
from schemas.privacy import InvalidPhoneNumber, hash_phone
from schemas.promo_codes import PromoCode, code_key, normalise_code


def _number(text: str) -> Decimal:
    """A decimal amount. A lone comma is a decimal comma (Everflow's `12,34` means 12.34); with
    both separators the comma groups thousands (`1,234.50`)."""
    raw = (text or "").strip()
    if "," in raw:
        raw = raw.replace(",", "") if "." in raw else raw.replace(",", ".")
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise BadCallback(f"amount {text!r} is not a number") from None
    if not amount.is_finite():
        raise BadCallback(f"amount {text!r} is not a number")
    if amount.as_tuple().exponent < -10 or abs(amount) >= Decimal(10) ** 18:  # type: ignore[operator]
        raise BadCallback(f"amount {text!r} has more digits than Decimal(28, 10) holds")
    return amount


def parse_amount(text: str) -> Decimal:
    """A purchase's amount: never negative (refunds and corrections are adjustments)."""
    amount = _number(text)
    if amount < 0:
        raise BadCallback("amount is negative: refunds and corrections are adjustments")
    return amount


def parse_adjustment_amount(text: str, kind: AdjustmentKind) -> Decimal:
    """An adjustment's signed amount. A refund or chargeback takes money back: sent as 12.50 or
    -12.50 it is -12.50; a correction keeps its sign (a payout corrected up is positive)."""
    amount = _number(text)
    if not amount:
        raise BadCallback("amount is zero: an adjustment changes revenue")
    return -abs(amount) if kind in (AdjustmentKind.REFUND, AdjustmentKind.CHARGEBACK) else amount


def _occurred_at(params: Mapping[str, str], received_at: datetime) -> datetime:
    """`occurred_at` (ISO 8601 with a timezone) when given, else when the request arrived."""
    if not params.get("occurred_at"):
        return received_at
    try:
        occurred = datetime.fromisoformat(params["occurred_at"])
    except ValueError:
        raise BadCallback("occurred_at is not an ISO 8601 time") from None
    if occurred.tzinfo is None:
        raise BadCallback("occurred_at needs a timezone")
    return occurred


def _currency(value: str | None, default: str) -> str:
    currency = (value or default).strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise BadCallback(f"currency {value!r} is not an ISO 4217 code")
    return currency


class Unattributable(BadCallback):
    """A well-formed, authenticated conversion that nothing ties to an SMS (its click id was not
    issued for this account or no longer verifies; an order with neither click id nor phone).
    The receiver keeps it (schemas/unattributable.py) instead of refusing it; `fields` are the
    record's, less when it arrived and the request itself, which only the receiver knows."""

    def __init__(self, reason: str, **fields: object) -> None:
        super().__init__(reason)
        self.fields = {"reason": reason, **fields}


def conversion_from_click(
    *,
    account: str,
    source: str,
    click_id: str,
    order_id: str,
    amount: Decimal,
    currency: str,
    name: str,
    occurred_at: datetime,
    link_key: bytes,
    natural_key: tuple[str, ...],
) -> ConversionEvent:
    try:
        claims = verify_click_id(link_key, account, click_id)
    except InvalidToken as exc:
        raise Unattributable(
            f"click id not recognised for this account ({exc})",
            account=account,
            event_id=derived_event_id(account, source, *natural_key),
            source=source,
            order_id=order_id,
            click_id=click_id,
            name=name or "purchase",
            amount=amount,
            currency=currency,
            occurred_at=occurred_at,
        ) from None
    return ConversionEvent(
        event_id=derived_event_id(account, source, *natural_key),
        account=account,
        occurred_at=occurred_at,
        message_id=claims.message_id,
        order_id=order_id,
        click_id=click_id,
        name=name or "purchase",
        amount=amount,
        currency=currency,
    )


CodeLookup = Callable[[str], PromoCode | None]  # code_key -> the code's registration


def conversion_from_code(
    *,
    account: str,
    code: str,
    order_id: str,
    amount: Decimal,
    currency: str,
    name: str,
    occurred_at: datetime,
    phone: str | None,
    codes: CodeLookup,
    phone_key: bytes,
) -> ConversionEvent | SubscriberConversionEvent:
    """A redeemed promo code (schemas/promo_codes.py): the conversion of the message it was
    issued for; for a campaign-wide code, the conversion of the subscriber whose phone the
    postback names; else kept as unattributable."""
    code = normalise_code(code)
    natural_key = ("code", code, order_id, name)
    event_id = derived_event_id(account, "postback", *natural_key)

    def unattributable(reason: str) -> Unattributable:
        return Unattributable(
            reason,
            account=account,
            event_id=event_id,
            source="postback",
            order_id=order_id,
            click_id="",
            name=name,
            amount=amount,
            currency=currency,
            occurred_at=occurred_at,
        )

    issued = codes(code_key(account, code))
    if issued is None:
        raise unattributable(f"promo code {code} was not issued for this account")
    common = {
        "event_id": event_id,
        "account": account,
        "occurred_at": occurred_at,
        "order_id": order_id,
        "name": name,
        "amount": amount,
        "currency": currency,
    }
    if issued.message_id:
        return ConversionEvent(message_id=issued.message_id, **common)  # type: ignore[arg-type]
    if not phone:
        raise unattributable(
            f"promo code {code} is campaign-wide ({issued.campaign}) and no phone names the buyer"
        )
    try:
        recipient_hash, _ = hash_phone(phone, phone_key)
    except InvalidPhoneNumber as exc:
        raise BadCallback(f"phone: {exc}") from None
    return SubscriberConversionEvent(recipient_hash=recipient_hash, **common)  # type: ignore[arg-type]


def from_generic_postback(
    account: str,
    params: Mapping[str, str],
    link_key: bytes,
    received_at: datetime,
    codes: CodeLookup | None = None,
    phone_key: bytes = b"",
) -> ConversionEvent | SubscriberConversionEvent:
    """`click_id` (or `promo_code`, with the buyer's `phone` for a campaign-wide code),
    `order_id`, `amount`, `currency`, optional `event` name and `occurred_at`."""
    click_id = (params.get("click_id") or "").strip()
    code = (params.get("promo_code") or "").strip()
    order_id = (params.get("order_id") or "").strip()
    if not click_id and not code:
        raise BadCallback("missing parameter 'click_id' (or 'promo_code')")
    if not order_id:
        raise BadCallback("missing parameter 'order_id'")
    name = (params.get("event") or "purchase").strip()
    occurred = _occurred_at(params, received_at)
    if not click_id:
        return conversion_from_code(
            account=account,
            code=code,
            order_id=order_id,
            amount=parse_amount(params.get("amount") or ""),
            currency=_currency(params.get("currency"), ""),
            name=name,
            occurred_at=occurred,
            phone=(params.get("phone") or "").strip() or None,
            codes=codes or (lambda _key: None),
            phone_key=phone_key,
        )
    return conversion_from_click(
        account=account,
        source="postback",
        click_id=click_id,
        order_id=order_id,
        amount=parse_amount(params.get("amount") or ""),
        currency=_currency(params.get("currency"), ""),
        name=name,
        occurred_at=occurred,
        link_key=link_key,
        natural_key=(click_id, order_id, name),
    )


def _transaction_postback(
    account: str,
    params: Mapping[str, str],
    link_key: bytes,
    received_at: datetime,
    *,
    source: str,
    order_param: str,
) -> ConversionEvent:
    """Affiliate macro URLs whose `transaction_id` is our click id; the order defaults to it
    (one base conversion per transaction id)."""
    click_id = (params.get("transaction_id") or "").strip()
    if not click_id:
        raise BadCallback("missing parameter 'transaction_id'")
    order_id = (params.get(order_param) or "").strip() or click_id
    return conversion_from_click(
        account=account,
        source=source,
        click_id=click_id,
        order_id=order_id,
        amount=parse_amount(params.get("amount") or "0"),
        currency=_currency(params.get("currency"), "USD"),
        name=(params.get("event") or "purchase").strip(),
        occurred_at=received_at,
        link_key=link_key,
        natural_key=(click_id, order_id),
    )


def from_everflow_postback(
    account: str, params: Mapping[str, str], link_key: bytes, received_at: datetime
) -> ConversionEvent:
    """Everflow: `transaction_id`, `amount` (`12,34` means 12.34), optional `order_id`."""
    return _transaction_postback(
        account, params, link_key, received_at, source="everflow", order_param="order_id"
    )


def from_tune_postback(
    account: str, params: Mapping[str, str], link_key: bytes, received_at: datetime
) -> ConversionEvent:
    """TUNE (HasOffers) `aff_lsr`: `transaction_id` (click id), `amount`, `adv_sub` (order)."""
    return _transaction_postback(
        account, params, link_key, received_at, source="tune", order_param="adv_sub"
    )


def _shopify_phone(order: Mapping[str, Any]) -> str | None:
    for holder in (
        order,
        order.get("customer"),
        order.get("billing_address"),
        order.get("shipping_address"),
    ):
        if isinstance(holder, Mapping) and isinstance(holder.get("phone"), str) and holder["phone"]:
            return str(holder["phone"])
    return None


def _shopify_click_id(order: Mapping[str, Any]) -> str | None:
    for attribute in order.get("note_attributes") or ():
        if isinstance(attribute, Mapping) and attribute.get("name") == "smsclid":
            return str(attribute.get("value") or "") or None
    landing = order.get("landing_site")
    return click_id_from_url(landing) if isinstance(landing, str) and landing else None


def _shopify_payload(body: bytes, what: str, *required: str) -> dict[str, Any]:
    """A webhook's JSON object, with the fields every one of its kind has."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadCallback("body is not JSON") from None
    if not isinstance(payload, dict) or any(field not in payload for field in required):
        fields = " or ".join(f"'{field}'" for field in required)
        raise BadCallback(f"not a Shopify {what} (no {fields})")
    return payload


def from_shopify_order(
    account: str,
    body: bytes,
    shopify_event_id: str,
    link_key: bytes,
    phone_key: bytes,
    received_at: datetime,
) -> ConversionEvent | SubscriberConversionEvent:
    """Shopify `orders/paid`. Retries carry the original payload and the same
    X-Shopify-Event-Id, which is the natural key. Unattributable: the order has neither our
    click id nor a phone number, so nothing ties it to an SMS (the receiver keeps it)."""
    order = _shopify_payload(body, "order", "id")
    order_id = str(order["id"])
    amount = parse_amount(str(order.get("total_price") or "0"))
    currency = _currency(order.get("currency"), "USD")
    occurred = received_at
    for field in ("processed_at", "created_at"):
        if isinstance(order.get(field), str):
            try:
                occurred = datetime.fromisoformat(order[field])
                break
            except ValueError:
                continue
    click_id = _shopify_click_id(order)
    if click_id:
        try:
            return conversion_from_click(
                account=account,
                source="shopify",
                click_id=click_id,
                order_id=order_id,
                amount=amount,
                currency=currency,
                name="purchase",
                occurred_at=occurred,
                link_key=link_key,
                natural_key=(shopify_event_id,),
            )
        except BadCallback:
            pass  # a foreign or mangled smsclid: Shopify would retry a 4xx for hours; try phone
    unattributable = Unattributable(
        "no smsclid that verifies and no usable phone number",
        account=account,
        event_id=derived_event_id(account, "shopify", shopify_event_id),
        source="shopify",
        order_id=order_id,
        click_id=click_id or "",
        name="purchase",
        amount=amount,
        currency=currency,
        occurred_at=occurred,
    )
    phone = _shopify_phone(order)
    if phone is None:
        raise unattributable
    try:
        recipient_hash, _ = hash_phone(phone, phone_key)
    except InvalidPhoneNumber:
        raise unattributable from None
    return SubscriberConversionEvent(
        event_id=derived_event_id(account, "shopify", shopify_event_id),
        account=account,
        occurred_at=occurred,
        recipient_hash=recipient_hash,
        order_id=order_id,
        amount=amount,
        currency=currency,
    )


def adjustment_from_postback(
    account: str, params: Mapping[str, str], received_at: datetime
) -> ConversionAdjustment:
    """`order_id`, `adjustment_id` (the refund's or correction's own id: a resend counts once),
    `amount`, `currency`, optional `kind` (refund, chargeback, correction; default refund) and
    `occurred_at`."""
    order_id = (params.get("order_id") or "").strip()
    adjustment_id = (params.get("adjustment_id") or "").strip()
    if not order_id:
        raise BadCallback("missing parameter 'order_id'")
    if not adjustment_id:
        raise BadCallback("missing parameter 'adjustment_id'")
    for name, value in (("order_id", order_id), ("adjustment_id", adjustment_id)):
        if len(value) > 200 or any(c.isspace() for c in value):
            raise BadCallback(f"{name} must be 1-200 characters without spaces")
    raw_kind = (params.get("kind") or AdjustmentKind.REFUND).strip().lower()
    try:
        kind = AdjustmentKind(raw_kind)
    except ValueError:
        names = ", ".join(k.value for k in AdjustmentKind)
        raise BadCallback(f"kind {raw_kind!r} is not one of: {names}") from None
    return ConversionAdjustment(
        account=account,
        adjustment_id=adjustment_id,
        order_id=order_id,
        kind=kind,
        amount=parse_adjustment_amount(params.get("amount") or "", kind),
        currency=_currency(params.get("currency"), ""),
        occurred_at=_occurred_at(params, received_at),
        source="postback",
        received_at=received_at,
    )


def adjustment_from_shopify_refund(
    account: str, body: bytes, received_at: datetime
) -> ConversionAdjustment:
    """Shopify `refunds/create`: the refund's successful refund transactions, as one negative
    adjustment of its order. The refund id is the natural key, so Shopify's retries (the same
    payload) count once."""
    refund = _shopify_payload(body, "refund", "id", "order_id")
    transactions = [
        t
        for t in refund.get("transactions") or []
        if isinstance(t, dict) and t.get("kind") == "refund" and t.get("status") == "success"
    ]
    if not transactions:
        raise BadCallback("the refund has no successful refund transaction")
    currencies = {_currency(t.get("currency"), "USD") for t in transactions}
    if len(currencies) != 1:
        raise BadCallback(f"refund transactions in several currencies: {sorted(currencies)}")
    total = sum((parse_amount(str(t.get("amount") or "")) for t in transactions), Decimal(0))
    if not total:
        raise BadCallback("amount is zero: an adjustment changes revenue")
    occurred = received_at
    if isinstance(refund.get("created_at"), str):
        try:
            occurred = datetime.fromisoformat(refund["created_at"])
        except ValueError:
            raise BadCallback("created_at is not an ISO 8601 time") from None
    return ConversionAdjustment(
        account=account,
        adjustment_id=f"shopify-refund-{refund['id']}",
        order_id=str(refund["order_id"]),
        kind=AdjustmentKind.REFUND,
        amount=-total,
        currency=currencies.pop(),
        occurred_at=occurred if occurred.tzinfo else received_at,
        source="shopify",
        received_at=received_at,
    )
