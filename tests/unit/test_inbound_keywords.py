from __future__ import annotations

import pytest

from schemas.events import InboundKind
from schemas.inbound_keywords import classify_inbound


@pytest.mark.parametrize(
    ("body", "kind", "keyword", "review"),
    [
        ("STOP", InboundKind.OPT_OUT, "STOP", False),
        ("  stop \n", InboundKind.OPT_OUT, "STOP", False),
        ("Unsubscribe", InboundKind.OPT_OUT, "UNSUBSCRIBE", False),
        ("optout", InboundKind.OPT_OUT, "OPTOUT", False),
        ("revoke", InboundKind.OPT_OUT, "REVOKE", False),
        ("STOP PLEASE", InboundKind.REPLY, "", True),
        ("please stop texting me", InboundKind.REPLY, "", True),
        ("start", InboundKind.OPT_IN, "START", False),
        ("YES", InboundKind.OPT_IN, "YES", False),
        ("unstop", InboundKind.OPT_IN, "UNSTOP", False),
        ("help", InboundKind.HELP, "HELP", False),
        ("Info", InboundKind.HELP, "INFO", False),
        ("what time do you open?", InboundKind.REPLY, "", False),
        ("", InboundKind.REPLY, "", False),
    ],
)
def test_classify_inbound(body: str, kind: InboundKind, keyword: str, review: bool) -> None:
    assert classify_inbound(body) == (kind, keyword, review)
