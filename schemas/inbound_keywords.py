"""Inbound SMS vocabulary (DOMAIN.md): which replies opt out, opt in or ask for help.

The whole message, trimmed and case-insensitive, must be one keyword: "STOP PLEASE" is a reply,
flagged for review because a person probably meant to opt out.
"""

from __future__ import annotations

from schemas.events import InboundKind

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "UNSTOP", "YES"})
HELP = frozenset({"HELP", "INFO"})


def classify_inbound(body: str) -> tuple[InboundKind, str, bool]:
    """(kind, matched keyword or '', needs review)."""
    words = body.strip().upper().split()
    if len(words) == 1:
        word = words[0].strip(".!")
        if word in OPT_OUT:
            return InboundKind.OPT_OUT, word, False
        if word in OPT_IN:
            return InboundKind.OPT_IN, word, False
        if word in HELP:
            return InboundKind.HELP, word, False
    review = any(w.strip(".!,") in OPT_OUT for w in words)
    return InboundKind.REPLY, "", review
