"""Writes tracking_links.json: what the Python side of the tracking-link format produces, for the
compiled redirector's tests (producers/redirector_go/token_test.go) to match byte for byte.

    PYTHONPATH=. .venv/bin/python tests/vectors/generate.py

tests/unit/test_token_vectors.py fails when the file and this generator disagree, so a change to
the format cannot reach one implementation only.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

from producers.redirector import click_record, network_hash
from producers.tracking_links import _b64, _mac, append_click_id, sign_token
from schemas.links import LinkRegistration

PATH = Path(__file__).with_name("tracking_links.json")
KEY = "vector-link-key"
ACCOUNT = "acme"


def _signed(payload: bytes, account: str = ACCOUNT) -> str:
    """A structurally broken token that still carries a valid MAC: what it tests is the
    structural rule, not the signature check."""
    return _b64(payload + _mac(KEY.encode(), account, payload))


def _tokens() -> list[dict[str, str]]:
    cases = [
        ("lnk1", "8f14e45f-ceea-467f-a0e6-1a0a8b1e6a01"),  # UUID: packed into 16 bytes
        ("summer-sale", "msg-42"),
        ("lnk1", "8F14E45F-CEEA-467F-A0E6-1A0A8B1E6A01"),  # not canonical: kept as text
        ("lnk_ü", "nachricht-ü-1"),
        ("L" * 255, "m"),
    ]
    return [
        {
            "account": ACCOUNT,
            "link_id": link,
            "message_id": message,
            "token": sign_token(KEY.encode(), ACCOUNT, link, message),
        }
        for link, message in cases
    ]


def _invalid() -> list[dict[str, str]]:
    good = sign_token(KEY.encode(), ACCOUNT, "lnk1", "msg-42")
    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    uuid_bytes = uuid.UUID("8f14e45f-ceea-467f-a0e6-1a0a8b1e6a01").bytes
    return [
        {"why": "one character changed", "account": ACCOUNT, "token": flipped},
        {"why": "signed for another account", "account": "other", "token": good},
        {
            "why": "a character outside base64url",
            "account": ACCOUNT,
            "token": good[:5] + "+" + good[6:],
        },
        {"why": "padding", "account": ACCOUNT, "token": good + "=="},
        {"why": "empty", "account": ACCOUNT, "token": ""},
        {
            "why": "shorter than header and MAC",
            "account": ACCOUNT,
            "token": _b64(b"\x00\x01abcdefg"),
        },
        {
            "why": "link longer than the payload",
            "account": ACCOUNT,
            "token": _signed(b"\x00\x09lnk1m"),
        },
        {"why": "no message id", "account": ACCOUNT, "token": _signed(b"\x00\x04lnk1")},
        {
            "why": "UUID kind with 15 bytes",
            "account": ACCOUNT,
            "token": _signed(b"\x01\x04lnk1" + uuid_bytes[:15]),
        },
        {"why": "unknown kind", "account": ACCOUNT, "token": _signed(b"\x02\x04lnk1msg")},
        {
            "why": "message id not UTF-8",
            "account": ACCOUNT,
            "token": _signed(b"\x00\x04lnk1\xff\xfe"),
        },
        {"why": "link id not UTF-8", "account": ACCOUNT, "token": _signed(b"\x00\x02\xc3\x28msg")},
        {
            "why": "a UTF-16 surrogate",
            "account": ACCOUNT,
            "token": _signed(b"\x00\x04lnk1\xed\xa0\x80"),
        },
        {
            "why": "length not possible in base64",
            "account": ACCOUNT,
            "token": good[:-1][: (len(good) - 1) // 4 * 4 + 1],
        },
    ]


def _network_hashes() -> list[dict[str, str]]:
    ips = [
        "203.0.113.7",
        "203.0.113.200",
        "10.0.0.1",
        "2001:db8:1:2::1",
        "2001:db8:0:ffff::9",
        "2001:0db8:0000:0000:0000:0000:0000:0001",
        "::1",
        "::ffff:203.0.113.7",
        "fe80::1",
        "not an ip",
        "",
    ]
    return [{"ip": ip, "hash": network_hash(ip, KEY.encode())} for ip in ips]


def _redirects() -> list[dict[str, str]]:
    raw = [
        "https://shop.example/sale?utm_source=sms&utm_campaign=black%20friday",
        "https://shop.example",
        "https://shop.example/p",
        "https://shop.example/p?",
        "https://shop.example/p#reviews",
        "https://shop.example/p?x=1#reviews?y=2",
        "https://shop.example/p?x=1?y=2&z",
        "http://shop.example:8080/a/b/?utm_medium=sms#",
        "https://shop.example/p?utm_content=a+b&q=%C3%BC",
    ]
    click_id = sign_token(KEY.encode(), ACCOUNT, "lnk1", "msg-42") + ".AbCd-_12"
    out = []
    for url in raw:
        # the destination as it travels on the links topic: pydantic's normal form
        normal = LinkRegistration(
            link_id="lnk1", account=ACCOUNT, destination=url, registered_at=datetime.now(UTC)
        ).destination_url
        out.append(
            {
                "destination": normal,
                "click_id": click_id,
                "location": append_click_id(normal, click_id),
            }
        )
    return out


def _click_records() -> list[dict[str, object]]:
    at = datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=UTC)
    user_agents = [
        b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        b'quote " backslash \\ <tag> & \x01',
        b"latin-1 \xe9\xfc\xff",
        b"x" * 1200,
        b"\xe9" * 1200,
        b"",
    ]
    out: list[dict[str, object]] = []
    for i, ua in enumerate(user_agents):
        fields = {
            "click_id": f"tok{i}.ABCDEFGH",
            "account": ACCOUNT,
            "message_id": f"m-{i}",
            "link_id": "lnk1",
            "method": "HEAD" if i % 2 else "GET",
            "ip_hash": "0123456789abcdef",
        }
        record = click_record(
            occurred_at=at,
            user_agent=ua.decode("latin-1")[:1000],
            **fields,  # type: ignore[arg-type]
        )
        out.append(
            {
                **fields,
                "occurred_at_unix_micros": int(at.timestamp()) * 1_000_000 + at.microsecond,
                "user_agent_hex": ua.hex(),
                "record": orjson.loads(record),
            }
        )
    return out


def vectors() -> dict[str, object]:
    return {
        "about": "Generated by tests/vectors/generate.py from the Python implementation; "
        "checked by producers/redirector_go/token_test.go. Do not edit by hand.",
        "key": KEY,
        "tokens": _tokens(),
        "invalid_tokens": _invalid(),
        "network_hashes": _network_hashes(),
        "redirects": _redirects(),
        "click_records": _click_records(),
    }


def render() -> str:
    return json.dumps(vectors(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {PATH}")
