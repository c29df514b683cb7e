"""Event time on the real broker: a flash-sale campaign (24 h window) whose states are evicted
once the watermark passes their horizon plus the allowed lateness (1 h here), across a worker
restart (the eviction schedule is rebuilt from the restored table); an event past the horizon,
an orphan click and a straggler that arrives after eviction all land in ClickHouse's
late_events with their reasons, and none of them changes a funnel row. The attribution stage
retires the old part of a subscriber's state (a flash message sent five days ago) and still
attributes an opt-out today to that message, the last one its sender delivered."""

from __future__ import annotations

import hashlib
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from infra.local_kafka import LocalKafka
from producers.kafka_producer import EventProducer
from schemas.delivery_status import DeliveryStatus
from schemas.events import (
    ClickEvent,
    DeliveryReceiptEvent,
    EventBase,
    InboundEvent,
    InboundKind,
    SendEvent,
)
from schemas.topics import SENDS

from .conftest import (
    Pipeline,
    edge_settings,
    log_tail,
    metric_value,
    read_topic,
    start_pipeline,
    stop_pipeline,
)

pytestmark = pytest.mark.e2e

ACCOUNT = "e2e-time"


def flash_send(n: int, at: datetime, account: str = ACCOUNT, window: int | None = 24) -> SendEvent:
    return SendEvent(
        account=account,
        message_id=f"{account}-m{n}",
        event_id=f"{account}-s{n}",
        occurred_at=at,
        campaign="flash",
        sender="12345",
        recipient_hash=hashlib.sha256(f"r{n}".encode()).hexdigest(),
        country="US",
        cost=Decimal("0.01"),
        attribution_window_hours=window,
    )


def click(event_id: str, message_id: str, at: datetime) -> ClickEvent:
    return ClickEvent(
        account=ACCOUNT,
        message_id=message_id,
        event_id=event_id,
        occurred_at=at,
        click_id=f"k-{event_id}",
        user_agent="Mozilla/5.0",
    )


