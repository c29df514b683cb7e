"""Signed tracking tokens and click ids: round trips, tampering, foreign accounts, URL handling."""

from __future__ import annotations

import base64
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers.tracking_links import (
    CLICK_ID_PARAM,
    InvalidToken,
    append_click_id,
    click_id_from_url,
    new_click_id,
    peek_link_id,
    sign_token,
    verify_click_id,
    verify_token,
)

KEY = b"test-link-key"


def test_uuid_message_ids_make_short_tokens() -> None:
    message_id = str(uuid.uuid4())
    token = sign_token(KEY, "acme", "Ab3dE9", message_id)
    # 2 header bytes + 6 link + 16 uuid + 8 mac = 32 bytes -> 43 base64url characters
    assert len(token) == 43
    claims = verify_token(KEY, "acme", token)
    assert (claims.link_id, claims.message_id) == ("Ab3dE9", message_id)


@given(
    link=st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=20),
    message=st.text(min_size=1, max_size=80),
)
def test_any_ids_round_trip(link: str, message: str) -> None:
    token = sign_token(KEY, "acme", link, message)
    claims = verify_token(KEY, "acme", token)
    assert (claims.link_id, claims.message_id) == (link, message)
    assert peek_link_id(token) == link


def test_non_canonical_uuid_spelling_is_kept_verbatim() -> None:
    upper = str(uuid.uuid4()).upper()
    assert verify_token(KEY, "a", sign_token(KEY, "a", "l1", upper)).message_id == upper


@pytest.mark.parametrize("position", [0, 5, 20, 42])
def test_any_changed_byte_is_refused(position: int) -> None:
    token = sign_token(KEY, "acme", "Ab3dE9", str(uuid.uuid4()))
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[min(position, len(raw) - 1)] ^= 0x01
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        verify_token(KEY, "acme", tampered)


def test_token_of_another_account_or_key_is_refused() -> None:
    token = sign_token(KEY, "acme", "Ab3dE9", "m-1")
    with pytest.raises(InvalidToken):
        verify_token(KEY, "globex", token)
    with pytest.raises(InvalidToken):
        verify_token(b"other-key", "acme", token)


@pytest.mark.parametrize("garbage", ["", "x", "!!!!", "a" * 11, "favicon.ico"])
def test_garbage_is_refused_not_crashed(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        verify_token(KEY, "acme", garbage)


def test_click_ids_name_their_message_and_are_unique() -> None:
    token = sign_token(KEY, "acme", "Ab3dE9", "m-42")
    first, second = new_click_id(token), new_click_id(token)
    assert first != second and first.startswith(token + ".")
    assert verify_click_id(KEY, "acme", first).message_id == "m-42"
    with pytest.raises(InvalidToken):
        verify_click_id(KEY, "globex", first)
    with pytest.raises(InvalidToken):
        verify_click_id(KEY, "acme", token)  # a bare token is not a click id


def test_click_id_is_appended_and_the_query_kept_byte_for_byte() -> None:
    destination = "https://shop.example/sale?utm_source=sms&utm_campaign=black%20friday&q=a+b#top"
    got = append_click_id(destination, "tok.abcdEFGH")
    expected = (
        "https://shop.example/sale?utm_source=sms&utm_campaign=black%20friday&q=a+b"
        f"&{CLICK_ID_PARAM}=tok.abcdEFGH#top"
    )
    assert got == expected
    assert append_click_id("https://x.example/", "c.12345678") == (
        f"https://x.example/?{CLICK_ID_PARAM}=c.12345678"
    )


def test_click_id_is_found_in_a_landing_url_or_query() -> None:
    assert click_id_from_url(f"/products/x?utm_source=sms&{CLICK_ID_PARAM}=t.ABCDEFGH") == (
        "t.ABCDEFGH"
    )
    assert click_id_from_url(f"{CLICK_ID_PARAM}=t.ABCDEFGH&a=1") == "t.ABCDEFGH"
    assert click_id_from_url("/products/x?utm_source=sms") is None
