"""Fault injection for crash tests: `SMSFUNNEL_FAILPOINT=<name>:<n>` makes the process SIGKILL
itself the n-th time it passes the named point (as a crash would: no cleanup, no flush).

Points: `sink.after_insert` (rows are in ClickHouse, offsets not yet committed).
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_hits: Counter[str] = Counter()


def failpoint(name: str) -> None:
    spec = os.environ.get("SMSFUNNEL_FAILPOINT")
    if not spec:
        return
    point, _, count = spec.partition(":")
    if point != name:
        return
    _hits[name] += 1
    if _hits[name] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
