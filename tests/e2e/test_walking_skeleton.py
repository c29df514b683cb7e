"""A shuffled, duplicated campaign through the real broker, the worker and the sink
(separate processes) into ClickHouse; SQL results must equal offline ground truth."""

from __future__ import annotations

import base64
import urllib.request
from decimal import Decimal

import orjson
import pytest

from producers.kafka_producer import EventProducer
from producers.workload import generate_campaign
from schemas.topics import CONVERSIONS, DELIVERY_RECEIPTS, SENDS
from smsfunnel.report import campaign_summary
from tests.e2e.conftest import Pipeline
from tests.ground_truth import expected_messages, expected_variants

pytestmark = pytest.mark.e2e


def test_shuffled_duplicated_campaign_equals_ground_truth(pipeline: Pipeline) -> None:
    account = "e2e-skeleton"
    workload = generate_campaign(3000, seed=21, account=account, duplicate_rate=0.15)
    producer = EventProducer(pipeline.bootstrap)
    producer.send_many(workload.events)
    producer.close()
    truth = expected_messages(workload.events)

    pipeline.drain()

    rows = pipeline.query.rows(
        "SELECT message_id, version, has_send, campaign, variant, segment, delivery_status, "
        "failure_cause, receipts, clicks, human_clicks, landings, engagements, conversions, "
        "discarded_conversions, revenue, toString(cost) AS cost, recipient_hash "
        "FROM funnel_rows FINAL WHERE account = {a:String}",
        {"a": account},
    )
    got = {r["message_id"]: r for r in rows}
    assert len(got) == len(truth) == 3000
    for (_, message_id), want in truth.items():
        r = got[message_id]
        assert r["version"] == want.distinct_events, message_id
        assert r["has_send"] is True
        assert (r["campaign"], r["variant"], r["segment"]) == (
            want.campaign,
            want.variant,
            want.segment,
        )
        assert r["delivery_status"] == want.delivery_status, message_id
        assert r["failure_cause"] == want.failure_cause, message_id
        assert (r["receipts"], r["clicks"], r["human_clicks"]) == (
            want.receipts,
            want.clicks,
            want.human_clicks,
        )
        assert (r["landings"], r["engagements"]) == (want.landings, want.engagements)
        assert (r["conversions"], r["discarded_conversions"]) == (
            len(want.conversions),
            want.discarded_conversions,
        )
        assert r["recipient_hash"] == want.recipient_hash
        assert {k: Decimal(v) for k, v in r["revenue"].items()} == want.revenue
        assert Decimal(r["cost"]) == want.cost

    # The hourly aggregates, through the report's own query, against the offline count …
    offline = expected_variants(truth)
    summaries = {(s.campaign, s.variant): s for s in campaign_summary(pipeline.query, account)}
    assert set(summaries) == {(c, v) for (_, c, v) in offline}
    for (_, campaign, variant), want in offline.items():
        s = summaries[(campaign, variant)]
        assert (s.sent, s.delivered, s.unique_clicks, s.clicks) == (
            want.sent,
            want.delivered,
            want.clicked_messages,
            want.clicks,
        )
        assert (s.converting, s.conversions) == (want.converting_messages, want.conversions)
        assert s.revenue == want.revenue and s.cost == want.cost
    # … and against the generator's own decisions.
    for (_, campaign, variant), t in workload.truth.items():
        s = summaries[(campaign, variant)]
        assert (s.sent, s.delivered, s.revenue) == (t.sent, t.delivered, t.revenue)
        assert (s.unique_clicks, s.clicks) == (t.clicked_messages, t.clicks)

    # Per-hour cohorts add up to the same totals (no row counted in two hours).
    hours = pipeline.query.rows(
        "SELECT send_hour, sum(sent) AS sent FROM funnel_hourly FINAL "
        "WHERE account = {a:String} GROUP BY send_hour",
        {"a": account},
    )
    assert len(hours) >= 6
    assert sum(h["sent"] for h in hours) == 3000


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_malformed_records_go_to_dead_letters_and_the_worker_goes_on(pipeline: Pipeline) -> None:
    account = "e2e-dead-letters"
    good = generate_campaign(5, seed=99, account=account, duplicate_rate=0.0).events
    good_ids = {e.message_id for e in good}
    conversion = {
        "event_type": "conversion",
        "event_id": "dl-neg",
        "account": account,
        "message_id": "dl-msg",
        "occurred_at": "2026-11-20T12:00:00Z",
        "order_id": "o",
        "amount": "-3.00",
        "currency": "USD",
    }
    wrong_key_send = good[0].model_dump(mode="json") | {"event_id": "dl-wrong-key"}
    poison = {
        "garbage": (SENDS.name, b"k", b"\x00\xffnot json at all"),
        "negative": (CONVERSIONS.name, b"dl-msg", orjson.dumps(conversion)),
        "wrong_key": (SENDS.name, b"some-other-key", orjson.dumps(wrong_key_send)),
        "empty": (DELIVERY_RECEIPTS.name, b"dl-msg", b""),
    }
    producer = EventProducer(pipeline.bootstrap)
    for topic, key, value in poison.values():
        producer.send_raw(topic, key, value)
    producer.send_many(good)  # after the poison, on the same topics and partitions
    producer.close()

    pipeline.drain()
    pipeline.alive()

    letters = pipeline.query.rows(
        "SELECT source_topic, payload_b64, reason FROM dead_letters FINAL "
        "WHERE stage = 'join' AND payload_b64 IN {p:Array(String)}",
        {"p": [_b64(v) for _, _, v in poison.values()]},
    )
    by_payload = {r["payload_b64"]: r for r in letters}
    reasons = {name: by_payload[_b64(v)]["reason"] for name, (_, _, v) in poison.items()}
    assert "invalid event" in reasons["garbage"] and "json" in reasons["garbage"].lower()
    assert "conversion.amount" in reasons["negative"]
    assert "is not the event's message_id" in reasons["wrong_key"]
    assert "invalid event" in reasons["empty"]
    assert by_payload[_b64(poison["negative"][2])]["source_topic"] == CONVERSIONS.name

    # SREs see it: the worker's dead-letter counter counts these four (and nothing else here
    # sends poison), by topic and reason.
    metrics = (
        urllib.request.urlopen(
            f"http://127.0.0.1:{pipeline.settings.worker_metrics_port}/metrics", timeout=5
        )
        .read()
        .decode()
    )
    counted = {
        line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("smsfunnel_join_dead_letters_total{")
    }
    assert counted == {
        f'reason="validation",topic="{SENDS.name}"': 1.0,
        f'reason="WrongPartitionKey",topic="{SENDS.name}"': 1.0,
        f'reason="validation",topic="{CONVERSIONS.name}"': 1.0,
        f'reason="validation",topic="{DELIVERY_RECEIPTS.name}"': 1.0,
    }

    rows = pipeline.query.rows(
        "SELECT message_id FROM funnel_rows FINAL WHERE account = {a:String} AND has_send",
        {"a": account},
    )
    assert {r["message_id"] for r in rows} == good_ids
    assert not any(r["message_id"] == "dl-msg" for r in rows)
