"""The join worker killed with SIGKILL - once at rest, once mid-stream - and restarted: its table
state comes back from the changelog and the results still equal ground truth. (The default
memory store; the RocksDB store fails this - see benchmarks/worker_kill_check.py.)"""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import AdminClient

from producers.kafka_producer import EventProducer
from producers.workload import generate_campaign
from schemas.topics import JOIN_INPUTS
from smsfunnel.drain import group_lag
from smsfunnel.report import campaign_summary
from tests.e2e.conftest import Pipeline
from tests.ground_truth import expected_messages, expected_variants

pytestmark = pytest.mark.e2e


def test_worker_killed_at_rest_and_mid_stream_recovers_to_ground_truth(pipeline: Pipeline) -> None:
    assert pipeline.settings.table_store == "memory"
    account = "e2e-worker-kill"
    workload = generate_campaign(3000, seed=41, account=account, duplicate_rate=0.1)
    events = workload.events
    first, second = events[: len(events) // 2], events[len(events) // 2 :]
    producer = EventProducer(pipeline.bootstrap)

    # 1. Half the events (many messages get only some of theirs), fully processed; then a kill.
    producer.send_many(first)
    producer.flush()
    pipeline.drain()
    pipeline.kill_worker()
    pipeline.restart_worker()

    # 2. The other half, and a kill while it is being processed.
    producer.send_many(second)
    producer.close()
    admin = AdminClient({"bootstrap.servers": pipeline.bootstrap})
    topics = [s.name for s in JOIN_INPUTS]
    start = group_lag(admin, pipeline.bootstrap, pipeline.settings.worker_id, topics)
    deadline = time.monotonic() + 120
    while group_lag(admin, pipeline.bootstrap, pipeline.settings.worker_id, topics) > start * 0.7:
        pipeline.alive()
        assert time.monotonic() < deadline, "the restarted worker made no progress"
        time.sleep(0.1)
    pipeline.kill_worker()
    pipeline.restart_worker()
    pipeline.drain(timeout=300)

    truth = expected_messages(events)
    rows = pipeline.query.rows(
        "SELECT message_id, version, delivery_status, human_clicks, conversions "
        "FROM funnel_rows FINAL WHERE account = {a:String}",
        {"a": account},
    )
    assert len(rows) == len(truth) == 3000
    for r in rows:
        want = truth[(account, r["message_id"])]
        assert r["version"] == want.distinct_events
        assert (r["delivery_status"], r["human_clicks"], r["conversions"]) == (
            want.delivery_status, want.human_clicks, len(want.conversions),
        )  # fmt: skip
    offline = expected_variants(truth)
    for s in campaign_summary(pipeline.query, account):
        want = offline[(account, s.campaign, s.variant)]
        assert (s.sent, s.delivered, s.unique_clicks, s.conversions, s.revenue) == (
            want.sent, want.delivered, want.clicked_messages, want.conversions, want.revenue,
        )  # fmt: skip
