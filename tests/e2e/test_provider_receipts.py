"""Receipts that name only the provider's message id find their message through the id the send
recorded - in another spelling, and even when they arrive before the send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from producers.kafka_producer import EventProducer
from schemas.delivery_status import DeliveryStatus, FailureCause
from schemas.events import ProviderReceiptEvent, SendEvent
from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e
ACCOUNT = "e2e-resolver"
# recent: the shared pipeline also sees events stamped now, and older ones would be late
T0 = (datetime.now(UTC) - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)


def send(message_id: str, provider: str, ids: tuple[str, ...]) -> SendEvent:
    return SendEvent(
        event_id=f"send-{message_id}",
        account=ACCOUNT,
        message_id=message_id,
        occurred_at=T0,
        campaign="resolver",
        sender="72345",
        recipient_hash="cd" * 32,
        country="US",
        parts=max(1, len(ids)),
        provider=provider,
        provider_message_ids=ids,
    )


def receipt(
    event_id: str, provider: str, provider_id: str, status: DeliveryStatus, **kw
) -> ProviderReceiptEvent:  # type: ignore[no-untyped-def]
    return ProviderReceiptEvent(
        event_id=event_id,
        account=ACCOUNT,
        occurred_at=T0 + timedelta(seconds=30),
        provider=provider,
        provider_message_id=provider_id,
        status=status,
        **kw,
    )


def test_receipts_by_provider_id_reach_their_message(pipeline: Pipeline) -> None:
    producer = EventProducer(pipeline.bootstrap)
    # m1: the gateway reports the SMSC id in decimal, the send had it in hex; receipt first.
    producer.send(receipt("r1", "smpp:gw1", "1715004", DeliveryStatus.DELIVERED))
    producer.send(receipt("r1", "smpp:gw1", "1715004", DeliveryStatus.DELIVERED))  # retried
    # A receipt for an id no send ever had: held, never attached to a message.
    producer.send(receipt("r-orphan", "smpp:gw1", "99999999", DeliveryStatus.DELIVERED))
    producer.flush()
    producer.send(send("m1", "smpp:gw1", ("001A2B3C",)))
    # m2: a Twilio SID in another case, after the send.
    producer.send(send("m2", "twilio", ("SMabc123",)))
    producer.send(
        receipt(
            "r2",
            "twilio",
            "smABC123",
            DeliveryStatus.UNDELIVERED,
            failure_cause=FailureCause.CARRIER_FILTERED,
            error_code="30007",
        )
    )
    # m3: two parts, each receipt by its part's id: delivered only with both.
    producer.send(send("m3", "vonage", ("part-a", "part-b")))
    producer.send(receipt("r3a", "vonage", "part-a", DeliveryStatus.DELIVERED))
    producer.send(receipt("r3b", "vonage", "part-b", DeliveryStatus.DELIVERED))
    # m4: two parts, one delivered: still submitted.
    producer.send(send("m4", "vonage", ("part-c", "part-d")))
    producer.send(receipt("r4c", "vonage", "part-c", DeliveryStatus.DELIVERED))
    producer.close()

    pipeline.drain()

    rows = pipeline.query.rows(
        "SELECT message_id, delivery_status, failure_cause, receipts FROM funnel_rows FINAL "
        "WHERE account = {a:String} ORDER BY message_id",
        {"a": ACCOUNT},
    )
    assert [
        (r["message_id"], r["delivery_status"], r["failure_cause"], r["receipts"]) for r in rows
    ] == [
        ("m1", "delivered", "", 1),
        ("m2", "undelivered", "carrier_filtered", 1),
        ("m3", "delivered", "", 2),
        ("m4", "submitted", "", 1),
    ]