def join_diagnostics(port: int, pipeline: Pipeline) -> str:
    """The worker's join samples (watermark per partition, schedule entries, evictions) and the
    tail of its log."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        samples = [
            line
            for line in resp.read().decode().splitlines()
            if line.startswith(("smsfunnel_join_", "smsfunnel_worker_"))
        ]
    log = log_tail(pipeline.logs / "worker.log", 80)
    return "\n".join([*samples, "--- worker.log ---", log])


def test_eviction_and_late_events_end_to_end(kafka_lib: Path, tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path / "kafka", heap="512m", lib=kafka_lib)
    address = broker.start().address
    settings = edge_settings(address, tmp_path / "state", allowed_lateness_hours=1.0)
    now = datetime.now(UTC).replace(microsecond=0)
    old = now - timedelta(days=3)  # horizon old + 48 h, evicted once the watermark > old + 49 h
    messages = 40
    campaign: list[EventBase] = []
    for n in range(messages):
        s = flash_send(n, old + timedelta(seconds=n))
        campaign.append(s)
        campaign.append(
            DeliveryReceiptEvent(
                account=ACCOUNT,
                message_id=s.message_id,
                event_id=f"d{n}",
                occurred_at=s.occurred_at + timedelta(minutes=1),
                status=DeliveryStatus.DELIVERED,
            )
        )
        if n % 2 == 0:
            campaign.append(click(f"c{n}", s.message_id, old + timedelta(hours=1)))
    # after the horizon (old + 48 h), before the due time (old + 49 h): moves no eviction yet
    past = click("past", f"{ACCOUNT}-m0", old + timedelta(hours=48, minutes=30))
    orphan = click("ghost-click", f"{ACCOUNT}-ghost", old + timedelta(hours=1))
    straggler = click("straggler", f"{ACCOUNT}-m1", old + timedelta(minutes=30))
    # One subscriber of another account, texted by the flash campaign five days ago, on a
    # partition none of the campaign's messages share (checked below). On a partition of the
    # campaign its receipt, if read before its send, would be held as an orphan whose hour of
    # grace the campaign's clicks had already passed, and written out as one (seen in CI: 40
    # messages evicted, not 41); that is the allowed lateness at work, not what this test is of.
    subscriber_send = flash_send(27, now - timedelta(days=5), "e2e-subs")
    subscriber_delivery = DeliveryReceiptEvent(
        account="e2e-subs",
        message_id=subscriber_send.message_id,
        event_id="subs-d0",
        occurred_at=subscriber_send.occurred_at + timedelta(minutes=1),
        status=DeliveryStatus.DELIVERED,
    )

    pipeline = None
    producer = EventProducer(address)
    try:
        pipeline = start_pipeline(settings, address)
        producer.send_many([*campaign, past, orphan, subscriber_send, subscriber_delivery])
        producer.flush()
        pipeline.drain()
        sends = read_topic(address, SENDS.name, lambda r: len(r) == messages + 1)
        partition = {r["message_id"]: r["_partition"] for r in sends}
        campaign_partitions = {partition[f"{ACCOUNT}-m{n}"] for n in range(messages)}
        assert partition[subscriber_send.message_id] not in campaign_partitions

        # A restart: the new worker must rebuild its eviction schedule from the table.
        pipeline.restart_worker()

        # Traffic at the present moves every partition's watermark past the campaign's due.
        ticks = [flash_send(n, now - timedelta(minutes=10), "e2e-tick", None) for n in range(200)]
        producer.send_many(ticks)
        producer.flush()
        pipeline.drain()
        # Evictions happen while the ticks are processed; the restarted worker did them all,
        # from the schedule it rebuilt (40 campaign messages; ticks are not due for days).
        port = settings.worker_metrics_port
        evicted = metric_value(port, "smsfunnel_join_states_evicted_total", 'kind="message"')
        # and the other account's five-day-old message; on failure, each partition's watermark
        # and the schedule say which partition kept its states
        assert evicted == messages + 1, join_diagnostics(port, pipeline)
        assert metric_value(port, "smsfunnel_join_states_evicted_total", 'kind="orphan"') == 1

        producer.send(straggler)  # inside the horizon, but later than the allowed lateness
        producer.flush()
        pipeline.drain()

        q = pipeline.query
        late = q.rows(
            "SELECT event_id, reason, event_type, campaign, payload FROM late_events FINAL "
            "WHERE account = {a:String} ORDER BY event_id",
            {"a": ACCOUNT},
        )
        assert [(r["event_id"], r["reason"], r["event_type"]) for r in late] == [
            ("ghost-click", "orphan", "click"),
            ("past", "after_window", "click"),
            ("straggler", "window_closed", "click"),
        ]
        by_id = {r["event_id"]: r for r in late}
        assert by_id["past"]["campaign"] == "flash"
        assert orjson.loads(by_id["straggler"]["payload"])["event_id"] == "straggler"

        rows = q.rows(
            "SELECT count() AS n, sum(clicks) AS clicks, sum(has_send) AS sent, "
            "countIf(delivery_status = 'delivered') AS delivered FROM funnel_rows FINAL "
            "WHERE account = {a:String} AND has_send",
            {"a": ACCOUNT},
        )
        assert rows[0] == {
            "n": messages,
            "clicks": messages // 2,
            "sent": messages,
            "delivered": messages,
        }
        summary = q.rows(
            "SELECT reason, sum(events) AS n FROM late_event_summary WHERE account = {a:String} "
            "GROUP BY reason ORDER BY reason",
            {"a": ACCOUNT},
        )
        assert [(r["reason"], r["n"]) for r in summary] == [
            ("after_window", 1),
            ("orphan", 1),
            ("window_closed", 1),
        ]

        # The subscriber opts out today. The stage retires the message's snapshot (its reach,
        # send + 3 x 24 h, is two days behind the subscriber's clock) once its changes are
        # committed and the worker has read those commits (every stall check), so opt-outs are
        # sent until the retirement shows; each must still answer that message.
        opt_outs = 0
        deadline = time.monotonic() + 120
        retired = 'part="stripped"'
        while metric_value(port, "smsfunnel_attribution_retired_total", retired) < 1:
            assert time.monotonic() < deadline, "the subscriber's old message was never retired"
            producer.send(
                InboundEvent(
                    account="e2e-subs",
                    event_id=f"subs-stop-{opt_outs}",
                    occurred_at=now - timedelta(minutes=5) + timedelta(seconds=opt_outs),
                    recipient_hash=subscriber_send.recipient_hash,
                    sender=subscriber_send.sender,
                    kind=InboundKind.OPT_OUT,
                )
            )
            producer.flush()
            opt_outs += 1
            pipeline.drain()
            time.sleep(1)
        answered = q.rows(
            "SELECT message_id, opt_outs FROM message_responses FINAL "
            "WHERE account = 'e2e-subs' AND opt_outs > 0"
        )
        assert answered == [{"message_id": subscriber_send.message_id, "opt_outs": opt_outs}]
    finally:
        producer.close()
        if pipeline is not None:
            stop_pipeline(pipeline)
        broker.stop()
