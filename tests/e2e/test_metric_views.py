"""Every metric view against ground truth computed here, for a generated multi-campaign
workload through the real broker, worker and sink: counts exactly, rates to the last digit
(the same IEEE division of the same integers), money exactly (Fractions against the views'
Decimal256; time decay, whose weights are real powers, to 1e-9 relative)."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from producers.kafka_producer import EventProducer
from producers.workload import generate_campaign
from schemas.events import ClickEvent, ConversionEvent, InboundEvent, InboundKind, SendEvent
from tests.e2e.conftest import MODELS, Pipeline, report_cli
from tests.ground_truth import ExpectedMessage, expected_attribution, expected_weights

pytestmark = pytest.mark.e2e
ACCOUNT = "e2e-metric-views"
DIMS = ("campaign", "variant", "segment", "sender", "country", "carrier")


def dims(m: ExpectedMessage) -> tuple[str, ...]:
    return tuple(getattr(m, d) for d in DIMS)


def rate(num: int, den: int) -> float | None:
    return num / den if den else None


def quantile_exact(values: list[float], level: float) -> float | None:
    """ClickHouse quantileExact: the element at position floor(level * n) of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(int(level * len(ordered)), len(ordered) - 1)]


@pytest.fixture(scope="module")
def workload(pipeline: Pipeline):  # type: ignore[no-untyped-def]
    w = generate_campaign(2000, seed=23, account=ACCOUNT, duplicate_rate=0.1)
    # the generator's subscribers only opt out and reply: add re-subscriptions and help requests
    # (and a repeat), so subscriber growth has both signs
    opted_out = [e for e in w.events if isinstance(e, InboundEvent) and e.kind.value == "opt_out"]
    extra = []
    for i, e in enumerate(opted_out[:12]):
        kind = InboundKind.OPT_IN if i % 3 else InboundKind.HELP
        extra.append(
            e.model_copy(
                update={
                    "event_id": f"extra-{i}",
                    "kind": kind,
                    "keyword": "START" if kind is InboundKind.OPT_IN else "HELP",
                    "occurred_at": e.occurred_at + timedelta(days=1 + i % 2),
                }
            )
        )
    w.events.extend([*extra, extra[0]])
    # orphans: clicks and a conversion for messages whose send never comes
    first_click = next(e for e in w.events if isinstance(e, ClickEvent))
    first_conversion = next(e for e in w.events if isinstance(e, ConversionEvent))
    for i in range(3):
        w.events.append(
            first_click.model_copy(
                update={"event_id": f"orphan-click-{i}", "message_id": f"orphan-{i}"}
            )
        )
    w.events.append(
        first_conversion.model_copy(
            update={"event_id": "orphan-conv", "message_id": "orphan-0", "order_id": "o-orphan"}
        )
    )
    # a second order (another event name: one per click and name) through a 24 h-window click,
    # 25 h after it: after the window
    clicks = {e.click_id: e for e in w.events if isinstance(e, ClickEvent)}
    sends = {e.message_id: e for e in w.events if isinstance(e, SendEvent)}
    flash = next(
        e
        for e in w.events
        if isinstance(e, ConversionEvent)
        and e.click_id in clicks
        and sends[e.message_id].attribution_window_hours == 24
    )
    w.events.append(
        flash.model_copy(
            update={
                "event_id": "after-window-conv",
                "order_id": "o-after-window",
                "name": "repeat_purchase",
                "occurred_at": clicks[flash.click_id].occurred_at + timedelta(hours=25),
            }
        )
    )
    producer = EventProducer(pipeline.bootstrap)
    producer.send_many(w.events)
    producer.close()
    pipeline.drain()
    messages, attribution = expected_attribution(w.events)
    sent = {k: m for k, m in messages.items() if m.has_send}
    # inbound SMS go to the last message that sender delivered to the subscriber before them
    deliveries = defaultdict(list)
    for m in sent.values():
        if m.delivered_at is not None:
            deliveries[(m.recipient_hash, m.sender)].append((m.delivered_at, m.message_id))
    opt_outs: dict[str, int] = defaultdict(int)
    first_reply: dict[str, object] = {}
    inbound = {e.event_id: e for e in w.events if isinstance(e, InboundEvent)}
    for e in sorted(inbound.values(), key=lambda e: (e.occurred_at, e.event_id)):
        before = sorted(
            d for d in deliveries[(e.recipient_hash, e.sender)] if d[0] <= e.occurred_at
        )
        if not before:
            continue
        message_id = before[-1][1]
        opt_outs[message_id] += e.kind.value == "opt_out"
        first_reply.setdefault(message_id, e.occurred_at)
    return sent, attribution, opt_outs, first_reply, w.events


