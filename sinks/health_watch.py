"""The sink's periodic campaign-health run: the diagnostics (sinks/health_rules.py) over
every account with sends in the periods, with their default thresholds, as a gauge per check
that the campaign-health alerts read (infra/prometheus/alerts.yml). It reads through the sink's
own client, under the lock its writes and /query take."""

from __future__ import annotations

import logging
import threading
from collections import Counter

from sinks import metrics
from sinks.health_rules import PLAYBOOK, Thresholds, diagnose
from sinks.query_client import QueryClient

log = logging.getLogger(__name__)

ACCOUNTS = """
SELECT DISTINCT account FROM funnel_hourly FINAL
WHERE sent > 0 AND send_hour >= now() - toIntervalHour({hours:UInt32})
    AND startsWith(account, {prefix:String})
ORDER BY account
"""


def run_once(query: QueryClient, thresholds: Thresholds, prefix: str = "") -> Counter[str]:
    """Campaigns with a finding, per check (every check named), over every account (whose name
    starts with `prefix`) that sent in the two periods."""
    hours = thresholds.recent_hours + thresholds.baseline_hours
    found: set[tuple[str, str, str]] = set()
    for row in query.rows(ACCOUNTS, {"hours": hours, "prefix": prefix}):
        _, findings = diagnose(query, row["account"], thresholds)
        found |= {(f.check, row["account"], f.campaign) for f in findings}
    counts: Counter[str] = Counter({check: 0 for check in PLAYBOOK})
    counts.update(check for check, _, _ in found)
    return counts


def watch_in_background(
    query: QueryClient, every: float, stop: threading.Event, thresholds: Thresholds | None = None
) -> threading.Thread | None:
    """Every `every` seconds until `stop`: the findings per check into the gauge."""
    if every <= 0:
        return None
    thresholds = thresholds or Thresholds()

    def loop() -> None:
        while not stop.wait(every):
            try:
                for check, n in run_once(query, thresholds).items():
                    metrics.CAMPAIGN_HEALTH_FINDINGS.labels(check).set(n)
                metrics.CAMPAIGN_HEALTH_RUNS.labels("ok").inc()
            except Exception:  # a failed run must not stop the sink: the next one retries
                log.exception("campaign-health run failed")
                metrics.CAMPAIGN_HEALTH_RUNS.labels("failed").inc()

    thread = threading.Thread(target=loop, name="sink-health", daemon=True)
    thread.start()
    return thread
