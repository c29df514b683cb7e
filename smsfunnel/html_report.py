"""The self-contained HTML report: one file with inline CSS and SVG charts (funnel, variants,
send-time heatmap, trend) and no external asset, so it opens offline and can be mailed.

`gather` reads the metric views through any QueryClient (the sink's scoped /query or the store
directly); `render_html` is pure: data in, HTML out.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from schemas import metric_formulas as mf
from sinks.query_client import QueryClient
from sinks.send_times import SegmentTimes, label
from sinks.send_times import recommend as recommend_send_times
from sinks.variant_verdicts import Verdict, verdicts
from smsfunnel.report import AttributedVariant, attributed_summary, money, ratio, window_label

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class ReportData:
    account: str
    model: str
    currency: str
    generated_at: datetime
    totals: dict[str, int]
    revenue: Decimal
    cost: Decimal
    money: list[AttributedVariant]
    stages: list[dict[str, Any]]
    variants: list[dict[str, Any]]
    heatmap: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    trend: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    send_times: list[SegmentTimes] = field(default_factory=list)


def gather(
    client: QueryClient, account: str, model: str = "last_click", currency: str = "USD"
) -> ReportData:
    p = {"a": account, "m": model, "c": currency}
    (totals,) = client.rows(
        "SELECT sum(sent) AS sent, sum(delivered) AS delivered, sum(dropped) AS dropped, "
        "sum(failed) AS failed, sum(unique_human_clicks) AS clicked, sum(landings) AS landings, "
        "sum(engagements) AS engagements, sum(conversions) AS conversions, "
        "sum(after_window_conversions) AS after_window_conversions, "
        "sum(opt_outs) AS opt_outs FROM campaign_metrics WHERE account = {a:String}",
        p,
    )
    by_variant = attributed_summary(client, account, model, currency)
    stages = client.rows(
        "SELECT stage_index, any(stage) AS stage, sum(count) AS count FROM funnel_dropoff "
        "WHERE account = {a:String} GROUP BY stage_index ORDER BY stage_index",
        p,
    )
    variants = client.rows(
        "SELECT campaign, variant, delivered, clicked, converted, ctr, conversion_rate, rest_ctr, "
        "ctr_p_value, conversion_p_value FROM variant_comparison WHERE account = {a:String} "
        "ORDER BY campaign, variant",
        p,
    )
    cells = client.rows(
        "SELECT local_weekday, local_hour, sum(delivered) AS delivered, sum(clicked) AS clicked "
        "FROM send_time_heatmap WHERE account = {a:String} GROUP BY local_weekday, local_hour",
        p,
    )
    trend = client.rows(
        "SELECT toString(day) AS day, sum(sent) AS sent, sum(clicked) AS clicked, "
        "sum(conversions) AS conversions FROM daily_trends WHERE account = {a:String} "
        "GROUP BY day ORDER BY day",
        p,
    )
    return ReportData(
        account=account,
        model=model,
        currency=currency,
        generated_at=datetime.now(UTC),
        totals={k: int(v or 0) for k, v in totals.items()},
        revenue=sum((v.revenue for v in by_variant), Decimal(0)),
        cost=sum((v.cost for v in by_variant), Decimal(0)),
        money=by_variant,
        stages=stages,
        variants=variants,
        heatmap={
            (int(c["local_weekday"]), int(c["local_hour"])): (
                int(c["delivered"]),
                int(c["clicked"]),
            )
            for c in cells
        },
        trend=trend,
        verdicts=verdicts(client, account, "", model, currency),
        send_times=recommend_send_times(client, account, "", model, currency),
    )


def _pct(num: int | float, den: int | float) -> str:
    return f"{num / den:.1%}" if den else "n/a"


def _kpis(d: ReportData) -> str:
    t = d.totals
    roas = ratio(mf.return_on_ad_spend(d.revenue, d.cost))
    cpa = ratio(mf.cost_per_acquisition(d.cost, t["conversions"]), d.currency)
    tiles = [
        ("Sent", f"{t['sent']:,}", "messages attempted"),
        ("Delivery rate", _pct(t["delivered"], t["sent"]), f"{t['delivered']:,} / {t['sent']:,}"),
        (
            "CTR",
            _pct(t["clicked"], t["delivered"]),
            f"{t['clicked']:,} / {t['delivered']:,} delivered",
        ),
        (
            "Conversions",
            f"{t['conversions']:,}",
            f"{_pct(t['conversions'], t['clicked'])} of clickers; "
            f"{t['after_window_conversions']:,} more after their window",
        ),
        ("Unsubscribe rate", _pct(t["opt_outs"], t["delivered"]), f"{t['opt_outs']:,} opt-outs"),
        (f"Attributed revenue ({d.model})", money(d.revenue, d.currency), f"ROAS {roas}"),
        ("Cost", money(d.cost, d.currency), f"CPA {cpa}"),
    ]
    return "".join(
        f'<div class="kpi" data-kpi="{html.escape(name)}"><div class="name">{html.escape(name)}'
        f'</div><div class="value">{html.escape(value)}</div><div class="sub">'
        f"{html.escape(sub)}</div></div>"
        for name, value, sub in tiles
    )


def _funnel_svg(stages: list[dict[str, Any]]) -> str:
    if not stages:
        return "<p>No messages yet.</p>"
    top = max(int(s["count"]) for s in stages) or 1
    bar_h, width = 34, 620
    parts = [f'<svg class="funnel" width="{width + 260}" height="{bar_h * len(stages) + 8}">']
    previous = None
    for i, s in enumerate(stages):
        count = int(s["count"])
        w = max(2, round(width * count / top))
        kept = "" if previous is None else f" ({_pct(count, previous)} of previous)"
        y = i * bar_h + 4
        parts.append(
            f'<rect x="110" y="{y}" width="{w}" height="{bar_h - 8}" fill="#3b82f6"/>'
            f'<text x="100" y="{y + 18}" text-anchor="end">{html.escape(str(s["stage"]))}</text>'
            f'<text x="{116 + w}" y="{y + 18}">{count:,}{kept}</text>'
        )
        previous = count
    parts.append("</svg>")
    return "".join(parts)


def _variants_table(variants: list[dict[str, Any]]) -> str:
    rows = []
    for v in variants:
        p = v["ctr_p_value"]
        significant = p is not None and p < 0.05
        marker = "significant" if significant else "not significant"
        ctr = v["ctr"] or 0.0
        rows.append(
            "<tr>"
            f"<td>{html.escape(v['campaign'])}</td><td>{html.escape(v['variant'])}</td>"
            f"<td>{int(v['delivered']):,}</td>"
            f'<td><svg width="120" height="12"><rect width="{round(120 * min(ctr * 4, 1))}" '
            f'height="12" fill="#10b981"/></svg> {_pct(int(v["clicked"]), int(v["delivered"]))}'
            f"</td><td>{_pct(int(v['converted']), int(v['delivered']))}</td>"
            f"<td>{'n/a' if p is None else f'{p:.4f}'} ({marker})</td>"
            "</tr>"
        )
    return (
        "<table class='variants'><tr><th>campaign</th><th>variant</th><th>delivered</th>"
        "<th>CTR</th><th>conversion</th><th>CTR p-value vs rest of campaign</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _verdicts_table(found: list[Verdict]) -> str:
    def num(x: float | None, digits: int = 4) -> str:
        return "n/a" if x is None else f"{x:.{digits}f}"

    rows = "".join(
        f"<tr data-verdict='{html.escape(v.campaign)}/{html.escape(v.variant)}'>"
        f"<td>{html.escape(v.campaign)}</td><td>{html.escape(v.variant)}</td>"
        f"<td>{v.sent:,}</td><td>{num(v.revenue_per_message)}</td>"
        f"<td>{num(v.rest_revenue_per_message)}</td><td>{num(v.rpm_p_value)}</td>"
        f"<td class='call'>{v.revenue_call}</td><td>{v.conversion_call}</td>"
        f"<td>{'' if not v.more_messages else f'{v.more_messages:,}'}</td>"
        f"<td>{html.escape(v.reason)}</td></tr>"
        for v in found
    )
    return (
        "<table class='verdicts'><tr><th>campaign</th><th>variant</th><th>sent</th>"
        "<th>revenue / message</th><th>rest of campaign</th><th>p (Welch)</th>"
        "<th>on revenue</th><th>on conversion</th><th>more messages needed</th><th>why</th></tr>"
        + rows
        + "</table>"
    )


def _send_times_list(found: list[SegmentTimes]) -> str:
    def best(kind: str, slots: list[Any] | None) -> str:
        if slots is None:
            return "not enough data"
        top, *tied = slots
        also = ", ".join(label(kind, x.value) for x in tied)
        return (
            f"{label(kind, top.value)}: {top.revenue_per_message:.4f} per message "
            f"({top.low:.4f} to {top.high:.4f})" + (f", as good: {also}" if tied else "")
        )

    items = "".join(
        f"<li data-segment='{html.escape(s.segment)}'><b>{html.escape(s.segment or '(none)')}</b>"
        f": hour {html.escape(best('hour', s.best_hours))}; "
        f"weekday {html.escape(best('weekday', s.best_weekdays))}</li>"
        for s in found
    )
    return f"<ul class='send-times'>{items}</ul>"


def _money_table(d: ReportData) -> str:
    rows = "".join(
        "<tr>"
        f"<td>{html.escape(v.campaign)}</td><td>{html.escape(window_label(v.windows))}</td>"
        f"<td>{html.escape(v.variant)}</td><td>{v.sent:,}</td><td>{v.delivered:,}</td>"
        f"<td>{v.unique_clicks:,}</td><td>{v.ctr.percent()}</td>"
        f"<td>{v.conversions:,}</td><td>{v.after_window_conversions:,}</td>"
        f"<td>{money(v.revenue, d.currency)}</td><td>{money(v.cost, d.currency)}</td>"
        f"<td>{ratio(v.rpm, d.currency, 4)}</td><td>{ratio(v.rpc, d.currency, 4)}</td>"
        f"<td>{ratio(v.cpa, d.currency)}</td><td>{ratio(v.roas)}</td>"
        "</tr>"
        for v in d.money
    )
    header = "".join(
        f"<th>{html.escape(h)}</th>"
        for h in (
            "campaign",
            "window",
            "variant",
            "sent",
            "delivered",
            "unique clicks",
            "CTR",
            "conversions",
            "after window",
            f"revenue ({d.model})",
            "cost",
            "RPM",
            "RPC",
            "CPA",
            "ROAS",
        )
    )
    return f"<table class='money'><tr>{header}</tr>{rows}</table>"


def _heatmap_svg(cells: dict[tuple[int, int], tuple[int, int]]) -> str:
    size = 26
    rates = [c / d for d, c in cells.values() if d]
    top = max(rates, default=0) or 1
    parts = [f'<svg class="heatmap" width="{60 + 24 * size}" height="{30 + 7 * size}">']
    for hour in range(0, 24, 3):
        parts.append(f'<text x="{60 + hour * size}" y="14">{hour:02d}h</text>')
    for day in range(1, 8):
        y = 20 + (day - 1) * size
        parts.append(f'<text x="4" y="{y + 17}">{WEEKDAYS[day - 1]}</text>')
        for hour in range(24):
            delivered, clicked = cells.get((day, hour), (0, 0))
            if delivered:
                level = round(235 - 180 * (clicked / delivered) / top)
                fill = f"rgb({level},{level},255)"
                share = f"{_pct(clicked, delivered)} ({clicked}/{delivered})"
                tip = f"{WEEKDAYS[day - 1]} {hour:02d}h: CTR {share}"
            else:
                fill, tip = "#eee", f"{WEEKDAYS[day - 1]} {hour:02d}h: nothing delivered"
            parts.append(
                f'<rect class="cell" x="{60 + hour * size}" y="{y}" width="{size - 2}" '
                f'height="{size - 2}" fill="{fill}"><title>{html.escape(tip)}</title></rect>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _trend_svg(trend: list[dict[str, Any]]) -> str:
    if not trend:
        return "<p>No sends yet.</p>"
    width, height = 620, 160
    top = max(int(t["sent"]) for t in trend) or 1
    step = width / max(1, len(trend) - 1)

    def points(key: str) -> str:
        return " ".join(
            f"{40 + i * step:.1f},{height - 20 - (height - 40) * int(t[key]) / top:.1f}"
            for i, t in enumerate(trend)
        )

    parts = [f'<svg class="trend" width="{width + 80}" height="{height}">']
    for key, colour in (("sent", "#3b82f6"), ("clicked", "#10b981"), ("conversions", "#f59e0b")):
        parts.append(
            f'<polyline points="{points(key)}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        for i, t in enumerate(trend):
            x = 40 + i * step
            y = height - 20 - (height - 40) * int(t[key]) / top
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
    for i, t in enumerate(trend):
        parts.append(
            f'<text x="{40 + i * step:.1f}" y="{height - 4}">{html.escape(t["day"])}</text>'
        )
    for i, (key, colour) in enumerate(
        (("sent", "#3b82f6"), ("clicked", "#10b981"), ("conversions", "#f59e0b"))
    ):
        parts.append(
            f'<rect x="{width - 20}" y="{10 + i * 18}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{width - 4}" y="{19 + i * 18}">{key}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#111}
h1{font-size:22px} h2{font-size:17px;margin-top:28px}
.kpis{display:flex;flex-wrap:wrap;gap:12px}
.kpi{border:1px solid #ddd;border-radius:8px;padding:10px 14px;min-width:150px}
.kpi .name{font-size:12px;color:#555}.kpi .value{font-size:22px;font-weight:600}
.kpi .sub{font-size:11px;color:#777}
table{border-collapse:collapse}td,th{border-bottom:1px solid #eee;padding:4px 10px;text-align:left}
svg text{font-size:12px;fill:#333}
.note{font-size:12px;color:#666}
"""


