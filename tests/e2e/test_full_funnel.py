"""Every event type through the real broker, the join, the attribution stage and the sink;
credits under all five models and opt-out attribution checked in SQL against ground truth
computed here, in the plain way (Fractions for exact weights, floats for time decay)."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from producers.kafka_producer import EventProducer
from producers.workload import generate_campaign
from schemas.events import InboundEvent
from tests.e2e.conftest import Pipeline, assert_credits_match_ground_truth
from tests.ground_truth import expected_attribution

pytestmark = pytest.mark.e2e
ACCOUNT = "e2e-full-funnel"


def test_every_event_type_and_attribution_equal_ground_truth(pipeline: Pipeline) -> None:
    workload = generate_campaign(2500, seed=5, account=ACCOUNT, duplicate_rate=0.1)
    kinds = Counter(e.event_type for e in workload.events)
    assert set(kinds) == {
        "send",
        "delivery_receipt",
        "click",
        "landing",
        "engagement",
        "conversion",
        "subscriber_conversion",
        "inbound",
    }
    producer = EventProducer(pipeline.bootstrap)
    producer.send_many(workload.events)
    producer.close()
    messages, attribution = expected_attribution(workload.events)

    pipeline.drain()

    attributed = assert_credits_match_ground_truth(pipeline, ACCOUNT, attribution)
    assert len(attribution) > 20
    assert attributed >= 10  # the campaign yields real multi-message journeys, not only empties

    # Opt-outs and replies go to the last message that sender delivered before them.
    deliveries = defaultdict(list)
    for m in messages.values():
        if m.delivered_at is not None:
            deliveries[m.recipient_hash].append((m.delivered_at, m.message_id))
    expected_opt_outs: Counter[str] = Counter()
    inbound = {e.event_id: e for e in workload.events if isinstance(e, InboundEvent)}
    for e in inbound.values():
        before = sorted(d for d in deliveries[e.recipient_hash] if d[0] <= e.occurred_at)
        if e.kind.value == "opt_out":
            expected_opt_outs[before[-1][1] if before else ""] += 1
    responses = pipeline.query.rows(
        "SELECT message_id, sum(opt_outs) AS opt_outs FROM message_responses FINAL "
        "WHERE account = {a:String} GROUP BY message_id HAVING opt_outs > 0",
        {"a": ACCOUNT},
    )
    assert {r["message_id"]: r["opt_outs"] for r in responses} == dict(expected_opt_outs)
    assert sum(expected_opt_outs.values()) >= 5

    # Funnel stages per campaign from the hourly aggregates.
    per_campaign = pipeline.query.rows(
        "SELECT campaign, sum(human_clicks) AS h, sum(landings) AS l, sum(engagements) AS e "
        "FROM funnel_hourly FINAL WHERE account = {a:String} GROUP BY campaign",
        {"a": ACCOUNT},
    )
    want_stages: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for m in messages.values():
        stage = want_stages[m.campaign]
        stage[0] += m.human_clicks
        stage[1] += m.landings
        stage[2] += m.engagements
    assert {r["campaign"]: [r["h"], r["l"], r["e"]] for r in per_campaign} == dict(want_stages)