def by_dims(rows: list[dict], *extra: str) -> dict[tuple, dict]:  # type: ignore[type-arg]
    return {tuple(r[d] for d in (*DIMS, *extra)): r for r in rows}


def test_campaign_metrics(pipeline: Pipeline, workload) -> None:  # type: ignore[no-untyped-def]
    sent, _, opt_outs, _, _ = workload
    want: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))  # type: ignore[type-arg]
    recipients: dict[tuple, set[str]] = defaultdict(set)  # type: ignore[type-arg]
    for m in sent.values():
        w = want[dims(m)]
        status = m.delivery_status
        w["sent"] += 1
        w["dropped"] += status == "rejected"
        w["delivered"] += status == "delivered"
        w["failed"] += status in ("undelivered", "expired")
        w["unknown"] += status == "unknown"
        w["pending"] += status in ("", "submitted")
        w["clicks"] += m.clicks
        w["human_clicks"] += m.human_clicks
        w["unique_human_clicks"] += m.human_clicks > 0
        w["landings"] += m.landings
        w["engagements"] += m.engagements
        w["conversions"] += len(m.conversions)
        w["after_window_conversions"] += len(m.after_window_conversions)
        w["opt_outs"] += opt_outs.get(m.message_id, 0)
        if m.conversions:
            recipients[dims(m)].add(m.recipient_hash)
    for key, w in want.items():
        w["converting_recipients"] = len(recipients[key])
        w["dropped_rate"] = rate(w["dropped"], w["sent"])
        w["delivery_rate"] = rate(w["delivered"], w["sent"])
        w["failure_rate"] = rate(w["failed"], w["sent"])
        w["ctr_sent"] = rate(w["unique_human_clicks"], w["sent"])
        w["ctr"] = rate(w["unique_human_clicks"], w["delivered"])
        w["landing_rate"] = rate(w["landings"], w["unique_human_clicks"])
        w["engagement_rate"] = rate(w["engagements"], w["landings"])
        w["conversion_rate"] = rate(w["converting_recipients"], w["delivered"])
        w["click_to_conversion_rate"] = rate(w["conversions"], w["unique_human_clicks"])
        w["unsubscribe_rate"] = rate(w["opt_outs"], w["delivered"])

    rows = pipeline.query.rows(
        "SELECT * FROM campaign_metrics WHERE account = {a:String}", {"a": ACCOUNT}
    )
    got = by_dims(rows)
    assert set(got) == set(want) and len(want) >= 20
    for key, w in want.items():
        assert {k: got[key][k] for k in w} == dict(w), key
    totals = {
        k: sum(w[k] for w in want.values())
        for k in ("opt_outs", "conversions", "after_window_conversions", "dropped")
    }
    assert all(v > 0 for v in totals.values()), totals  # the workload exercises every column


def test_failure_causes(pipeline: Pipeline, workload) -> None:  # type: ignore[no-untyped-def]
    sent, _, _, _, _ = workload
    totals: dict[tuple, int] = defaultdict(int)  # type: ignore[type-arg]
    counts: dict[tuple, int] = defaultdict(int)  # type: ignore[type-arg]
    for m in sent.values():
        totals[dims(m)] += 1
        if m.delivery_status in ("rejected", "undelivered", "expired"):
            counts[(*dims(m), m.delivery_status, m.failure_cause)] += 1
    rows = pipeline.query.rows(
        "SELECT * FROM failure_causes WHERE account = {a:String}", {"a": ACCOUNT}
    )
    got = by_dims(rows, "delivery_status", "failure_cause")
    assert {k: r["messages"] for k, r in got.items()} == dict(counts)
    for key, r in got.items():
        assert r["sent"] == totals[key[: len(DIMS)]]
        assert r["rate"] == counts[key] / totals[key[: len(DIMS)]]
    assert len({k[-1] for k in counts}) >= 3  # several causes


