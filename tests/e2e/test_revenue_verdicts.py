"""Variant verdicts and send-time figures on fixed data in the real (embedded) ClickHouse engine:
funnel rows and attribution credits written here, the views' moments and test statistics and
the verdicts' calls and sample sizes against values computed by hand in this file (statistics
and math only, none of the code under test)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from statistics import NormalDist, mean, stdev
from typing import Any

import pytest

from sinks.clickhouse import connect
from sinks.migrations.runner import migrate
from sinks.query_client import ClientQuery
from sinks.variant_verdicts import Call, VerdictSettings, verdicts

ACCOUNT = "fixed"
AT = datetime(2026, 11, 2, 18, tzinfo=UTC)
NORMAL = NormalDist()


def campaign_a() -> dict[str, list[tuple[Decimal, bool]]]:
    """Per variant, each message's (last-click revenue, converted): "red" earns clearly more."""
    red = [(Decimal(20 + 10 * (i % 9)), True) for i in range(80)] + [(Decimal(0), False)] * 320
    blue = [(Decimal(10 + 5 * (i % 7)), True) for i in range(40)] + [(Decimal(0), False)] * 360
    return {"red": red, "blue": blue}


def campaign_b() -> dict[str, list[tuple[Decimal, bool]]]:
    """Three variants too small and too close to call; "x" has fewer earners than the minimum."""
    return {
        "x": [(Decimal(25), True)] * 12 + [(Decimal(0), False)] * 88,
        "y": [(Decimal(30), True)] * 35 + [(Decimal(0), False)] * 265,
        "z": [(Decimal(28), True)] * 33 + [(Decimal(0), False)] * 267,
    }


CAMPAIGNS = {"a": campaign_a(), "b": campaign_b()}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientQuery]:
    ch = connect(f"chdb://{Path(tmp_path_factory.mktemp('verdicts')) / 'ch'}")
    migrate(ch)
    funnel, credits = [], []
    for campaign, by_variant in CAMPAIGNS.items():
        for variant, messages in by_variant.items():
            for i, (revenue, converted) in enumerate(messages):
                mid = f"{campaign}-{variant}-{i}"
                funnel.append(
                    [ACCOUNT, mid, 1, True, campaign, variant, "vip", "delivered"]
                    + [int(converted), AT.hour, AT.isoweekday(), "USD"]
                )
                if revenue:
                    credits.append(
                        [ACCOUNT, f"h-{mid}", f"o-{mid}", "last_click", 1, f"e-{mid}"]
                        + [AT, revenue, "USD", [f"t-{mid}"], ["click"], [mid], [Decimal(1)]]
                    )
    ch.insert(
        "funnel_rows",
        funnel,
        column_names=[
            "account", "message_id", "version", "has_send", "campaign", "variant", "segment",
            "delivery_status", "conversions", "send_local_hour", "send_local_weekday",
            "cost_currency",
        ],
    )  # fmt: skip
    ch.insert(
        "attribution_credits",
        credits,
        column_names=[
            "account", "recipient_hash", "order_id", "model", "version", "conversion_event_id",
            "converted_at", "amount", "currency", "touch_ids", "touch_kinds", "message_ids",
            "weights",
        ],
    )  # fmt: skip
    yield ClientQuery(ch)
    ch.close()


def revenues(campaign: str, variant: str | None, rest: bool = False) -> list[float]:
    return [
        float(r)
        for v, messages in CAMPAIGNS[campaign].items()
        if (v != variant if rest else v == variant)
        for r, _ in messages
    ]


def welch(a: list[float], b: list[float]) -> tuple[float, float]:
    z = (mean(a) - mean(b)) / math.sqrt(stdev(a) ** 2 / len(a) + stdev(b) ** 2 / len(b))
    return z, 2 * (1 - NORMAL.cdf(abs(z)))


def test_the_view_holds_each_variants_moments_and_welch_test(client: ClientQuery) -> None:
    rows = client.rows(
        "SELECT * FROM variant_revenue_tests WHERE account = {a:String} "
        "AND model = 'last_click' ORDER BY campaign, variant",
        {"a": ACCOUNT},
    )
    assert [(r["campaign"], r["variant"]) for r in rows] == [
        ("a", "blue"), ("a", "red"), ("b", "x"), ("b", "y"), ("b", "z"),
    ]  # fmt: skip
    for r in rows:
        own = revenues(r["campaign"], r["variant"])
        rest = revenues(r["campaign"], r["variant"], rest=True)
        assert r["variants"] == len(CAMPAIGNS[r["campaign"]])
        assert (r["sent"], r["rest_sent"]) == (len(own), len(rest))
        assert r["earning"] == sum(1 for x in own if x > 0)
        assert r["revenue"] == Decimal(str(sum(own)))
        assert r["revenue_per_message"] == pytest.approx(mean(own), rel=1e-12)
        assert r["revenue_stddev"] == pytest.approx(stdev(own), rel=1e-9)
        assert r["rest_revenue_stddev"] == pytest.approx(stdev(rest), rel=1e-9)
        z, p = welch(own, rest)
        assert r["rpm_z"] == pytest.approx(z, rel=1e-9)
        assert r["rpm_p_value"] == pytest.approx(p, rel=1e-6, abs=1e-15)
        converted = sum(1 for _, c in CAMPAIGNS[r["campaign"]][r["variant"]] if c)
        assert r["converted"] == converted and r["delivered"] == len(own)


