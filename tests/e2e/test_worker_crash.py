"""The join worker killed with SIGKILL - once at rest, once mid-stream - and restarted: its state
comes back from its local store and the changelog (up to the last committed checkpoint), and
every message's row in ClickHouse equals ground truth (version = its distinct events), as do the
campaign totals."""

from __future__ import annotations

import time

import pytest

from producers.kafka_producer import EventProducer
from producers.workload import generate_campaign
from schemas.topics import JOIN_INPUTS
from smsfunnel.drain import LagProbe
from tests.e2e.conftest import (
    Pipeline,
    assert_after_window_conversions_are_late,
    assert_campaign_totals,
    assert_rows_match_ground_truth,
)

pytestmark = pytest.mark.e2e


def test_worker_killed_at_rest_and_mid_stream_recovers_to_ground_truth(pipeline: Pipeline) -> None:
    account = "e2e-worker-kill"
    workload = generate_campaign(3000, seed=41, account=account, duplicate_rate=0.1)
    events = workload.events
    first, second = events[: len(events) // 2], events[len(events) // 2 :]
    producer = EventProducer(pipeline.bootstrap)
    topics = [s.name for s in JOIN_INPUTS]

    # 1. Half the events (many messages get only some of theirs), fully processed; a kill.
    producer.send_many(first)
    producer.flush()
    pipeline.drain()
    pipeline.kill_worker()
    pipeline.restart_worker()

    # 2. The other half, and a kill while the restarted worker is part way through it.
    producer.send_many(second)
    producer.close()
    with LagProbe(pipeline.bootstrap) as probe:
        start = probe.lag(pipeline.settings.worker_id, topics)
        deadline = time.monotonic() + 180
        while (left := probe.lag(pipeline.settings.worker_id, topics)) > start * 0.7:
            pipeline.alive()
            assert time.monotonic() < deadline, "the restarted worker made no progress"
            time.sleep(0.1)
    pipeline.kill_worker()
    assert 0 < left < start, (left, start)  # killed mid-stream, not at rest
    pipeline.restart_worker()
    pipeline.drain(timeout=300)

    truth = assert_rows_match_ground_truth(pipeline, account, events, 3000)
    assert_campaign_totals(pipeline, account, truth)
    assert_after_window_conversions_are_late(pipeline, account, events)
