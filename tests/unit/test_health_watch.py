"""The sink's campaign-health loop (sinks/health_watch.py): each run sets the gauge of every
check and counts itself; a failing run is counted and the loop goes on."""

from __future__ import annotations

import threading
import time
from typing import Any

from prometheus_client import REGISTRY

from sinks.health_rules import PLAYBOOK
from sinks.health_watch import watch_in_background


class NoAccounts:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if self.fail:
            raise RuntimeError("ClickHouse is away")
        return []


def runs(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("smsfunnel_campaign_health_runs_total", {"outcome": outcome})
        or 0.0
    )


def wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def test_each_run_sets_every_check_and_a_failed_run_is_counted() -> None:
    ok, failed = runs("ok"), runs("failed")
    stop = threading.Event()
    thread = watch_in_background(NoAccounts(), 0.02, stop)
    assert thread is not None
    wait_for(lambda: runs("ok") >= ok + 2)
    stop.set()
    thread.join(5)
    for check in PLAYBOOK:
        value = REGISTRY.get_sample_value("smsfunnel_campaign_health_findings", {"check": check})
        assert value == 0.0, check
    stop = threading.Event()
    thread = watch_in_background(NoAccounts(fail=True), 0.02, stop)
    assert thread is not None
    wait_for(lambda: runs("failed") >= failed + 2)
    assert thread.is_alive()
    stop.set()
    thread.join(5)


def test_off_when_the_interval_is_zero() -> None:
    assert watch_in_background(NoAccounts(), 0, threading.Event()) is None
