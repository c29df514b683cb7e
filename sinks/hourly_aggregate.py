"""The hourly cohort aggregate (`funnel_hourly`): its columns, and the one SQL that computes it
from `funnel_rows FINAL`. The sink recomputes the cohorts a batch touched; migrations rebuild it
whole when its dimensions change. Dashboards read it instead of per-message rows at volume."""

from __future__ import annotations

TS = "DateTime64(6, 'UTC')"

# dimension in funnel_hourly -> (its type, the funnel_rows expression it groups by)
DIMENSIONS_V1: dict[str, tuple[str, str]] = {
    "account": ("LowCardinality(String)", "account"),
    "campaign": ("LowCardinality(String)", "campaign"),
    "variant": ("LowCardinality(String)", "variant"),
    "segment": ("LowCardinality(String)", "segment"),
    "send_hour": ("DateTime('UTC')", "send_hour"),
}
DIMENSIONS: dict[str, tuple[str, str]] = {
    **DIMENSIONS_V1,
    "sender": ("LowCardinality(String)", "sender"),
    "country": ("LowCardinality(String)", "country"),
    "carrier": ("LowCardinality(String)", "carrier"),
    "local_weekday": ("UInt8", "send_local_weekday"),
    "local_hour": ("UInt8", "send_local_hour"),
}
# measure -> (type and comment, aggregate over funnel_rows). No aliases in the SELECT: one named
# like a column (clicks, revenue, …) would shadow it inside the other aggregates (ClickHouse
# resolves aliases query-wide).
MEASURES_V8: dict[str, tuple[str, str]] = {
    "sent": ("UInt64 COMMENT 'messages attempted'", "count()"),
    "delivered": ("UInt64", "countIf(delivery_status = 'delivered')"),
    "undelivered": ("UInt64", "countIf(delivery_status = 'undelivered')"),
    "expired": ("UInt64", "countIf(delivery_status = 'expired')"),
    "rejected": (
        "UInt64 COMMENT 'dropped before the handset network'",
        "countIf(delivery_status = 'rejected')",
    ),
    "unknown": ("UInt64", "countIf(delivery_status = 'unknown')"),
    "pending": (
        "UInt64 COMMENT 'no final receipt yet'",
        "countIf(delivery_status IN ('', 'submitted'))",
    ),
    "clicks": ("UInt64 COMMENT 'distinct click events'", "sum(clicks)"),
    "human_clicks": ("UInt64", "sum(human_clicks)"),
    "clicked_messages": (
        "UInt64 COMMENT 'messages with at least one human click'",
        "countIf(human_clicks > 0)",
    ),
    "landings": ("UInt64", "sum(landings)"),
    "engagements": ("UInt64", "sum(engagements)"),
    "converting_messages": ("UInt64", "countIf(conversions > 0)"),
    "conversions": ("UInt64", "sum(conversions)"),
    "revenue": ("Map(String, Decimal(38, 10))", "sumMap(revenue)"),
    "cost": ("Map(String, Decimal(38, 10))", "sumMap(map(cost_currency, cost))"),
    "computed_at": (TS, "now64(6)"),
}
# from migration 14: the conversions after their attribution window, their own figure
MEASURES: dict[str, tuple[str, str]] = {
    **{k: v for k, v in MEASURES_V8.items() if k != "computed_at"},
    "after_window_conversions": (
        "UInt64 COMMENT 'conversions after their attribution window: in no other figure'",
        "sum(after_window_conversions)",
    ),
    "after_window_revenue": (
        "Map(String, Decimal(38, 10)) COMMENT 'their revenue, by currency'",
        "sumMap(after_window_revenue)",
    ),
    "computed_at": MEASURES_V8["computed_at"],
}


def create_table(
    dimensions: dict[str, tuple[str, str]], measures: dict[str, tuple[str, str]] = MEASURES
) -> str:
    columns = [f"{name} {kind}" for name, (kind, _) in dimensions.items()]
    columns += [f"{name} {kind}" for name, (kind, _) in measures.items()]
    return (
        "CREATE TABLE IF NOT EXISTS funnel_hourly (\n    "
        + ",\n    ".join(columns)
        + f"\n)\nENGINE = ReplacingMergeTree(computed_at)\nORDER BY ({', '.join(dimensions)})"
    )


def net_sent_messages(where: str = "1") -> str:
    """Sent messages of funnel_rows FINAL matching `where`, their `revenue` net of the
    refunds, chargebacks and corrections of the orders counted in it (`order_ids`; from
    migration 15). The one definition of a message's net revenue: the hourly aggregate and the
    funnel views read it."""
    return f"""(
    SELECT * REPLACE (mapAdd(revenue, adj.adjustments) AS revenue)
    FROM funnel_rows FINAL
    LEFT JOIN (
        SELECT account, message_id, sumMap(map(a.currency, a.amount)) AS adjustments
        FROM (
            SELECT account, message_id, order_id
            FROM funnel_rows FINAL ARRAY JOIN order_ids AS order_id
            WHERE has_send AND ({where})
        ) AS o
        INNER JOIN (
            SELECT account, order_id, currency, amount FROM conversion_adjustments FINAL
        ) AS a USING (account, order_id)
        GROUP BY account, message_id
    ) AS adj USING (account, message_id)
    WHERE has_send AND ({where})
)"""


def aggregate_sql(
    dimensions: dict[str, tuple[str, str]],
    where: str,
    measures: dict[str, tuple[str, str]] = MEASURES,
    net: bool = True,
) -> str:
    """INSERT … SELECT of every cohort of funnel_rows FINAL matching `where`; `net`: revenue
    net of adjustments (net_sent_messages), else as the rows hold it (before migration 15)."""
    names = [*dimensions, *measures]
    selected = [expr for _, expr in dimensions.values()] + [e for _, e in measures.values()]
    groups = ", ".join(expr for _, expr in dimensions.values())
    source = (
        f"{net_sent_messages(where)} AS f"
        if net
        else f"funnel_rows FINAL\nWHERE has_send AND ({where})"
    )
    return (
        f"INSERT INTO funnel_hourly ({', '.join(names)})\n"
        f"SELECT {', '.join(selected)}\nFROM {source}\nGROUP BY {groups}"
    )


COHORTS = "(account, campaign, send_hour) IN {cohorts:Array(Tuple(String, String, DateTime))}"
# What the sink runs for the cohorts a batch touched.
RECOMPUTE_COHORTS = aggregate_sql(DIMENSIONS, COHORTS)
# The cohorts of the messages whose counted orders a batch's adjustments adjust.
ADJUSTED_COHORTS = """
SELECT DISTINCT account, campaign, send_hour
FROM funnel_rows FINAL ARRAY JOIN order_ids AS order_id
WHERE has_send AND (account, order_id) IN {orders:Array(Tuple(String, String))}
"""