def render_html(d: ReportData) -> str:
    title = f"smsfunnel report: {d.account}"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p class='note'>Generated {d.generated_at:%Y-%m-%d %H:%M} UTC. Revenue is attributed "
        f"by the {html.escape(d.model)} model within each campaign's attribution window, net of "
        f"refunds and corrections, in "
        f"{html.escape(d.currency)}; conversions are those through each message's own clicks "
        "inside that window (later ones are shown apart). Rates show their numerator and "
        "denominator.</p>"
        f"<div class='kpis'>{_kpis(d)}</div>"
        f"<h2>Funnel</h2>{_funnel_svg(d.stages)}"
        f"<h2>Money by campaign and variant</h2>{_money_table(d)}"
        f"<h2>Variants</h2>{_variants_table(d.variants)}"
        f"<h2>Verdicts on revenue per message ({html.escape(d.model)})</h2>"
        "<p class='note'>Each variant against the rest of its campaign: Welch's test on revenue "
        "per message, the pooled two-proportion test on conversion, family-wise 5 %, a call "
        "only with 30 earning messages on each side; an undecided test shows the messages still "
        "needed to find a 10 % difference with 80 % power.</p>"
        f"{_verdicts_table(d.verdicts)}"
        "<h2>Best send times by segment (revenue per message, 95 % intervals)</h2>"
        f"{_send_times_list(d.send_times)}"
        "<h2>When to send (recipient's local time, CTR)</h2>"
        f"{_heatmap_svg(d.heatmap)}"
        "<h2>Trend by send day (sent, clicked, conversions)</h2>"
        f"{_trend_svg(d.trend)}"
        "</body></html>"
    )
