"""Campaign-health diagnostics on the real pipeline: each generated scenario
(producers/health_scenarios.py) is played through Kafka, the worker and the sink into
ClickHouse; `diagnose` finds exactly the symptom the scenario was built to show, nothing on the
healthy campaign and nothing on the one too small to judge (every symptom at a tenth of the
volume). `smsfunnel diagnose` prints a finding with its evidence, cause and action."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from producers.health_scenarios import SCENARIOS, scenario, scenario_events
from producers.kafka_producer import EventProducer
from schemas.delivery_status import DeliveryStatus
from schemas.events import DeliveryReceiptEvent, EventBase, SendEvent
from sinks.health_rules import Thresholds, diagnose
from sinks.health_watch import run_once

from .conftest import Pipeline, report_cli

pytestmark = pytest.mark.e2e

# the scenarios' periods (health_scenarios.healthy) and volumes a tenth of the defaults'
THRESHOLDS = Thresholds(recent_hours=12, baseline_hours=24, min_sample=100, min_clicks=40)
EXPECTED = {
    "healthy": set(),
    "too_small": set(),
    "delivery_drop": {"delivery_drop"},
    "dropped_spike": {"dropped_spike"},
    "sent_collapse": {"sent_collapse"},
    "ctr_collapse": {"ctr_collapse"},
    "carrier_clicks": {"carrier_clicks"},
    "conversion_gap": {"conversion_gap"},
    "optout_spike": {"optout_spike"},
}


def recent_delivered(events: list[EventBase], since: datetime) -> tuple[int, int]:
    """(delivered, final receipts) of the messages sent since `since`, from the events."""
    recent = {e.message_id for e in events if isinstance(e, SendEvent) and e.occurred_at >= since}
    statuses = [
        e.status for e in events if isinstance(e, DeliveryReceiptEvent) and e.message_id in recent
    ]
    return statuses.count(DeliveryStatus.DELIVERED), len(statuses)


def test_each_scenario_shows_its_symptom_and_only_it(pipeline: Pipeline) -> None:
    assert set(EXPECTED) == set(SCENARIOS)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    played = {name: scenario_events(f"diag-{name}", scenario(name), end) for name in SCENARIOS}
    producer = EventProducer(pipeline.bootstrap)
    try:
        for events in played.values():
            producer.send_many(events)
        producer.flush()
    finally:
        producer.close()
    pipeline.drain()

    found = {}
    for name in SCENARIOS:
        as_of, findings = diagnose(pipeline.query, f"diag-{name}", THRESHOLDS)
        assert as_of == end, name  # the hour after the last send hour
        found[name] = findings
    assert {n: {f.check for f in fs} for n, fs in found.items()} == EXPECTED

    drop = found["delivery_drop"][0]
    delivered, final = recent_delivered(played["delivery_drop"], end - timedelta(hours=12))
    assert f"({delivered:,} of {final:,} final receipts recently" in drop.evidence
    assert found["carrier_clicks"][0].subject == "carrier att"
    assert found["dropped_spike"][0].subject == "segment import-1203"
    assert "new segment" in found["dropped_spike"][0].evidence
    assert "variants a -> b" in found["ctr_collapse"][0].evidence

    # what the sink's health run puts into smsfunnel_campaign_health_findings, per check
    symptoms = Counter(check for checks in EXPECTED.values() for check in checks)
    assert run_once(pipeline.query, THRESHOLDS, prefix="diag-") == symptoms

    # the command, as a user runs it against the running sink
    out = report_cli(
        pipeline,
        "--account",
        "diag-optout_spike",
        "--recent-hours",
        "12",
        "--baseline-hours",
        "24",
        "--min-sample",
        "100",
        "--min-clicks",
        "40",
        command="diagnose",
    ).stdout
    assert "1 finding(s)" in out and "optout_spike campaign weekly" in out
    assert "likely cause: sending too often" in out and "what to do:" in out
