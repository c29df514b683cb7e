"""Signed tracking-link tokens and click ids (pure: no I/O).

A token names (link id, message id) and is signed with the deployment's link key over the
account too, so the redirector is never an open redirect and a token minted for one account
does not verify for another. Tokens are short because they travel in an SMS: the message id is
packed into 16 bytes when it is a UUID, and the MAC is truncated to 8 bytes (64 bits: forging
one takes ~2^63 online guesses against a rate-limited endpoint).

A click id is the token plus 6 random bytes. Postbacks and landing beacons hand the click id
back; decoding it names the message without any lookup (DESIGN.md: resolve click ids to their
message at the edge).
"""

from __future__ import annotations

import base64
import functools
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MAC_BYTES = 8
CLICK_NONCE_BYTES = 6
# The query parameter the redirector appends to the destination; landing pages and shops pass
# it back (Shopify's landing_site keeps it).
CLICK_ID_PARAM = "smsclid"
_TEXT_ID, _UUID_ID = 0, 1
# base64's decoder skips characters outside its alphabet; a token must be nothing but base64url
# (the compiled redirector reads it the same way: tests/vectors/tracking_links.json)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class InvalidToken(ValueError):
    pass


@dataclass(frozen=True)
class TokenClaims:
    link_id: str
    message_id: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text):
        raise InvalidToken("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise InvalidToken("not base64url") from None


def _mac(key: bytes, account: str, payload: bytes) -> bytes:
    # hmac.digest: the one-shot C implementation (several times faster than hmac.new)
    return hmac.digest(key, account.encode() + b"\x1f" + payload, "sha256")[:MAC_BYTES]


def _message_id_bytes(message_id: str) -> tuple[int, bytes]:
    try:
        as_uuid = uuid.UUID(message_id)
    except ValueError:
        return _TEXT_ID, message_id.encode()
    if str(as_uuid) == message_id:  # only the canonical spelling round-trips exactly
        return _UUID_ID, as_uuid.bytes
    return _TEXT_ID, message_id.encode()


def sign_token(key: bytes, account: str, link_id: str, message_id: str) -> str:
    link = link_id.encode()
    if not 0 < len(link) < 256 or not message_id:
        raise ValueError("link id must be 1-255 bytes and message id non-empty")
    kind, mid = _message_id_bytes(message_id)
    payload = bytes((kind, len(link))) + link + mid
    return _b64(payload + _mac(key, account, payload))


@dataclass(frozen=True)
class ParsedToken:
    """A token decoded but not yet verified: its claims say which link (hence which account)
    to verify it against."""

    claims: TokenClaims
    payload: bytes
    mac: bytes

    def verified(self, key: bytes, account: str) -> TokenClaims:
        if not hmac.compare_digest(self.mac, _mac(key, account, self.payload)):
            raise InvalidToken("bad signature")
        return self.claims


def parse_token(token: str) -> ParsedToken:
    raw = _unb64(token)
    if len(raw) < 2 + MAC_BYTES:
        raise InvalidToken("too short")
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    kind, link_len = payload[0], payload[1]
    link, mid = payload[2 : 2 + link_len], payload[2 + link_len :]
    if len(link) != link_len or not mid:
        raise InvalidToken("truncated")
    try:
        if kind == _UUID_ID and len(mid) == 16:
            message_id = str(uuid.UUID(bytes=mid))
        elif kind == _TEXT_ID:
            message_id = mid.decode()
        else:
            raise InvalidToken("unknown token kind")
        claims = TokenClaims(link.decode(), message_id)
    except UnicodeDecodeError:
        raise InvalidToken("not UTF-8") from None
    return ParsedToken(claims, payload, mac)


def peek_link_id(token: str) -> str:
    """The link id a token claims, before verification (to find its account)."""
    return parse_token(token).claims.link_id


def verify_token(key: bytes, account: str, token: str) -> TokenClaims:
    return parse_token(token).verified(key, account)


def new_click_id(token: str) -> str:
    return f"{token}.{_b64(secrets.token_bytes(CLICK_NONCE_BYTES))}"


def verify_click_id(key: bytes, account: str, click_id: str) -> TokenClaims:
    """The (link, message) a click id belongs to; InvalidToken if it was not minted for
    this account by a redirector holding the key."""
    token, dot, nonce = click_id.rpartition(".")
    if not dot or not token or len(nonce) != 8:
        raise InvalidToken("not a click id")
    return verify_token(key, account, token)


def tracking_url(base_url: str, key: bytes, account: str, link_id: str, message_id: str) -> str:
    """The URL to put in an SMS: <redirector base>/<token>."""
    return f"{base_url.rstrip('/')}/{sign_token(key, account, link_id, message_id)}"


def append_click_id(destination: str, click_id: str) -> str:
    """The destination with its query string kept byte for byte (UTM parameters intact) and the
    click id appended; a fragment stays at the end."""
    head, tail = redirect_parts(destination)
    return f"{head}{click_id}{tail}"


@functools.lru_cache(maxsize=4096)
def redirect_parts(destination: str) -> tuple[str, str]:
    """(everything up to the click id's value, the fragment after it): computed once per link.
    Click ids are base64url plus '.', which need no escaping in a query."""
    parts = urlsplit(destination)
    param = urlencode({CLICK_ID_PARAM: ""})
    query = f"{parts.query}&{param}" if parts.query else param
    head = urlunsplit(parts._replace(query=query, fragment=""))
    return head, f"#{parts.fragment}" if parts.fragment else ""


def click_id_from_url(url_or_query: str) -> str | None:
    """The click id carried by a landing URL or its query string (e.g. Shopify landing_site)."""
    query = urlsplit(url_or_query).query if "?" in url_or_query else url_or_query.lstrip("?")
    for k, v in parse_qsl(query, keep_blank_values=True):
        if k == CLICK_ID_PARAM and v:
            return v
    return None
