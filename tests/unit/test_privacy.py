from __future__ import annotations

import pytest

from schemas.privacy import InvalidPhoneNumber, hash_phone


def test_spellings_of_one_number_hash_alike_and_give_the_country() -> None:
    a, country = hash_phone("+1 (415) 555-0100", b"k")
    b, _ = hash_phone("+14155550100", b"k")
    c, _ = hash_phone("415 555 0100", b"k", default_region="US")
    assert a == b == c
    assert country == "US"
    assert len(a) == 64 and "4155550100" not in a


def test_the_key_matters() -> None:
    assert hash_phone("+14155550100", b"k1")[0] != hash_phone("+14155550100", b"k2")[0]


def test_garbage_is_not_a_phone_number() -> None:
    with pytest.raises(InvalidPhoneNumber):
        hash_phone("not a number", b"k")