def test_attributed_revenue_per_model(pipeline: Pipeline, workload) -> None:  # type: ignore[no-untyped-def]
    sent, attribution, _, _, _ = workload
    by_message = {m.message_id: m for m in sent.values()}
    revenue: dict[tuple, Fraction | float] = defaultdict(Fraction)  # type: ignore[type-arg]
    weights: dict[tuple, Fraction | float] = defaultdict(Fraction)  # type: ignore[type-arg]
    for conversion, eligible in attribution.values():
        for model in MODELS:
            for touch, w in zip(
                eligible, expected_weights(model, eligible, conversion.occurred_at), strict=True
            ):
                if w == 0:
                    continue
                key = (*dims(by_message[touch[2]]), model, conversion.currency)
                amount = (
                    Fraction(conversion.amount)
                    if not isinstance(w, float)
                    else float(conversion.amount)
                )
                revenue[key] += amount * w
                weights[key] += w
    denominators: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))  # type: ignore[type-arg]
    for m in sent.values():
        d = denominators[dims(m)]
        d["sent"] += 1
        d["unique_human_clicks"] += m.human_clicks > 0
        d["conversions"] += len(m.conversions)
        d["cost"] += Fraction(m.cost)

    rows = pipeline.query.rows(
        "SELECT *, toString(attributed_revenue) AS revenue_s, toString(attributed_conversions) "
        "AS weights_s, toString(cost) AS cost_s, toString(revenue_per_message) AS rpm_s, "
        "toString(roas) AS roas_s FROM attributed_revenue WHERE account = {a:String}",
        {"a": ACCOUNT},
    )
    got = by_dims(rows, "model", "currency")
    # every group of sent messages has a row per model in its cost currency, earning or not
    for m in sent.values():
        for model in MODELS:
            revenue.setdefault((*dims(m), model, m.cost_currency), Fraction(0))
    assert any(not want for want in revenue.values())  # the workload has groups earning nothing
    assert set(got) == set(revenue) and len({k[-2] for k in got}) == 5
    for key, want in revenue.items():
        r = got[key]
        have = Fraction(Decimal(r["revenue_s"]))
        d = denominators[key[: len(DIMS)]]
        assert (r["sent"], r["unique_human_clicks"], r["conversions"]) == (
            d["sent"],
            d["unique_human_clicks"],
            d["conversions"],
        )
        assert Fraction(Decimal(r["cost_s"])) == d["cost"]
        if isinstance(want, float):  # time decay: real powers of 1/2
            assert math.isclose(float(have), want, rel_tol=1e-9), key
            assert math.isclose(float(Decimal(r["weights_s"])), float(weights[key]), rel_tol=1e-9)
            continue
        # exact models: credits are stored with 20 decimals, so each may be 1e-20 off the
        # Fraction (times the amount); summed over a few hundred credits, far below a cent
        assert abs(have - want) < Fraction(1, 10**12), key
        assert abs(Fraction(Decimal(r["weights_s"])) - weights[key]) < Fraction(1, 10**15)
        assert round(have, 2) == round(want, 2)  # to the cent
        assert abs(Fraction(Decimal(r["rpm_s"])) - want / d["sent"]) < Fraction(1, 10**12)
        if d["cost"]:
            assert abs(Fraction(Decimal(r["roas_s"])) - want / d["cost"]) < Fraction(1, 10**12)


