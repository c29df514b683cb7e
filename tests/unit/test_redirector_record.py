"""The redirector writes its click records without pydantic (its hot path): they must still be
exactly the ClickEvent the join expects."""

from __future__ import annotations

from datetime import UTC, datetime

from producers.redirector import click_record, network_hash
from schemas.events import ClickEvent, parse_event


def test_click_record_is_a_valid_click_event_with_these_values() -> None:
    when = datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=UTC)
    raw = click_record(
        click_id="tok.ABCDEFGH",
        account="acme",
        occurred_at=when,
        message_id="m-1",
        link_id="lnk1",
        method="HEAD",
        user_agent='Mozilla/5.0 "quoted" \\ ü',
        ip_hash="0123456789abcdef",
    )
    event = parse_event(raw)
    assert event == ClickEvent(
        event_id="tok.ABCDEFGH",
        account="acme",
        occurred_at=when,
        message_id="m-1",
        click_id="tok.ABCDEFGH",
        link_id="lnk1",
        method="HEAD",
        user_agent='Mozilla/5.0 "quoted" \\ ü',
        ip_hash="0123456789abcdef",
    )


def test_network_hash_groups_a_slash_24_and_is_keyed() -> None:
    a, b, c = (network_hash(ip, b"k") for ip in ("203.0.113.7", "203.0.113.200", "203.0.114.7"))
    assert a == b != c and len(a) == 16
    assert network_hash("203.0.113.7", b"other") != a
    assert network_hash("2001:db8:1:2::1", b"k") == network_hash("2001:db8:1:ffff::9", b"k")
    assert network_hash("not an ip", b"k") == ""
