"""Benchmark (not a test): dashboard query latency on the embedded ClickHouse engine.

1. Over aggregates for 100 million messages: fills `funnel_hourly` (the sink's hourly cohort
   aggregate) directly in ClickHouse with 30 days x 50 campaigns x 4 variants x 5 segments of
   hourly cohorts adding up to --messages messages, then times the campaign funnel, the variant
   comparison (with its z-test) and the recipient-local weekday x hour heatmap.
2. Over per-message rows: fills `funnel_rows` with --rows messages and times the metric views
   the BI layer reads (campaign_metrics, variant_comparison, send_time_heatmap), which read the
   rows with FINAL: their cost grows with messages, not cohorts.

    PYTHONPATH=. .venv/bin/python benchmarks/dashboard_queries.py \
        [--messages 100000000] [--rows 5000000]

Prints each query's median and min/max over --runs runs (after one warm-up).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sinks.clickhouse import connect
from sinks.migrations.runner import migrate

HOURS, CAMPAIGNS, VARIANTS, SEGMENTS = 30 * 24, 50, 4, 5

AGGREGATE_QUERIES = {
    "campaign funnel": """
        SELECT campaign, sum(sent) AS sent, sum(delivered) AS delivered,
            sum(clicked_messages) AS clicked, sum(landings) AS landed,
            sum(engagements) AS engaged, sum(conversions) AS converted,
            delivered / sent AS delivery_rate, clicked / delivered AS ctr
        FROM funnel_hourly FINAL WHERE account = 'bench' GROUP BY campaign ORDER BY campaign""",
    "variant comparison": """
        SELECT campaign, variant, d, c,
            proportionsZTest(c, toUInt64(cd - d), d, toUInt64(cc - c), 0.95, 'pooled').2 AS p
        FROM (
            SELECT campaign, variant, sum(delivered) AS d, sum(clicked_messages) AS c,
                sum(d) OVER (PARTITION BY campaign) AS cd, sum(c) OVER (PARTITION BY campaign) AS cc
            FROM funnel_hourly FINAL WHERE account = 'bench' GROUP BY campaign, variant
        ) ORDER BY campaign, variant""",
    "heatmap (local weekday x hour)": """
        SELECT local_weekday, local_hour, sum(clicked_messages) / sum(delivered) AS ctr
        FROM funnel_hourly FINAL WHERE account = 'bench' GROUP BY local_weekday, local_hour""",
}
VIEW_QUERIES = {
    "campaign_metrics (by campaign)": "SELECT campaign, sum(sent), sum(delivered), "
    "sum(unique_human_clicks) FROM campaign_metrics WHERE account = 'bench' GROUP BY campaign",
    "variant_comparison": "SELECT * FROM variant_comparison WHERE account = 'bench'",
    "send_time_heatmap": "SELECT local_weekday, local_hour, sum(clicked) / sum(delivered) "
    "FROM send_time_heatmap WHERE account = 'bench' GROUP BY local_weekday, local_hour",
}


def timed(client, sql: str, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    client.query(sql)  # warm-up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        client.query(sql)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000_000)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    cohorts = HOURS * CAMPAIGNS * VARIANTS * SEGMENTS
    per_cohort = max(1, round(args.messages / cohorts))
    with tempfile.TemporaryDirectory() as tmp:
        client = connect(f"chdb://{Path(tmp) / 'ch'}")
        migrate(client)
        t0 = time.perf_counter()
        # cohort i: hour, campaign, variant, segment from its digits; rates vary by variant
        client.command(f"""
            INSERT INTO funnel_hourly (account, campaign, variant, segment, send_hour, sender,
                country, carrier, local_weekday, local_hour, sent,
                delivered, undelivered, expired, rejected, unknown, pending, clicks,
                human_clicks, clicked_messages, landings, engagements, converting_messages,
                conversions, revenue, cost, computed_at)
            SELECT 'bench', concat('c', toString(intDiv(number, {HOURS * VARIANTS * SEGMENTS}))),
                ['A', 'B', 'C', 'D'][1 + number % {VARIANTS}],
                concat('s', toString(intDiv(number, {VARIANTS}) % {SEGMENTS})),
                toDateTime('2026-10-01 00:00:00', 'UTC')
                    + toIntervalHour(intDiv(number, {VARIANTS * SEGMENTS}) % {HOURS}) AS h,
                '72345', 'US', 'att', toDayOfWeek(h, 0, 'America/Los_Angeles'),
                toHour(h, 'America/Los_Angeles'),
                {per_cohort} AS s, toUInt64(s * 0.97) AS d, toUInt64(s * 0.015),
                toUInt64(s * 0.005), toUInt64(s * 0.01), 0, 0,
                toUInt64(d * 0.09), toUInt64(d * 0.08),
                toUInt64(d * (0.05 + 0.01 * (number % {VARIANTS}))) AS c,
                toUInt64(c * 0.8),
                toUInt64(c * 0.4), toUInt64(c * 0.05), toUInt64(c * 0.05),
                map('USD', toDecimal128(c * 2.5, 10)), map('USD', toDecimal128(s * 0.0079, 10)),
                now64(6)
            FROM numbers({cohorts})""")
        (total,) = client.query("SELECT sum(sent) FROM funnel_hourly").result_rows[0]
        fill_aggregates = time.perf_counter() - t0
        t0 = time.perf_counter()
        client.command(
            f"""
            INSERT INTO funnel_rows (account, message_id, version, has_send, campaign, variant,
                segment, sender, recipient_hash, country, carrier, sent_at, send_hour,
                recipient_timezone, send_local_hour, send_local_weekday, delivery_status,
                delivery_status_at, human_clicks, conversions, first_event_at, last_event_at)
            SELECT 'bench', toString(generateUUIDv4()), 3, true,
                concat('c', toString(number % {CAMPAIGNS})), ['A', 'B', 'C', 'D'][1 + number % 4],
                concat('s', toString(number % 5)), '72345', hex(cityHash64(number)), 'US', 'att',
                toDateTime64('2026-10-01 00:00:00', 6, 'UTC')
                    + toIntervalSecond(number % 2592000) AS t,
                toStartOfHour(t), 'America/Los_Angeles', toHour(t, 'America/Los_Angeles'),
                toDayOfWeek(t, 0, 'America/Los_Angeles'),
                if(number % 33 = 0, 'undelivered', 'delivered'), t + toIntervalSecond(20),
                if(number % 11 = 0, 1, 0), if(number % 150 = 0, 1, 0), t, t
            FROM numbers({args.rows})"""
        )
        fill_rows = time.perf_counter() - t0
        print(
            f"aggregates: {cohorts:,} hourly cohorts = {total:,} messages "
            f"(filled in {fill_aggregates:.1f} s); "
            f"per-message rows: {args.rows:,} (filled in {fill_rows:.1f} s); {args.runs} runs each"
        )
        for title, queries in (
            ("over aggregates", AGGREGATE_QUERIES),
            ("metric views over per-message rows", VIEW_QUERIES),
        ):
            print(f"-- {title}")
            for name, sql in queries.items():
                t = timed(client, sql, args.runs)
                print(
                    f"{name:34} median {statistics.median(t) * 1000:8.1f} ms   "
                    f"min {min(t) * 1000:8.1f}   max {max(t) * 1000:8.1f}"
                )
        client.close()


if __name__ == "__main__":
    main()
