"""Provider message ids, and the key under which a receipt finds the message it belongs to.

Gateways report one SMSC id in hex in one place and decimal in another, in either case, with or
without leading zeros. The send registers every spelling of each of its ids; a receipt looks up
its own normalised spelling, which is then one of them.
"""

from __future__ import annotations

import re


def normalise(provider_id: str) -> str:
    return provider_id.strip().lower().lstrip("0") or "0"


def spellings(provider_id: str) -> set[str]:
    stripped = normalise(provider_id)
    variants = {stripped}
    if re.fullmatch(r"[0-9a-f]+", stripped) and len(stripped) <= 32:
        variants.add(str(int(stripped, 16)))
    if stripped.isdigit():
        variants.add(format(int(stripped), "x"))
    return variants


def reference_key(account: str, provider: str, spelling: str) -> bytes:
    """Kafka key of the resolver's topics (provider receipts and message references)."""
    return f"{account}|{provider.lower()}|{spelling}".encode()
