"""Broker outages.

Acknowledgement means durable (DESIGN.md, contract 5): with the broker stopped a postback gets
503; once the broker is back, the sender's retries end in one 2xx, and the conversion is counted
exactly once in ClickHouse, whatever the refused attempts left behind.

The sink rides out an outage that starts between its ClickHouse insert and its offset commit
(the moment CI once caught by chance, when the sink exited on the failed commit): it stays up,
commits once the broker is back, and the totals equal ground truth.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from infra.local_kafka import LocalKafka
from infra.topics import provision_topics
from producers.kafka_producer import EventProducer
from producers.tracking_links import new_click_id, sign_token
from producers.workload import generate_campaign
from schemas.links import LinkRegistration
from schemas.topics import CLICKS, LINKS
from smsfunnel.processes import settings_env, spawn_service, stop_service
from smsfunnel.report import campaign_summary
from tests.ground_truth import expected_messages, expected_variants

from .conftest import (
    LINK_KEY,
    edge_settings,
    metric_value,
    read_topic,
    start_pipeline,
    stop_pipeline,
    wait_http,
)

pytestmark = pytest.mark.e2e


def test_postback_gets_503_while_kafka_is_down_and_counts_once_after(
    kafka_lib: Path, tmp_path: Path
) -> None:
    broker = LocalKafka(tmp_path / "kafka", heap="512m", lib=kafka_lib)
    address = broker.start().address
    settings = edge_settings(address, tmp_path / "state")
    pipeline = None
    ingest = None
    try:
        pipeline = start_pipeline(settings, address)  # provisions the topics too
        ingest = spawn_service("ingest", settings_env(settings, address), tmp_path / "logs")
        url = f"http://127.0.0.1:{settings.ingest_http_port}"
        wait_http(url + "/health", 60, lambda: None)

        message_id = str(uuid.uuid4())
        send = {
            "message_id": message_id,
            # recent: the postback is stamped now, and must fall inside the send's horizon
            "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "campaign": "outage",
            "sender": "12345",
            "to": "+14155550142",
        }
        headers = {"Authorization": "Bearer acme-api-key"}
        resp = httpx.post(f"{url}/v1/accounts/acme/sends", json={"sends": [send]}, headers=headers)
        assert resp.status_code == 202, resp.text
        # the click id the redirector would have appended for this message
        click_id = new_click_id(sign_token(LINK_KEY.encode(), "acme", "lnkOUT", message_id))
        postback = {
            "click_id": click_id,
            "order_id": f"o-{message_id}",
            "amount": "25.00",
            "currency": "USD",
            "secret": "acme-postback-secret",
        }

        broker.stop()
        down = httpx.get(f"{url}/postbacks/acme/conversion", params=postback, timeout=30)
        assert down.status_code == 503, down.text
        assert "Kafka unavailable" in down.text and down.headers.get("retry-after")

        broker.start()  # same data directory, same ports when free
        answers = []
        deadline = time.monotonic() + 90
        while True:  # the sender retries until it gets a 2xx, as Twilio or Everflow would
            answers.append(
                httpx.get(
                    f"{url}/postbacks/acme/conversion", params=postback, timeout=30
                ).status_code
            )
            if answers[-1] < 300 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert answers[-1] == 204, answers
        assert set(answers[:-1]) <= {503}, answers

        pipeline.drain(timeout=180)
        rows = pipeline.query.rows(
            "SELECT conversions, revenue['USD'] AS usd FROM funnel_rows FINAL "
            "WHERE account = 'acme' AND message_id = {m:String}",
            {"m": message_id},
        )
        assert len(rows) == 1, rows
        assert rows[0]["conversions"] == 1
        assert Decimal(str(rows[0]["usd"])) == Decimal("25.00")
    finally:
        if ingest is not None:
            stop_service(ingest)
        if pipeline is not None:
            stop_pipeline(pipeline)
        broker.stop()


def test_sink_survives_broker_outage_between_insert_and_commit(
    kafka_lib: Path, tmp_path: Path
) -> None:
    broker = LocalKafka(tmp_path / "kafka", heap="512m", lib=kafka_lib)
    address = broker.start().address
    settings = edge_settings(address, tmp_path / "state")
    gate = tmp_path / "gate"
    gate.mkdir()
    account = "outage-sink"
    workload = generate_campaign(300, seed=77, account=account)
    pipeline = None
    try:
        # The sink stops right after its first ClickHouse insert, before committing.
        pipeline = start_pipeline(
            settings, address, {"SMSFUNNEL_FAILPOINT": f"sink.after_insert:1:pause={gate}"}
        )
        producer = EventProducer(address)
        producer.send_many(workload.events)
        producer.close()

        deadline = time.monotonic() + 120
        while not (gate / "sink.after_insert.reached").exists():
            pipeline.alive()
            assert time.monotonic() < deadline, "the sink never wrote a first batch"
            time.sleep(0.05)

        broker.stop()
        (gate / "sink.after_insert.release").touch()
        metric = "smsfunnel_sink_commit_failures_total"
        deadline = time.monotonic() + 60
        while metric_value(settings.sink_http_port, metric, 'action="retried"') < 1:
            pipeline.alive()  # before the fix the sink exited here with the commit's exception
            assert time.monotonic() < deadline, "the commit never failed with the broker away"
            time.sleep(0.1)

        broker.start()
        pipeline.drain(timeout=240)
        pipeline.alive()
        # Drained means Kafka holds every commit; the sink hears so at its next poll, and owes
        # nothing (the batches written after the restart were owed until then).
        gauge = "smsfunnel_sink_uncommitted_partitions"
        deadline = time.monotonic() + 30
        while metric_value(settings.sink_http_port, gauge, "") != 0:
            assert time.monotonic() < deadline, "the sink still counts partitions uncommitted"
            time.sleep(0.1)

        truth = expected_variants(expected_messages(workload.events))
        summaries = {(s.campaign, s.variant): s for s in campaign_summary(pipeline.query, account)}
        assert len(summaries) == len(truth)
        for (_, campaign, variant), want in truth.items():
            s = summaries[(campaign, variant)]
            assert (s.sent, s.delivered, s.clicks, s.conversions, s.revenue) == (
                want.sent,
                want.delivered,
                want.clicks,
                want.conversions,
                want.revenue,
            )
    finally:
        if pipeline is not None:
            stop_pipeline(pipeline)
        broker.stop()


@pytest.mark.parametrize("impl", ["go", "python"])
def test_redirector_keeps_redirecting_while_kafka_is_down_and_delivers_after(
    kafka_lib: Path, tmp_path: Path, impl: str
) -> None:
    """A person tapping a link never waits on Kafka: with the broker stopped every request still
    gets its 302, the clicks wait in the producer's buffer (shown by the buffered-clicks gauge),
    and once the broker is back each one is on the clicks topic exactly once."""
    broker = LocalKafka(tmp_path / "kafka", heap="512m", lib=kafka_lib)
    address = broker.start().address
    settings = edge_settings(address, tmp_path / "state", redirector_impl=impl)
    provision_topics(address, settings.partitions, settings.worker_id)
    link = LinkRegistration(
        link_id="lnkDOWN",
        account="acme",
        destination="https://shop.example/down?utm_source=sms",
        registered_at=datetime.now(UTC),
    )
    producer = EventProducer(address)
    producer.send_raw(LINKS.name, link.link_id.encode(), link.to_json())
    producer.close()
    redirector = spawn_service("redirector", settings_env(settings, address), tmp_path / "logs")
    url = settings.redirector_base_url

    def alive() -> None:
        assert redirector.poll() is None, f"redirector died; logs in {tmp_path / 'logs'}"

    try:
        wait_http(url + "/health", 60, alive)
        tokens = [
            sign_token(LINK_KEY.encode(), "acme", link.link_id, str(uuid.uuid4()))
            for _ in range(20)
        ]
        first = httpx.get(f"{url}/{tokens[0]}", follow_redirects=False)
        assert first.status_code == 302, first.text
        click_ids = [parse_qs(urlsplit(first.headers["location"]).query)["smsclid"][0]]

        broker.stop()
        for token in tokens[1:]:
            # a redirector that waited on Kafka would hang here until the broker came back
            resp = httpx.get(f"{url}/{token}", follow_redirects=False, timeout=10)
            assert resp.status_code == 302, resp.text
            click_ids.append(parse_qs(urlsplit(resp.headers["location"]).query)["smsclid"][0])
        buffered = metric_value(
            settings.redirector_port, "smsfunnel_redirector_clicks_buffered", ""
        )
        assert buffered >= len(tokens) - 1, buffered

        broker.start()
        records = read_topic(
            address,
            CLICKS.name,
            lambda rs: set(click_ids) <= {r["event_id"] for r in rs},
            timeout=120,
        )
        delivered = Counter(r["event_id"] for r in records)
        assert {c: delivered[c] for c in click_ids} == dict.fromkeys(click_ids, 1)
        assert (
            metric_value(settings.redirector_port, "smsfunnel_redirector_clicks_lost_total", "")
            == 0
        )
        alive()
    finally:
        stop_service(redirector)
        broker.stop()
