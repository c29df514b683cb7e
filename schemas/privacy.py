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


def normalise_e164(raw: str, default_region: str | None = None) -> tuple[str, str]:
    """Parse a phone number; return (E.164, ISO country). Raises InvalidPhoneNumber."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhoneNumber("not a possible phone number")
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
