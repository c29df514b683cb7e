"""How each account's requests are authenticated at the edge, provider by provider. Every
failure is a 401 that names what was wrong (never which secret was expected)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from fastapi import HTTPException
from twilio.request_validator import RequestValidator, get_signature_algorithm

from smsfunnel.settings import AccountSecrets, Settings


def account_secrets(settings: Settings, account: str) -> AccountSecrets:
    secrets = settings.accounts.get(account)
    if secrets is None:
        raise HTTPException(401, f"account {account!r} is not configured on this edge")
    return secrets


def _secret(value: str, what: str) -> bytes:
    if not value:
        raise HTTPException(401, f"this account has no {what} configured")
    return value.encode()


def _equal(given: str | None, expected: bytes) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected)


def check_bearer(secrets: AccountSecrets, authorization: str | None) -> None:
    expected = _secret(secrets.api_key.get_secret_value(), "api key")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "missing 'Authorization: Bearer <api key>'")
    if not _equal(token.strip(), expected):
        raise HTTPException(401, "wrong api key")


def check_webhook_token(secrets: AccountSecrets, token: str | None) -> None:
    expected = _secret(secrets.webhook_token.get_secret_value(), "webhook token")
    if not token:
        raise HTTPException(401, "missing 'token' query parameter")
    if not _equal(token, expected):
        raise HTTPException(401, "wrong webhook token")


def check_twilio_signature(
    secrets: AccountSecrets,
    url: str,
    params: Any,
    signature: str | None,
    signature_settings: str | None = None,
) -> None:
    """X-Twilio-Signature, checked by Twilio's own RequestValidator over the URL Twilio called
    (query included) and every POST parameter. `params` is the parsed form as a multi-dict
    (`getlist`), so a repeated parameter is signed the way Twilio signs it. A request carrying
    X-Twilio-Webhooks-Signature-Settings names its algorithm (HMAC-SHA256 with a shared key)."""
    token = secrets.twilio_auth_token.get_secret_value()
    _secret(token, "Twilio auth token")
    if not signature:
        raise HTTPException(401, "missing X-Twilio-Signature")
    algorithm = get_signature_algorithm(signature_settings)
    if not RequestValidator(token).validate(url, params, signature, algorithm):
        raise HTTPException(401, "X-Twilio-Signature does not match this URL and parameters")


def check_shopify_hmac(secrets: AccountSecrets, body: bytes, header: str | None) -> None:
    """X-Shopify-Hmac-Sha256: base64 (not hex) HMAC-SHA256 of the raw body bytes."""
    key = _secret(secrets.shopify_secret.get_secret_value(), "Shopify app secret")
    if not header:
        raise HTTPException(401, "missing X-Shopify-Hmac-Sha256")
    expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest())
    if not _equal(header.strip(), expected):
        raise HTTPException(401, "X-Shopify-Hmac-Sha256 does not match the body")


def check_postback(
    secrets: AccountSecrets, secret: str | None, body: bytes, signature: str | None
) -> None:
    """A postback proves itself by the shared `secret` parameter, or (POST) by
    `X-Smsfunnel-Signature: sha256=<hex HMAC-SHA256 of the raw body>`."""
    key = _secret(secrets.postback_secret.get_secret_value(), "postback secret")
    if signature:
        algo, _, digest = signature.partition("=")
        expected = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
        if algo.strip().lower() != "sha256" or not _equal(digest.strip().lower(), expected):
            raise HTTPException(401, "X-Smsfunnel-Signature does not match the body")
        return
    if not secret:
        raise HTTPException(401, "missing 'secret' parameter or X-Smsfunnel-Signature")
    if not _equal(secret, key):
        raise HTTPException(401, "wrong postback secret")
