"""Keyed hashing of phone numbers. Raw numbers never leave the edge process."""

from __future__ import annotations

import hashlib
import hmac
import re

import phonenumbers
import phonenumbers.timezone

RECIPIENT_HASH_PATTERN = re.compile(r"^[0-9a-f]{64}$")
# Anything that still looks like a dialable number: 7+ digits with optional +, spaces, dashes.
_PHONE_LIKE = re.compile(r"^\+?[\d\s().-]{7,}$")


class InvalidPhoneNumber(ValueError):
    pass


_PARSE_PROBLEMS = {
    phonenumbers.NumberParseException.NOT_A_NUMBER: "is not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: (
        "is too short after its international prefix"
    ),
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "is too short to be a phone number",
    phonenumbers.NumberParseException.TOO_LONG: "is too long to be a phone number",
}


def _parse_problem(exc: phonenumbers.NumberParseException, default_region: str | None) -> str:
    """libphonenumber's complaint in plain words (never echoing the number)."""
    if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
        if default_region and default_region not in phonenumbers.SUPPORTED_REGIONS:
            return f"has no country code, and {default_region!r} is no country's code"
        return (
            "has no country code: write it in international form (+1 415 555 2671) or give "
            'its country (two letters, e.g. "US")'
        )
    return _PARSE_PROBLEMS.get(exc.error_type, "is not a phone number")


def normalise_e164(raw: str, default_region: str | None = None) -> tuple[str, str]:
    """Parse a phone number, in international form or, with `default_region` (ISO country),
    in that country's national form; return (E.164, ISO country). Raises InvalidPhoneNumber
    with a message that says what was wrong in plain words."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(_parse_problem(exc, default_region)) from None
    if not phonenumbers.is_possible_number(parsed):
        region = phonenumbers.region_code_for_country_code(parsed.country_code)
        where = f"a number of {region}" if region not in ("ZZ", "001") else "a phone number"
        raise InvalidPhoneNumber(f"has the wrong number of digits for {where}")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    # A possible but unassigned number (e.g. a reserved drama range) has no region of its own;
    # the calling code's main region still names the country.
    region = (
        phonenumbers.region_code_for_number(parsed)
        or phonenumbers.region_code_for_country_code(parsed.country_code)
        or "ZZ"
    )
    return e164, region


def hash_phone(raw: str, key: bytes, default_region: str | None = None) -> tuple[str, str]:
    """HMAC-SHA256 of the E.164 form, keyed with the deployment secret; returns (hash, country).

    Normalising first makes "+1 (415) 555-0100" and "+14155550100" the same subscriber.
    """
    e164, region = normalise_e164(raw, default_region)
    digest = hmac.new(key, e164.encode(), hashlib.sha256).hexdigest()
    return digest, region


def looks_like_phone_number(value: str) -> bool:
    return bool(_PHONE_LIKE.match(value.strip()))


def timezone_of(raw: str, default_region: str | None = None) -> str:
    """The recipient's IANA zone when the number pins one down (area codes do, mostly), else ''.
    Never raises: a number hash_phone accepts may still map to several zones."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return ""
    zones = phonenumbers.timezone.time_zones_for_number(parsed)
    return zones[0] if len(zones) == 1 and zones[0] != "Etc/Unknown" else ""
