"""The diagnostics' rules on figures alone (sinks.health_rules.find): each fires at its
threshold and not just short of it, and not below the minimum sample on either side."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sinks.health_rules import Thresholds, find

T = Thresholds(recent_hours=24, baseline_hours=48, min_sample=200, min_clicks=100)
HOUR = datetime(2026, 12, 1, tzinfo=UTC)


def row(period: str, subject: str = "", campaign: str = "c", **figures: Any) -> dict[str, Any]:
    base = {
        "campaign": campaign,
        "subject": subject,
        "period": period,
        "sent": 0,
        "final": 0,
        "delivered": 0,
        "dropped": 0,
        "clicked": 0,
        "landings": 0,
        "converting": 0,
        "variants": ["a"],
        "first_hour": HOUR,
        "campaigns": 1,
    }
    return base | figures


def checks(campaign_rows: list[dict[str, Any]], **others: Any) -> list[str]:
    by_subject = {"": campaign_rows, "segment": [], "carrier": [], "sender_all": []}
    by_subject |= {k: v for k, v in others.items() if k in by_subject}
    return [
        f.check for f in find(by_subject, others.get("opt_outs", []), others.get("causes", []), T)
    ]


def steady(period: str, messages: int, **figures: Any) -> dict[str, Any]:
    """`messages` sent per day of the period, all final, 90 % delivered, 10 % clicked,
    20 % of those converting."""
    days = 1 if period == "recent" else 2
    n = messages * days
    delivered = int(n * 0.9)
    clicked = delivered // 10
    values = {
        "sent": n,
        "final": n,
        "delivered": delivered,
        "clicked": clicked,
        "landings": clicked,
        "converting": clicked // 5,
    }
    return row(period, **(values | figures))


def test_a_steady_campaign_has_no_finding() -> None:
    assert checks([steady("recent", 1000), steady("baseline", 1000)]) == []


@pytest.mark.parametrize(("delivered", "fires"), [(800, True), (801, False)])
def test_delivery_drop_at_ten_points(delivered: int, fires: bool) -> None:
    # baseline 90 %; recent 80.0 % is a fall of 10 points, 80.1 % is not
    rows = [steady("recent", 1000, delivered=delivered), steady("baseline", 1000)]
    assert ("delivery_drop" in checks(rows)) is fires


@pytest.mark.parametrize(("final", "fires"), [(200, True), (199, False)])
def test_no_finding_below_the_minimum_sample(final: int, fires: bool) -> None:
    recent = steady("recent", 1000, sent=final, final=final, delivered=final // 2)
    assert ("delivery_drop" in checks([recent, steady("baseline", 1000)])) is fires


def test_sent_collapse_compares_sends_per_hour() -> None:
    # baseline 2,000 in 48 h; recent 24 h: 499 is under half of 1,000, 500 is not
    assert "sent_collapse" in checks([steady("recent", 499), steady("baseline", 1000)])
    assert "sent_collapse" not in checks([steady("recent", 500), steady("baseline", 1000)])
    # a campaign that stopped: no recent row at all
    assert checks([steady("baseline", 1000)]) == ["sent_collapse"]


def test_a_carrier_far_below_the_others() -> None:
    campaign = [steady("recent", 1000), steady("baseline", 1000)]  # 900 delivered, 90 clicked
    low = row("recent", "att", sent=300, final=300, delivered=300, clicked=2)
    assert "carrier_clicks" in checks(campaign, carrier=[low])
    # the others: 600 delivered, 88 clicked (14.7 %); a quarter of that is 3.7 %
    even = row("recent", "att", sent=300, final=300, delivered=300, clicked=12)
    assert "carrier_clicks" not in checks(campaign, carrier=[even])


def test_conversion_gap_needs_enough_clicks() -> None:
    baseline = steady("baseline", 1000)  # 180 clicked, 36 converting
    gap = steady("recent", 1000, converting=0)  # 90 clicked: under the minimum of 100
    assert "conversion_gap" not in checks([gap, baseline])
    more = steady("recent", 2000, converting=1)  # 180 clicked, 0.6 % against 20 %
    assert "conversion_gap" in checks([more, baseline])


def test_a_sender_is_judged_across_its_campaigns_only_when_it_has_several() -> None:
    campaign = [steady("recent", 1000), steady("baseline", 1000)]
    sender = [
        row("recent", "12345", "", sent=1000, final=1000, delivered=700, campaigns=2),
        row("baseline", "12345", "", sent=2000, final=2000, delivered=1800, campaigns=2),
    ]
    assert checks(campaign, sender_all=sender) == ["delivery_drop"]
    one = [r | {"campaigns": 1} for r in sender]
    assert checks(campaign, sender_all=one) == []


def test_optout_spike_against_the_baseline() -> None:
    campaign = [steady("recent", 1000), steady("baseline", 1000)]  # 900 and 1,800 delivered
    spike = [row("recent", opt_outs=27), row("baseline", opt_outs=9)]  # 3 % against 0.5 %
    assert checks(campaign, opt_outs=spike) == ["optout_spike"]
    usual = [row("recent", opt_outs=9), row("baseline", opt_outs=18)]
    assert checks(campaign, opt_outs=usual) == []