def needed_for_means(a: list[float], b: list[float], mde: float, alpha: float) -> int:
    zs = NORMAL.inv_cdf(1 - alpha / 2) + NORMAL.inv_cdf(0.8)
    return math.ceil(zs**2 * (stdev(a) ** 2 + stdev(b) ** 2) / (mde * mean(b)) ** 2)


def test_verdicts_and_sample_sizes_match_the_hand_computed_ones(client: ClientQuery) -> None:
    found = {(v.campaign, v.variant): v for v in verdicts(client, ACCOUNT)}
    # campaign a: two variants, one test at alpha 0.05; red earns 50 / message vs 2.05 / message
    red, blue = found["a", "red"], found["a", "blue"]
    z, p = welch(revenues("a", "red"), revenues("a", "blue"))
    assert p < 0.05 and z > 0  # the fixture is what it says
    assert (red.revenue_call, blue.revenue_call) == (Call.WINNER, Call.LOSER)
    assert red.alpha == blue.alpha == 0.05
    assert red.messages_needed is None and red.more_messages is None
    # conversion: red 80 / 400 against blue 40 / 400, pooled two-proportion z by hand
    pooled = 120 / 800
    zc = (80 / 400 - 40 / 400) / math.sqrt(pooled * (1 - pooled) * (2 / 400))
    assert red.conversion_p_value == pytest.approx(2 * (1 - NORMAL.cdf(zc)), rel=1e-6)
    assert red.conversion_call is Call.WINNER and blue.conversion_call is Call.LOSER

    # campaign b: three variants, Bonferroni alpha 0.05 / 3
    for name in "xyz":
        v = found["b", name]
        assert v.alpha == pytest.approx(0.05 / 3)
        assert v.revenue_call is Call.UNDECIDED
        own, rest = revenues("b", name), revenues("b", name, rest=True)
        if name != "x":  # enough earners on both sides, and not different enough
            assert welch(own, rest)[1] >= 0.05 / 3
        n = needed_for_means(own, rest, 0.10, 0.05 / 3)
        assert v.messages_needed == n
        assert v.more_messages == max(0, n - len(own)) + max(0, n - len(rest))
    assert "12 earning messages" in found["b", "x"].reason  # under the 30 a call needs

    # a wider minimum detectable effect needs fewer messages, by the same formula
    wide = {
        (v.campaign, v.variant): v
        for v in verdicts(client, ACCOUNT, campaign="b", settings=VerdictSettings(mde=0.5))
    }
    own, rest = revenues("b", "y"), revenues("b", "y", rest=True)
    assert wide["b", "y"].messages_needed == needed_for_means(own, rest, 0.5, 0.05 / 3)


def test_a_model_without_credits_shows_every_variant_at_zero(client: ClientQuery) -> None:
    """The cost currency gives every model a row: linear has no credit here, so each variant
    earned 0 under it and nothing is called."""
    rows = client.rows(
        "SELECT variant, sent, revenue, rpm_p_value FROM variant_revenue_tests "
        "WHERE account = {a:String} AND campaign = 'a' AND model = 'linear' ORDER BY variant",
        {"a": ACCOUNT},
    )
    assert [(r["variant"], r["sent"], r["revenue"], r["rpm_p_value"]) for r in rows] == [
        ("blue", 400, Decimal(0), None),
        ("red", 400, Decimal(0), None),
    ]


def send_time_rows(client: ClientQuery) -> list[dict[str, Any]]:
    return client.rows(
        "SELECT campaign, segment, local_weekday, local_hour, sent, earning, revenue, "
        "revenue_squares FROM send_time_revenue WHERE account = {a:String} "
        "AND model = 'last_click' ORDER BY campaign",
        {"a": ACCOUNT},
    )


def test_send_time_revenue_holds_the_moments_of_each_slot(client: ClientQuery) -> None:
    rows = send_time_rows(client)
    assert [(r["campaign"], r["local_weekday"], r["local_hour"]) for r in rows] == [
        ("a", AT.isoweekday(), AT.hour),
        ("b", AT.isoweekday(), AT.hour),
    ]
    for r in rows:
        every = [x for v in CAMPAIGNS[r["campaign"]] for x in revenues(r["campaign"], v)]
        assert r["sent"] == len(every)
        assert r["revenue"] == Decimal(str(sum(every)))
        assert r["revenue_squares"] == pytest.approx(sum(x * x for x in every), rel=1e-12)
