"""The demo generator's own ground truth agrees with an offline count of its events."""

from __future__ import annotations

from producers.workload import generate_campaign
from schemas.events import MessageEventBase
from tests.ground_truth import expected_messages, expected_variants


def test_generator_truth_matches_offline_count_of_its_events() -> None:
    workload = generate_campaign(3000, seed=11, account="acct")
    offline = expected_variants(expected_messages(workload.events))
    assert set(offline) == set(workload.truth)
    for key, t in workload.truth.items():
        o = offline[key]
        assert (o.sent, o.delivered, o.clicks, o.clicked_messages) == (
            t.sent,
            t.delivered,
            t.clicks,
            t.clicked_messages,
        )
        assert (o.human_clicks, o.landings, o.engagements) == (
            t.human_clicks,
            t.landings,
            t.engagements,
        )
        assert (o.converting_messages, o.conversions, o.revenue, o.cost) == (
            t.converting_messages,
            t.conversions,
            t.revenue,
            t.cost,
        )


def test_duplicates_and_shuffling_are_present() -> None:
    workload = generate_campaign(2000, seed=5, duplicate_rate=0.1)
    ids = [e.event_id for e in workload.events]
    assert len(set(ids)) == workload.distinct_events < len(ids)
    seen_send: set[str] = set()
    before_send = 0
    for e in workload.events:
        if not isinstance(e, MessageEventBase):
            continue
        if e.event_type == "send":
            seen_send.add(e.message_id)
        elif e.message_id not in seen_send:
            before_send += 1
    assert before_send > 100  # many receipts/clicks/conversions arrive before their send
    rates = sum(t.delivered for t in workload.truth.values()) / 2000
    assert 0.93 < rates < 0.99
