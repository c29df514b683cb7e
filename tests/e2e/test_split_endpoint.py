"""Issue 13's decisions on data the pipeline wrote. The traffic split a sending platform asks
for before each batch: GET /v1/accounts/{a}/campaigns/{c}/split on the sink answers the
account's api key only, with each variant's messages as the generator sent them, its attributed
conversions and revenue as the attributed_revenue view holds them, and the Thompson split of
those figures; `smsfunnel split` prints the same shares. `smsfunnel verdicts` and `smsfunnel
send-times` print the calls, sample sizes and intervals computed here by hand from the
workload's ground truth (last-click revenue of each message)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from statistics import NormalDist, mean, stdev
from zoneinfo import ZoneInfo

import httpx
import pytest

from producers.kafka_producer import EventProducer
from producers.workload import Workload, generate_campaign
from sinks.creative_split import VariantFigures, split
from tests.ground_truth import ExpectedMessage, expected_attribution

from .conftest import SPLIT_ACCOUNT, SPLIT_KEY, Pipeline, report_cli

pytestmark = pytest.mark.e2e

ACCOUNT, KEY, CAMPAIGN = SPLIT_ACCOUNT, SPLIT_KEY, "black-friday"


@pytest.fixture(scope="module")
def workload(pipeline: Pipeline) -> Iterator[Workload]:
    w = generate_campaign(3000, seed=41, account=ACCOUNT)
    producer = EventProducer(pipeline.bootstrap)
    producer.send_many(w.events)
    producer.flush()
    producer.close()
    pipeline.drain()
    yield w


def test_split_endpoint_and_command(pipeline: Pipeline, workload: Workload) -> None:
    base = f"http://127.0.0.1:{pipeline.settings.sink_http_port}"
    url = f"{base}/v1/accounts/{ACCOUNT}/campaigns/{CAMPAIGN}/split"
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(url).status_code == 401
    answer = httpx.get(url, headers={"Authorization": f"Bearer {KEY}"}).json()
    assert answer["model"] == "last_click" and answer["currency"] == "USD"

    sent = {v: t.sent for (a, c, v), t in workload.truth.items() if c == CAMPAIGN}
    assert {v: f["messages"] for v, f in answer["variants"].items()} == sent
    view = pipeline.query.rows(
        "SELECT variant, sum(attributed_conversions) AS c, sum(attributed_revenue) AS r "
        "FROM attributed_revenue WHERE account = {a:String} AND campaign = {c:String} "
        "AND model = 'last_click' AND currency = 'USD' GROUP BY variant",
        {"a": ACCOUNT, "c": CAMPAIGN},
    )
    figures = {
        r["variant"]: VariantFigures(sent[r["variant"]], round(Decimal(r["c"])), Decimal(r["r"]))
        for r in view
    }
    assert {v: Decimal(f["revenue"]) for v, f in answer["variants"].items()} == {
        v: f.revenue for v, f in figures.items()
    }
    assert all(f.messages >= 500 for f in figures.values())  # past the minimum sample
    assert answer["split"] == split(figures)
    assert sum(answer["split"].values()) == pytest.approx(1.0)

    out = report_cli(pipeline, "--account", ACCOUNT, "--campaign", CAMPAIGN, command="split").stdout
    for variant, share in answer["split"].items():
        assert f"{variant}: {share:.1%} of the next sends" in out


NORMAL = NormalDist()


def last_click_revenue(w: Workload) -> tuple[list[ExpectedMessage], dict[str, float]]:
    """The account's sent messages, and each one's last-click revenue in USD (the whole amount
    of each attributed conversion to its last in-window touch)."""
    messages, attribution = expected_attribution(w.events)
    earned: dict[str, float] = defaultdict(float)
    for conversion, eligible in attribution.values():
        if eligible and conversion.currency == "USD":
            earned[eligible[-1][2]] += float(conversion.amount)
    sent = [m for (a, _), m in messages.items() if a == ACCOUNT and m.has_send]
    return sent, earned


def test_verdicts_command_calls_each_variant_as_computed_by_hand(
    pipeline: Pipeline, workload: Workload
) -> None:
    sent, earned = last_click_revenue(workload)
    out = report_cli(pipeline, "--account", ACCOUNT, command="verdicts").stdout
    by_variant: dict[tuple[str, str], list[float]] = defaultdict(list)
    for m in sent:
        by_variant[m.campaign, m.variant].append(earned.get(m.message_id, 0.0))
    lines = 0
    for (campaign, variant), own in sorted(by_variant.items()):
        others = (xs for (c, v), xs in by_variant.items() if c == campaign and v != variant)
        rest = [x for xs in others for x in xs]
        k = sum(1 for c, _ in by_variant if c == campaign)
        alpha = 0.05 / (1 if k <= 2 else k)
        z = (mean(own) - mean(rest)) / math.sqrt(
            stdev(own) ** 2 / len(own) + stdev(rest) ** 2 / len(rest)
        )
        p = 2 * (1 - NORMAL.cdf(abs(z)))
        earning = sum(1 for x in own if x > 0)
        enough = min(earning, sum(1 for x in rest if x > 0)) >= 30
        call = ("winner" if z > 0 else "loser") if enough and p < alpha else "undecided"
        expected = (
            f"  {campaign}/{variant}: {call} on revenue, {mean(own):.4f} vs {mean(rest):.4f} "
            f"per message ({len(own):,} sent, {earning:,} earning)"
        )
        line = next((x for x in out.splitlines() if x.startswith(expected)), None)
        assert line is not None, f"{expected!r} not in\n{out}"
        if call == "undecided":
            zs = NORMAL.inv_cdf(1 - alpha / 2) + NORMAL.inv_cdf(0.8)
            n = math.ceil(zs**2 * (stdev(own) ** 2 + stdev(rest) ** 2) / (0.1 * mean(rest)) ** 2)
            more = max(0, n - len(own)) + max(0, n - len(rest))
            if more:
                assert line.endswith(f"; {more:,} more messages ({n:,} per side)"), line
        lines += 1
    assert lines == len(workload.truth)  # every variant of the account


def test_send_times_command_shows_the_hand_computed_best_hour(
    pipeline: Pipeline, workload: Workload
) -> None:
    sent, earned = last_click_revenue(workload)
    slots: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for m in sent:
        assert m.sent_at is not None
        zone = ZoneInfo(m.recipient_timezone or "UTC")
        slots[m.segment][m.sent_at.astimezone(zone).hour].append(earned.get(m.message_id, 0.0))
    out = report_cli(
        pipeline, "--account", ACCOUNT, "--min-messages", "40", "--min-earning", "3",
        command="send-times",
    ).stdout  # fmt: skip
    z95 = NORMAL.inv_cdf(0.975)
    judged_somewhere = False
    for segment, hours in slots.items():
        section = out.split(f"  segment {segment}:\n", 1)[1].split("\n")[0]
        judged = {h: xs for h, xs in hours.items() if len(xs) >= 40 and sum(x > 0 for x in xs) >= 3}
        if len(judged) < 2:
            assert section.startswith("    best hour: not enough data"), section
            continue
        judged_somewhere = True
        hour = min(judged, key=lambda h: (-mean(judged[h]), h))
        xs = judged[hour]
        half = z95 * stdev(xs) / math.sqrt(len(xs))
        assert section.startswith(
            f"    best hour: {hour:02d}:00, {mean(xs):.4f} per message "
            f"(95%: {mean(xs) - half:.4f} to {mean(xs) + half:.4f}, {len(xs):,} sent)"
        ), section
    assert judged_somewhere  # the workload is large enough that some segment is judged