def test_response_times(pipeline: Pipeline, workload) -> None:  # type: ignore[no-untyped-def]
    sent, _, _, first_reply, _ = workload
    delivered: dict[tuple, int] = defaultdict(int)  # type: ignore[type-arg]
    seconds: dict[tuple, list[float]] = defaultdict(list)  # type: ignore[type-arg]
    for m in sent.values():
        if m.delivery_status != "delivered" or m.delivered_at is None:
            continue
        delivered[dims(m)] += 1
        candidates = [t for t, _ in m.human_click_times]
        if m.message_id in first_reply:
            candidates.append(first_reply[m.message_id])  # type: ignore[arg-type]
        if not candidates:
            continue
        response = min(candidates)
        if response >= m.delivered_at:
            seconds[dims(m)].append((response - m.delivered_at) // timedelta(microseconds=1) / 1e6)
    rows = pipeline.query.rows(
        "SELECT * FROM response_times WHERE account = {a:String}", {"a": ACCOUNT}
    )
    got = by_dims(rows)
    assert set(got) == set(delivered)
    for key, n in delivered.items():
        r = got[key]
        values = seconds.get(key, [])
        assert (r["delivered"], r["responded"]) == (n, len(values)), key
        assert r["median_seconds"] == quantile_exact(values, 0.5), key
        assert r["p90_seconds"] == quantile_exact(values, 0.9), key
    assert sum(len(v) for v in seconds.values()) >= 50


def pooled_z_test(x: int, y: int, n: int, m: int) -> tuple[float, float] | tuple[None, None]:
    """Two-sided pooled two-proportion z-test, the textbook way."""
    if n == 0 or m == 0 or x + y in (0, n + m):
        return None, None
    pooled = (x + y) / (n + m)
    z = (x / n - y / m) / math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    return z, math.erfc(abs(z) / math.sqrt(2))


def close(have: float | None, want: float | None) -> bool:
    if want is None or have is None:
        return have is None and want is None
    return math.isclose(have, want, rel_tol=1e-9, abs_tol=1e-15)


def test_variant_comparison(pipeline: Pipeline, workload) -> None:  # type: ignore[no-untyped-def]
    sent, _, _, _, _ = workload
    per: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for m in sent.values():
        if m.delivery_status == "delivered":
            v = per[(m.campaign, m.variant)]
            v[0] += 1
            v[1] += m.human_clicks > 0
            v[2] += len(m.conversions) > 0
    rows = pipeline.query.rows(
        "SELECT * FROM variant_comparison WHERE account = {a:String}", {"a": ACCOUNT}
    )
    got = {(r["campaign"], r["variant"]): r for r in rows}
    assert set(got) == set(per)
    significant = 0
    for (campaign, variant), (n, clicked, converted) in per.items():
        rest = [
            sum(v[i] for (c, vv), v in per.items() if c == campaign and vv != variant)
            for i in range(3)
        ]
        r = got[(campaign, variant)]
        assert (r["delivered"], r["clicked"], r["converted"]) == (n, clicked, converted)
        assert (r["rest_delivered"], r["rest_clicked"], r["rest_converted"]) == tuple(rest)
        assert r["ctr"] == rate(clicked, n) and r["rest_ctr"] == rate(rest[1], rest[0])
        z, p = pooled_z_test(clicked, rest[1], n, rest[0])
        assert close(r["ctr_z"], z) and close(r["ctr_p_value"], p), (campaign, variant)
        z, p = pooled_z_test(converted, rest[2], n, rest[0])
        assert close(r["conversion_z"], z) and close(r["conversion_p_value"], p)
        significant += r["ctr_p_value"] is not None and r["ctr_p_value"] < 0.05
    # the generator gives variants different click-through rates: some differences must show
    assert significant >= 1


def test_funnel_dropoff(pipeline: Pipeline, workload) -> None:  # type: ignore[no-untyped-def]
    sent, _, _, _, _ = workload
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 6)
    for m in sent.values():
        c = counts[(m.campaign, m.variant)]
        c[0] += 1
        c[1] += m.delivery_status == "delivered"
        c[2] += m.human_clicks > 0
        c[3] += m.landings
        c[4] += m.engagements
        c[5] += len(m.conversions)
    rows = pipeline.query.rows(
        "SELECT * FROM funnel_dropoff WHERE account = {a:String}", {"a": ACCOUNT}
    )
    got = {(r["campaign"], r["variant"], r["stage_index"]): r for r in rows}
    names = ["sent", "delivered", "clicked", "landed", "engaged", "converted"]
    assert len(got) == 6 * len(counts)
    for (campaign, variant), c in counts.items():
        for i, name in enumerate(names):
            r = got[(campaign, variant, i + 1)]
            assert (r["stage"], r["count"]) == (name, c[i])
            assert r["previous_count"] == (None if i == 0 else c[i - 1])
            assert r["rate_from_previous"] == (None if i == 0 else rate(c[i], c[i - 1]))
            assert r["rate_from_sent"] == rate(c[i], c[0])


