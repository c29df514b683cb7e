"""The tracking-link vectors the compiled redirector is tested against
(producers/redirector_go/token_test.go) are what the Python implementation does now, and say
what the format says."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

import pytest

from producers.tracking_links import InvalidToken, parse_token, verify_token
from tests.vectors import generate

VECTORS = json.loads(generate.PATH.read_text(encoding="utf-8"))
KEY = VECTORS["key"].encode()


def test_vector_file_is_what_the_generator_writes_today() -> None:
    assert generate.PATH.read_text(encoding="utf-8") == generate.render(), (
        "run: PYTHONPATH=. .venv/bin/python tests/vectors/generate.py"
    )


@pytest.mark.parametrize("case", VECTORS["tokens"], ids=lambda c: c["message_id"][:20])
def test_valid_token_is_the_documented_layout(case: dict[str, str]) -> None:
    raw = base64.urlsafe_b64decode(case["token"] + "=" * (-len(case["token"]) % 4))
    payload, mac = raw[:-8], raw[-8:]
    expected_mac = hmac.new(
        KEY, case["account"].encode() + b"\x1f" + payload, hashlib.sha256
    ).digest()[:8]
    assert mac == expected_mac
    link = case["link_id"].encode()
    assert payload[1] == len(link) and payload[2 : 2 + len(link)] == link
    message = payload[2 + len(link) :]
    if payload[0] == 1:
        assert str(uuid.UUID(bytes=message)) == case["message_id"]
    else:
        assert payload[0] == 0 and message.decode() == case["message_id"]
    claims = verify_token(KEY, case["account"], case["token"])
    assert (claims.link_id, claims.message_id) == (case["link_id"], case["message_id"])


@pytest.mark.parametrize("case", VECTORS["invalid_tokens"], ids=lambda c: c["why"])
def test_invalid_token_is_refused(case: dict[str, str]) -> None:
    with pytest.raises(InvalidToken):
        parse_token(case["token"]).verified(KEY, case["account"])
