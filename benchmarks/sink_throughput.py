"""Benchmark (not a test): how many funnel rows per second the sink writes into the embedded
ClickHouse engine, batches and offsets included.

Produces N versioned funnel rows onto a throwaway broker's funnel-rows topic first, then starts
the sink and times it from its first answer on /health until its consumer group has committed
the whole topic; checks the row count in ClickHouse afterwards.

    PYTHONPATH=. .venv/bin/python benchmarks/sink_throughput.py [--rows 300000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from infra.local_kafka import LocalKafka, free_port
from infra.topics import provision_topics
from producers.kafka_producer import EventProducer
from schemas.delivery_status import DeliveryStatus
from schemas.funnel_row import FunnelRow
from schemas.topics import FUNNEL_ROWS
from sinks.query_client import SinkQuery
from smsfunnel.drain import wait_until_drained
from smsfunnel.processes import settings_env, spawn_service, stop_service
from smsfunnel.settings import PROJECT_ROOT, Settings

LIB = PROJECT_ROOT / ".smsfunnel" / "kafka" / "lib"


def rows(n: int) -> list[tuple[bytes, bytes]]:
    start = datetime(2026, 11, 20, 9, tzinfo=UTC)
    out = []
    for i in range(n):
        message_id = str(uuid.UUID(int=i))
        at = start + timedelta(seconds=i % 21_600)
        row = FunnelRow(
            account="bench",
            message_id=message_id,
            version=3,
            has_send=True,
            campaign=f"c{i % 20}",
            variant="AB"[i % 2],
            segment=f"s{i % 5}",
            sender="72345",
            recipient_hash=f"{i:064x}",
            country="US",
            carrier="att",
            sent_at=at,
            recipient_timezone="America/Los_Angeles",
            send_local_hour=at.hour,
            send_local_weekday=5,
            parts=1,
            cost=Decimal("0.0079"),
            cost_currency="USD",
            delivery_status=DeliveryStatus.DELIVERED,
            delivery_status_at=at + timedelta(seconds=20),
            receipts=1,
            clicks=i % 10 == 0,
            human_clicks=i % 10 == 0,
            first_event_at=at,
            last_event_at=at + timedelta(seconds=20),
        )
        out.append((message_id.encode(), row.to_json()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = LocalKafka(root / "kafka", heap="512m", lib=LIB)
        bootstrap = broker.start().address
        settings = Settings(
            state_dir=root / "state", kafka_bootstrap=bootstrap, sink_http_port=free_port()
        )
        provision_topics(bootstrap, settings.partitions, settings.worker_id)
        producer = EventProducer(bootstrap)
        for key, value in rows(args.rows):
            producer.send_raw(FUNNEL_ROWS.name, key, value)
        producer.flush()
        sink = spawn_service("sink", settings_env(settings, bootstrap), root / "logs")
        url = f"http://127.0.0.1:{settings.sink_http_port}"
        try:
            while True:
                try:
                    urllib.request.urlopen(url + "/health", timeout=1).close()
                    break
                except OSError:
                    assert sink.poll() is None, "sink died"
                    time.sleep(0.05)
            t0 = time.monotonic()
            wait_until_drained(
                bootstrap, [(settings.sink_group, [FUNNEL_ROWS.name])], 900, poll_seconds=0.2
            )
            elapsed = time.monotonic() - t0
            (count,) = SinkQuery(url).rows("SELECT count() AS n FROM funnel_rows FINAL")
        finally:
            stop_service(sink)
            broker.stop()
    print(
        f"sink: {args.rows:,} funnel rows in {elapsed:.1f} s = {args.rows / elapsed:,.0f} rows/s "
        f"(batches of up to {settings.sink_batch_rows:,} rows / {settings.sink_batch_seconds:g} s, "
        f"hourly aggregates recomputed per batch); rows in ClickHouse: {count['n']:,}"
    )


if __name__ == "__main__":
    main()