def test_segment_revenue(pipeline: Pipeline, workload) -> None:  # type: ignore[no-untyped-def]
    sent, attribution, _, _, _ = workload
    by_message = {m.message_id: m for m in sent.values()}
    segment_sent: dict[tuple[str, str], int] = defaultdict(int)
    for m in sent.values():
        segment_sent[(m.campaign, m.segment)] += 1
    revenue: dict[tuple, Fraction] = defaultdict(Fraction)  # type: ignore[type-arg]
    for conversion, eligible in attribution.values():
        for model in ("last_click", "linear", "position_based", "first_click"):
            weights = expected_weights(model, eligible, conversion.occurred_at)
            for touch, w in zip(eligible, weights, strict=True):
                m = by_message[touch[2]]
                key = (m.campaign, m.segment, model, conversion.currency)
                revenue[key] += Fraction(conversion.amount) * w
    rows = pipeline.query.rows(
        "SELECT campaign, segment, model, currency, sent, toString(attributed_revenue) AS r, "
        "toString(revenue_per_message) AS rpm FROM segment_revenue "
        "WHERE account = {a:String} AND model != 'time_decay'",
        {"a": ACCOUNT},
    )
    got = {(r["campaign"], r["segment"], r["model"], r["currency"]): r for r in rows}
    # every credited (segment, model, currency) has its row, and no row comes from elsewhere
    assert {k for k, v in revenue.items() if v} <= set(got) <= set(revenue)
    for key, want in revenue.items():
        if not want:
            continue
        r = got[key]
        assert r["sent"] == segment_sent[key[:2]]
        assert abs(Fraction(Decimal(r["r"])) - want) < Fraction(1, 10**12), key
        assert abs(Fraction(Decimal(r["rpm"])) - want / r["sent"]) < Fraction(1, 10**12)


def test_daily_trends(pipeline: Pipeline, workload) -> None:  # type: ignore[no-untyped-def]
    sent, _, _, _, _ = workload
    want: dict[tuple, list] = defaultdict(  # type: ignore[type-arg]
        lambda: [0, 0, 0, 0, defaultdict(Decimal), 0, defaultdict(Decimal)]
    )
    for m in sent.values():
        assert m.sent_at is not None
        w = want[(m.campaign, m.sent_at.date().isoformat())]
        w[0] += 1
        w[1] += m.delivery_status == "delivered"
        w[2] += m.human_clicks > 0
        w[3] += len(m.conversions)
        for currency, amount in m.revenue.items():
            w[4][currency] += amount
        w[5] += len(m.after_window_conversions)
        for currency, amount in m.after_window_revenue.items():
            w[6][currency] += amount
    rows = pipeline.query.rows(
        "SELECT campaign, day, sent, delivered, clicked, conversions, delivery_rate, ctr, "
        "mapApply((k, v) -> (k, toString(v)), revenue) AS revenue, after_window_conversions, "
        "mapApply((k, v) -> (k, toString(v)), after_window_revenue) AS after_window_revenue "
        "FROM daily_trends WHERE account = {a:String}",
        {"a": ACCOUNT},
    )
    got = {(r["campaign"], r["day"]): r for r in rows}
    assert set(got) == set(want)
    assert sum(w[5] for w in want.values()) > 0  # the workload has after-window conversions
    for key, (n, delivered, clicked, conversions, revenue, late, late_revenue) in want.items():
        r = got[key]
        assert (r["sent"], r["delivered"], r["clicked"], r["conversions"]) == (
            n,
            delivered,
            clicked,
            conversions,
        )
        assert r["delivery_rate"] == rate(delivered, n) and r["ctr"] == rate(clicked, delivered)
        assert {k: Decimal(v) for k, v in r["revenue"].items() if Decimal(v)} == {
            k: v for k, v in revenue.items() if v
        }
        assert r["after_window_conversions"] == late
        assert {k: Decimal(v) for k, v in r["after_window_revenue"].items() if Decimal(v)} == {
            k: v for k, v in late_revenue.items() if v
        }


