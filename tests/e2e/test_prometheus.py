"""A real Prometheus (Debian's) scraping the running pipeline with the configuration `smsfunnel
observe` writes: both targets up, and a PromQL query returns exactly the counters the services
export; the sink's event-to-queryable histogram counted every funnel row it wrote."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import httpx
import pytest

from infra.local_kafka import free_port
from producers.kafka_producer import EventProducer
from producers.workload import generate_campaign
from smsfunnel.observe import start_prometheus, write_config
from smsfunnel.processes import stop_service

from .conftest import Pipeline

pytestmark = pytest.mark.e2e


def exported(port: int) -> dict[str, float]:
    """Every sample of a service's /metrics, by its text (name and labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            sample, value = line.rsplit(" ", 1)
            out[sample] = float(value)
    return out


def test_prometheus_scrapes_the_pipeline(pipeline: Pipeline, tmp_path: Path) -> None:
    events = generate_campaign(60, seed=41, account="e2e-prometheus").events
    producer = EventProducer(pipeline.bootstrap)
    producer.send_many(events)
    producer.close()
    pipeline.drain()

    settings = pipeline.settings
    config = write_config(settings, tmp_path / "prometheus", interval="1s", jobs=("worker", "sink"))
    port = free_port()
    prometheus = start_prometheus(config, tmp_path / "data", port, tmp_path / "prometheus.log")
    api = f"http://127.0.0.1:{port}/api/v1/query"

    def query(promql: str) -> dict[str, float]:
        result = httpx.get(api, params={"query": promql}, timeout=5).json()["data"]["result"]
        return {str(r["metric"].get("job", "")): float(r["value"][1]) for r in result}

    try:
        sink = exported(settings.sink_http_port)  # drained: these no longer move
        rows = sink['smsfunnel_sink_rows_written_total{table="funnel_rows"}']
        assert rows > 0
        # every row written was observed once, at its insert
        assert sink["smsfunnel_sink_event_to_queryable_seconds_count"] == rows
        want = {
            "up": {"worker": 1.0, "sink": 1.0},
            'smsfunnel_sink_rows_written_total{table="funnel_rows"}': {"sink": rows},
            "smsfunnel_sink_event_to_queryable_seconds_count": {"sink": rows},
            "sum by (job) (smsfunnel_join_events_total)": {
                "worker": sum(
                    v
                    for k, v in exported(settings.worker_metrics_port).items()
                    if k.startswith("smsfunnel_join_events_total")
                )
            },
        }
        deadline = time.monotonic() + 60
        while True:
            assert prometheus.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            try:
                got = {promql: query(promql) for promql in want}
            except (httpx.HTTPError, KeyError, ValueError):
                got = {}
            if got == want or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert got == want
    finally:
        stop_service(prometheus)
