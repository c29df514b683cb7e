"""Provider receipt vocabularies map to canonical statuses and causes (DOMAIN.md table)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from producers.receipts.smpp_text import parse_receipt_text
from schemas.delivery_status import (
    DeliveryStatus as S,
)
from schemas.delivery_status import (
    FailureCause as C,
)
from schemas.delivery_status import (
    from_generic,
    from_smpp,
    from_twilio,
    from_vonage,
)
from schemas.provider_ids import spellings


@pytest.mark.parametrize(
    ("stat", "status"),
    [
        ("ENROUTE", S.SUBMITTED),
        ("ACCEPTD", S.SUBMITTED),
        ("DELIVRD", S.DELIVERED),
        ("UNDELIV", S.UNDELIVERED),
        ("DELETED", S.UNDELIVERED),
        ("EXPIRED", S.EXPIRED),
        ("REJECTD", S.REJECTED),
        ("UNKNOWN", S.UNKNOWN),
        ("BUFFRED", S.UNKNOWN),
        ("FAILED", S.UNKNOWN),
        ("", S.UNKNOWN),
        ("delivrd", S.DELIVERED),
    ],
)
def test_smpp_states(stat: str, status: S) -> None:
    assert from_smpp(stat)[0] is status


def test_smpp_message_state_tlv_wins_over_text() -> None:
    assert from_smpp("DELIVRD", tlv_state=5) == (S.UNDELIVERED, C.NETWORK_FAILURE)
    assert from_smpp("UNDELIV", tlv_state=2) == (S.DELIVERED, C.NONE)


@pytest.mark.parametrize(
    ("status", "code", "want"),
    [
        ("queued", None, (S.SUBMITTED, C.NONE)),
        ("sent", "", (S.SUBMITTED, C.NONE)),
        ("delivered", None, (S.DELIVERED, C.NONE)),
        ("read", None, (S.DELIVERED, C.NONE)),
        ("undelivered", "30003", (S.UNDELIVERED, C.LANDLINE_OR_UNREACHABLE)),
        ("undelivered", "30007", (S.UNDELIVERED, C.CARRIER_FILTERED)),
        ("undelivered", "30005", (S.UNDELIVERED, C.INVALID_NUMBER)),
        ("failed", "21610", (S.REJECTED, C.BLOCKED_OR_OPTED_OUT)),
        ("canceled", None, (S.REJECTED, C.UNKNOWN)),
        ("partially_delivered", None, (S.UNDELIVERED, C.UNKNOWN)),
        ("some_new_status", None, (S.UNKNOWN, C.NONE)),  # unknown is not a failure
    ],
)
def test_twilio(status: str, code: str | None, want: tuple[S, C]) -> None:
    assert from_twilio(status, code) == want


def test_vonage_and_generic() -> None:
    assert from_vonage("delivered", "0") == (S.DELIVERED, C.NONE)
    assert from_vonage("failed", "6") == (S.UNDELIVERED, C.CARRIER_FILTERED)
    assert from_vonage("rejected", "9") == (S.REJECTED, C.INVALID_NUMBER)
    assert from_vonage("expired", "2") == (S.EXPIRED, C.EXPIRED)
    assert from_vonage("buffered", None) == (S.SUBMITTED, C.NONE)
    assert from_vonage("whatever", None) == (S.UNKNOWN, C.NONE)
    assert from_generic("DELIVERED") == (S.DELIVERED, C.NONE)


# DOMAIN.md's vocabulary: intermediate accepted, queued, sending, sent, enroute, buffered; final
# delivered, undelivered, failed (the network tried), expired, rejected (dropped); and the SMPP
# stat words. The generic endpoint read all but its own five names as `unknown`.
@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("accepted", S.SUBMITTED),
        ("Queued", S.SUBMITTED),
        ("sending", S.SUBMITTED),
        ("sent", S.SUBMITTED),
        ("ENROUTE", S.SUBMITTED),
        ("buffered", S.SUBMITTED),
        ("delivered", S.DELIVERED),
        ("DELIVRD", S.DELIVERED),
        ("undelivered", S.UNDELIVERED),
        ("failed", S.UNDELIVERED),
        ("UNDELIV", S.UNDELIVERED),
        ("expired", S.EXPIRED),
        ("rejected", S.REJECTED),
        ("REJECTD", S.REJECTED),
        ("unknown", S.UNKNOWN),
    ],
)
def test_generic_receipts_speak_the_common_vocabularies(name: str, status: S) -> None:
    assert from_generic(name)[0] is status


def test_a_generic_status_outside_the_vocabulary_is_refused_with_the_names() -> None:
    with pytest.raises(ValueError, match="one of: .*delivered.*sent"):
        from_generic("nonsense")


def test_smpp_text_standard_form() -> None:
    r = parse_receipt_text(
        "id:1234567890 sub:001 dlvrd:001 submit date:2611201200 done date:2611201201 "
        "stat:DELIVRD err:000 text:Hello world, this is",
        UTC,
    )
    assert (r.smsc_id, r.stat, r.err) == ("1234567890", "DELIVRD", "000")
    assert r.submitted == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert r.done == datetime(2026, 11, 20, 12, 1, tzinfo=UTC)
    assert r.text == "Hello world, this is"


def test_smpp_text_lenient_forms() -> None:
    cet = timezone(timedelta(hours=1))
    r = parse_receipt_text(
        "id:0A1B sub:1 dlvrd:0 submit date:261120120005 done date:261120120107 "
        "stat:UNDELIV err:34 Text:Hi",
        cet,
    )
    assert (r.smsc_id, r.stat, r.err, r.text) == ("0A1B", "UNDELIV", "34", "Hi")
    assert r.done == datetime(2026, 11, 20, 12, 1, 7, tzinfo=cet)
    missing = parse_receipt_text("stat:BUFFRED id:77", UTC)
    assert (missing.smsc_id, missing.stat, missing.done) == ("77", "BUFFRED", None)
    assert from_smpp(missing.stat)[0] is S.UNKNOWN
    garbage = parse_receipt_text("\x00 nothing here", UTC)
    assert garbage.smsc_id == "" and from_smpp(garbage.stat)[0] is S.UNKNOWN
    assert parse_receipt_text("id:1 done date:9913999999 stat:DELIVRD", UTC).done is None


def test_smsc_id_spellings_meet() -> None:
    hex_form, decimal_form = "001A2B3C", "1715004"
    assert spellings(hex_form) & spellings(decimal_form)
    assert spellings("1a2b3c") == spellings("001A2B3C")