def test_send_time_heatmap_in_the_recipients_local_time(pipeline: Pipeline, workload) -> None:  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    sent, _, _, _, _ = workload
    want: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])  # type: ignore[type-arg]
    for m in sent.values():
        assert m.sent_at is not None
        local = m.sent_at.astimezone(ZoneInfo(m.recipient_timezone or "UTC"))
        w = want[(m.campaign, local.isoweekday(), local.hour)]
        delivered = m.delivery_status == "delivered"
        w[0] += 1
        w[1] += delivered
        w[2] += delivered and m.human_clicks > 0
        w[3] += delivered and bool(m.conversions)
        w[4] += m.recipient_timezone == ""
    rows = pipeline.query.rows(
        "SELECT * FROM send_time_heatmap WHERE account = {a:String}", {"a": ACCOUNT}
    )
    got = {(r["campaign"], r["local_weekday"], r["local_hour"]): r for r in rows}
    assert set(got) == set(want) and len(want) >= 10
    for key, (n, delivered, clicked, converted, unknown) in want.items():
        r = got[key]
        assert (r["sent"], r["delivered"], r["clicked"], r["converted"], r["unknown_zone"]) == (
            n,
            delivered,
            clicked,
            converted,
            unknown,
        ), key
        assert r["ctr"] == rate(clicked, delivered)
        assert r["conversion_rate"] == rate(converted, delivered)
    # the workload's recipients are in Los Angeles: local hours are not the UTC hours
    utc_hours = {m.sent_at.hour for m in sent.values() if m.sent_at is not None}
    assert {k[2] for k in want} != utc_hours


def chromium() -> str:
    import shutil

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    # .ci/run installs Debian's chromium; a machine without it fails here rather than skipping
    assert path, "chromium is needed (apt-get install chromium)"
    return path


