"""SMPP 3.4 delivery receipt text (Appendix B), parsed leniently: never raises.

`id:<smsc id> sub:<nnn> dlvrd:<nnn> submit date:<YYMMDDhhmm[ss]> done date:<…> stat:<state>
err:<nnn> text:<first 20 chars>` - with seconds or not, 1-3 digit numbers, `Text:` in any case,
fields missing or in another order. Dates carry no zone: the gateway's zone is configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo

_FIELD = re.compile(
    r"(?P<key>id|sub|dlvrd|submit date|done date|stat|err|text)\s*:\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SmppReceipt:
    smsc_id: str
    stat: str
    err: str
    submitted: datetime | None
    done: datetime | None
    text: str


def compact_time(value: str | None, zone: tzinfo) -> datetime | None:
    """YYMMDDhhmm[ss] with any separators, the form of SMPP receipt dates (and of Twilio's
    RawDlrDoneDate and Vonage's scts), in the given zone; None when it is not one."""
    digits = re.sub(r"\D", "", value or "")
    for fmt, length in (("%y%m%d%H%M%S", 12), ("%y%m%d%H%M", 10)):
        if len(digits) == length:
            try:
                return datetime.strptime(digits, fmt).replace(tzinfo=zone)
            except ValueError:
                return None
    return None


def parse_receipt_text(text: str, zone: tzinfo) -> SmppReceipt:
    fields: dict[str, str] = {}
    matches = list(_FIELD.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        key = m.group("key").lower()
        value = text[m.end() : end]
        fields[key] = value if key == "text" else value.strip()
    return SmppReceipt(
        smsc_id=fields.get("id", ""),
        stat=fields.get("stat", "").upper(),
        err=fields.get("err", ""),
        submitted=compact_time(fields.get("submit date"), zone),
        done=compact_time(fields.get("done date"), zone),
        text=fields.get("text", ""),
    )
