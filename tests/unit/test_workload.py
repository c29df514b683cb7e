"""The demo generator's own ground truth agrees with an offline count of its events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from producers.workload import default_start, generate_campaign
from schemas.events import MessageEventBase
from smsfunnel.settings import Settings
from stream_processors.eviction import MAX_FUTURE_SKEW
from stream_processors.message_state import ORPHAN_GRACE
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
        assert o.after_window_conversions == t.after_window_conversions
    # the 24 h black-friday window leaves some conversions after it (30 h at most): both
    # counts agree on them, and they are not nothing
    assert sum(t.after_window_conversions for t in workload.truth.values()) > 0


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


@pytest.mark.parametrize("hour", range(24))
def test_default_campaign_is_never_late_against_a_watermark_at_now(hour: int) -> None:
    """A pipeline that has seen events stamped now has its watermark at up to now plus the
    future skew; a message first seen (before its send) more than the lateness plus the orphan
    grace behind that is evicted on arrival. The default campaign must stay clear of that at
    every hour of the day, and not lie in the future beyond the skew's reach of an hour."""
    lateness = timedelta(hours=Settings().allowed_lateness_hours)
    for minute in (0, 59):
        now = datetime(2026, 12, 3, hour, minute, 30, tzinfo=UTC)
        events = generate_campaign(400, seed=hour, start=default_start(now)).events
        oldest = min(e.occurred_at for e in events)
        newest = max(e.occurred_at for e in events)
        watermark = now + MAX_FUTURE_SKEW
        assert oldest + ORPHAN_GRACE + lateness > watermark + timedelta(hours=12), (now, oldest)
        assert newest <= now + timedelta(hours=1), (now, newest)
