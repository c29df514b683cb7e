"""One definition of a conversion in every number (issue 11's "done when"), through the
receivers only: a 24 h-window campaign of two variants with a conversion inside its window, a
promo-code sale after it, subscriber-only sales (a Shopify order with a phone, a campaign-wide
code with a phone), a refund sent twice, and a postback whose click id was never issued. The
expected figures are worked out by hand below, from the DOMAIN.md rules; every view, the
hourly aggregate, the terminal report and the HTML report must show them (counts exactly,
money to the cent), and the after-window and unattributable conversions with their reasons.

    variant a: m1 sent 2 h ago, delivered, clicked; o1 80.00 through the click, refunded 30.00
               m2 sent 30 h ago, delivered, no click; its promo code redeemed now: o2 40.00,
               30 h after the send, after the 24 h window (from the send: no click)
    variant b: m3 sent 2 h ago, delivered, clicked; o3 50.00 Shopify order naming m3's phone,
               o4 25.00 campaign-wide code with that phone: both the subscriber's
               m4 sent 2 h ago, nothing else
    stray:     o5 12.00 with globex's click id: unattributable

    funnel (window-bound, per message, net):  a: 1 conversion (+1 after), 50.00; b: 0, 0.00
    attributed (every model: one touch each): a: 80 - 30 = 50.00 (o2's subscriber has no
               touch); b: 50 + 25 = 75.00, both to m3's click
    cost 0.05 a send: 0.10 a variant
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pytest

from producers.tracking_links import new_click_id, sign_token
from smsfunnel.report import attributed_summary

from .conftest import (
    LINK_KEY,
    MODELS,
    Edge,
    Pipeline,
    human_click,
    register_link,
    report_cli,
    shopify_signature,
)

pytestmark = pytest.mark.e2e
BEARER = {"Authorization": "Bearer acme-api-key"}
SECRET = {"secret": "acme-postback-secret", "currency": "USD"}


def shopify(edge: Edge, order: dict[str, object], event_id: str) -> int:
    body = orjson.dumps(order)
    headers = {
        "X-Shopify-Hmac-Sha256": shopify_signature(body),
        "X-Shopify-Event-Id": event_id,
        "Content-Type": "application/json",
    }
    url = f"{edge.url}/webhooks/acme/shopify/orders-paid"
    return httpx.post(url, content=body, headers=headers).status_code


def test_every_number_uses_one_definition_of_a_conversion(
    edge: Edge, pipeline: Pipeline, tmp_path: Path
) -> None:
    tag = str(time.time_ns())
    campaign = f"one-{tag}"
    now = datetime.now(UTC)
    m1, m2, m3, m4 = (str(uuid.uuid4()) for _ in range(4))
    phones = {m1: "+14155550101", m2: "+14155550102", m3: "+14155550103", m4: "+14155550104"}
    sent_at = {m1: now - timedelta(hours=2), m2: now - timedelta(hours=30)}
    code2, wide = f"M2-{tag}", f"WIDE-{tag}"

    def send(message_id: str, variant: str) -> dict[str, object]:
        extra = {"promo_code": code2} if message_id == m2 else {}
        return {
            "message_id": message_id,
            "occurred_at": sent_at.get(message_id, now - timedelta(hours=2)).isoformat(),
            "campaign": campaign,
            "variant": variant,
            "sender": "12345",
            "to": phones[message_id],
            "cost": "0.05",
            "attribution_window_hours": 24,
            **extra,
        }

    sends = [send(m1, "a"), send(m2, "a"), send(m3, "b"), send(m4, "b")]
    resp = httpx.post(f"{edge.url}/v1/accounts/acme/sends", json={"sends": sends}, headers=BEARER)
    assert resp.status_code == 202, resp.text
    codes = f"{edge.url}/v1/accounts/acme/codes"
    assert (
        httpx.post(codes, json={"code": wide, "campaign": campaign}, headers=BEARER).status_code
        == 201
    )
    for message_id in (m1, m2, m3):
        receipt = {
            "status": "delivered",
            "message_id": message_id,
            "occurred_at": (
                sent_at.get(message_id, now - timedelta(hours=2)) + timedelta(seconds=5)
            ).isoformat(),
        }
        assert (
            httpx.post(
                f"{edge.url}/webhooks/acme/receipts", json=receipt, headers=BEARER
            ).status_code
            == 204
        )
    link = register_link(edge, "https://shop.example/")
    click1, _ = human_click(edge, link, m1), human_click(edge, link, m3)

    postback = f"{edge.url}/postbacks/acme/conversion"
    o1, o2, o3, o4, o5 = (f"o{i}-{tag}" for i in range(1, 6))
    assert (
        httpx.get(
            postback, params={"click_id": click1, "order_id": o1, "amount": "80.00"} | SECRET
        ).status_code
        == 204
    )
    assert (
        httpx.get(
            postback, params={"promo_code": code2, "order_id": o2, "amount": "40.00"} | SECRET
        ).status_code
        == 204
    )
    assert (
        shopify(
            edge,
            {"id": o3, "total_price": "50.00", "currency": "USD", "phone": phones[m3]},
            f"evt-{o3}",
        )
        == 200
    )
    assert (
        httpx.get(
            postback,
            params={"promo_code": wide, "phone": phones[m3], "order_id": o4, "amount": "25.00"}
            | SECRET,
        ).status_code
        == 204
    )
    foreign = new_click_id(sign_token(LINK_KEY.encode(), "globex", "lnk-x", "m-globex"))
    assert (
        httpx.get(
            postback, params={"click_id": foreign, "order_id": o5, "amount": "12.00"} | SECRET
        ).status_code
        == 202
    )
    refund = {"order_id": o1, "adjustment_id": f"rf-{o1}", "amount": "30.00"} | SECRET
    for _ in range(2):  # sent twice
        assert httpx.get(f"{edge.url}/postbacks/acme/adjustment", params=refund).status_code == 204
    pipeline.drain()

    q, p = pipeline.query, {"c": campaign}
    # funnel figures: per message, through its own click or code, inside the window, net
    want_funnel = {"a": (2, 2, 1, 1, 1, Decimal("50")), "b": (2, 1, 1, 0, 0, Decimal("0"))}
    rows = q.rows(
        "SELECT variant, sum(sent) AS sent, sum(delivered) AS delivered, "
        "sum(unique_human_clicks) AS clicked, sum(conversions) AS conversions, "
        "sum(after_window_conversions) AS after FROM campaign_metrics "
        "WHERE account = 'acme' AND campaign = {c:String} GROUP BY variant",
        p,
    )
    hourly = q.rows(
        "SELECT variant, sum(sent) AS sent, sum(delivered) AS delivered, "
        "sum(clicked_messages) AS clicked, sum(conversions) AS conversions, "
        "sum(after_window_conversions) AS after, toString(sumMap(revenue)['USD']) AS revenue "
        "FROM funnel_hourly FINAL WHERE account = 'acme' AND campaign = {c:String} "
        "GROUP BY variant",
        p,
    )
    assert {
        r["variant"]: (r["sent"], r["delivered"], r["clicked"], r["conversions"], r["after"])
        for r in rows
    } == {k: v[:5] for k, v in want_funnel.items()}
    assert {
        r["variant"]: (
            r["sent"],
            r["delivered"],
            r["clicked"],
            r["conversions"],
            r["after"],
            Decimal(r["revenue"]),
        )
        for r in hourly
    } == want_funnel
    (daily,) = q.rows(
        "SELECT sum(conversions) AS conversions, sum(after_window_conversions) AS after, "
        "toString(sumMap(revenue)['USD']) AS revenue FROM daily_trends "
        "WHERE account = 'acme' AND campaign = {c:String}",
        p,
    )
    assert (daily["conversions"], daily["after"], Decimal(daily["revenue"])) == (
        1,
        1,
        Decimal("50"),
    )
    dropoff = q.rows(
        "SELECT variant, count FROM funnel_dropoff "
        "WHERE account = 'acme' AND campaign = {c:String} AND stage = 'converted'",
        p,
    )
    assert {r["variant"]: r["count"] for r in dropoff} == {"a": 1, "b": 0}

    # attributed figures: per subscriber, across touches, every model, net of the refund
    money = q.rows(
        "SELECT variant, model, toString(sum(attributed_revenue)) AS revenue, "
        "toString(sum(cost)) AS cost FROM attributed_revenue "
        "WHERE account = 'acme' AND campaign = {c:String} AND currency = 'USD' "
        "GROUP BY variant, model",
        p,
    )
    assert {
        (r["variant"], r["model"]): (Decimal(r["revenue"]), Decimal(r["cost"])) for r in money
    } == {
        (v, m): (revenue, Decimal("0.10"))
        for v, revenue in (("a", Decimal(50)), ("b", Decimal(75)))
        for m in MODELS
    }

    # the report: the same figures, every ratio from them
    for model in MODELS:
        report = {
            s.variant: s for s in attributed_summary(q, "acme", model) if s.campaign == campaign
        }
        a, b = report["a"], report["b"]
        assert (
            a.sent,
            a.delivered,
            a.unique_clicks,
            a.conversions,
            a.after_window_conversions,
        ) == (2, 2, 1, 1, 1)
        assert (
            b.sent,
            b.delivered,
            b.unique_clicks,
            b.conversions,
            b.after_window_conversions,
        ) == (2, 1, 1, 0, 0)
        assert (a.revenue, b.revenue, a.cost, b.cost) == (
            Decimal(50),
            Decimal(75),
            Decimal("0.10"),
            Decimal("0.10"),
        )
        assert (a.rpm.value, a.rpc.value, a.cpa.value, a.roas.value) == (
            Decimal(25),
            Decimal(50),
            Decimal("0.10"),
            Decimal(500),
        )
        assert (b.rpm.value, b.rpc.value, b.cpa.value, b.roas.value) == (
            Decimal("37.5"),
            Decimal(75),
            None,
            Decimal(750),
        )
        assert a.windows == b.windows == (24,)

    # after-window and unattributable conversions are visible with their reasons
    late = q.rows(
        "SELECT reason FROM late_events WHERE account = 'acme' AND message_id = {m:String} "
        "AND event_type = 'conversion'",
        {"m": m2},
    )
    assert [r["reason"] for r in late] == ["after_window"]
    (stray,) = q.rows(
        "SELECT reason, toString(amount) AS amount FROM unattributable_conversions FINAL "
        "WHERE account = 'acme' AND order_id = {o:String}",
        {"o": o5},
    )
    assert stray["reason"].startswith("click id not recognised") and Decimal(stray["amount"]) == 12

    # the HTML report, as a user writes it, shows the same money per variant
    page = tmp_path / "report.html"
    result = report_cli(pipeline, "--account", "acme", "--html", str(page))
    table = re.search(r"<table class='money'>(.*?)</table>", page.read_text(), re.S)
    assert table is not None
    mine = [row for row in table.group(1).split("<tr>") if f"<td>{campaign}</td>" in row]
    cells = [re.findall(r"<td>([^<]*)</td>", row) for row in mine]
    assert sorted((c[2], c[7], c[8], c[9], c[10]) for c in cells) == [
        ("a", "1", "1", "USD 50.00", "USD 0.10"),
        ("b", "0", "0", "USD 75.00", "USD 0.10"),
    ]
    out = result.stdout  # the terminal report: the window named, the same money
    assert out.count("(24 h)") == 2 and "USD 50.00" in out and "USD 75.00" in out, out[-3000:]