def test_html_report_renders_in_chromium(pipeline: Pipeline, workload, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`smsfunnel report --html` as a user runs it (through the running sink), then the page as
    headless Chromium renders it: the figures it shows equal ground truth, every chart is
    there, and nothing is fetched from outside the file."""
    import re
    import subprocess

    sent, attribution, _, _, _ = workload
    page = tmp_path / "report.html"
    report_cli(pipeline, "--account", ACCOUNT, "--html", str(page))
    source = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", source)  # self-contained

    dom = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            "--window-size=1100,1500",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one

    def kpi(name: str) -> str:
        m = re.search(rf'data-kpi="{re.escape(name)}".*?class="value">([^<]+)<', dom)
        assert m, name
        return m.group(1)

    n_sent = len(sent)
    delivered = sum(m.delivery_status == "delivered" for m in sent.values())
    clicked = sum(m.human_clicks > 0 for m in sent.values())
    assert kpi("Sent") == f"{n_sent:,}"
    assert kpi("Delivery rate") == f"{delivered / n_sent:.1%}"
    assert kpi("CTR") == f"{clicked / delivered:.1%}"
    revenue = sum(
        (
            Fraction(c.amount)
            for c, eligible in attribution.values()
            if eligible and c.currency == "USD"
        ),
        Fraction(0),
    )  # last click gives each attributed conversion's whole amount to one touch
    assert kpi("Attributed revenue (last_click)") == f"USD {cents(revenue):,}"
    cost = sum((m.cost for m in sent.values()), Decimal(0)).quantize(Decimal("0.01"))
    assert kpi("Cost") == f"USD {cost:,}"
    money_table = re.search(r"<table class=\"money\">(.*?)</table>", dom, re.S)
    assert money_table and money_table.group(1).count("<tr>") == 1 + len(
        {(m.campaign, m.variant) for m in sent.values()}
    )
    assert dom.count('class="cell"') == 7 * 24
    for name in ("sent", "delivered", "clicked", "landed", "engaged", "converted"):
        assert f">{name}</text>" in dom
    variants = {(m.campaign, m.variant) for m in sent.values()}
    assert dom.count("significant)") == len(variants)
    # the verdicts table: a row per variant, each with the call the verdicts module makes
    shown = dict(
        re.findall(r'data-verdict="([^"]+)">(?:<td>[^<]*</td>){6}<td class="call">(\w+)<', dom)
    )
    from sinks.variant_verdicts import verdicts

    assert shown == {
        f"{v.campaign}/{v.variant}": str(v.revenue_call) for v in verdicts(pipeline.query, ACCOUNT)
    }
    assert len(shown) == len(variants)
    assert dom.count("<li data-segment=") == len({m.segment for m in sent.values()})
    assert "<polyline" in dom


def cents(value: Fraction | float) -> Decimal:
    exact = (
        Decimal(value.numerator) / Decimal(value.denominator)
        if isinstance(value, Fraction)
        else Decimal(value)
    )
    return exact.quantize(Decimal("0.01"))


@pytest.mark.parametrize("model", MODELS)
def test_report_in_attributed_money_equals_ground_truth(  # type: ignore[no-untyped-def]
    pipeline: Pipeline, workload, model: str
) -> None:
    """The report's per-variant figures under each model against ground truth summed here:
    counts exactly, attributed revenue and cost to the cent (time decay: 1e-9 relative), and
    RPM, RPC, CPA and ROAS from those figures; each campaign names its window. Variants that
    earned nothing are there with their cost."""
    from smsfunnel.report import attributed_summary, render

    sent, attribution, _, _, _ = workload
    by_message = {m.message_id: m for m in sent.values()}
    want: dict[tuple[str, str], dict] = defaultdict(lambda: defaultdict(int))  # type: ignore[type-arg]
    windows: dict[str, set[int]] = defaultdict(set)
    for m in sent.values():
        w = want[(m.campaign, m.variant)]
        w["sent"] += 1
        w["delivered"] += m.delivery_status == "delivered"
        w["unique_clicks"] += m.human_clicks > 0
        w["conversions"] += len(m.conversions)
        w["after_window_conversions"] += len(m.after_window_conversions)
        w["cost"] += Fraction(m.cost)
        windows[m.campaign].add(m.attribution_window_hours or 168)
    revenue: dict[tuple[str, str], Fraction | float] = defaultdict(Fraction)
    for conversion, eligible in attribution.values():
        if conversion.currency != "USD":
            continue
        for touch, weight in zip(
            eligible, expected_weights(model, eligible, conversion.occurred_at), strict=True
        ):
            m = by_message[touch[2]]
            amount = (
                float(conversion.amount)
                if isinstance(weight, float)
                else Fraction(conversion.amount)
            )
            revenue[(m.campaign, m.variant)] += amount * weight

    report = {
        (s.campaign, s.variant): s for s in attributed_summary(pipeline.query, ACCOUNT, model)
    }
    assert set(report) == set(want)
    assert sum(w["after_window_conversions"] for w in want.values()) > 0
    for key, w in want.items():
        s = report[key]
        assert (
            s.sent,
            s.delivered,
            s.unique_clicks,
            s.conversions,
            s.after_window_conversions,
        ) == (
            w["sent"],
            w["delivered"],
            w["unique_clicks"],
            w["conversions"],
            w["after_window_conversions"],
        ), key
        assert Fraction(s.cost) == w["cost"], key
        expected = revenue.get(key, Fraction(0))
        if isinstance(expected, float):
            assert math.isclose(float(s.revenue), expected, rel_tol=1e-9, abs_tol=1e-9), key
        else:
            assert s.revenue.quantize(Decimal("0.01")) == cents(expected), key
            assert abs(Fraction(s.revenue) - expected) < Fraction(1, 10**12), key
        assert s.windows == tuple(sorted(windows[key[0]]))
        # the ratios are the DOMAIN.md formulas of those figures
        assert s.rpm.value == (s.revenue / w["sent"] if w["sent"] else None)
        assert s.rpc.value == (s.revenue / w["unique_clicks"] if w["unique_clicks"] else None)
        assert s.cpa.value == (s.cost / w["conversions"] if w["conversions"] else None)
        assert s.roas.value == (s.revenue / s.cost if s.cost else None)
    text = str(render(list(report.values()), ACCOUNT, model).title)
    assert model in text and "attribution window" in text


def test_window_conversion_rate(pipeline: Pipeline, workload) -> None:  # type: ignore[no-untyped-def]
    sent, attribution, _, _, _ = workload
    in_window = {touch[1] for _, eligible in attribution.values() for touch in eligible}
    clicks: dict[tuple, int] = defaultdict(int)  # type: ignore[type-arg]
    converting: dict[tuple, int] = defaultdict(int)  # type: ignore[type-arg]
    for m in sent.values():
        clicks[dims(m)] += m.human_clicks
        converting[dims(m)] += sum(touch_id in in_window for _, touch_id in m.human_click_times)
    rows = pipeline.query.rows(
        "SELECT * FROM window_conversions WHERE account = {a:String}", {"a": ACCOUNT}
    )
    got = by_dims(rows)
    assert set(got) == set(clicks)
    for key, n in clicks.items():
        r = got[key]
        assert (r["human_clicks"], r["converting_clicks"]) == (n, converting[key]), key
        assert r["window_conversion_rate"] == rate(converting[key], n)
    assert sum(converting.values()) >= 10


def test_subscriber_growth(pipeline: Pipeline, workload) -> None:  # type: ignore[no-untyped-def]
    _, _, _, _, all_events = workload
    # distinct inbound SMS of the workload, by event id
    events = {e.event_id: e for e in all_events if isinstance(e, InboundEvent)}
    want: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # type: ignore[type-arg]
    for e in events.values():
        w = want[(e.sender, e.occurred_at.date().isoformat())]
        w[0] += e.kind.value == "opt_in"
        w[1] += e.kind.value == "opt_out"
        w[2] += e.kind.value == "help"
        w[3] += e.kind.value == "reply"
    rows = pipeline.query.rows(
        "SELECT * FROM subscriber_growth WHERE account = {a:String}", {"a": ACCOUNT}
    )
    got = {(r["sender"], r["day"]): r for r in rows}
    assert set(got) == set(want)
    for key, (ins, outs, helps, replies) in want.items():
        r = got[key]
        assert (r["opt_ins"], r["opt_outs"], r["help_requests"], r["replies"]) == (
            ins,
            outs,
            helps,
            replies,
        ), key
        assert r["net_growth"] == ins - outs
    assert sum(w[0] for w in want.values()) >= 5 and sum(w[1] for w in want.values()) >= 5


def test_hourly_aggregate_by_every_dimension(pipeline: Pipeline, workload) -> None:  # type: ignore[no-untyped-def]
    """The sink's hourly cohorts (what dashboards read at volume) by campaign, variant,
    segment, send hour, sender, country, carrier and the recipient's local weekday and hour."""
    from zoneinfo import ZoneInfo

    sent, _, _, _, _ = workload
    want: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])  # type: ignore[type-arg]
    for m in sent.values():
        assert m.sent_at is not None
        local = m.sent_at.astimezone(ZoneInfo(m.recipient_timezone or "UTC"))
        hour = m.sent_at.replace(minute=0, second=0, microsecond=0)
        key = (*dims(m), hour.strftime("%Y-%m-%d %H:%M:%S"), local.isoweekday(), local.hour)
        w = want[key]
        w[0] += 1
        w[1] += m.delivery_status == "delivered"
        w[2] += m.human_clicks > 0
        w[3] += len(m.conversions)
        w[4] += len(m.after_window_conversions)
    rows = pipeline.query.rows(
        "SELECT campaign, variant, segment, sender, country, carrier, "
        "formatDateTime(send_hour, '%Y-%m-%d %H:%i:%S') AS hour, local_weekday, local_hour, "
        "sent, delivered, clicked_messages, conversions, after_window_conversions "
        "FROM funnel_hourly FINAL WHERE account = {a:String}",
        {"a": ACCOUNT},
    )
    got = {
        (*(r[d] for d in DIMS), r["hour"], r["local_weekday"], r["local_hour"]): [
            r["sent"],
            r["delivered"],
            r["clicked_messages"],
            r["conversions"],
            r["after_window_conversions"],
        ]
        for r in rows
    }
    assert got == dict(want)


def test_orphan_messages_are_kept_and_counted(pipeline: Pipeline, workload) -> None:  # type: ignore[no-untyped-def]
    _, _, _, _, events = workload
    from tests.ground_truth import expected_messages

    orphans = {
        k[1]: m for k, m in expected_messages(events).items() if k[0] == ACCOUNT and not m.has_send
    }
    rows = pipeline.query.rows(
        "SELECT message_id, events, clicks, conversions, "
        "mapApply((k, v) -> (k, toString(v)), revenue) AS revenue FROM orphan_messages "
        "WHERE account = {a:String}",
        {"a": ACCOUNT},
    )
    got = {r["message_id"]: r for r in rows}
    assert set(got) == set(orphans) == {"orphan-0", "orphan-1", "orphan-2"}
    for message_id, m in orphans.items():
        r = got[message_id]
        assert (r["events"], r["clicks"], r["conversions"]) == (
            m.distinct_events,
            m.clicks,
            len(m.conversions),
        )
        assert {k: Decimal(v) for k, v in r["revenue"].items()} == m.revenue
