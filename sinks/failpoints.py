"""Fault injection for crash and outage tests.

`SMSFUNNEL_FAILPOINT=<name>:<n>` makes the process SIGKILL itself the n-th time it passes the
named point (as a crash would: no cleanup, no flush).

`SMSFUNNEL_FAILPOINT=<name>:<n>:pause=<dir>` instead stops there the n-th time: it creates
`<dir>/<name>.reached` and waits until `<dir>/<name>.release` exists, so a test can change the
world (stop the broker) at exactly that moment and then let the process go on.

Points: `sink.after_insert` (rows are in ClickHouse, offsets not yet committed).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

_hits: Counter[str] = Counter()


def failpoint(name: str) -> None:
    spec = os.environ.get("SMSFUNNEL_FAILPOINT")
    if not spec:
        return
    point, _, rest = spec.partition(":")
    if point != name:
        return
    count, _, action = rest.partition(":")
    _hits[name] += 1
    if _hits[name] != int(count or 1):
        return
    if action.startswith("pause="):
        folder = Path(action.removeprefix("pause="))
        (folder / f"{name}.reached").touch()
        while not (folder / f"{name}.release").exists():
            time.sleep(0.05)  # a test fixture's hook, not a production path
        return
    os.kill(os.getpid(), signal.SIGKILL)
