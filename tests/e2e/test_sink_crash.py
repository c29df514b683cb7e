"""The sink killed with SIGKILL mid-batch (rows inserted, offsets not committed) and at
arbitrary moments, restarted each time: ClickHouse totals still equal ground truth."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from infra.local_kafka import free_port
from producers.kafka_producer import EventProducer
from producers.workload import generate_campaign
from schemas.topics import SINK_INPUTS
from sinks.query_client import SinkQuery
from smsfunnel.drain import LagProbe, wait_until_drained
from smsfunnel.processes import settings_env, spawn_service, stop_service
from smsfunnel.report import campaign_summary
from tests.e2e.conftest import Pipeline, wait_http
from tests.ground_truth import expected_messages, expected_variants

pytestmark = pytest.mark.e2e


def test_sink_killed_mid_batch_recovers_to_ground_truth(pipeline: Pipeline, tmp_path: Path) -> None:

    account = "e2e-sink-kill"
    workload = generate_campaign(4000, seed=31, account=account)
    producer = EventProducer(pipeline.bootstrap)
    producer.send_many(workload.events)
    producer.close()
    pipeline.drain()  # every row version of the campaign is now on the funnel-rows topic

    # A second sink with its own store and group replays the whole topic in small batches.
    settings = pipeline.settings.model_copy(
        update={
            "clickhouse_dsn": f"chdb://{tmp_path / 'ch'}",
            "sink_group": "crash-test-sink",
            "sink_instance_id": "crash-test-sink-0",  # restarts take over at once
            "sink_http_port": free_port(),
            "sink_batch_rows": 1500,
            "sink_batch_seconds": 0.2,
        }
    )
    env = settings_env(settings, pipeline.bootstrap)
    logs = tmp_path / "logs"
    topics = [spec.name for spec in SINK_INPUTS]
    probe = LagProbe(pipeline.bootstrap)

    spawned = []
    try:
        # 1-2: the sink kills itself right after an insert, before committing its offsets.
        for nth in (2, 3):
            failing = env | {"SMSFUNNEL_FAILPOINT": f"sink.after_insert:{nth}"}
            spawned.append(spawn_service("sink", failing, logs))
            assert spawned[-1].wait(timeout=120) == -signal.SIGKILL

        # 3: killed from outside at an arbitrary moment, once it has made some progress.
        before = probe.lag(settings.sink_group, topics)
        spawned.append(sink := spawn_service("sink", env, logs))
        deadline = time.monotonic() + 120
        while probe.lag(settings.sink_group, topics) >= before:
            assert sink.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        sink.send_signal(signal.SIGKILL)
        sink.wait()
    finally:
        for proc in spawned:
            stop_service(proc)

    # 4: a clean run catches up.
    sink = spawn_service("sink", env, logs)
    try:
        url = f"http://127.0.0.1:{settings.sink_http_port}"
        wait_http(url + "/health", 60, lambda: None)
        wait_until_drained(pipeline.bootstrap, [(settings.sink_group, topics)], timeout=180)
        query = SinkQuery(url)
        truth = expected_variants(expected_messages(workload.events))
        summaries = {(s.campaign, s.variant): s for s in campaign_summary(query, account)}
        for (_, campaign, variant), want in truth.items():
            s = summaries[(campaign, variant)]
            assert (s.sent, s.delivered, s.unique_clicks, s.clicks) == (
                want.sent,
                want.delivered,
                want.clicked_messages,
                want.clicks,
            )
            assert (s.conversions, s.revenue, s.cost) == (want.conversions, want.revenue, want.cost)
        (count,) = query.rows(
            "SELECT count() AS n, uniqExact(message_id) AS u FROM funnel_rows FINAL "
            "WHERE account = {a:String}",
            {"a": account},
        )
        assert count["n"] == count["u"] == 4000
    finally:
        stop_service(sink)
