"""Webhook authentication: Twilio's published vector and its own validator, Shopify's base64
HMAC, postback secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from fastapi import HTTPException
from pydantic import SecretStr
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator

from producers.receivers.auth import check_postback, check_shopify_hmac, check_twilio_signature
from smsfunnel.settings import AccountSecrets

# DOMAIN.md: Twilio's documented example.
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
SECRETS = AccountSecrets(
    twilio_auth_token=SecretStr("12345"),
    shopify_secret=SecretStr("shpss_secret"),
    postback_secret=SecretStr("pb-secret"),
)


def multi(params: dict[str, str]) -> FormData:
    """What the receiver hands the validator: the parsed form, a multi-dict."""
    return FormData(list(params.items()))


def test_twilio_documented_vector_is_accepted() -> None:
    check_twilio_signature(SECRETS, URL, multi(PARAMS), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


def test_twilio_signature_from_twilios_own_validator_is_accepted() -> None:
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "ErrorCode": "", "New": "x"}
    url = "https://hooks.example/webhooks/acme/twilio/status?message_id=m1"
    signature = RequestValidator("12345").compute_signature(url, params)
    check_twilio_signature(SECRETS, url, multi(params), signature)


@pytest.mark.parametrize(
    "change",
    [
        lambda u, p: (u.replace("foo=1", "foo=2"), p),
        lambda u, p: (u, {**p, "Digits": "1235"}),
        lambda u, p: (u, {**p, "Extra": "1"}),
    ],
)
def test_twilio_one_changed_byte_is_refused(change) -> None:  # type: ignore[no-untyped-def]
    url, params = change(URL, PARAMS)
    with pytest.raises(HTTPException) as err:
        check_twilio_signature(SECRETS, url, multi(params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert err.value.status_code == 401


def test_twilio_missing_signature_is_named() -> None:
    with pytest.raises(HTTPException) as err:
        check_twilio_signature(SECRETS, URL, multi(PARAMS), None)
    assert "X-Twilio-Signature" in str(err.value.detail)


def test_shopify_hmac_is_base64_of_the_raw_body() -> None:
    body = b'{"id":1,"total_price":"10.00"}'
    good = base64.b64encode(hmac.new(b"shpss_secret", body, hashlib.sha256).digest()).decode()
    check_shopify_hmac(SECRETS, body, good)
    hex_form = hmac.new(b"shpss_secret", body, hashlib.sha256).hexdigest()
    for wrong in (hex_form, good, None):
        payload = body if wrong is not good else body.replace(b"10.00", b"10.01")
        with pytest.raises(HTTPException):
            check_shopify_hmac(SECRETS, payload, wrong)


def test_postback_by_secret_or_body_signature() -> None:
    check_postback(SECRETS, "pb-secret", b"", None)
    body = b"click_id=c&order_id=o&amount=1&currency=USD"
    signature = "sha256=" + hmac.new(b"pb-secret", body, hashlib.sha256).hexdigest()
    check_postback(SECRETS, None, body, signature)
    for secret, sig in (("wrong", None), (None, None), (None, signature + "0")):
        with pytest.raises(HTTPException):
            check_postback(SECRETS, secret, body, sig)


def test_an_account_without_the_secret_refuses() -> None:
    with pytest.raises(HTTPException) as err:
        check_shopify_hmac(AccountSecrets(), b"{}", "x")
    assert "no Shopify app secret" in str(err.value.detail)
