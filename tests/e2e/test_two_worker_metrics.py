"""The worker's counters with two worker processes in one group: summed over both /metrics,
the join's applied and duplicate events equal the distinct and repeated events of the
campaign (counted from the generated events, per type), each process having done part of
the work; each exports the lag of the partitions it holds (none left once drained, no
partition by both); and the sink's event-to-queryable histogram counted every funnel row it
wrote."""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from infra.local_kafka import LocalKafka
from producers.kafka_producer import EventProducer
from producers.workload import generate_campaign
from schemas.events import MessageEventBase, ProviderReceiptEvent
from smsfunnel.processes import settings_env, spawn_service, stop_service

from .conftest import (
    log_tail,
    pipeline_settings,
    second_worker_settings,
    start_pipeline,
    stop_pipeline,
)

pytestmark = pytest.mark.e2e


def samples(port: int, name: str) -> dict[str, float]:
    """label text -> value of one metric family on 127.0.0.1:port."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, value = line[len(name) :].rsplit(" ", 1)
            out[labels] = float(value)
    return out


def by_type(port: int, name: str) -> Counter[str]:
    return Counter(
        {k.split('"')[1]: v for k, v in samples(port, name).items() if "event_type" in k}
    )


def wait_for_two_members(bootstrap: str, group: str, timeout: float = 120.0) -> None:
    """Until the group is stable with two members that each hold partitions: no rebalance
    (and so no replay) is left to happen when the events come."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while True:
        try:
            g = admin.describe_consumer_groups([group])[group].result(timeout=10)
            members = [m for m in g.members if m.assignment.topic_partitions]
            if g.state == ConsumerGroupState.STABLE and len(members) == 2:
                return
        except Exception:  # noqa: BLE001 - the group may not exist yet
            pass
        assert time.monotonic() < deadline, f"group {group} never had two members"
        time.sleep(0.5)


def test_counters_are_exact_across_two_workers(kafka_lib: Path, tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path / "kafka", heap="512m", lib=kafka_lib)
    bootstrap = broker.start().address
    settings = pipeline_settings(tmp_path / "state", bootstrap)
    second = second_worker_settings(settings, tmp_path / "state-2")
    pipeline = start_pipeline(settings, bootstrap)
    other = spawn_service("worker", settings_env(second, bootstrap), pipeline.logs, "worker-2")
    try:
        wait_for_two_members(bootstrap, settings.worker_id)
        workload = generate_campaign(600, seed=31, account="e2e-two", duplicate_rate=0.1)
        producer = EventProducer(bootstrap)
        producer.send_many(workload.events)
        producer.flush()
        producer.close()

        def alive() -> None:
            pipeline.alive()
            assert other.poll() is None, log_tail(pipeline.logs / "worker-2.log", 60)

        pipeline.drain(check=alive)

        # expected, from the events: the join's inputs by type, first arrivals and repeats;
        # provider receipts reach it as delivery receipts, once each (repeats stop at the
        # resolver)
        seen: set[tuple[str, str]] = set()
        applied: Counter[str] = Counter()
        repeats: Counter[str] = Counter()
        for e in workload.events:
            if isinstance(e, ProviderReceiptEvent):
                if ("provider", e.event_id) not in seen:
                    seen.add(("provider", e.event_id))
                    applied["delivery_receipt"] += 1
            elif isinstance(e, MessageEventBase):
                first = (e.event_type, e.event_id) not in seen
                seen.add((e.event_type, e.event_id))
                (applied if first else repeats)[e.event_type] += 1
        ports = (settings.worker_metrics_port, second.worker_metrics_port)
        per_worker = [by_type(port, "smsfunnel_join_events_total") for port in ports]
        assert all(sum(c.values()) > 0 for c in per_worker), per_worker  # both did a share
        assert per_worker[0] + per_worker[1] == applied
        duplicates = sum(
            (by_type(port, "smsfunnel_join_duplicate_events_total") for port in ports), Counter()
        )
        assert duplicates == repeats

        # each worker's lag per assigned input partition: none left, and no partition
        # exported by both
        lags = [samples(port, "smsfunnel_worker_consumer_lag_records") for port in ports]
        assert all(lags) and all(v == 0 for lag in lags for v in lag.values()), lags
        assert not set(lags[0]) & set(lags[1])
        opened = [samples(port, "smsfunnel_worker_partitions_opened_total") for port in ports]
        assert all(sum(o.values()) > 0 for o in opened), opened

        sink_port = settings.sink_http_port
        # the sink's lag: exported every second, nothing left once drained
        deadline = time.monotonic() + 30
        while True:
            sink_lag = samples(sink_port, "smsfunnel_sink_consumer_lag_records")
            if sink_lag and all(v == 0 for v in sink_lag.values()):
                break
            assert time.monotonic() < deadline, sink_lag
            time.sleep(0.2)
        written = samples(sink_port, "smsfunnel_sink_rows_written_total")['{table="funnel_rows"}']
        latency = samples(sink_port, "smsfunnel_sink_event_to_queryable_seconds_count")
        assert written > 0 and latency[""] == written
    finally:
        stop_service(other)
        stop_pipeline(pipeline)
        broker.stop()
