"""The worker's state store (Quix Streams' RocksDB, one store per stage and partition) across
restarts: a campaign whose events arrive in two halves, with the worker stopped and restarted
between them and once SIGKILLed at rest; every message's row then equals ground truth, so the
state of the first half came back (from the local RocksDB files and the changelog)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.local_kafka import LocalKafka
from producers.kafka_producer import EventProducer
from producers.workload import generate_campaign

from .conftest import (
    assert_rows_match_ground_truth,
    edge_settings,
    start_pipeline,
    stop_pipeline,
)

pytestmark = pytest.mark.e2e


def test_rocksdb_store_keeps_state_across_restarts(kafka_lib: Path, tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path / "kafka", heap="512m", lib=kafka_lib)
    address = broker.start().address
    settings = edge_settings(address, tmp_path / "state")
    account = "e2e-rocksdb"
    workload = generate_campaign(600, seed=53, account=account, duplicate_rate=0.1)
    events = workload.events
    first, second = events[: len(events) // 2], events[len(events) // 2 :]
    pipeline = None
    producer = EventProducer(address)
    try:
        pipeline = start_pipeline(settings, address)
        producer.send_many(first)
        producer.flush()
        pipeline.drain()
        # RocksDB's CURRENT file, one per store partition the worker opened
        databases = list((settings.state_dir / "quix").rglob("CURRENT"))
        assert databases, "no RocksDB files: the worker kept no local state"

        pipeline.restart_worker()  # graceful
        pipeline.drain()
        pipeline.kill_worker()  # SIGKILL at rest
        pipeline.restart_worker()

        producer.send_many(second)
        producer.flush()
        pipeline.drain(timeout=240)

        assert_rows_match_ground_truth(pipeline, account, events, 600)
    finally:
        producer.close()
        if pipeline is not None:
            stop_pipeline(pipeline)
        broker.stop()
